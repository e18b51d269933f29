//! WSMailUpImport (`/Services/WSMailUpImport.asmx`): SOAP 1.1 and 1.2 with the
//! `Authentication` header, the HTTP GET/POST bindings, and the WSDL. Every
//! result is a `mailupMessage` document carried as a string. See
//! `../shared/specs/mailup.md` §2 and `docs/compat/mailup.md`.
//!
//! Import processes are prepared and queued here; the domain's runner applies
//! them in the background (`domain::imports`).

use std::net::IpAddr;

use actix_web::http::header::CONTENT_TYPE;
use actix_web::{HttpRequest, HttpResponse, web};

use super::mailup_message;
use super::subscribers::{self, MobileInput, Unreadable};
use crate::db::DbConnection;
use crate::domain::accounts::{self, Account};
use crate::domain::callers::{self, Service};
use crate::domain::credentials::{self, CredentialKind};
use crate::domain::imports::{self, ImportType, NewImport, Process, Started, State, StatusRules};
use crate::domain::{Channel, Origin, groups, lists, users};
use crate::protocols::form::Form;
use crate::server::AppState;
use crate::web::{BodyError, base_url, client_ip, read_body};
use crate::xml::soap::{self, Fault, Request};
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
    GetNlListsUser,
    GetIdWsUser,
    GetIdUser,
    CreateGroup,
    NewImportProcess,
    StartProcess,
    StartImportProcesses,
    GetProcessDetails,
}

impl Operation {
    fn parse(name: &str) -> Option<Operation> {
        Some(match name {
            "GetNlLists" => Operation::GetNlLists,
            "GetNlListsUser" => Operation::GetNlListsUser,
            "GetIdWsUser" => Operation::GetIdWsUser,
            "GetIdUser" => Operation::GetIdUser,
            "CreateGroup" => Operation::CreateGroup,
            "NewImportProcess" => Operation::NewImportProcess,
            "StartProcess" => Operation::StartProcess,
            "StartImportProcesses" => Operation::StartImportProcesses,
            "GetProcessDetails" => Operation::GetProcessDetails,
            _ => return None,
        })
    }
}

/// The parameters of a call, from the operation element or from a form.
trait Parameters: Send + 'static {
    fn get(&self, name: &str) -> Option<&str>;

    /// A parameter that must be an integer; absent or empty reads as `None`.
    fn int(&self, name: &str) -> Option<i64> {
        self.get(name).and_then(|v| v.parse().ok())
    }

    /// An `xs:boolean`; absent or empty is false (the real service answered
    /// HTTP 500 to an empty one: we read it as its default instead).
    fn flag(&self, name: &str) -> bool {
        matches!(
            self.get(name).map(str::to_ascii_lowercase).as_deref(),
            Some("true" | "1")
        )
    }

    /// A parameter kept exactly as sent (documents).
    fn raw(&self, name: &str) -> Option<&str>;
}

impl Parameters for Element {
    fn get(&self, name: &str) -> Option<&str> {
        self.child_text(name).map(str::trim)
    }

    fn raw(&self, name: &str) -> Option<&str> {
        self.child_text(name)
    }
}

impl Parameters for Form {
    fn get(&self, name: &str) -> Option<&str> {
        Form::get(self, name)
    }

