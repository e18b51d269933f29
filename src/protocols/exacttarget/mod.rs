//! ExactTarget's XML API (`/integrate.aspx`): one XML document per call in the
//! form field `xml`, by GET or POST, credentials in every document, the answer
//! an XML document with the called system's wrapper, errors as `<error>` and
//! `<error_description>` with HTTP 200. See `../shared/specs/exacttarget.md`
//! and `docs/compat/exacttarget.md`.

mod account;
mod bulk;
mod email;
mod files;
mod list;
mod send;
mod subscriber;
mod tracking;

use actix_web::http::header::CONTENT_TYPE;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::db::DbConnection;
use crate::domain::credentials::{self, CredentialKind};
use crate::domain::fields::{self, Field, FieldRef};
use crate::domain::{Channel, Origin};
use crate::protocols::form::Form;
use crate::server::AppState;
use crate::web::read_body;
use crate::xml::XmlWriter;
use crate::xml::tree::{self, Element, Limits, XmlError};
use crate::{Error, Result};

pub fn configure(cfg: &mut web::ServiceConfig) {
    // IIS matched paths without regard to case; clients spell it both ways.
    cfg.route("/integrate.aspx", web::route().to(integrate))
        .route("/Integrate.aspx", web::route().to(integrate));
}

/// E-mail bodies arrive inside the document, so calls can be large; the form
/// encoding at most triples an HTML body of a megabyte.
const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// The error numbers we answer with. 1, 14, 39, 71 and 111 are ExactTarget's
/// own; the others are ours where the product's are unknown
/// (docs/compat/exacttarget.md).
pub(crate) mod code {
    pub const SUBSCRIBER_NOT_FOUND: u32 = 1;
    pub const AUTHENTICATION: u32 = 2;
    pub const INVALID: u32 = 4;
    pub const LIST_NOT_FOUND: u32 = 5;
    pub const ATTRIBUTE_NOT_FOUND: u32 = 6;
    pub const EMAIL_NOT_FOUND: u32 = 7;
    pub const JOB_NOT_FOUND: u32 = 8;
    pub const DEFINITION_NOT_FOUND: u32 = 9;
    pub const MASTER_UNSUBSCRIBED: u32 = 10;
    pub const ALREADY_EXISTS: u32 = 14;
    pub const FILE_NOT_FOUND: u32 = 68;
    pub const XML_PARSE: u32 = 39;
    pub const UNKNOWN_CALL: u32 = 71;
    pub const INTERNAL: u32 = 99;
    pub const NO_ATTRIBUTES: u32 = 111;
}

/// What a call answers: the content of `<system>`, or an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reply {
    Done(String),
    Fault(u32, String),
}

impl Reply {
    pub fn fault(code: u32, text: impl Into<String>) -> Reply {
        Reply::Fault(code, text.into())
    }

    /// `<wrapper>` with what `content` writes, as the content of `<system>`.
    pub fn wrapped(wrapper: &str, content: impl FnOnce(&mut XmlWriter)) -> Reply {
        let mut w = XmlWriter::new();
        w.open(wrapper, &[]);
        content(&mut w);
        Reply::Done(w.finish())
    }
}

/// Returns the fault early from a handler: `or_fault!(x)` is `x`'s value, or
/// the handler's answer when `x` is a fault.
macro_rules! or_fault {
    ($value:expr) => {
        match $value {
            Ok(v) => v,
            Err(reply) => return Ok(reply),
        }
    };
}
pub(crate) use or_fault;

/// The systems and actions we answer; anything else is error 71.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    RetrieveAttributes,
    Ping,
    SubscriberAdd,
    SubscriberEdit,
    SubscriberRetrieve,
    SubscriberDelete,
    MasterUnsubscribe,
    ListAdd,
    ListEdit,
    ListRetrieve,
    ListDelete,
    ListRetrieveSubscribers,
    ListRetrieveGroups,
    ListImport,
    ListRefreshGroup,
    EmailAdd,
    EmailRetrieve,
    JobSend,
    JobSendSingle,
    TriggeredSend,
    TrackingRetrieve,
    TrackingJobs,
    ChannelUnsubscribes,
    SubscriberExport,
    ListExport,
    TrackingExport,
    EnterpriseJobsExport,
    SentExport,
    FileMove,
    BatchInquire,
}

