//! MailUpSend (`/MailupSend.asmx`): lists, groups, fields and list identity;
//! newsletters; sending them to a list, its groups or named recipients, now or
//! at a time; delivery status and pausing. See `../shared/specs/mailup.md`
//! §2.5 and `docs/compat/mailup.md` for the result shapes the spec leaves open.

use chrono::NaiveDateTime;

use super::ws::{self, Options, Params, Service};
use super::{account, manage, send_file};
use crate::config::Settings;
use crate::db::DbConnection;
use crate::domain::accounts::Account;
use crate::domain::messages::{self, Message, MessageKind, NewMessage};
use crate::domain::recipients::{Contact, Mobile, RecipientKey};
use crate::domain::send_queue;
use crate::domain::sends::{
    self, Audience, NewCampaign, NewSingle, Send, SendKind, SendStatus, To,
};
use crate::domain::subscriptions::{self, Subscribe};
use crate::domain::{Channel, Origin, fields, groups, lists};
use crate::render::Dialect;
use crate::xml::XmlWriter;
use crate::{Error, Result};

pub static SERVICE: Service = Service {
    name: "MailupSend",
    wsdl: include_str!("../../../wsdl/MailupSend.wsdl"),
    legacy: &["CreateList", "DeleteList", "GetFields", "GetListIdentity"],
    call,
};

fn call(
    conn: &mut DbConnection,
    settings: &Settings,
    account: &Account,
    operation: &str,
    params: &Params,
) -> Option<Result<String>> {
    Some(match operation {
        "GetLists" | "GetListsUser" => manage::get_lists(conn, account, operation),
        "GetGroups" => manage::get_groups(conn, account, operation, params),
        "GetFields" | "GetFields_st" => get_fields(conn, account, operation),
        "GetListIdentity" | "GetListIdentity_st" => list_identity(conn, account, operation, params),
        "CreateList" | "CreateList_st" => create_list(conn, account, operation, params),
        "DeleteList" | "DeleteList_st" => delete_list(conn, account, operation, params),
        "CreateNewsletter" => create_newsletter(conn, account, params),
        "EditNewsletter" => edit_newsletter(conn, account, params),
        "GetNewsletters" | "GetMessages" => get_newsletters(conn, account, operation, params),
        "GetNewsletterCode" => newsletter_code(conn, account, params),
        "GetTemplates" => get_templates(conn, account, params),
        "GetUserAccess" => account::user_access(conn, account, params),
        "CheckUserHash" => account::check_user_hash(conn, account, params),
        "GetCredits" | "GetCreditsLists" => account::credits(conn, account, params, operation),
        "CloneMessage" => clone_message(conn, account, params),
        "SendNewsletter" => send_newsletter(conn, account, params),
        "SendNewsletterFast" => send_newsletter_fast(conn, account, params),
        "SendSingleNewsletter" => send_single(conn, account, params),
        "GetNewsletterDeliveryStatus" => delivery_status(conn, account, operation, params),
        "GetNewsletterQueues" => queues(conn, account, operation, params),
        "PrepareNewsletterSchedule" => prepare_schedule(conn, account, params),
        "ScheduleNewsletterQueue" => schedule_queue(conn, account, operation, params),
        "ScheduleSMSQueue" => schedule_queue(conn, account, operation, params),
        "AddNewsletterQueue" => add_queue(conn, account, params),
        "SetNewsletterQueueOrder" => queue_order(conn, account, params),
        "SendMessageNL" => send_file::send_message_nl(conn, settings, account, params),
        "RemoveNewsletterQueue" | "RemoveSMSQueue" => {
            remove_queue(conn, account, operation, params)
        }
        "GetNewsletterScheduleStatus" => schedule_status(conn, account, params),
        "StartDelivery" => delivery(conn, account, operation, MessageKind::Email, true),
        "StopDelivery" => delivery(conn, account, operation, MessageKind::Email, false),
        "CreateSMS" => create_sms(conn, account, params),
        "GetSMS" => get_sms(conn, account, params),
        "SendSMS" => send_sms(conn, account, params),
        "SendSMSFast" => send_sms_fast(conn, account, params),
        "SendSingleSMS" => send_single_sms(conn, account, params),
        "SendDirectSMS" => send_direct_sms(conn, account, params),
        "GetSMSDeliveryStatus" => delivery_status(conn, account, operation, params),
        "GetSMSQueues" => queues(conn, account, operation, params),
        "StartDeliverySMS" => delivery(conn, account, operation, MessageKind::Sms, true),
        "StopDeliverySMS" => delivery(conn, account, operation, MessageKind::Sms, false),
        _ => return None,
    })
}

/// `Fields/Field Name Id` for every personal data field.
fn get_fields(conn: &mut DbConnection, account: &Account, operation: &str) -> Result<String> {
    let all = fields::all(conn, account.id)?;
    let write = |w: &mut XmlWriter| {
        w.open("Fields", &[]);
        for field in &all {
            w.empty(
                "Field",
                &[("Name", &field.name), ("Id", &field.number.to_string())],
            );
        }
        w.close();
    };
    Ok(if operation == "GetFields" {
        ws::legacy(operation, write)
    } else {
        ws::ok(operation, write)
    })
}