    fn raw(&self, name: &str) -> Option<&str> {
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
    pub const UNRECOGNIZED_GENERIC: i32 = -200;
    pub const GROUP_UNRECOGNIZED: i32 = -300;
    pub const GROUP_LIST_MISSING: i32 = -301;
    pub const GROUP_NAME_MISSING: i32 = -302;
    pub const IMPORT_UNRECOGNIZED: i32 = -400;
    pub const IMPORT_DOCUMENT_EMPTY: i32 = -401;
    pub const IMPORT_DOCUMENT_UNREADABLE: i32 = -402;
    pub const IMPORT_NOT_CREATED: i32 = -403;
    pub const IMPORT_CONFIRMATION: i32 = -410;
    pub const IMPORT_COUNTS_DIFFER: i32 = -450;
    pub const DETAILS_UNRECOGNIZED: i32 = -500;
    pub const DETAILS_NOT_FOUND: i32 = -501;
    pub const START_UNRECOGNIZED: i32 = -600;
    pub const START_ALREADY_RUNNING: i32 = -601;
    pub const START_STATUS: i32 = -603;
}

/// Longest group name MailUp keeps; longer names are cut.
const GROUP_NAME_LENGTH: usize = 50;

async fn soap_post(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    // An import's recipients travel inside the envelope, so this service takes
    // larger documents than the others.
    let request = match Request::read(&req, payload, state.settings.max_import_bytes).await {
        Ok(request) => request,
        Err(fault) => return fault,
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
    let document_limits = document_limits(&state);
    let outcome = state
        .db
        .run(move |conn| call(conn, operation, credentials, ip, &params, &document_limits))
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
    let body = match read_body(payload, state.settings.max_import_bytes).await {
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
    let document_limits = document_limits(&state);
    let outcome = state
        .db
        .run(move |conn| call(conn, operation, credentials, ip, &form, &document_limits))
        .await;
    match outcome {
        Ok(Answer::Result(document) | Answer::Refused(document)) => {
            soap::string_response(NAMESPACE, &document)
        }
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

/// Bounds for an `xmlDoc`: as large as the request may be, read a record at a
/// time (so no cap on the number of elements beyond the size).
fn document_limits(state: &AppState) -> Limits {
    Limits {
        max_bytes: state.settings.max_import_bytes,
        max_depth: 8,
        max_elements: usize::MAX,
    }
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
}

/// Runs an operation on a pooled connection (not in one transaction: an
/// import's document is read before the write that stages it begins).
fn call(
    conn: &mut DbConnection,
    operation: Operation,
    credentials: Credentials,
    ip: Option<IpAddr>,
    params: &dyn Parameters,
    document_limits: &Limits,
) -> Result<Answer> {
    let account = match authenticate(conn, &credentials, ip)? {
        Ok(account) => account,
        Err(code) => return Ok(Answer::Refused(mailup_message(code, |_| {}))),
    };
    let caller = Caller {
        account,
        origin: Origin::new(Channel::MailupImport, credentials.user),
    };
    let document = match operation {
        Operation::GetNlLists | Operation::GetNlListsUser => get_nl_lists(conn, &caller.account)?,
        Operation::GetIdWsUser => get_id_ws_user(conn, &caller)?,
        Operation::GetIdUser => get_id_user(conn, &caller, params)?,
        Operation::CreateGroup => create_group(conn, &caller.account, params)?,
        Operation::NewImportProcess => new_import_process(conn, &caller, params, document_limits)?,
        Operation::StartProcess => start_process(conn, &caller, params)?,
        Operation::StartImportProcesses => {
            start_import_processes(conn, &caller, params, document_limits)?
        }
        Operation::GetProcessDetails => get_process_details(conn, &caller, params)?,
    };
    Ok(Answer::Result(document))
}

/// The authenticated account and the WS user acting for it.
struct Caller {
    account: Account,
    origin: Origin,
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
    let id = params.get("idList").unwrap_or("");
    list_by(
        conn,
        account,
        Some(id),
        Some(params.get("listGUID").unwrap_or("")),
    )
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

/// The WS user's own id. A positive ReturnCode is an id in this service (as
/// for the calls that create something); `idUser` repeats it.
fn get_id_ws_user(conn: &mut DbConnection, caller: &Caller) -> Result<String> {
    let credential = credentials::find(conn, CredentialKind::MailupWs, "", &caller.origin.actor)?
        .ok_or(Error::NotFound("credential"))?;
    Ok(id_message(credential.id))
}

/// The id of the account's console user named `userName`.
fn get_id_user(
    conn: &mut DbConnection,
    caller: &Caller,
    params: &dyn Parameters,
) -> Result<String> {
    let name = params.get("userName").unwrap_or("");
    Ok(match users::find(conn, caller.account.id, name)? {
        Some(user) => id_message(user.id),
        None => mailup_message(code::UNRECOGNIZED_GENERIC, |_| {}),
    })
}

fn id_message(id: i64) -> String {
    mailup_message(id as i32, |w| {
        w.leaf("idUser", &id.to_string());
    })
}

/// The options NewImportProcess and StartImportProcesses share.
struct ImportOptions {
    import_type: ImportType,
    mobile_input: MobileInput,
    rules: StatusRules,
    replace_groups: bool,
}

/// Reads the shared options; an importType or mobileInputType out of range is
/// `-400`. Absent or empty ones take MailUp's defaults (3 and 1).
fn import_options(params: &dyn Parameters) -> std::result::Result<ImportOptions, i32> {
    let import_type = match params.int("importType") {
        None => ImportType::default(),
        Some(code) => i32::try_from(code)
            .ok()
            .and_then(ImportType::new)
            .ok_or(code::IMPORT_UNRECOGNIZED)?,
    };
    let mobile_input = match params.int("mobileInputType") {
        None | Some(1) => MobileInput::International,
        Some(2) => MobileInput::SeparatePrefix,
        Some(_) => return Err(code::IMPORT_UNRECOGNIZED),
    };
    Ok(ImportOptions {
        import_type,
        mobile_input,
        rules: StatusRules {
            as_opt_out: params.flag("asOptOut"),
            force_opt_in: params.flag("forceOptIn"),
            confirm_email: params.flag("ConfirmEmail"),
            as_pending: params.flag("asPending"),
        },
        replace_groups: params.flag("replaceGroups"),
    })
}

/// The `xmlDoc` read into rows: `-401` when it is empty, `-402` when it
/// cannot be read.
fn read_document(
    params: &dyn Parameters,
    limits: &Limits,
    input: MobileInput,
) -> std::result::Result<subscribers::Subscribers, i32> {
    let document = params.raw("xmlDoc").unwrap_or("");
    if document.trim().is_empty() {
        return Err(code::IMPORT_DOCUMENT_EMPTY);
    }
    subscribers::read(document, limits, input).map_err(|e: Unreadable| {
        log::info!("WSMailUpImport: xmlDoc refused: {e}");
        code::IMPORT_DOCUMENT_UNREADABLE
    })
}

/// Group numbers separated by commas (or semicolons).
fn group_numbers(text: &str) -> std::result::Result<Vec<i64>, i32> {
    text.split([',', ';'])
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(|n| n.parse().map_err(|_| code::IMPORT_NOT_CREATED))
        .collect()
}

/// Prepares a process; its id, or the code saying why not.
fn prepare(
    conn: &mut DbConnection,
    caller: &Caller,
    list: &lists::List,
    groups: Vec<i64>,
    rows: subscribers::Subscribers,
    options: &ImportOptions,
    confirm_message: Option<i64>,
) -> Result<i32> {
    let new = NewImport {
        list: list.number,
        groups,
        rows: rows.rows,
        unreadable: rows.unreadable,
        import_type: options.import_type,
        rules: options.rules,
        replace_groups: options.replace_groups,
        confirm_message: confirm_message.filter(|_| options.rules.confirm_email),
        source: "WSMailUpImport".into(),
        origin: caller.origin.clone(),
    };
    match imports::prepare(conn, caller.account.id, new) {
        Ok(process) => Ok(process.id as i32),
        Err(Error::NotFound("message")) => Ok(code::IMPORT_CONFIRMATION),
        Err(e) if e.is_internal() => Err(e),
        Err(e) => {
            log::info!("WSMailUpImport: import refused: {e}");
            Ok(code::IMPORT_NOT_CREATED)
        }
    }
}

/// Prepares an import into one list; ReturnCode is the process id.
fn new_import_process(
    conn: &mut DbConnection,
    caller: &Caller,
    params: &dyn Parameters,
    limits: &Limits,
) -> Result<String> {
    let list = match named_list(conn, &caller.account, params)? {
        Ok(list) => list,
        Err(code) => return Ok(mailup_message(code, |_| {})),
    };
    let prepared = import_options(params).and_then(|options| {
        let groups = group_numbers(params.get("idGroups").unwrap_or(""))?;
        let rows = read_document(params, limits, options.mobile_input)?;
        Ok((options, groups, rows))
    });
    let code = match prepared {
        Ok((options, groups, rows)) => {
            let confirm = params.int("idConfirmNL").filter(|&id| id > 0);
            prepare(conn, caller, &list, groups, rows, &options, confirm)?
        }
        Err(code) => code,
    };
    Ok(mailup_message(code, |_| {}))
}

/// Queues a prepared process.
fn start_process(
    conn: &mut DbConnection,
    caller: &Caller,
    params: &dyn Parameters,
) -> Result<String> {
    let list = match named_list(conn, &caller.account, params)? {
        Ok(list) => list,
        Err(code) => return Ok(mailup_message(code, |_| {})),
    };
    let code = match params.int("idProcess") {
        Some(id) => start(conn, caller, list.number, id)?,
        None => code::START_UNRECOGNIZED,
    };
    Ok(mailup_message(code, |_| {}))
}

/// Starts a process; the ReturnCode that reports it.
fn start(conn: &mut DbConnection, caller: &Caller, list_number: i64, process: i64) -> Result<i32> {
    match imports::start(conn, caller.account.id, list_number, process) {
        Ok(Started::Queued) => Ok(0),
        Ok(Started::AlreadyStarted(State::Queued | State::Running)) => {
            Ok(code::START_ALREADY_RUNNING)
        }
        Ok(Started::AlreadyStarted(_)) => Ok(code::START_STATUS),
        Err(Error::NotFound(_)) => Ok(code::START_UNRECOGNIZED),
        Err(e) => Err(e),
    }
}

/// One `<process>` of StartImportProcesses' answer.
struct ProcessOutcome {
    process: i64,
    list: i64,
    code: i32,
}

/// Prepares and starts an import per list (`;`-separated ids and/or GUIDs,
/// one `groupsIDs` slot per list), or without an `xmlDoc` starts the lists'
/// prepared processes. ReturnCode is 0 when every process started, else the
/// first failing code; each list's outcome is in `<processes>`.
fn start_import_processes(
    conn: &mut DbConnection,
    caller: &Caller,
    params: &dyn Parameters,
    limits: &Limits,
) -> Result<String> {
    let split = |name: &str| -> Vec<String> {
        params
            .get(name)
            .unwrap_or("")
            .split(';')
            .map(|part| part.trim().to_string())
            .collect::<Vec<_>>()
    };
    let present = |parts: &Vec<String>| !(parts.len() == 1 && parts[0].is_empty());
    let ids = split("listsIDs");
    let guids = split("listsGUIDs");
    let slots = split("groupsIDs");
    let count = match (present(&ids), present(&guids)) {
        (false, false) => return Ok(mailup_message(code::LIST_UNRECOGNIZED, |_| {})),
        (true, true) if ids.len() != guids.len() => {
            return Ok(mailup_message(code::IMPORT_COUNTS_DIFFER, |_| {}));
        }
        (true, _) => ids.len(),
        (false, true) => guids.len(),
    };
    if present(&slots) && slots.len() != count {
        return Ok(mailup_message(code::IMPORT_COUNTS_DIFFER, |_| {}));
    }
    let options = match import_options(params) {
        Ok(options) => options,
        Err(code) => return Ok(mailup_message(code, |_| {})),
    };
    let document_given = params.raw("xmlDoc").is_some_and(|d| !d.trim().is_empty());
    let mut rows = if document_given {
        match read_document(params, limits, options.mobile_input) {
            Ok(rows) => Some(rows),
            Err(code) => return Ok(mailup_message(code, |_| {})),
        }
    } else {
        None
    };
    let mut outcomes = Vec::with_capacity(count);
    for index in 0..count {
        let id = present(&ids).then(|| ids[index].as_str());
        let guid = present(&guids).then(|| guids[index].as_str());
        let list = match list_by(conn, &caller.account, id, guid)? {
            Ok(list) => list,
            Err(code) => {
                outcomes.push(ProcessOutcome {
                    process: 0,
                    list: id.and_then(|i| i.parse().ok()).unwrap_or(0),
                    code,
                });
                continue;
            }
        };
        match rows.as_mut() {
            Some(rows) => {
                let slot = slots.get(index).map_or("", String::as_str);
                let outcome = match group_numbers(slot) {
                    Ok(groups) => {
                        // The last list takes the rows; those before it a copy.
                        let rows = if index + 1 == count {
                            std::mem::take(rows)
                        } else {
                            rows.clone()
                        };
                        match prepare(conn, caller, &list, groups, rows, &options, None)? {
                            process if process > 0 => ProcessOutcome {
                                process: i64::from(process),
                                list: list.number,
                                code: start(conn, caller, list.number, i64::from(process))?,
                            },
                            code => ProcessOutcome {
                                process: 0,
                                list: list.number,
                                code,
                            },
                        }
                    }
                    Err(code) => ProcessOutcome {
                        process: 0,
                        list: list.number,
                        code,
                    },
                };
                outcomes.push(outcome);
            }
            None => {
                let prepared = imports::prepared(conn, caller.account.id, list.number)?;
                if prepared.is_empty() {
                    outcomes.push(ProcessOutcome {
                        process: 0,
                        list: list.number,
                        code: code::START_UNRECOGNIZED,
                    });
                }
                for process in prepared {
                    outcomes.push(ProcessOutcome {
                        process,
                        list: list.number,
                        code: start(conn, caller, list.number, process)?,
                    });
                }
            }
        }
    }
    let global = outcomes
        .iter()
        .map(|o| o.code)
        .find(|&c| c != 0)
        .unwrap_or(0);
    Ok(mailup_message(global, |w| {
        w.open("processes", &[]);
        for outcome in &outcomes {
            w.open("process", &[])
                .leaf("processID", &outcome.process.to_string())
                .leaf("listID", &outcome.list.to_string())
                .leaf("ReturnCode", &outcome.code.to_string())
                .close();
        }
        w.close();
    }))
}

/// A list named by id, by GUID, or by both (which must agree): an id that is
/// not a number or names no list is `-100`, a malformed GUID (braces allowed)
/// `-102`, a GUID of another list `-101`.
fn list_by(
    conn: &mut DbConnection,
    account: &Account,
    id: Option<&str>,
    guid: Option<&str>,
) -> Result<std::result::Result<lists::List, i32>> {
    let number = match id.map(str::parse::<i64>) {
        Some(Ok(number)) => Some(number),
        Some(Err(_)) => return Ok(Err(code::LIST_UNRECOGNIZED)),
        None => None,
    };
    let guid = guid.map(|g| g.trim_matches(|c| c == '{' || c == '}'));
    if guid.is_some_and(|g| uuid::Uuid::parse_str(g).is_err()) {
        return Ok(Err(code::GUID_INVALID));
    }
    let by_id = match number {
        Some(number) => lists::find(conn, account.id, number)?,
        None => None,
    };
    Ok(match (id, by_id, guid) {
        (Some(_), None, _) => Err(code::LIST_UNRECOGNIZED),
        (Some(_), Some(list), Some(guid)) if !list.guid.eq_ignore_ascii_case(guid) => {
            Err(code::LIST_MISMATCH)
        }
        (Some(_), Some(list), _) => Ok(list),
        (None, _, Some(guid)) => {
            lists::find_by_guid(conn, account.id, guid)?.ok_or(code::LIST_UNRECOGNIZED)
        }
        (None, _, None) => Err(code::LIST_UNRECOGNIZED),
    })
}

/// A process's counters and state. Dates are Europe/Rome local time, as
/// MailUp's console showed them.
fn get_process_details(
    conn: &mut DbConnection,
    caller: &Caller,
    params: &dyn Parameters,
) -> Result<String> {
    let list = match named_list(conn, &caller.account, params)? {
        Ok(list) => list,
        Err(code) => return Ok(mailup_message(code, |_| {})),
    };
    let Some(id) = params.int("idProcess") else {
        return Ok(mailup_message(code::DETAILS_UNRECOGNIZED, |_| {}));
    };
    let Some(process) = imports::find(conn, caller.account.id, list.number, id)? else {
        return Ok(mailup_message(code::DETAILS_NOT_FOUND, |_| {}));
    };
    let state = process.state()?;
    Ok(mailup_message(0, |w| write_process(w, &process, state)))
}

fn write_process(w: &mut crate::xml::XmlWriter, process: &Process, state: State) {
    let date = |t: Option<chrono::NaiveDateTime>| {
        t.map(|t| super::rome_time(t).format("%d/%m/%Y %H.%M.%S").to_string())
            .unwrap_or_default()
    };
    let status = match state {
        State::Prepared | State::Queued => 1,
        State::Running => 2,
        State::Done => 3,
        State::Failed => 4,
    };
    let yes_no = |b: bool| if b { "True" } else { "False" };
    let confirmation_sent = if process.confirm_email {
        yes_no(process.confirmation_sent)
    } else {
        ""
    };
    w.open("ImportProcess", &[("idProcess", &process.id.to_string())])
        .leaf("StartDate", &date(process.started_at))
        .leaf("EndDate", &date(process.ended_at))
        .leaf("TotalContacts", &process.total_rows.to_string())
        .leaf("NewMobile", &process.new_mobile.to_string())
        .leaf("NewEmail", &process.new_email.to_string())
        .leaf("OptOutMobile", &process.optout_mobile.to_string())
        .leaf("OptOutEmail", &process.optout_email.to_string())
        .leaf("ExistingMobile", &process.existing_mobile.to_string())
        .leaf("ExistingEmail", &process.existing_email.to_string())
        .leaf("StatusCode", &status.to_string())
        .leaf("IsRunning", yes_no(state == State::Running))
        .leaf("ConfirmationEmail", yes_no(process.confirm_email))
        .leaf("ConfirmationSent", confirmation_sent)
        .close();
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