impl Op {
    /// Keywords are matched without regard to case: clients use the product's
    /// mixed-case spellings (`Ping`, `HTMLPaste`), and nothing suggests it
    /// refused others.
    fn parse(system: &str, action: &str) -> Option<Op> {
        let system = system.to_ascii_lowercase();
        let action = action.to_ascii_lowercase();
        Some(match (system.as_str(), action.as_str()) {
            ("accountinfo", "retrieve_attrbs") => Op::RetrieveAttributes,
            ("diagnostics", "ping") => Op::Ping,
            ("subscriber", "add") => Op::SubscriberAdd,
            ("subscriber", "edit") => Op::SubscriberEdit,
            ("subscriber", "retrieve") => Op::SubscriberRetrieve,
            ("subscriber", "delete") => Op::SubscriberDelete,
            ("subscriber", "masterunsub") => Op::MasterUnsubscribe,
            ("list", "add") => Op::ListAdd,
            ("list", "edit") => Op::ListEdit,
            ("list", "retrieve") => Op::ListRetrieve,
            ("list", "delete") => Op::ListDelete,
            ("list", "retrieve_sub") => Op::ListRetrieveSubscribers,
            ("list", "retrievegroups") => Op::ListRetrieveGroups,
            ("list", "import") => Op::ListImport,
            ("list", "refresh_group") => Op::ListRefreshGroup,
            ("email", "add") => Op::EmailAdd,
            ("email", "retrieve") => Op::EmailRetrieve,
            ("job", "send") => Op::JobSend,
            ("job", "send_single") => Op::JobSendSingle,
            ("triggeredsend", "add") => Op::TriggeredSend,
            ("tracking", "retrieve") => Op::TrackingRetrieve,
            ("tracking", "jobretrieve") => Op::TrackingJobs,
            ("tracking-channel", "retrieve") => Op::ChannelUnsubscribes,
            ("subscriber", "bulkasync") => Op::SubscriberExport,
            ("list", "bulkasync") => Op::ListExport,
            ("tracking", "bulkasync") => Op::TrackingExport,
            ("tracking", "bulkasyncenterprise") => Op::EnterpriseJobsExport,
            ("tracking", "sent_bulkasync") => Op::SentExport,
            ("filemanagement", "filemove") => Op::FileMove,
            ("batch", "inquire") => Op::BatchInquire,
            _ => return None,
        })
    }

    fn writes(self) -> bool {
        !matches!(
            self,
            Op::RetrieveAttributes
                | Op::Ping
                | Op::SubscriberRetrieve
                | Op::ListRetrieve
                | Op::ListRetrieveSubscribers
                | Op::ListRetrieveGroups
                | Op::EmailRetrieve
                | Op::TrackingRetrieve
                | Op::TrackingJobs
                | Op::ChannelUnsubscribes
                | Op::BatchInquire
        )
    }
}

/// The systems whose wrapper an error is given even when the action is not
/// known (the wrapper is the system's element).
const SYSTEMS: [&str; 11] = [
    "accountinfo",
    "subscriber",
    "list",
    "email",
    "job",
    "triggeredsend",
    "tracking",
    "tracking-channel",
    "batch",
    "diagnostics",
    "filemanagement",
];

/// One call: the `<system>` block of the document, for the account whose API
/// user sent it.
pub(crate) struct Call {
    pub account_id: i64,
    pub system: Element,
    pub origin: Origin,
    /// Where the accounts' import folders are.
    pub data_dir: std::path::PathBuf,
}

impl Call {
    /// The trimmed text of a child of `<system>`; empty when absent.
    pub fn text(&self, name: &str) -> &str {
        self.system.child_text(name).map_or("", str::trim)
    }

    pub fn sub_action(&self) -> String {
        self.text("sub_action").to_ascii_lowercase()
    }

    pub fn search_type(&self) -> String {
        self.text("search_type").to_ascii_lowercase()
    }

    pub fn search_value(&self) -> &str {
        self.text("search_value")
    }

    pub fn search_value2(&self) -> &str {
        self.text("search_value2")
    }
}