fn write_lists(w: &mut XmlWriter, lists: &[lists::List]) {
    w.open("Lists", &[]);
    for list in lists {
        w.empty(
            "List",
            &[
                ("Guid", &list.guid),
                ("Id", &list.number.to_string()),
                ("Name", &list.name),
            ],
        );
    }
    w.close();
}

/// `Lists/List Guid Id Name` of the list `autoId` (every list when empty).
fn list_identity(
    conn: &mut DbConnection,
    account: &Account,
    operation: &str,
    params: &Params,
) -> Result<String> {
    let found = match params.text("autoId") {
        "" => lists::all(conn, account.id)?,
        id => vec![lists::get(
            conn,
            account.id,
            id.parse()
                .map_err(|_| Error::invalid("autoId", "a list id is required"))?,
        )?],
    };
    Ok(legacy_or_st(operation, |w| write_lists(w, &found)))
}

/// `CreateList(name, autoId)`: a list named `name`; a numeric `autoId` is
/// the id it gets (as a migrated integration expects), empty the next free.
fn create_list(
    conn: &mut DbConnection,
    account: &Account,
    operation: &str,
    params: &Params,
) -> Result<String> {
    let number = match params.text("autoId") {
        "" => None,
        id => Some(
            id.parse()
                .map_err(|_| Error::invalid("autoId", "a list id is required"))?,
        ),
    };
    let list = lists::create(
        conn,
        account.id,
        &lists::NewList {
            number,
            name: params.text("name").to_string(),
            ..lists::NewList::default()
        },
    )?;
    Ok(legacy_or_st(operation, |w| write_lists(w, &[list])))
}

/// `DeleteList(listId, autoId)`: deletes the list; answers it as it was.
fn delete_list(
    conn: &mut DbConnection,
    account: &Account,
    operation: &str,
    params: &Params,
) -> Result<String> {
    let list = lists::get(conn, account.id, params.required_int("listId")?)?;
    lists::delete(conn, account.id, list.number)?;
    Ok(legacy_or_st(operation, |w| write_lists(w, &[list])))
}

fn legacy_or_st(operation: &str, payload: impl FnOnce(&mut XmlWriter)) -> String {
    if operation.ends_with("_st") {
        ws::ok(operation, payload)
    } else {
        ws::legacy(operation, payload)
    }
}

/// The HTML of a `type`/`content` pair. `URL` and `FILE` are refused: the
/// server does not fetch pages for callers (docs/compat/mailup.md).
fn html_content(params: &Params) -> Result<String> {
    let content = params.raw("content");
    match params.text("type").to_ascii_uppercase().as_str() {
        "" | "HTML" | "TEXT" => {
            if content.trim().is_empty() {
                Err(Error::invalid("content", "the newsletter has no content"))
            } else {
                Ok(content.to_string())
            }
        }
        other => Err(Error::invalid(
            "type",
            format!("{other} content is not supported; send HTML"),
        )),
    }
}

/// A newsletter of the list from `subject`, `type`, `content` and the options
/// `note` (its name), `from_name` and `from_email` (else the list's sender).
fn new_newsletter(
    conn: &mut DbConnection,
    account: &Account,
    params: &Params,
    options: &Options,
) -> Result<Message> {
    let list = lists::get(conn, account.id, params.required_int("listID")?)?;
    let subject = params.text("subject");
    if subject.is_empty() {
        return Err(Error::invalid("subject", "must not be empty"));
    }
    let message = NewMessage {
        dialect: Dialect::Mailup,
        name: options.get("note").unwrap_or("").to_string(),
        from_name: options
            .get("from_name")
            .unwrap_or(&list.sender_name)
            .to_string(),
        from_email: options
            .get("from_email")
            .unwrap_or(&list.sender_email)
            .to_string(),
        reply_to: list.reply_to.clone(),
        list: Some(list.number),
        ..NewMessage::email(subject, html_content(params)?)
    };
    messages::create(conn, account.id, &message)
}

/// Answers `newsletterID`.
fn create_newsletter(
    conn: &mut DbConnection,
    account: &Account,
    params: &Params,
) -> Result<String> {
    let options = params.options("options");
    let mut message = new_newsletter(conn, account, params, &options)?;
    // Option `template` (also `is_template`, `istemplate`) true: a template.
    let template = ["template", "is_template", "istemplate"]
        .iter()
        .find_map(|key| options.flag(key))
        .unwrap_or(false);
    if template {
        message = messages::set_template(conn, account.id, message.id, true)?;
    }
    Ok(ws::ok("CreateNewsletter", |w| {
        w.leaf("newsletterID", &message.id.to_string());
    }))
}

/// The newsletter `id` of list `list_number`.
pub(super) fn newsletter(
    conn: &mut DbConnection,
    account: &Account,
    list_number: i64,
    id: i64,
) -> Result<Message> {
    message_of(conn, account, list_number, id, MessageKind::Email)
}

/// The message `id` of this channel in list `list_number`.
fn message_of(
    conn: &mut DbConnection,
    account: &Account,
    list_number: i64,
    id: i64,
    kind: MessageKind,
) -> Result<Message> {
    let list = lists::get(conn, account.id, list_number)?;
    let message = messages::get(conn, account.id, id)?;
    if message.list_id != Some(list.id) || message.kind()? != kind {
        return Err(Error::NotFound("message"));
    }
    Ok(message)
}

