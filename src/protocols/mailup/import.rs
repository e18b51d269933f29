//! WSMailUpImport (`/Services/WSMailUpImport.asmx`): SOAP 1.1 and 1.2 with the
//! `Authentication` header, the HTTP GET/POST bindings, and the WSDL. Every
//! result is a `mailupMessage` document carried as a string. See
//! `../shared/specs/mailup.md` §2 and `docs/compat/mailup.md`.
//!
//! The list and group operations are here; the import-process operations are
//! declared in the WSDL and answered with a Fault until they are built.

use std::net::IpAddr;

use actix_web::http::header::CONTENT_TYPE;
use actix_web::{HttpRequest, HttpResponse, web};

use super::mailup_message;
use crate::db::DbConnection;
use crate::domain::accounts::{self, Account};
use crate::domain::callers::{self, Service};
use crate::domain::credentials::{self, CredentialKind};
use crate::domain::{groups, lists};
use crate::protocols::form::Form;
use crate::server::AppState;
use crate::web::{BodyError, base_url, client_ip, read_body};
use crate::xml::soap::{self, Fault, Request, Version};
use crate::xml::{Element, Limits};
use crate::{Error, Result};

pub const NAMESPACE: &str = "http://ws.mailupnet.it/";
/// Where the oldest documentation put the authentication header.
const LEGACY_NAMESPACE: &str = "http://tempuri.org/";
const WSDL: &str = include_str!("../../../wsdl/WSMailUpImport.wsdl");
/// IIS paths are case-insensitive; clients spell the service both ways.
const PATH: &str = "/{dir:(?i)services}/{file:(?i)wsmailupimport\\.asmx}";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(PATH, web::get().to(service_get))
        .route(PATH, web::post().to(soap_post))
        .route(
            &format!("{PATH}/{{operation}}"),
            web::route().to(http_binding),
        );
}

/// `GET ?wsdl` serves the WSDL; a bare GET, as ASP.NET did, a short page.
async fn service_get(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let address = format!("{}{}", base_url(&req, &state.settings), req.path());
    if crate::xml::wsdl::is_wsdl_query(req.query_string()) {
        return crate::xml::wsdl::response(WSDL, &address);
    }
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(format!(
            "<!DOCTYPE html><html><body><h1>WSMailUpImport</h1><p>Service description: \
             <a href=\"{0}?WSDL\">{0}?WSDL</a></p></body></html>",
            crate::xml::writer::escape(&address)
        ))
}

/// The operations; a name outside this list is unknown to the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    GetNlLists,
    CreateGroup,
    /// Declared in the WSDL, not built yet.
    Pending,
}

impl Operation {
    fn parse(name: &str) -> Option<Operation> {
        match name {
            "GetNlLists" => Some(Operation::GetNlLists),
            "CreateGroup" => Some(Operation::CreateGroup),
            "GetNlListsUser"
            | "GetIdWsUser"
            | "GetIdUser"
            | "NewImportProcess"
            | "StartProcess"
            | "StartImportProcesses"
            | "GetProcessDetails" => Some(Operation::Pending),
            _ => None,
        }
    }
}

/// The parameters of a call, from the operation element or from a form.
trait Parameters {
    fn get(&self, name: &str) -> Option<&str>;
}

impl Parameters for Element {
    fn get(&self, name: &str) -> Option<&str> {
        self.child_text(name).map(str::trim)
    }
}

impl Parameters for Form {
    fn get(&self, name: &str) -> Option<&str> {
        Form::get(self, name)
    }
}

/// Import's return codes (spec §2.2 and §2.4).
mod code {
    pub const UNRECOGNIZED: i32 = -1000;
    pub const ACCOUNT_INVALID: i32 = -1001;
    pub const PASSWORD_INVALID: i32 = -1002;
    pub const IP_NOT_REGISTERED: i32 = -1011;
    pub const LIST_UNRECOGNIZED: i32 = -100;
    pub const LIST_MISMATCH: i32 = -101;
    pub const GUID_INVALID: i32 = -102;
    pub const GROUP_UNRECOGNIZED: i32 = -300;
    pub const GROUP_LIST_MISSING: i32 = -301;
    pub const GROUP_NAME_MISSING: i32 = -302;
}