async fn integrate(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let body = match read_body(payload, MAX_BODY_BYTES).await {
        Ok(body) => body,
        Err(e) => {
            return answer(
                None,
                Reply::fault(code::XML_PARSE, parse_error_text(1, &e.to_string())),
            );
        }
    };
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let form = Form::parse(req.query_string(), &body, content_type);
    let Some(xml) = form.get("xml") else {
        return answer(
            None,
            Reply::fault(code::XML_PARSE, parse_error_text(1, "no xml parameter")),
        );
    };
    let limits = Limits {
        max_bytes: MAX_BODY_BYTES,
        max_depth: 32,
        max_elements: 100_000,
    };
    let document = match tree::parse_str(xml, &limits) {
        Ok(root) if root.name.eq_ignore_ascii_case("exacttarget") => root,
        Ok(root) => {
            let reason = format!("the root element is <{}>, not <exacttarget>", root.name);
            return answer(
                None,
                Reply::fault(code::XML_PARSE, parse_error_text(1, &reason)),
            );
        }
        Err(e) => {
            let (line, reason) = match e {
                XmlError::Malformed { line, reason } => (line, reason),
                other => (1, other.to_string()),
            };
            return answer(
                None,
                Reply::fault(code::XML_PARSE, parse_error_text(line, &reason)),
            );
        }
    };
    let system = document.child("system").cloned().unwrap_or_default();
    let system_name = system
        .child_text("system_name")
        .map_or("", str::trim)
        .to_string();
    let action = system
        .child_text("action")
        .map_or("", str::trim)
        .to_string();
    let wrapper = SYSTEMS
        .iter()
        .find(|s| s.eq_ignore_ascii_case(&system_name))
        .copied();
    let authorization = document.child("authorization");
    let username = authorization
        .and_then(|a| a.child_text("username"))
        .map_or("", str::trim)
        .to_string();
    let password = authorization
        .and_then(|a| a.child_text("password"))
        .map_or("", str::trim)
        .to_string();
    let user = username.clone();
    let authenticated = state
        .db
        .run(move |conn| {
            match credentials::authenticate(conn, CredentialKind::ExactTarget, "", &user, &password)
            {
                Ok(credential) => Ok(Some(credential.account_id)),
                Err(Error::Unauthenticated) => Ok(None),
                Err(e) => Err(e),
            }
        })
        .await;
    let account_id = match authenticated {
        Ok(Some(id)) => id,
        Ok(None) => {
            return answer(
                wrapper,
                Reply::fault(code::AUTHENTICATION, "Invalid username or password"),
            );
        }
        Err(e) => return answer(wrapper, internal(e)),
    };
    let Some(op) = Op::parse(&system_name, &action) else {
        let text = format!("System name {system_name:?} with action {action:?} is not supported");
        return answer(wrapper, Reply::fault(code::UNKNOWN_CALL, text));
    };
    let call = Call {
        account_id,
        system,
        origin: Origin::new(Channel::ExactTarget, username),
        data_dir: state.settings.data_dir.clone(),
    };
    let reply = if op.writes() {
        state.db.write(move |conn| run(conn, op, &call)).await
    } else {
        state.db.run(move |conn| run(conn, op, &call)).await
    };
    answer(wrapper, reply.unwrap_or_else(refusal))
}

fn run(conn: &mut DbConnection, op: Op, call: &Call) -> Result<Reply> {
    match op {
        Op::RetrieveAttributes => account::retrieve_attributes(conn, call),
        Op::Ping => Ok(account::ping()),
        Op::SubscriberAdd => subscriber::add(conn, call),
        Op::SubscriberEdit => subscriber::edit(conn, call),
        Op::SubscriberRetrieve => subscriber::retrieve(conn, call),
        Op::SubscriberDelete => subscriber::delete(conn, call),
        Op::MasterUnsubscribe => subscriber::master_unsubscribe(conn, call),
        Op::ListAdd => list::add(conn, call),
        Op::ListEdit => list::edit(conn, call),
        Op::ListRetrieve => list::retrieve(conn, call),
        Op::ListDelete => list::delete(conn, call),
        Op::ListRetrieveSubscribers => list::retrieve_subscribers(conn, call),
        Op::ListRetrieveGroups => list::retrieve_groups(conn, call),
        Op::ListImport => list::import(conn, call),
        Op::ListRefreshGroup => list::refresh_group(conn, call),
        Op::EmailAdd => email::add(conn, call),
        Op::EmailRetrieve => email::retrieve(conn, call),
        Op::JobSend => send::job_send(conn, call),
        Op::JobSendSingle => send::job_send_single(conn, call),
        Op::TriggeredSend => send::triggered_send(conn, call),
        Op::TrackingRetrieve => tracking::retrieve(conn, call),
        Op::TrackingJobs => tracking::jobs(conn, call),
        Op::ChannelUnsubscribes => tracking::channel_unsubscribes(conn, call),
        Op::SubscriberExport => bulk::subscriber_statuses(conn, call),
        Op::ListExport => bulk::list_subscribers(conn, call),
        Op::TrackingExport => bulk::tracking(conn, call),
        Op::EnterpriseJobsExport => bulk::enterprise_jobs(conn, call),
        Op::SentExport => bulk::sent(conn, call),
        Op::FileMove => files::move_file(conn, call),
        Op::BatchInquire => bulk::inquire(conn, call),
    }
}

