//! eCircle eC-messenger's synchronous SOAP API (`/rpc`, WSDL at `/rpc?wsdl` and
//! `/soap/ecm.wsdl`): document/literal wrapped SOAP 1.1 in the `rpcns`
//! namespace, a session from `logon` as the first child of every other call, and
//! `EcMException` faults. See `../shared/specs/ecircle.md` and
//! `docs/compat/ecircle.md`.
//!
//! eCircle's users are our recipients, its groups our lists, and a member
//! (`<userId>g<groupId>`) a recipient's subscription to a list.

mod documents;
mod fault;
mod groups;
mod members;
mod messages;
mod params;
mod session;
mod users;

use actix_web::{HttpRequest, HttpResponse, web};

use crate::db::{DbConnection, write_transaction};
use crate::server::AppState;
use crate::web::base_url;
use crate::xml::XmlWriter;
use crate::xml::soap::{self, Fault, Request, Version};
use crate::{Error, Result};

pub use fault::EcmFault;
use params::Params;
use session::{Caller, Links};

/// The namespace of operations, wrappers and the fault (no hyphen in
/// "ecircleag", unlike the documents' namespace).
pub const NAMESPACE: &str = "http://webservices.ecircleag.com/rpcns";
const WSDL: &str = include_str!("../../../wsdl/ecm.wsdl");
const SERVICE_PATH: &str = "/rpc";
/// What `getVersion` answers.
const VERSION: &str = "eC-Messenger RPC 1.33 (espbridge)";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(SERVICE_PATH, web::get().to(service_get))
        .route(SERVICE_PATH, web::post().to(soap_post))
        .route("/soap/ecm.wsdl", web::get().to(wsdl_file));
}

/// `GET /rpc?wsdl` serves the WSDL; a bare GET a short page, as Axis did.
async fn service_get(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let address = format!("{}{SERVICE_PATH}", base_url(&req, &state.settings));
    if crate::xml::wsdl::is_wsdl_query(req.query_string()) {
        return crate::xml::wsdl::response(WSDL, &address);
    }
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(format!(
            "<!DOCTYPE html><html><body><h1>EcMSoapBridgeService</h1><p>Service description: \
             <a href=\"{0}?wsdl\">{0}?wsdl</a></p></body></html>",
            crate::xml::writer::escape(&address)
        ))
}

/// `GET /soap/ecm.wsdl`, the URL clients were configured with.
async fn wsdl_file(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let address = format!("{}{SERVICE_PATH}", base_url(&req, &state.settings));
    crate::xml::wsdl::response(WSDL, &address)
}

/// The operations this server answers. `getVersion` and `logon` need no session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    GetVersion,
    Logon,
    Logout,
    CreateUser,
    CreateOrUpdateUserByEmail,
    UpdateUser,
    UpdateUserByEmail,
    DeleteUser,
    DeleteUserByEmail,
    LookupUserByEmail,
    LookupUserById,
    LookupUserByMobileNumber,
    LookupUserByFaxNumber,
    LookupUserByIdentifier,
    CreateMember,
    SubscribeMemberByEmail,
    CreateOrUpdateUserMemberByEmail,
    UpdateMember,
    DeleteMember,
    UnsubscribeMemberByEmail,
    LookupMemberByEmail { only_active_param: bool },
    LookupMemberById { only_active_param: bool },
    LookupMemberByUserId { only_active_param: bool },
    LookupMemberByMobileNumber,
    LookupMemberByIdentifier,
    FindMembershipsByEmail,
    SendGroupMessageToUser,
    SendSingleMessageToUser,
    SendParametrizedSingleMessageToUser,
    LookupMessages,
    LookupHourlyMessageStats,
    LookupGroups,
    GetGroupId,
    SetAsynchronous,
    IsEmailOnSystemBlacklist,
    IsEmailBouncedSystemwide,
    AddToBlacklist,
    RemoveFromBlacklist,
    SetGroupProperty,
    GetGroupProperty,
    CreateOrUpdateGroup,
    CloneGroup,
    DeleteGroup,
    DeleteMessage,
    CopyAndSendDraftMessage,
    ChangeGroupSettings,
    SendEmailToMe,
}