/// Longest group name MailUp keeps; longer names are cut.
const GROUP_NAME_LENGTH: usize = 50;

async fn soap_post(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let content_type = header(&req, CONTENT_TYPE.as_str());
    let version = Version::from_content_type(&content_type);
    let limits = Limits {
        max_bytes: state.settings.max_xml_bytes,
        ..Limits::default()
    };
    let body = match read_body(payload, limits.max_bytes).await {
        Ok(body) => body,
        Err(e) => return Fault::client(version, &format!("{e}.")).response(),
    };
    let request = match Request::parse(&body, &content_type, &header(&req, "soapaction"), &limits) {
        Ok(request) => request,
        Err(fault) => return fault.response(),
    };
    let version = request.version;
    let name = match request.operation_in(&[NAMESPACE]) {
        Ok(name) => name.to_string(),
        Err(fault) => return fault.response(),
    };
    let Some(operation) = Operation::parse(&name) else {
        return Fault::client(
            version,
            &format!(
                "Server did not recognize the value of HTTP Header SOAPAction: {NAMESPACE}{name}."
            ),
        )
        .response();
    };
    let credentials = header_credentials(request.header.as_ref());
    let ip = client_ip(&req, &state.settings);
    let params = request.operation;
    let outcome = state
        .db
        .write(move |conn| call(conn, operation, credentials, ip, &params))
        .await;
    match outcome {
        Ok(Answer::Result(document)) => {
            soap::wrapped_response(version, NAMESPACE, &name, &document)
        }
        Ok(Answer::Refused(document)) => {
            // Clients of the era fish the ReturnCode out of the fault's body.
            let without_declaration = document
                .split_once("?>")
                .map_or(document.as_str(), |(_, rest)| rest);
            Fault::client(version, "Authentication failed.")
                .with_detail(without_declaration.to_string())
                .response()
        }
        Ok(Answer::NotBuilt) => not_built(version, &name).response(),
        Err(e) => {
            log::error!("WSMailUpImport {name}: {e}");
            Fault::server(
                version,
                "The service could not complete the request; try again later.",
            )
            .response()
        }
    }
}

/// `GET|POST /Services/WSMailUpImport.asmx/{operation}`: ASP.NET's HTTP
/// bindings. With no SOAP header to carry them, credentials come as `User` and
/// `Password` parameters.
async fn http_binding(
    state: web::Data<AppState>,
    req: HttpRequest,
    operation: web::Path<(String, String, String)>,
    payload: web::Payload,
) -> HttpResponse {
    let name = operation.into_inner().2;
    let Some(operation) = Operation::parse(&name) else {
        return HttpResponse::InternalServerError()
            .content_type("text/plain; charset=utf-8")
            .body(format!("{name} is not a valid web service method name."));
    };
    let body = match read_body(payload, 1024 * 1024).await {
        Ok(body) => body,
        Err(e @ BodyError::TooLarge(_)) | Err(e @ BodyError::Broken) => {
            return HttpResponse::PayloadTooLarge()
                .content_type("text/plain; charset=utf-8")
                .body(e.to_string());
        }
    };
    let form = Form::parse(
        req.query_string(),
        &body,
        &header(&req, CONTENT_TYPE.as_str()),
    );
    let credentials = Credentials {
        user: form.get("User").unwrap_or("").to_string(),
        password: form.get("Password").unwrap_or("").to_string(),
    };
    let ip = client_ip(&req, &state.settings);
    let outcome = state
        .db
        .write(move |conn| call(conn, operation, credentials, ip, &form))
        .await;
    match outcome {
        Ok(Answer::Result(document) | Answer::Refused(document)) => {
            soap::string_response(NAMESPACE, &document)
        }
        Ok(Answer::NotBuilt) => HttpResponse::InternalServerError()
            .content_type("text/plain; charset=utf-8")
            .body(format!("{name} is not available on this server yet.")),
        Err(e) => {
            log::error!("WSMailUpImport {name} (HTTP binding): {e}");
            HttpResponse::InternalServerError()
                .content_type("text/plain; charset=utf-8")
                .body("The service could not complete the request; try again later.")
        }
    }
}