/// The text of error 39, as the product's MSXML-based parser worded it.
fn parse_error_text(line: usize, reason: &str) -> String {
    format!(
        "XML Parse Error = Error!!! Error Code = -1072896668, Line Number = {line}, Reason = {reason}"
    )
}

/// The domain's refusals as ExactTarget errors; a call that failed was rolled
/// back whole.
fn refusal(error: Error) -> Reply {
    match error {
        Error::NotFound("list") => Reply::fault(code::LIST_NOT_FOUND, "List does not exist"),
        Error::NotFound("file") => Reply::fault(code::FILE_NOT_FOUND, "File does not exist."),
        Error::NotFound("batch") => Reply::fault(code::INVALID, "Batch does not exist"),
        Error::NotFound("message") => Reply::fault(code::EMAIL_NOT_FOUND, "Email does not exist"),
        Error::NotFound("field") => {
            Reply::fault(code::ATTRIBUTE_NOT_FOUND, "Attribute does not exist")
        }
        Error::NotFound("group") => Reply::fault(code::LIST_NOT_FOUND, "List does not exist"),
        Error::NotFound("recipient" | "subscription") => {
            Reply::fault(code::SUBSCRIBER_NOT_FOUND, "Subscriber not found")
        }
        Error::NotFound(what) => Reply::fault(code::INVALID, format!("{what} does not exist")),
        Error::Invalid { field, reason } => {
            Reply::fault(code::INVALID, format!("Invalid {field}: {reason}"))
        }
        Error::Conflict(text) => Reply::fault(code::INVALID, text),
        Error::Blocklisted => Reply::fault(
            code::MASTER_UNSUBSCRIBED,
            "The subscriber is on the master unsubscribe list",
        ),
        Error::Unauthenticated => {
            Reply::fault(code::AUTHENTICATION, "Invalid username or password")
        }
        e => internal(e),
    }
}

fn internal(error: Error) -> Reply {
    log::error!("exacttarget: {error}");
    Reply::fault(code::INTERNAL, "Internal error, please try again later")
}

/// The response document. Errors stand in the system's wrapper (directly in
/// `<system>` when the system is unknown), `<error>` immediately followed by
/// `<error_description>`.
fn answer(wrapper: Option<&str>, reply: Reply) -> HttpResponse {
    let mut w = XmlWriter::new();
    w.raw("<?xml version=\"1.0\"?>")
        .open("exacttarget", &[])
        .open("system", &[]);
    match reply {
        Reply::Done(content) => {
            w.raw(&content);
        }
        Reply::Fault(number, text) => {
            if let Some(wrapper) = wrapper {
                w.open(wrapper, &[]);
            }
            w.leaf("error", &number.to_string())
                .leaf("error_description", &text);
        }
    }
    HttpResponse::Ok()
        .content_type("text/xml; charset=utf-8")
        .body(w.finish())
}

/// An attribute's element name: each space becomes `__`.
pub(crate) fn encode_name(name: &str) -> String {
    name.replace(' ', "__")
}

/// An element's attribute name: each `__` becomes a space. `EmailType`, as
/// one client writes it, is `Email Type`.
pub(crate) fn decode_name(element: &str) -> String {
    if element.eq_ignore_ascii_case("EmailType") {
        return "Email Type".into();
    }
    element.replace("__", " ")
}