fn edit_newsletter(conn: &mut DbConnection, account: &Account, params: &Params) -> Result<String> {
    let list = params.required_int("listID")?;
    let message = newsletter(conn, account, list, params.required_int("newsletterId")?)?;
    let options = params.options("options");
    let subject = Some(params.text("subject")).filter(|s| !s.is_empty());
    let html = match params.raw("content").trim() {
        "" => None,
        _ => Some(html_content(params)?),
    };
    let message = messages::update_content(
        conn,
        account.id,
        message.id,
        subject,
        html.as_deref(),
        options.get("note"),
    )?;
    messages::set_sender(
        conn,
        account.id,
        message.id,
        options.get("from_name"),
        options.get("from_email"),
    )?;
    Ok(ws::ok("EditNewsletter", |w| {
        w.leaf("newsletterID", &message.id.to_string());
    }))
}

/// `list/newsletters/newsletter` with `newsletterID`, `subject`, `note`,
/// `creationdate` (`dd/MM/yyyy HH:mm:ss`), as MLO reads them.
fn get_newsletters(
    conn: &mut DbConnection,
    account: &Account,
    operation: &str,
    params: &Params,
) -> Result<String> {
    let list = params.required_int("listID")?;
    let all = messages::in_list(conn, account.id, list, MessageKind::Email)?;
    Ok(message_list(operation, list, "newsletter", &all))
}

/// `GetTemplates(listID)`: the list's templates as
/// `list/{listID,templates/template/{templateID,subject,note,creationdate}}`,
/// GetNewsletters' shape with template in place of newsletter.
fn get_templates(conn: &mut DbConnection, account: &Account, params: &Params) -> Result<String> {
    let list = params.required_int("listID")?;
    let all = messages::templates_in_list(conn, account.id, list)?;
    Ok(message_list("GetTemplates", list, "template", &all))
}

/// `list/{listID,<item>s/<item>/{<item>ID,subject,note,creationdate}}`.
fn message_list(operation: &str, list: i64, item: &str, all: &[Message]) -> String {
    ws::ok(operation, |w| {
        w.open("list", &[])
            .leaf("listID", &list.to_string())
            .open(&format!("{item}s"), &[]);
        for message in all {
            w.open(item, &[])
                .leaf(&format!("{item}ID"), &message.id.to_string())
                .leaf("subject", &message.subject)
                .leaf("note", &message.name)
                .leaf("creationdate", &super::console_time(message.created_at))
                .close();
        }
        w.close().close();
    })
}

/// List-parameter codes of CloneMessage, as Import's (spec §2.2).
const LIST_UNRECOGNIZED: i32 = -100;
const LIST_MISMATCH: i32 = -101;
const GUID_INVALID: i32 = -102;

/// `CloneMessage(listId, listGuid, messageToCloneId, subject)`: a copy of the
/// newsletter (with `subject` when given); the `xs:int` result is the copy's
/// id, or a negative code: -100 unknown list, -101 GUID of another list,
/// -102 malformed GUID, -400 unknown message.
fn clone_message(conn: &mut DbConnection, account: &Account, params: &Params) -> Result<String> {
    let Ok(number) = params.text("listId").parse::<i64>() else {
        return Ok(LIST_UNRECOGNIZED.to_string());
    };
    let guid = params.text("listGuid").trim_matches(['{', '}']);
    if uuid::Uuid::parse_str(guid).is_err() {
        return Ok(GUID_INVALID.to_string());
    }
    let list = match lists::find(conn, account.id, number)? {
        Some(list) if list.guid.eq_ignore_ascii_case(guid) => list,
        Some(_) => return Ok(LIST_MISMATCH.to_string()),
        None => return Ok(LIST_UNRECOGNIZED.to_string()),
    };
    let original = newsletter(
        conn,
        account,
        list.number,
        params.required_int("messageToCloneId")?,
    )?;
    let subject = Some(params.text("subject"))
        .filter(|s| !s.is_empty())
        .unwrap_or(&original.subject);
    let copy = messages::create(
        conn,
        account.id,
        &NewMessage {
            kind: MessageKind::Email,
            dialect: original.dialect()?,
            name: original.name.clone(),
            subject: subject.to_string(),
            html: original.html.clone(),
            text: original.text.clone(),
            from_name: original.from_name.clone(),
            from_email: original.from_email.clone(),
            reply_to: original.reply_to.clone(),
            headers: original.headers(),
            list: Some(list.number),
        },
    )?;
    Ok(copy.id.to_string())
}

/// `listID`, `newsletterID`, `newsletterSubject`, `newsletterHeader` (the
/// sender), `newsletterBody` and `newsletterCode` (the HTML as stored).
fn newsletter_code(conn: &mut DbConnection, account: &Account, params: &Params) -> Result<String> {
    let list = params.required_int("listID")?;
    let message = newsletter(conn, account, list, params.required_int("newsletterID")?)?;
    // `isTemplate=true` reads a template (an id of GetTemplates); without it
    // any message of the list is read.
    if params.flag("isTemplate") && !message.is_template {
        return Err(Error::NotFound("message"));
    }
    let html = message.html.clone().unwrap_or_default();
    let body = body_of(&html);
    let header = if message.from_email.is_empty() {
        message.from_name.clone()
    } else {
        format!("{} <{}>", message.from_name, message.from_email)
    };
    Ok(ws::ok("GetNewsletterCode", |w| {
        w.leaf("listID", &list.to_string())
            .leaf("newsletterID", &message.id.to_string())
            .leaf("newsletterSubject", &message.subject)
            .leaf("newsletterHeader", header.trim())
            .leaf("newsletterBody", body)
            .leaf("newsletterCode", &html);
    }))
}