impl Operation {
    fn parse(name: &str) -> Option<Operation> {
        use Operation::*;
        Some(match name {
            "getVersion" => GetVersion,
            "logon" => Logon,
            "logout" => Logout,
            "createUser" => CreateUser,
            "createOrUpdateUserByEmail" => CreateOrUpdateUserByEmail,
            "updateUser" => UpdateUser,
            "updateUserByEmail" => UpdateUserByEmail,
            "deleteUser" => DeleteUser,
            "deleteUserByEmail" => DeleteUserByEmail,
            "lookupUserByEmail" => LookupUserByEmail,
            "lookupUserById" => LookupUserById,
            "lookupUserByMobileNumber" => LookupUserByMobileNumber,
            "lookupUserByFaxNumber" => LookupUserByFaxNumber,
            "lookupUserByIdentifier" => LookupUserByIdentifier,
            "createMember" => CreateMember,
            "subscribeMemberByEmail" => SubscribeMemberByEmail,
            "createOrUpdateUserMemberByEmail" => CreateOrUpdateUserMemberByEmail,
            "updateMember" => UpdateMember,
            "deleteMember" => DeleteMember,
            "unsubscribeMemberByEmail" => UnsubscribeMemberByEmail,
            "lookupMemberByEmail" => LookupMemberByEmail {
                only_active_param: false,
            },
            "lookupMemberByEmail_v2_0" => LookupMemberByEmail {
                only_active_param: true,
            },
            "lookupMemberById" => LookupMemberById {
                only_active_param: false,
            },
            "lookupMemberById_v2_0" => LookupMemberById {
                only_active_param: true,
            },
            "lookupMemberByUserId" => LookupMemberByUserId {
                only_active_param: false,
            },
            "lookupMemberByUserId_v2_0" => LookupMemberByUserId {
                only_active_param: true,
            },
            "lookupMemberByMobileNumber" => LookupMemberByMobileNumber,
            "lookupMemberByIdentifier" => LookupMemberByIdentifier,
            "sendGroupMessageToUser" => SendGroupMessageToUser,
            "findMembershipsByEmail" => FindMembershipsByEmail,
            // eC-M queues a single message for immediate delivery either way;
            // ours always go in the transactional lane.
            "sendSingleMessageToUser" | "sendPrioritySingleMessageToUser" => {
                SendSingleMessageToUser
            }
            "sendParametrizedSingleMessageToUser"
            | "sendPriorityParametrizedSingleMessageToUser" => SendParametrizedSingleMessageToUser,
            "lookupMessages" => LookupMessages,
            "lookupHourlyMessageStats" => LookupHourlyMessageStats,
            "lookupGroups" => LookupGroups,
            "getGroupId" => GetGroupId,
            "setAsynchronous" => SetAsynchronous,
            "isEmailOnSystemBlacklist" => IsEmailOnSystemBlacklist,
            "isEmailBouncedSystemwide" => IsEmailBouncedSystemwide,
            "addToBlacklist" => AddToBlacklist,
            "removeFromBlacklist" => RemoveFromBlacklist,
            "setGroupProperty" => SetGroupProperty,
            "getGroupProperty" => GetGroupProperty,
            "createOrUpdateGroup" => CreateOrUpdateGroup,
            "cloneGroup" => CloneGroup,
            "deleteGroup" => DeleteGroup,
            "deleteMessage" => DeleteMessage,
            "copyAndSendDraftMessage" => CopyAndSendDraftMessage,
            "changeGroupSettings" => ChangeGroupSettings,
            "sendEmailToMe" => SendEmailToMe,
            _ => return None,
        })
    }
}