/// Whether an encoded attribute name can be an element name (a field named
/// `1st line` or `a/b` cannot, and is left out of answers).
pub(crate) fn is_element_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// The address attribute, by its display name.
pub(crate) const EMAIL_ADDRESS: &str = "Email Address";

/// What a `<values>` block carries.
#[derive(Debug, Clone, Default)]
pub(crate) struct Values {
    pub email: Option<String>,
    pub fields: Vec<(FieldRef, String)>,
}

/// The children of `<values>` that are not attributes.
const NOT_ATTRIBUTES: [&str; 3] = ["status", "reason", "ChannelMemberID"];

/// Reads the attributes of `<values>`; every one but the address must be in
/// the account's catalogue (error 6 otherwise).
pub(crate) fn read_values(
    conn: &mut DbConnection,
    account_id: i64,
    values: Option<&Element>,
) -> Result<std::result::Result<Values, Reply>> {
    let mut read = Values::default();
    let Some(values) = values else {
        return Ok(Ok(read));
    };
    for child in &values.children {
        if NOT_ATTRIBUTES
            .iter()
            .any(|n| n.eq_ignore_ascii_case(&child.name))
        {
            continue;
        }
        let name = decode_name(&child.name);
        let value = child.text.trim().to_string();
        if name.eq_ignore_ascii_case(EMAIL_ADDRESS) {
            read.email = Some(value);
            continue;
        }
        match fields::find_by_name(conn, account_id, &name)? {
            Some(field) => read.fields.push((FieldRef::Number(field.number), value)),
            None => {
                return Ok(Err(Reply::fault(
                    code::ATTRIBUTE_NOT_FOUND,
                    format!("Attribute {name} does not exist"),
                )));
            }
        }
    }
    Ok(Ok(read))
}

/// The account's attribute catalogue that can be written as elements.
pub(crate) fn catalogue(conn: &mut DbConnection, account_id: i64) -> Result<Vec<Field>> {
    Ok(fields::all(conn, account_id)?
        .into_iter()
        .filter(|f| is_element_name(&encode_name(&f.name)))
        .collect())
}

/// `M/D/YYYY`, as requests carry dates; `None` when it is not one.
pub(crate) fn parse_date(text: &str) -> Option<chrono::NaiveDate> {
    let mut parts = text.trim().split('/');
    let month = parts.next()?.trim().parse().ok()?;
    let day = parts.next()?.trim().parse().ok()?;
    // A time may follow the year (`M/D/YYYY h:m:s AM`); the day is what counts.
    let year = parts.next()?.split_whitespace().next()?.parse().ok()?;
    if parts.next().is_some() {
        return None;
    }
    chrono::NaiveDate::from_ymd_opt(year, month, day)
}

/// `M/D/YYYY`, optionally with `h:m:s` and `AM`/`PM` (24 h without), as
/// some calls carry times; `None` when it is not one. The second value tells
/// whether a time was given.
pub(crate) fn parse_moment(text: &str) -> Option<(chrono::NaiveDateTime, bool)> {
    let mut parts = text.split_whitespace();
    let day = parse_date(parts.next()?)?;
    let Some(time) = parts.next() else {
        return Some((day.and_time(chrono::NaiveTime::MIN), false));
    };
    let mut numbers = time.split(':').map(|p| p.parse::<u32>().ok());
    let hour = numbers.next()??;
    let minute = numbers.next().unwrap_or(Some(0))?;
    let second = numbers.next().unwrap_or(Some(0))?;
    let hour = match parts.next().map(str::to_ascii_uppercase).as_deref() {
        None => hour,
        Some("AM") if (1..=12).contains(&hour) => hour % 12,
        Some("PM") if (1..=12).contains(&hour) => hour % 12 + 12,
        Some(_) => return None,
    };
    Some((day.and_hms_opt(hour, minute, second)?, true))
}