/// What is inside `<body>`, or the whole document when it has none.
fn body_of(html: &str) -> &str {
    let lower = html.to_ascii_lowercase();
    let start = lower
        .find("<body")
        .and_then(|at| lower[at..].find('>').map(|end| at + end + 1));
    match (start, lower.rfind("</body>")) {
        (Some(start), Some(end)) if end >= start => &html[start..end],
        _ => html,
    }
}

/// `deliverydt` is `yyyyMMddHHmmss`, Rome time as MailUp's console.
fn delivery_time(options: &Options) -> Result<Option<NaiveDateTime>> {
    options.get("deliverydt").map(parse_deliverydt).transpose()
}

fn parse_deliverydt(text: &str) -> Result<NaiveDateTime> {
    NaiveDateTime::parse_from_str(text, "%Y%m%d%H%M%S")
        .map(super::rome_to_utc)
        .map_err(|_| Error::invalid("deliverydt", "expected yyyyMMddHHmmss"))
}

fn id_list(text: &str, what: &'static str) -> Result<Vec<i64>> {
    text.split([';', ','])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|id| {
            id.parse()
                .map_err(|_| Error::invalid(what, format!("{id:?} is not an id")))
        })
        .collect()
}

/// Sends newsletter or SMS `message` of list `list` as the options say:
/// `send_to` `ALL`, `GROUPS` (ids in `recipients`) or `RECIPIENTS` (e-mail
/// addresses or mobile numbers in `recipients`); `exclude` (group ids) leaves
/// those groups' members out; `deliverydt` to start later. The delivery id is
/// the send's.
fn send_message(
    conn: &mut DbConnection,
    account: &Account,
    list: i64,
    message: &Message,
    options: &Options,
) -> Result<Send> {
    if options.get("filters").is_some() {
        return Err(Error::invalid(
            "filters",
            "saved filters are not supported; name the groups to send to",
        ));
    }
    if message.is_template {
        return Err(Error::invalid(
            "newsletterID",
            "a template is not sent; clone it into a newsletter",
        ));
    }
    let excluded = id_list(options.get("exclude").unwrap_or(""), "exclude")?;
    if !excluded.is_empty() {
        // Checked before the send exists: a refused call leaves no gap in
        // the delivery ids (PostgreSQL's sequences do not roll back).
        let row = lists::get(conn, account.id, list)?;
        groups::resolve_in_list(conn, account.id, row.id, &excluded)?;
    }
    let recipients = options.get("recipients").unwrap_or("");
    let audience = match options
        .get("send_to")
        .unwrap_or("")
        .to_ascii_uppercase()
        .as_str()
    {
        "ALL" => Audience::List {
            list,
            groups: Vec::new(),
            filter: Vec::new(),
        },
        "GROUPS" => {
            let groups = id_list(recipients, "recipients")?;
            if groups.is_empty() {
                return Err(Error::invalid("recipients", "no group ids"));
            }
            Audience::List {
                list,
                groups,
                filter: Vec::new(),
            }
        }
        "RECIPIENTS" => {
            let sms = message.kind()? == MessageKind::Sms;
            let keys: Vec<RecipientKey> = recipients
                .split(';')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|address| {
                    if sms {
                        RecipientKey::Mobile(Mobile::new(address))
                    } else {
                        RecipientKey::Email(address.to_string())
                    }
                })
                .collect();
            // Only members of the list: a newsletter goes to its list.
            for key in &keys {
                if subscriptions::status(conn, account.id, list, key)?
                    != Some(subscriptions::Status::Subscribed)
                {
                    return Err(Error::NotFound("recipient"));
                }
            }
            Audience::Recipients(keys)
        }
        _ => {
            return Err(Error::invalid(
                "send_to",
                "ALL, GROUPS or RECIPIENTS is required",
            ));
        }
    };
    let send = sends::create_campaign(
        conn,
        account.id,
        &NewCampaign {
            message_id: message.id,
            audience,
            params: serde_json::Map::new(),
            scheduled_at: delivery_time(options)?,
            idempotency_key: None,
        },
    )?;
    if !excluded.is_empty() {
        sends::exclude_groups(conn, account.id, send.id, list, &excluded)?;
    }
    sends::start(conn, account.id, send.id)
}

fn sent(operation: &str, message: &Message, send: &Send) -> String {
    ws::ok(operation, |w| {
        w.leaf("newsletterID", &message.id.to_string())
            .leaf("deliveryID", &send.id.to_string());
    })
}

