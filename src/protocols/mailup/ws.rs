//! What MailUpSend, MailUpManage and MailUpReport share: SOAP 1.1 and 1.2 at a
//! case-insensitive `.asmx` path with its WSDL, the access-key operations
//! (`Login`, `LoginFromId`, `Logout`), the key check before every other
//! operation, and the inner result documents (`errorCode`, `errorDescription`,
//! payload) carried as escaped strings. See `../shared/specs/mailup.md` §2.2,
//! §2.3 and `docs/compat/mailup.md`.

use actix_web::{HttpRequest, HttpResponse, web};

use crate::config::Settings;
use crate::db::{DbConnection, write_transaction};
use crate::domain::access_keys::{self, Refusal};
use crate::domain::accounts::{self, Account};
use crate::server::AppState;
use crate::web::base_url;
use crate::xml::soap::{self, Fault, Request};
use crate::xml::{Element, XmlWriter};
use crate::{Error, Result};

pub const NAMESPACE: &str = "http://services.mailupnet.it/WS";

/// One of the access-key services.
pub struct Service {
    /// `MailupSend`, `MailupManage`, `MailupReport`: the WSDL's service name and
    /// the file name of its path.
    pub name: &'static str,
    pub wsdl: &'static str,
    /// Methods that answer `<{Method}>payload</{Method}>` and report failure
    /// as `<{Method}><Error>text</Error></{Method}>` (MailUpSend's legacy
    /// `CreateList`, `DeleteList`, `GetFields`, `GetListIdentity`).
    pub legacy: &'static [&'static str],
    /// Answers an operation other than the access-key ones for an account;
    /// `None` for a name the service does not have. A domain error becomes the
    /// operation's error document (and undoes what the call wrote).
    pub call: fn(&mut DbConnection, &Settings, &Account, &str, &Params) -> Option<Result<String>>,
}

/// Registers the service at `/{name}.asmx` in any letter case.
pub fn configure(cfg: &mut web::ServiceConfig, service: &'static Service) {
    let path = format!("/{{file:(?i){}\\.asmx}}", service.name);
    cfg.route(
        &path,
        web::get().to(move |state: web::Data<AppState>, req: HttpRequest| {
            service_get(service, state, req)
        }),
    )
    .route(
        &path,
        web::post().to(
            move |state: web::Data<AppState>, req: HttpRequest, payload: web::Payload| {
                soap_post(service, state, req, payload)
            },
        ),
    );
}

async fn service_get(
    service: &'static Service,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> HttpResponse {
    let address = format!("{}{}", base_url(&req, &state.settings), req.path());
    if crate::xml::wsdl::is_wsdl_query(req.query_string()) {
        return crate::xml::wsdl::response(service.wsdl, &address);
    }
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(format!(
            "<!DOCTYPE html><html><body><h1>{1}</h1><p>Service description: \
             <a href=\"{0}?WSDL\">{0}?WSDL</a></p></body></html>",
            crate::xml::writer::escape(&address),
            service.name
        ))
}

async fn soap_post(
    service: &'static Service,
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
    let unknown = || {
        Fault::client(
            version,
            &format!(
                "Server did not recognize the value of HTTP Header SOAPAction: {NAMESPACE}/{name}."
            ),
        )
        .response()
    };
    if !declares(service.wsdl, &name) {
        return unknown();
    }
    let params = Params(request.operation);
    let operation = name.clone();
    let settings = state.settings.clone();
    let outcome = state
        .db
        .write(move |conn| answer(conn, &settings, service, &operation, &params))
        .await;
    match outcome {
        Ok(Some(document)) => soap::wrapped_response(version, NAMESPACE, &name, &document),
        Ok(None) => Fault::server(
            version,
            &format!("{name} is not available on this server yet."),
        )
        .response(),
        Err(e) => {
            log::error!("{} {name}: {e}", service.name);
            Fault::server(
                version,
                "The service could not complete the request; try again later.",
            )
            .response()
        }
    }
}

/// Whether the service's WSDL has the operation (the WSDL is the one list of
/// what each service offers).
fn declares(wsdl: &str, operation: &str) -> bool {
    wsdl.contains(&format!("<wsdl:operation name=\"{operation}\">"))
}