/// What an operation returns, written as `<opReturn>` children.
#[derive(Debug, Clone, PartialEq)]
pub enum Return {
    /// An empty `<opResponse/>`.
    Nothing,
    Text(String),
    /// `<opReturn xsi:nil="true"/>`: a lookup that found nothing.
    Nil,
    Bool(bool),
    /// Repeated `<opReturn>` strings.
    Texts(Vec<String>),
    /// Repeated `<opReturn>` of a complex type: its fields in schema order,
    /// `None` written as nil.
    Records(Vec<Vec<(&'static str, Option<String>)>>),
}

/// Why an operation did not answer normally.
#[derive(Debug)]
pub enum Failure {
    /// A fault of eCircle's own.
    Fault(EcmFault),
    /// A domain error, mapped to a fault by [`EcmFault::from_domain`].
    Domain(Error),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        Failure::Domain(e)
    }
}

impl From<EcmFault> for Failure {
    fn from(f: EcmFault) -> Failure {
        Failure::Fault(f)
    }
}

pub type Outcome = std::result::Result<Return, Failure>;

async fn soap_post(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let request = match Request::read(&req, payload, state.settings.max_xml_bytes).await {
        Ok(request) => request,
        Err(fault) => return fault,
    };
    let version = request.version;
    let name = match request.operation_in(&[NAMESPACE]) {
        Ok(name) => name.to_string(),
        Err(fault) => return fault.response(),
    };
    let Some(operation) = Operation::parse(&name) else {
        // Axis's words; clients match "No such operation".
        return Fault::server(version, &format!("No such operation '{name}'")).response();
    };
    let idle_seconds = state.settings.ecircle_session_idle_seconds;
    let links = match state.link_signer().await {
        Ok(signer) => Links {
            signer,
            confirm_page: format!(
                "{}{}",
                base_url(&req, &state.settings),
                crate::web::confirm::PATH
            ),
        },
        Err(e) => {
            log::error!("eCircle {name}: {e}");
            return EcmFault::internal().to_soap(version).response();
        }
    };
    let element = request.operation;
    let outcome = state
        .db
        .write(move |conn| {
            let params = Params::new(&element);
            dispatch(conn, operation, &params, idle_seconds, &links)
        })
        .await;
    match outcome {
        Ok(Ok(answer)) => response(version, &name, &answer),
        Ok(Err(fault)) => fault.to_soap(version).response(),
        Err(e) => {
            log::error!("eCircle {name}: {e}");
            EcmFault::internal().to_soap(version).response()
        }
    }
}

/// Runs one call. The session is checked (and its idle clock reset) outside the
/// operation's savepoint; the operation's writes are undone when it faults.
fn dispatch(
    conn: &mut DbConnection,
    operation: Operation,
    params: &Params,
    idle_seconds: u64,
    links: &Links,
) -> Result<std::result::Result<Return, EcmFault>> {
    let caller = match operation {
        Operation::GetVersion => return Ok(Ok(Return::Text(VERSION.into()))),
        Operation::Logon => return session::logon(conn, params, idle_seconds),
        Operation::Logout => return session::logout(conn, params).map(Ok),
        _ => match session::caller(conn, params, links)? {
            Ok(caller) => caller,
            Err(fault) => return Ok(Err(fault)),
        },
    };
    let mut failure = None;
    let result = write_transaction(conn, |conn| {
        run(conn, operation, &caller, params).map_err(|f| {
            failure = Some(f);
            Error::Internal("operation failed; its writes are undone".into())
        })
    });
    match (result, failure) {
        (Ok(answer), _) => Ok(Ok(answer)),
        (Err(_), Some(Failure::Fault(fault))) => Ok(Err(fault)),
        (Err(_), Some(Failure::Domain(e))) if e.is_internal() => Err(e),
        (Err(_), Some(Failure::Domain(e))) => Ok(Err(EcmFault::from_domain(&e))),
        (Err(e), None) => Err(e),
    }
}

fn run(conn: &mut DbConnection, operation: Operation, caller: &Caller, p: &Params) -> Outcome {
    use Operation::*;
    match operation {
        GetVersion | Logon | Logout => unreachable_session_operation(),
        CreateUser => users::create(conn, caller, p),
        CreateOrUpdateUserByEmail => users::create_or_update_by_email(conn, caller, p),
        UpdateUser => users::update(conn, caller, p),
        UpdateUserByEmail => users::update_by_email(conn, caller, p),
        DeleteUser => users::delete(conn, caller, p),
        DeleteUserByEmail => users::delete_by_email(conn, caller, p),
        LookupUserByEmail => users::lookup_by_email(conn, caller, p),
        LookupUserById => users::lookup_by_id(conn, caller, p),
        LookupUserByMobileNumber => users::lookup_by_mobile(conn, caller, p),
        LookupUserByFaxNumber => users::lookup_by_fax(conn, caller, p),
        LookupUserByIdentifier => users::lookup_by_identifier(conn, caller, p),
        CreateMember => members::create(conn, caller, p),
        SubscribeMemberByEmail => members::subscribe_by_email(conn, caller, p),
        CreateOrUpdateUserMemberByEmail => members::create_or_update_by_email(conn, caller, p),
        UpdateMember => members::update(conn, caller, p),
        DeleteMember => members::delete(conn, caller, p),
        UnsubscribeMemberByEmail => members::unsubscribe_by_email(conn, caller, p),
        LookupMemberByEmail { only_active_param } => {
            members::lookup_by_email(conn, caller, p, only_active_param)
        }
        LookupMemberById { only_active_param } => {
            members::lookup_by_id(conn, caller, p, only_active_param)
        }
        LookupMemberByUserId { only_active_param } => {
            members::lookup_by_user_id(conn, caller, p, only_active_param)
        }
        LookupMemberByMobileNumber => members::lookup_by_mobile(conn, caller, p),
        LookupMemberByIdentifier => members::lookup_by_identifier(conn, caller, p),
        SendGroupMessageToUser => messages::send_group_message(conn, caller, p),
        FindMembershipsByEmail => members::find_memberships_by_email(conn, caller, p),
        SendSingleMessageToUser => messages::send_single(conn, caller, p, false),
        SendParametrizedSingleMessageToUser => messages::send_single(conn, caller, p, true),
        LookupMessages => messages::lookup(conn, caller, p),
        LookupHourlyMessageStats => messages::hourly_stats(conn, caller, p),
        LookupGroups => groups::lookup(conn, caller, p),
        GetGroupId => groups::id_by_email(conn, caller, p),
        // Every call is answered synchronously; the switch changes nothing.
        SetAsynchronous => Ok(Return::Nothing),
        IsEmailOnSystemBlacklist => users::is_blacklisted(conn, caller, p),
        IsEmailBouncedSystemwide => users::is_bounced(conn, caller, p),
        AddToBlacklist => groups::add_to_blacklist(conn, caller, p),
        RemoveFromBlacklist => groups::remove_from_blacklist(conn, caller, p),
        SetGroupProperty => groups::set_property(conn, caller, p),
        GetGroupProperty => groups::get_property(conn, caller, p),
        CreateOrUpdateGroup => groups::create_or_update(conn, caller, p),
        CloneGroup => groups::clone(conn, caller, p),
        DeleteGroup => groups::delete(conn, caller, p),
        DeleteMessage => messages::delete(conn, caller, p),
        CopyAndSendDraftMessage => messages::copy_and_send(conn, caller, p),
        ChangeGroupSettings => groups::change_settings(conn, caller, p),
        SendEmailToMe => messages::send_email_to_me(conn, caller, p),
    }
}

/// `dispatch` answers the session operations itself.
fn unreachable_session_operation() -> Outcome {
    Err(Failure::Domain(Error::Internal(
        "session operations are answered before dispatch".into(),
    )))
}

/// `<opResponse xmlns="rpcns">` with the return written per its kind.
fn response(version: Version, operation: &str, answer: &Return) -> HttpResponse {
    let body = soap::envelope(version, |w| {
        w.open(&format!("{operation}Response"), &[("xmlns", NAMESPACE)]);
        let tag = format!("{operation}Return");
        match answer {
            Return::Nothing => {}
            Return::Text(text) => {
                w.leaf(&tag, text);
            }
            Return::Nil => {
                w.empty(&tag, &[("xsi:nil", "true")]);
            }
            Return::Bool(value) => {
                w.leaf(&tag, if *value { "true" } else { "false" });
            }
            Return::Texts(texts) => {
                for text in texts {
                    w.leaf(&tag, text);
                }
            }
            Return::Records(records) => {
                for record in records {
                    write_record(w, &tag, record);
                }
            }
        }
        w.close();
    });
    HttpResponse::Ok()
        .content_type(version.content_type())
        .body(body)
}

fn write_record(w: &mut XmlWriter, tag: &str, record: &[(&'static str, Option<String>)]) {
    w.open(tag, &[]);
    for (name, value) in record {
        match value {
            Some(value) => w.leaf(name, value),
            None => w.empty(name, &[("xsi:nil", "true")]),
        };
    }
    w.close();
}