fn send_newsletter(conn: &mut DbConnection, account: &Account, params: &Params) -> Result<String> {
    let list = params.required_int("listID")?;
    let message = newsletter(conn, account, list, params.required_int("newsletterID")?)?;
    let options = params.options("options");
    let message = messages::set_sender(
        conn,
        account.id,
        message.id,
        options.get("from_name"),
        options.get("from_email"),
    )?;
    let send = send_message(conn, account, list, &message, &options)?;
    Ok(sent("SendNewsletter", &message, &send))
}

/// CreateNewsletter and SendNewsletter in one.
fn send_newsletter_fast(
    conn: &mut DbConnection,
    account: &Account,
    params: &Params,
) -> Result<String> {
    let options = params.options("options");
    let message = new_newsletter(conn, account, params, &options)?;
    let list = params.required_int("listID")?;
    let send = send_message(conn, account, list, &message, &options)?;
    Ok(sent("SendNewsletterFast", &message, &send))
}

/// One message to `recipientEmail`, subscribed to the list first if the list
/// does not know the address. `type` `ID` sends newsletter `content`.
fn send_single(conn: &mut DbConnection, account: &Account, params: &Params) -> Result<String> {
    let list = params.required_int("listID")?;
    let options = params.options("options");
    let message = if params.text("type").eq_ignore_ascii_case("ID") {
        let id = params
            .text("content")
            .parse()
            .map_err(|_| Error::invalid("content", "a newsletter id is required"))?;
        newsletter(conn, account, list, id)?
    } else {
        new_newsletter(conn, account, params, &options)?
    };
    let contact = Contact::email(params.text("recipientEmail"));
    let send_id = send_to_one(
        conn,
        account,
        list,
        &message,
        contact,
        "SendSingleNewsletter",
    )?;
    Ok(ws::ok("SendSingleNewsletter", |w| {
        w.leaf("newsletterID", &message.id.to_string())
            .leaf("deliveryID", &send_id.to_string());
    }))
}

/// Sends a message to one recipient of the list, subscribing them first when
/// they are not on it (as MailUp's single sends did). Returns the send's id.
fn send_to_one(
    conn: &mut DbConnection,
    account: &Account,
    list: i64,
    message: &Message,
    contact: Contact,
    operation: &str,
) -> Result<i64> {
    let key = match (&contact.email, &contact.mobile) {
        (Some(email), _) => RecipientKey::Email(email.clone()),
        (None, Some(mobile)) => RecipientKey::Mobile(mobile.clone()),
        (None, None) => return Err(Error::invalid("recipient", "an address is required")),
    };
    if subscriptions::status(conn, account.id, list, &key)?.is_none() {
        subscriptions::subscribe(
            conn,
            account.id,
            &Subscribe {
                list,
                contact,
                fields: Vec::new(),
                groups: Vec::new(),
                double_opt_in: Some(false),
                source: operation.into(),
                origin: Origin::new(Channel::MailupSoap, "MailUpSend"),
            },
        )?;
    }
    let enqueued = sends::enqueue_single(
        conn,
        account.id,
        &NewSingle {
            kind: SendKind::Single,
            message_id: message.id,
            to: To::Recipient(key),
            params: serde_json::Map::new(),
            idempotency_key: None,
        },
    )?;
    Ok(enqueued.send_id)
}

/// MailUp's words for a send's state.
fn status_word(send: &Send) -> Result<&'static str> {
    Ok(match send.status()? {
        SendStatus::Draft => "QUEUED",
        SendStatus::Scheduled => "SCHEDULED",
        SendStatus::Sending => "SENDING",
        SendStatus::Paused => "STOPPED",
        SendStatus::Completed => "COMPLETED",
        SendStatus::Cancelled => "CANCELLED",
    })
}

fn write_delivery(w: &mut XmlWriter, send: &Send, message: &Message, list: i64) -> Result<()> {
    let done = send.sent + send.failed;
    let remaining = (send.to_send - done).max(0);
    let progress = if send.status()? == SendStatus::Completed {
        100
    } else if send.to_send > 0 {
        done * 100 / send.to_send
    } else {
        0
    };
    let stamp = |at: Option<NaiveDateTime>| at.map_or(String::new(), super::console_time);
    let details = format!(
        "scheduled: {}; started: {}; completed: {}; sent: {}; failed: {}",
        stamp(send.scheduled_at),
        stamp(send.started_at),
        stamp(send.completed_at),
        send.sent,
        send.failed
    );
    w.open("deliveryStatus", &[])
        .leaf("deliveryID", &send.id.to_string())
        .leaf("listID", &list.to_string())
        .leaf("newsletterID", &message.id.to_string())
        .leaf("status", status_word(send)?)
        .leaf("details", &details)
        .leaf("toSend", &send.to_send.to_string())
        .leaf("toBeSent", &remaining.to_string())
        .leaf("progress", &progress.to_string())
        .leaf("estimatedTime", &estimated_time(send, remaining))
        .close();
    Ok(())
}

/// The time left at the pace so far (`0d 00h 00m 00s` before the first
/// message and after the last).
fn estimated_time(send: &Send, remaining: i64) -> String {
    let done = send.sent + send.failed;
    let seconds = match send.started_at {
        Some(started) if done > 0 && remaining > 0 => {
            let elapsed = (crate::domain::now() - started).num_seconds().max(0);
            elapsed * remaining / done
        }
        _ => 0,
    };
    format!(
        "{}d {:02}h {:02}m {:02}s",
        seconds / 86_400,
        seconds % 86_400 / 3_600,
        seconds % 3_600 / 60,
        seconds % 60
    )
}