/// The result string of an operation, `None` for one declared but not built.
fn answer(
    conn: &mut DbConnection,
    settings: &Settings,
    service: &Service,
    operation: &str,
    params: &Params,
) -> Result<Option<String>> {
    match operation {
        "Login" | "LoginFromId" => return login(conn, operation, params).map(Some),
        "Logout" => {
            let live = access_keys::logout(conn, params.text("accessKey"))?;
            return Ok(Some(if live {
                document("LogoutResult", 0, "", |_| {})
            } else {
                key_refused("LogoutResult")
            }));
        }
        "GetIdUser" => {
            return Ok(Some(
                match access_keys::user_id(conn, params.text("accessKey")) {
                    Ok(id) => document("GetIdUserResult", 0, "", |w| {
                        w.leaf("idUser", &id.to_string());
                    }),
                    Err(Error::Unauthenticated) => key_refused("GetIdUserResult"),
                    Err(e) => return Err(e),
                },
            ));
        }
        _ => {}
    }
    let account = match access_keys::account(conn, params.text("accessKey")) {
        Ok(account) => account,
        Err(Error::Unauthenticated) => {
            return Ok(Some(failure(service, operation, &Error::Unauthenticated)));
        }
        Err(e) => return Err(e),
    };
    let outcome = write_transaction(conn, |conn| {
        match (service.call)(conn, settings, &account, operation, params) {
            Some(result) => result.map(Some),
            None => Ok(None),
        }
    });
    match outcome {
        Ok(answer) => Ok(answer),
        Err(e) if e.is_internal() => Err(e),
        Err(e) => {
            log::info!("{} {operation} refused: {e}", service.name);
            Ok(Some(failure(service, operation, &e)))
        }
    }
}

/// `Login(user, pwd, url)` finds the account by the console host in `url`
/// (or the number in the user name); `LoginFromId(user, pwd, consoleId)` by
/// its id. Both answer `LoginResult`.
fn login(conn: &mut DbConnection, operation: &str, params: &Params) -> Result<String> {
    let user = params.text("user");
    let console_id = if operation == "LoginFromId" {
        params.int("consoleId")
    } else {
        let url = params.text("url");
        let host = url
            .split("://")
            .last()
            .unwrap_or(url)
            .split(['/', '?'])
            .next()
            .unwrap_or("");
        match accounts::find_by_host(conn, host)? {
            Some(account) => Some(account.console_id),
            None => access_keys::console_id_of(user),
        }
    };
    let outcome = match console_id {
        Some(id) => access_keys::login(conn, id, user, params.raw("pwd"))?,
        None => Err(Refusal::UnknownUser),
    };
    Ok(match outcome {
        Ok(key) => document("LoginResult", 0, "", |w| {
            w.leaf("accessKey", &key);
        }),
        Err(Refusal::UnknownUser) => document(
            "LoginResult",
            code::ACCOUNT_INVALID,
            "Unknown user or console id",
            |_| {},
        ),
        Err(Refusal::WrongPassword) => document(
            "LoginResult",
            code::PASSWORD_INVALID,
            "Wrong password",
            |_| {},
        ),
        Err(Refusal::Locked) => document(
            "LoginResult",
            code::SUSPENDED,
            "Too many wrong passwords; try again later",
            |_| {},
        ),
    })
}

/// The errorCode values we answer (MailUp's own table for these services is
/// unknown; docs/compat/mailup.md explains the choice).
pub mod code {
    pub const GENERIC: i32 = -1000;
    pub const ACCOUNT_INVALID: i32 = -1001;
    pub const PASSWORD_INVALID: i32 = -1002;
    pub const SUSPENDED: i32 = -1003;
    pub const KEY_INVALID: i32 = -1005;
    pub const LIST_UNRECOGNIZED: i32 = -100;
    pub const PARAMETER_INVALID: i32 = -200;
    pub const GROUP_UNRECOGNIZED: i32 = -300;
    pub const MESSAGE_UNRECOGNIZED: i32 = -400;
    pub const DELIVERY_UNRECOGNIZED: i32 = -500;
    pub const CONFLICT: i32 = -600;
    pub const BLOCKLISTED: i32 = -700;
}

/// A domain error's code and the words shown with it.
fn error_code(error: &Error) -> (i32, String) {
    let code = match error {
        Error::NotFound("list") => code::LIST_UNRECOGNIZED,
        Error::NotFound("group") => code::GROUP_UNRECOGNIZED,
        Error::NotFound("message") => code::MESSAGE_UNRECOGNIZED,
        Error::NotFound("send") => code::DELIVERY_UNRECOGNIZED,
        Error::NotFound(_) | Error::Invalid { .. } => code::PARAMETER_INVALID,
        Error::Conflict(_) => code::CONFLICT,
        Error::Blocklisted => code::BLOCKLISTED,
        Error::Unauthenticated => code::KEY_INVALID,
        _ => code::GENERIC,
    };
    let description = match error {
        Error::Unauthenticated => "Access key invalid or expired".to_string(),
        other => {
            let text = other.to_string();
            let mut chars = text.chars();
            chars
                .next()
                .map(|c| c.to_uppercase().chain(chars).collect())
                .unwrap_or_default()
        }
    };
    (code, description)
}