fn header(req: &HttpRequest, name: &str) -> String {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

fn not_built(version: Version, name: &str) -> Fault {
    Fault::server(
        version,
        &format!("{name} is not available on this server yet."),
    )
}

#[derive(Debug, Clone, Default)]
struct Credentials {
    user: String,
    password: String,
}

/// `Authentication` in the header, in the service's namespace or the legacy one
/// (or none: old clients got namespaces wrong).
fn header_credentials(header: Option<&Element>) -> Credentials {
    let auth = header.and_then(|h| {
        h.children.iter().find(|c| {
            c.name.eq_ignore_ascii_case("Authentication")
                && matches!(
                    c.namespace.as_deref(),
                    Some(NAMESPACE | LEGACY_NAMESPACE) | None
                )
        })
    });
    match auth {
        Some(auth) => Credentials {
            user: auth.child_text("User").unwrap_or("").trim().to_string(),
            password: auth.child_text("Password").unwrap_or("").to_string(),
        },
        None => Credentials::default(),
    }
}

enum Answer {
    /// The operation's `mailupMessage`.
    Result(String),
    /// Authentication or caller check failed; the `mailupMessage` with the code.
    Refused(String),
    NotBuilt,
}

fn call(
    conn: &mut DbConnection,
    operation: Operation,
    credentials: Credentials,
    ip: Option<IpAddr>,
    params: &dyn Parameters,
) -> Result<Answer> {
    let account = match authenticate(conn, &credentials, ip)? {
        Ok(account) => account,
        Err(code) => return Ok(Answer::Refused(mailup_message(code, |_| {}))),
    };
    let document = match operation {
        Operation::GetNlLists => get_nl_lists(conn, &account)?,
        Operation::CreateGroup => create_group(conn, &account, params)?,
        Operation::Pending => return Ok(Answer::NotBuilt),
    };
    Ok(Answer::Result(document))
}

/// The WS user `a<consoleId>` and its password, from a registered caller.
fn authenticate(
    conn: &mut DbConnection,
    credentials: &Credentials,
    ip: Option<IpAddr>,
) -> Result<std::result::Result<Account, i32>> {
    if credentials.user.is_empty() {
        return Ok(Err(code::UNRECOGNIZED));
    }
    let credential = match credentials::authenticate(
        conn,
        CredentialKind::MailupWs,
        "",
        &credentials.user,
        &credentials.password,
    ) {
        Ok(credential) => credential,
        Err(Error::Unauthenticated) => {
            let known =
                credentials::find(conn, CredentialKind::MailupWs, "", &credentials.user)?.is_some();
            return Ok(Err(if known {
                code::PASSWORD_INVALID
            } else {
                code::ACCOUNT_INVALID
            }));
        }
        Err(e) => return Err(e),
    };
    let account = accounts::get(conn, credential.account_id)?;
    let allowed = match ip {
        Some(ip) => callers::is_allowed(conn, &account, Service::MailupImport, ip)?,
        None => false,
    };
    if !allowed {
        return Ok(Err(code::IP_NOT_REGISTERED));
    }
    Ok(Ok(account))
}

/// Every list with its groups.
fn get_nl_lists(conn: &mut DbConnection, account: &Account) -> Result<String> {
    let all = lists::all(conn, account.id)?;
    let mut with_groups = Vec::with_capacity(all.len());
    for list in all {
        let groups = groups::in_list(conn, account.id, list.number)?;
        with_groups.push((list, groups));
    }
    Ok(mailup_message(0, |w| {
        w.open("Lists", &[]);
        for (list, groups) in &with_groups {
            w.open(
                "List",
                &[
                    ("idList", &list.number.to_string()),
                    ("listGUID", &list.guid),
                    ("listName", &list.name),
                ],
            );
            w.open("Groups", &[]);
            for group in groups {
                w.empty(
                    "Group",
                    &[
                        ("idGroup", &group.number.to_string()),
                        ("groupName", &group.name),
                    ],
                );
            }
            w.close().close();
        }
        w.close();
    }))
}

/// The list named by `idList` and `listGUID`, or the code for what is wrong.
fn named_list(
    conn: &mut DbConnection,
    account: &Account,
    params: &dyn Parameters,
) -> Result<std::result::Result<lists::List, i32>> {
    let Some(number) = params.get("idList").and_then(|n| n.parse::<i64>().ok()) else {
        return Ok(Err(code::LIST_UNRECOGNIZED));
    };
    let guid = params.get("listGUID").unwrap_or("");
    let guid = guid.trim_matches(|c| c == '{' || c == '}');
    if uuid::Uuid::parse_str(guid).is_err() {
        return Ok(Err(code::GUID_INVALID));
    }
    match lists::find(conn, account.id, number)? {
        Some(list) if list.guid.eq_ignore_ascii_case(guid) => Ok(Ok(list)),
        Some(_) => Ok(Err(code::LIST_MISMATCH)),
        None => Ok(Err(code::LIST_UNRECOGNIZED)),
    }
}

/// Creates a group in a list; ReturnCode is its id. A name the list already has
/// answers with that group's id, as the newer documentation describes.
fn create_group(
    conn: &mut DbConnection,
    account: &Account,
    params: &dyn Parameters,
) -> Result<String> {
    let list = match named_list(conn, account, params)? {
        Ok(list) => list,
        Err(code::LIST_UNRECOGNIZED) => {
            return Ok(mailup_message(code::GROUP_LIST_MISSING, |_| {}));
        }
        Err(code) => return Ok(mailup_message(code, |_| {})),
    };
    let name: String = params
        .get("newGroupName")
        .unwrap_or("")
        .chars()
        .take(GROUP_NAME_LENGTH)
        .collect();
    if name.trim().is_empty() {
        return Ok(mailup_message(code::GROUP_NAME_MISSING, |_| {}));
    }
    if let Some(existing) = groups::find_by_name(conn, account.id, list.number, &name)? {
        return Ok(mailup_message(existing.number as i32, |_| {}));
    }
    match groups::create(conn, account.id, list.number, &name, "", None) {
        Ok(group) => Ok(mailup_message(group.number as i32, |_| {})),
        Err(e) if e.is_internal() => Err(e),
        Err(e) => {
            log::info!("CreateGroup refused: {e}");
            Ok(mailup_message(code::GROUP_UNRECOGNIZED, |_| {}))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_header_in_either_namespace() {
        let header = crate::xml::tree::parse(
            b"<H><Authentication xmlns=\"http://tempuri.org/\"><User> a1 </User><Password>p w</Password></Authentication></H>",
            &Limits::default(),
        )
        .unwrap();
        let credentials = header_credentials(Some(&header));
        assert_eq!(
            (credentials.user.as_str(), credentials.password.as_str()),
            ("a1", "p w")
        );
        let other = crate::xml::tree::parse(
            b"<H><Authentication xmlns=\"urn:elsewhere\"><User>a1</User></Authentication></H>",
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(header_credentials(Some(&other)).user, "");
    }

    #[test]
    fn writes_an_ascii_mailup_message() {
        assert_eq!(
            mailup_message(-1002, |_| {}),
            "<?xml version=\"1.0\" encoding=\"windows-1252\" ?><mailupMessage><mailupBody><ReturnCode>-1002</ReturnCode></mailupBody></mailupMessage>"
        );
    }
}