/// The list number a send's message belongs to (0 when none).
fn list_of(conn: &mut DbConnection, account: &Account, message: &Message) -> Result<i64> {
    Ok(match message.list_id {
        Some(id) => lists::by_id(conn, account.id, id)?.number,
        None => 0,
    })
}

fn delivery_status(
    conn: &mut DbConnection,
    account: &Account,
    operation: &str,
    params: &Params,
) -> Result<String> {
    let send = sends::get(conn, account.id, params.required_int("deliveryID")?)?;
    let message = messages::get(conn, account.id, send.message_id)?;
    let list = list_of(conn, account, &message)?;
    let mut failed = None;
    let document = ws::ok(operation, |w| {
        failed = write_delivery(w, &send, &message, list).err();
    });
    failed.map_or(Ok(document), Err)
}

/// The list's campaigns not yet finished, as `deliveryStatus` elements (in
/// queue order for newsletters).
fn queues(
    conn: &mut DbConnection,
    account: &Account,
    operation: &str,
    params: &Params,
) -> Result<String> {
    let number = params.required_int("listID")?;
    let list = lists::get(conn, account.id, number)?;
    let waiting = sends::of_list(
        conn,
        account.id,
        list.id,
        &[
            SendStatus::Draft,
            SendStatus::Scheduled,
            SendStatus::Sending,
            SendStatus::Paused,
        ],
    )?;
    let mut rows = Vec::with_capacity(waiting.len());
    for send in waiting {
        let message = messages::get(conn, account.id, send.message_id)?;
        rows.push((send, message));
    }
    let mut failed = None;
    let kind = if operation == "GetSMSQueues" {
        MessageKind::Sms
    } else {
        MessageKind::Email
    };
    rows.retain(|(_, message)| message.kind().ok() == Some(kind));
    if kind == MessageKind::Email {
        // In the order the sender takes them (SetNewsletterQueueOrder).
        let order = send_queue::order(conn, account.id)?;
        rows.sort_by_key(|(send, _)| {
            order
                .iter()
                .position(|&id| id == send.id)
                .unwrap_or(usize::MAX)
        });
    }
    let document = ws::ok(operation, |w| {
        w.open("queues", &[]);
        for (send, message) in &rows {
            if let Err(e) = write_delivery(w, send, message, number) {
                failed = Some(e);
            }
        }
        w.close();
    });
    failed.map_or(Ok(document), Err)
}

/// StartDelivery(SMS) resumes every stopped campaign of the account on its
/// channel, StopDelivery(SMS) stops every running or scheduled one. Answers
/// how many changed.
fn delivery(
    conn: &mut DbConnection,
    account: &Account,
    operation: &str,
    kind: MessageKind,
    start: bool,
) -> Result<String> {
    let ids = if start {
        sends::campaigns_in(conn, account.id, kind, &[SendStatus::Paused])?
    } else {
        sends::campaigns_in(
            conn,
            account.id,
            kind,
            &[SendStatus::Sending, SendStatus::Scheduled],
        )?
    };
    for &id in &ids {
        if start {
            sends::resume(conn, account.id, id)?;
        } else {
            sends::pause(conn, account.id, id)?;
        }
    }
    Ok(ws::ok(operation, |w| {
        w.leaf("deliveries", &ids.len().to_string());
    }))
}

/// An SMS of the list: `text` (also `content`), sent as the option `sender`
/// (else the list's SMS sender name, its sender name).
fn new_sms(
    conn: &mut DbConnection,
    account: &Account,
    list: i64,
    subject: &str,
    text: &str,
    options: &Options,
) -> Result<Message> {
    let list = lists::get(conn, account.id, list)?;
    let message = NewMessage {
        kind: MessageKind::Sms,
        dialect: Dialect::Mailup,
        name: subject.to_string(),
        subject: subject.to_string(),
        html: None,
        text: Some(text.to_string()),
        from_name: options
            .get("sender")
            .or(options.get("sms_sendername"))
            .unwrap_or(&list.sender_name)
            .to_string(),
        from_email: String::new(),
        reply_to: String::new(),
        headers: Default::default(),
        list: Some(list.number),
    };
    messages::create(conn, account.id, &message)
}

/// `CreateSMS(listID, subject, text, options)`: answers `smsID`.
fn create_sms(conn: &mut DbConnection, account: &Account, params: &Params) -> Result<String> {
    let message = new_sms(
        conn,
        account,
        params.required_int("listID")?,
        params.text("subject"),
        params.raw("text"),
        &params.options("options"),
    )?;
    Ok(ws::ok("CreateSMS", |w| {
        w.leaf("smsID", &message.id.to_string());
    }))
}