/// The root element of an operation's inner document: the method's name for
/// the `_st` methods, `{Op}Result` for the rest.
pub fn root_of(operation: &str) -> String {
    if operation.ends_with("_st") {
        operation.to_string()
    } else {
        format!("{operation}Result")
    }
}

/// The answer of an operation that failed with `error`, in its family's form.
pub fn failure(service: &Service, operation: &str, error: &Error) -> String {
    let (code, description) = error_code(error);
    // SendMessageNL answers -1 on any failure (spec §2.5); CloneMessage the code.
    if operation == "SendMessageNL" {
        return "-1".to_string();
    }
    if operation == "CloneMessage" {
        return code.to_string();
    }
    if service.legacy.contains(&operation) {
        let mut w = XmlWriter::new();
        w.raw(DECLARATION)
            .open(operation, &[])
            .leaf("Error", &description);
        return w.finish();
    }
    document(&root_of(operation), code, &description, |_| {})
}

fn key_refused(root: &str) -> String {
    let (code, description) = error_code(&Error::Unauthenticated);
    document(root, code, &description, |_| {})
}

const DECLARATION: &str = "<?xml version=\"1.0\" encoding=\"utf-8\"?>";

/// `<root><errorCode/><errorDescription/>payload</root>`.
pub fn document(
    root: &str,
    code: i32,
    description: &str,
    payload: impl FnOnce(&mut XmlWriter),
) -> String {
    let mut w = XmlWriter::new();
    w.raw(DECLARATION)
        .open(root, &[])
        .leaf("errorCode", &code.to_string())
        .leaf("errorDescription", description);
    payload(&mut w);
    w.finish()
}

/// A success document of `operation` (root from [`root_of`]).
pub fn ok(operation: &str, payload: impl FnOnce(&mut XmlWriter)) -> String {
    document(&root_of(operation), 0, "", payload)
}

/// A legacy method's success document: `<Method>payload</Method>`.
pub fn legacy(operation: &str, payload: impl FnOnce(&mut XmlWriter)) -> String {
    let mut w = XmlWriter::new();
    w.raw(DECLARATION).open(operation, &[]);
    payload(&mut w);
    w.finish()
}

/// The operation element's parameters.
pub struct Params(pub Element);

impl Params {
    /// A string parameter, trimmed; empty when absent.
    pub fn text(&self, name: &str) -> &str {
        self.0.child_text(name).map_or("", str::trim)
    }

    /// A string parameter kept as sent (message content).
    pub fn raw(&self, name: &str) -> &str {
        self.0.child_text(name).unwrap_or("")
    }

    pub fn int(&self, name: &str) -> Option<i64> {
        self.text(name).parse().ok()
    }

    /// An `xs:int` parameter the operation cannot do without.
    pub fn required_int(&self, name: &'static str) -> Result<i64> {
        self.int(name)
            .ok_or_else(|| Error::invalid(name, "a number is required"))
    }

    /// An `xs:boolean` (`true`/`false`/`1`/`0`); absent is false.
    pub fn flag(&self, name: &str) -> bool {
        parse_bool(self.text(name)).unwrap_or(false)
    }

    /// The `Key`/`Value` pairs of an `ArrayOfOption` parameter, keys lower-cased.
    pub fn options(&self, name: &str) -> Options {
        Options(
            self.0
                .child(name)
                .map(|options| {
                    options
                        .children_named("Option")
                        .map(|o| {
                            (
                                o.child_text("Key")
                                    .unwrap_or("")
                                    .trim()
                                    .to_ascii_lowercase(),
                                o.child_text("Value").unwrap_or("").trim().to_string(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default(),
        )
    }
}

pub fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Some(true),
        "false" | "0" | "no" => Some(false),
        _ => None,
    }
}

/// Options of a call (`options` parameter), by lower-cased key.
pub struct Options(Vec<(String, String)>);

impl Options {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    pub fn flag(&self, key: &str) -> Option<bool> {
        self.get(key).and_then(parse_bool)
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_and_failures_follow_the_method_family() {
        assert_eq!(root_of("GetFields_st"), "GetFields_st");
        assert_eq!(root_of("GetLists"), "GetListsResult");
        let service = Service {
            name: "MailupSend",
            wsdl: "",
            legacy: &["GetFields"],
            call: |_, _, _, _, _| None,
        };
        assert_eq!(
            failure(&service, "GetFields", &Error::Unauthenticated),
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><GetFields><Error>Access key invalid or expired</Error></GetFields>"
        );
        assert_eq!(
            failure(&service, "GetGroups", &Error::NotFound("list")),
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><GetGroupsResult><errorCode>-100</errorCode><errorDescription>List not found</errorDescription></GetGroupsResult>"
        );
        assert_eq!(
            failure(&service, "CloneMessage", &Error::NotFound("message")),
            "-400"
        );
    }
}