/// A range from two texts (either may be empty): `[start, end]`, the end
/// inclusive (a whole day when it has no time). Error 4 for a text that is
/// not a date.
pub(crate) fn range_of(
    start: &str,
    end: &str,
) -> std::result::Result<(Option<chrono::NaiveDateTime>, Option<chrono::NaiveDateTime>), Reply> {
    let read = |name: &str, text: &str| {
        let text = text.trim();
        if text.is_empty() {
            return Ok(None);
        }
        parse_moment(text).map(Some).ok_or_else(|| {
            Reply::fault(code::INVALID, format!("Invalid {name} {text:?}: M/D/YYYY"))
        })
    };
    let from = read("startdate", start)?.map(|(at, _)| at);
    let until = read("enddate", end)?.map(|(at, timed)| {
        at + if timed {
            chrono::Duration::seconds(1)
        } else {
            chrono::Duration::days(1)
        }
    });
    Ok((from, until))
}

/// A range: from (inclusive), until (exclusive), either open.
pub(crate) type Range = (Option<chrono::NaiveDateTime>, Option<chrono::NaiveDateTime>);

/// The `<daterange><startdate/><enddate/></daterange>` of a call, if any.
pub(crate) fn date_range(call: &Call) -> std::result::Result<Range, Reply> {
    named_range(call, "daterange").map(Option::unwrap_or_default)
}

/// The range in the element `name` (`<startdate/><enddate/>`), if the call
/// has that element.
pub(crate) fn named_range(call: &Call, name: &str) -> std::result::Result<Option<Range>, Reply> {
    call.system
        .child(name)
        .map(|range| {
            range_of(
                range.child_text("startdate").unwrap_or(""),
                range.child_text("enddate").unwrap_or(""),
            )
        })
        .transpose()
}

/// `M/D/YYYY`, as answers write dates.
pub(crate) fn format_date(at: chrono::NaiveDateTime) -> String {
    at.format("%-m/%-d/%Y").to_string()
}

/// `M/D/YYYY h:mm:ss AM`, as answers write times.
pub(crate) fn format_time(at: chrono::NaiveDateTime) -> String {
    at.format("%-m/%-d/%Y %-I:%M:%S %p").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_names_encode_both_ways() {
        assert_eq!(encode_name("First Name"), "First__Name");
        assert_eq!(decode_name("First__Name"), "First Name");
        assert_eq!(decode_name("first_name"), "first_name");
        assert_eq!(decode_name("EmailType"), "Email Type");
        assert!(is_element_name("Email__Address"));
        assert!(is_element_name("città"));
        assert!(!is_element_name("1st__line"));
        assert!(!is_element_name("a/b"));
    }

    #[test]
    fn dates_read_and_written_without_padding() {
        let day = chrono::NaiveDate::from_ymd_opt(2026, 3, 7).unwrap();
        assert_eq!(parse_date("3/7/2026"), Some(day));
        assert_eq!(parse_date("03/07/2026"), Some(day));
        assert_eq!(parse_date("3/7/2026 1:02:03 PM"), Some(day));
        assert_eq!(parse_date("2026-03-07"), None);
        assert_eq!(parse_date("13/1/2026"), None);
        assert_eq!(
            parse_moment("3/7/2026 1:02:03 PM"),
            Some((day.and_hms_opt(13, 2, 3).unwrap(), true))
        );
        assert_eq!(
            parse_moment("3/7/2026 12:00:00 AM"),
            Some((day.and_hms_opt(0, 0, 0).unwrap(), true))
        );
        assert_eq!(
            parse_moment("3/7/2026"),
            Some((day.and_hms_opt(0, 0, 0).unwrap(), false))
        );
        assert_eq!(parse_moment("3/7/2026 13:00 PM"), None);
        let (from, until) = range_of("3/7/2026", "3/7/2026").unwrap();
        assert_eq!(until.unwrap() - from.unwrap(), chrono::Duration::days(1));
        let at = day.and_hms_opt(13, 2, 3).unwrap();
        assert_eq!(format_date(at), "3/7/2026");
        assert_eq!(format_time(at), "3/7/2026 1:02:03 PM");
    }

    #[test]
    fn keywords_match_without_regard_to_case() {
        assert_eq!(Op::parse("diagnostics", "Ping"), Some(Op::Ping));
        assert_eq!(Op::parse("Subscriber", "ADD"), Some(Op::SubscriberAdd));
        assert_eq!(Op::parse("", ""), None);
        assert_eq!(Op::parse("subscriber", "explode"), None);
    }
}