/// `list/smsList/sms` with `smsID`, `subject`, `text`, `creationdate`.
fn get_sms(conn: &mut DbConnection, account: &Account, params: &Params) -> Result<String> {
    let list = params.required_int("listID")?;
    let all = messages::in_list(conn, account.id, list, MessageKind::Sms)?;
    Ok(ws::ok("GetSMS", |w| {
        w.open("list", &[])
            .leaf("listID", &list.to_string())
            .open("smsList", &[]);
        for message in &all {
            w.open("sms", &[])
                .leaf("smsID", &message.id.to_string())
                .leaf("subject", &message.subject)
                .leaf("text", message.text.as_deref().unwrap_or(""))
                .leaf("creationdate", &super::console_time(message.created_at))
                .close();
        }
        w.close().close();
    }))
}

fn sms_sent(operation: &str, message: &Message, send_id: i64) -> String {
    ws::ok(operation, |w| {
        w.leaf("smsID", &message.id.to_string())
            .leaf("deliveryID", &send_id.to_string());
    })
}

/// `SendSMS(listID, smsID, options)`, with SendNewsletter's options.
fn send_sms(conn: &mut DbConnection, account: &Account, params: &Params) -> Result<String> {
    let list = params.required_int("listID")?;
    let message = message_of(
        conn,
        account,
        list,
        params.required_int("smsID")?,
        MessageKind::Sms,
    )?;
    let send = send_message(conn, account, list, &message, &params.options("options"))?;
    Ok(sms_sent("SendSMS", &message, send.id))
}

/// CreateSMS and SendSMS in one.
fn send_sms_fast(conn: &mut DbConnection, account: &Account, params: &Params) -> Result<String> {
    let list = params.required_int("listID")?;
    let options = params.options("options");
    let message = new_sms(
        conn,
        account,
        list,
        params.text("subject"),
        params.raw("text"),
        &options,
    )?;
    let send = send_message(conn, account, list, &message, &options)?;
    Ok(sms_sent("SendSMSFast", &message, send.id))
}

/// One SMS to `numero`, subscribed to the list first if the list does not
/// know the number. `type` `ID` sends SMS `content`.
fn send_single_sms(conn: &mut DbConnection, account: &Account, params: &Params) -> Result<String> {
    let list = params.required_int("listID")?;
    let options = params.options("options");
    let message = if params.text("type").eq_ignore_ascii_case("ID") {
        let id = params
            .text("content")
            .parse()
            .map_err(|_| Error::invalid("content", "an SMS id is required"))?;
        message_of(conn, account, list, id, MessageKind::Sms)?
    } else {
        new_sms(
            conn,
            account,
            list,
            params.text("subject"),
            params.raw("content"),
            &options,
        )?
    };
    let contact = Contact {
        email: None,
        mobile: Some(Mobile::new(params.text("numero"))),
    };
    let send_id = send_to_one(conn, account, list, &message, contact, "SendSingleSMS")?;
    Ok(sms_sent("SendSingleSMS", &message, send_id))
}

/// `SendDirectSMS(listID, content, numero, options)`: one SMS to a number,
/// which is not added to the list.
fn send_direct_sms(conn: &mut DbConnection, account: &Account, params: &Params) -> Result<String> {
    let list = params.required_int("listID")?;
    let options = params.options("options");
    let message = new_sms(conn, account, list, "", params.raw("content"), &options)?;
    let numero = params.text("numero");
    if numero.is_empty() {
        return Err(Error::invalid("numero", "a mobile number is required"));
    }
    let enqueued = sends::enqueue_single(
        conn,
        account.id,
        &NewSingle {
            kind: SendKind::Single,
            message_id: message.id,
            to: To::Address(numero.to_string()),
            params: serde_json::Map::new(),
            idempotency_key: None,
        },
    )?;
    Ok(sms_sent("SendDirectSMS", &message, enqueued.send_id))
}

/// A queue or schedule of newsletter (or SMS) `message`: a draft campaign to
/// the whole list, its id the `scheduleID` and `deliveryID` of the calls below.
fn draft(
    conn: &mut DbConnection,
    account: &Account,
    list: i64,
    message: &Message,
    at: Option<NaiveDateTime>,
) -> Result<Send> {
    sends::create_campaign(
        conn,
        account.id,
        &NewCampaign {
            message_id: message.id,
            audience: Audience::List {
                list,
                groups: Vec::new(),
                filter: Vec::new(),
            },
            params: serde_json::Map::new(),
            scheduled_at: at,
            idempotency_key: None,
        },
    )
}

/// `deliveryDate` (`dd/MM/yyyy` or `yyyy-MM-dd`) and `deliveryTime` (`HH:mm`
/// or `HH:mm:ss`), Rome time.
fn date_and_time(date: &str, time: &str) -> Result<NaiveDateTime> {
    let date = ["%d/%m/%Y", "%Y-%m-%d"]
        .iter()
        .find_map(|f| chrono::NaiveDate::parse_from_str(date, f).ok())
        .ok_or_else(|| Error::invalid("deliveryDate", "expected dd/MM/yyyy"))?;
    let time = match time {
        "" => chrono::NaiveTime::MIN,
        text => ["%H:%M:%S", "%H:%M", "%H.%M"]
            .iter()
            .find_map(|f| chrono::NaiveTime::parse_from_str(text, f).ok())
            .ok_or_else(|| Error::invalid("deliveryTime", "expected HH:mm"))?,
    };
    Ok(super::rome_to_utc(date.and_time(time)))
}

fn schedule_answer(operation: &str, send: &Send) -> String {
    ws::ok(operation, |w| {
        w.leaf("scheduleID", &send.id.to_string())
            .leaf("deliveryID", &send.id.to_string());
    })
}

/// `PrepareNewsletterSchedule(listID, newsletterID, deliveryDate,
/// deliveryTime, adminEmail, idUser, note)`: a schedule of the newsletter to
/// the whole list, not yet queued; answers `scheduleID`.
fn prepare_schedule(conn: &mut DbConnection, account: &Account, params: &Params) -> Result<String> {
    let list = params.required_int("listID")?;
    let message = newsletter(conn, account, list, params.required_int("newsletterID")?)?;
    let at = date_and_time(params.text("deliveryDate"), params.text("deliveryTime"))?;
    let send = draft(conn, account, list, &message, Some(at))?;
    Ok(schedule_answer("PrepareNewsletterSchedule", &send))
}

/// `ScheduleNewsletterQueue(listID, newsletterID, scheduleID, deliverydt,
/// timezone)` (and ScheduleSMSQueue with `smsID`): queues the newsletter for
/// `deliverydt` (`yyyyMMddHHmmss`, Rome time; `timezone` is not used), as the
/// prepared schedule `scheduleID` or, for 0, a new one to the whole list.
fn schedule_queue(
    conn: &mut DbConnection,
    account: &Account,
    operation: &str,
    params: &Params,
) -> Result<String> {
    let list = params.required_int("listID")?;
    let message = if operation == "ScheduleSMSQueue" {
        message_of(
            conn,
            account,
            list,
            params.required_int("smsID")?,
            MessageKind::Sms,
        )?
    } else {
        newsletter(conn, account, list, params.required_int("newsletterID")?)?
    };
    let at = parse_deliverydt(params.text("deliverydt"))?;
    let send = match params.int("scheduleID").unwrap_or(0) {
        0 => draft(conn, account, list, &message, Some(at))?,
        id => {
            let send = sends::get(conn, account.id, id)?;
            if send.message_id != message.id {
                return Err(Error::NotFound("send"));
            }
            sends::set_schedule(conn, account.id, send.id, Some(at))?
        }
    };
    let send = sends::start(conn, account.id, send.id)?;
    Ok(schedule_answer(operation, &send))
}

/// `AddNewsletterQueue(deliveryID, immediate)`: queues a prepared schedule,
/// now when `immediate`, else at its time.
fn add_queue(conn: &mut DbConnection, account: &Account, params: &Params) -> Result<String> {
    let id = params.required_int("deliveryID")?;
    if params.flag("immediate") {
        sends::set_schedule(conn, account.id, id, None)?;
    }
    let send = sends::start(conn, account.id, id)?;
    Ok(schedule_answer("AddNewsletterQueue", &send))
}

/// `SetNewsletterQueueOrder(scheduleID, Up)`: moves the schedule one place
/// up (`Up` true) or down in the account's queue of newsletters, which the
/// sender then sends one after another in that order. Answers the queue as
/// `queue/scheduleID` in its new order.
fn queue_order(conn: &mut DbConnection, account: &Account, params: &Params) -> Result<String> {
    let id = params.required_int("scheduleID")?;
    let ordered = send_queue::move_one(conn, account.id, id, params.flag("Up"))?;
    Ok(ws::ok("SetNewsletterQueueOrder", |w| {
        w.open("queue", &[]);
        for id in &ordered {
            w.leaf("scheduleID", &id.to_string());
        }
        w.close();
    }))
}

/// `RemoveNewsletterQueue(listID, newsletterID, deliveryID, scheduleID,
/// deleteQueue)` (and RemoveSMSQueue): cancels the delivery (or schedule);
/// what was sent stays sent.
fn remove_queue(
    conn: &mut DbConnection,
    account: &Account,
    operation: &str,
    params: &Params,
) -> Result<String> {
    let id = match params.int("deliveryID").unwrap_or(0) {
        0 => params.required_int("scheduleID")?,
        id => id,
    };
    let send = sends::get(conn, account.id, id)?;
    if operation == "RemoveNewsletterQueue" {
        let list = params.required_int("listID")?;
        let message = newsletter(conn, account, list, params.required_int("newsletterID")?)?;
        if send.message_id != message.id {
            return Err(Error::NotFound("send"));
        }
    }
    let send = sends::cancel(conn, account.id, send.id)?;
    Ok(schedule_answer(operation, &send))
}

/// `GetNewsletterScheduleStatus(newsletterID)`: every delivery of the
/// newsletter as `deliveryStatus`.
fn schedule_status(conn: &mut DbConnection, account: &Account, params: &Params) -> Result<String> {
    let message = messages::get(conn, account.id, params.required_int("newsletterID")?)?;
    if message.kind()? != MessageKind::Email {
        return Err(Error::NotFound("message"));
    }
    let list = list_of(conn, account, &message)?;
    let all = sends::of_message(conn, account.id, message.id)?;
    let mut failed = None;
    let document = ws::ok("GetNewsletterScheduleStatus", |w| {
        w.open("schedules", &[]);
        for send in &all {
            if let Err(e) = write_delivery(w, send, &message, list) {
                failed = Some(e);
            }
        }
        w.close();
    });
    failed.map_or(Ok(document), Err)
}
