//! Sending: `job/send` (an e-mail to lists or groups, less the members of
//! suppression lists, now or at a time), `job/send_single` (to one
//! subscriber) and `triggeredsend/add` (a triggered-send definition fired for
//! one or more addresses, with attribute values per recipient). Messages go
//! out through the sender; the job id is the send's id.

use super::{Call, Reply, code, decode_name, or_fault, parse_date};
use crate::db::DbConnection;
use crate::domain::recipients::RecipientKey;
use crate::domain::sends::{self, Audience, ListPart, NewCampaign, NewSingle, SendKind, To};
use crate::domain::{groups, lists, messages, triggered_sends};
use crate::render::ATTRIBUTES;
use crate::xml::Element;
use crate::{Error, Result};

fn job_created(send_id: i64) -> Reply {
    Reply::wrapped("job", |w| {
        w.leaf("job_info", "Job was successfully created.")
            .leaf("job_description", &send_id.to_string());
    })
}

fn email_id(call: &Call) -> std::result::Result<i64, Reply> {
    let text = call.search_value();
    text.parse()
        .map_err(|_| Reply::fault(code::INVALID, format!("Invalid email id {text:?}")))
}

/// `from_name`/`from_email` of the call: an override when an address is given.
fn from_override(call: &Call) -> Option<(String, String)> {
    let email = call.text("from_email");
    (!email.is_empty()).then(|| (call.text("from_name").to_string(), email.to_string()))
}

/// The numbers inside `<name><list>…</list>…</name>`.
fn numbers(call: &Call, name: &str) -> std::result::Result<Vec<i64>, Reply> {
    let Some(block) = call.system.child(name) else {
        return Ok(Vec::new());
    };
    block
        .children_named("list")
        .map(|l| l.text.trim())
        .filter(|t| !t.is_empty())
        .map(|t| {
            t.parse()
                .map_err(|_| Reply::fault(code::INVALID, format!("Invalid list id {t:?}")))
        })
        .collect()
}

/// When to send: `send_date` `immediate` (or empty) is now; else `M/D/YYYY`
/// with `send_time` `HH:MM` (24 h, UTC).
fn schedule(call: &Call) -> std::result::Result<Option<chrono::NaiveDateTime>, Reply> {
    let date = call.text("send_date");
    if date.is_empty() || date.eq_ignore_ascii_case("immediate") {
        return Ok(None);
    }
    let day = parse_date(date).ok_or_else(|| {
        Reply::fault(
            code::INVALID,
            format!("Invalid send_date {date:?}: M/D/YYYY"),
        )
    })?;
    let time = call.text("send_time");
    let time = if time.is_empty() {
        chrono::NaiveTime::MIN
    } else {
        chrono::NaiveTime::parse_from_str(time, "%H:%M").map_err(|_| {
            Reply::fault(code::INVALID, format!("Invalid send_time {time:?}: HH:MM"))
        })?
    };
    Ok(Some(day.and_time(time)))
}

/// Each id of `<name>` as a part of a list: a list whole, or a group (the
/// members of it on its list). Error 5 for an id that is neither.
fn parts(
    conn: &mut DbConnection,
    account_id: i64,
    call: &Call,
    name: &str,
) -> Result<std::result::Result<Vec<ListPart>, Reply>> {
    let numbers = match numbers(call, name) {
        Ok(numbers) => numbers,
        Err(reply) => return Ok(Err(reply)),
    };
    let mut parts = Vec::with_capacity(numbers.len());
    for number in numbers {
        let part = match lists::find(conn, account_id, number)? {
            Some(list) => ListPart {
                list: list.number,
                groups: Vec::new(),
            },
            None => match groups::find(conn, account_id, number)? {
                Some(group) => ListPart {
                    list: lists::by_id(conn, account_id, group.list_id)?.number,
                    groups: vec![group.number],
                },
                None => return Err(Error::NotFound("list")),
            },
        };
        parts.push(part);
    }
    Ok(Ok(parts))
}

pub(super) fn job_send(conn: &mut DbConnection, call: &Call) -> Result<Reply> {
    let account_id = call.account_id;
    let message_id = or_fault!(email_id(call));
    let scheduled_at = or_fault!(schedule(call));
    // Each id is a list or a group; every subscriber of them is mailed once,
    // unless on a suppression list.
    let targets = or_fault!(parts(conn, account_id, call, "lists")?);
    let exclude = or_fault!(parts(conn, account_id, call, "suppress")?);
    if targets.is_empty() {
        return Ok(Reply::fault(code::INVALID, "<lists> names no list"));
    }
    messages::get(conn, account_id, message_id)?;
    let send = sends::create_campaign(
        conn,
        account_id,
        &NewCampaign {
            message_id,
            audience: Audience::Lists {
                targets,
                exclude,
                filter: Vec::new(),
            },
            params: serde_json::Map::new(),
            scheduled_at,
            idempotency_key: None,
        },
    )?;
    if let Some((name, email)) = from_override(call) {
        sends::set_sender(conn, account_id, send.id, &name, &email)?;
    }
    let send = sends::start(conn, account_id, send.id)?;
    Ok(job_created(send.id))
}

pub(super) fn job_send_single(conn: &mut DbConnection, call: &Call) -> Result<Reply> {
    let account_id = call.account_id;
    let message_id = or_fault!(email_id(call));
    let subscriber = call.search_value2();
    let Ok(subscriber) = subscriber.parse::<i64>() else {
        return Ok(Reply::fault(
            code::SUBSCRIBER_NOT_FOUND,
            format!("Subscriber not found with SubscriberID = {subscriber}"),
        ));
    };
    let enqueued = sends::enqueue_single(
        conn,
        account_id,
        &NewSingle {
            kind: SendKind::Single,
            message_id,
            to: To::Recipient(RecipientKey::Id(subscriber)),
            params: serde_json::Map::new(),
            idempotency_key: None,
        },
    )?;
    if let Some((name, email)) = from_override(call) {
        sends::set_sender(conn, account_id, enqueued.send_id, &name, &email)?;
    }
    Ok(job_created(enqueued.send_id))
}

/// `<Attributes><Name>First Name</Name><Value>Jo</Value></Attributes>` blocks
/// among `parent`'s children, by lower-case name (`__` read as a space).
fn attributes(parent: &Element, into: &mut serde_json::Map<String, serde_json::Value>) {
    for attribute in parent.children_named("Attributes") {
        let name = attribute.child_text("Name").map_or("", str::trim);
        if name.is_empty() {
            continue;
        }
        let value = attribute.child_text("Value").unwrap_or("");
        into.insert(
            decode_name(name).to_lowercase(),
            serde_json::Value::String(value.to_string()),
        );
    }
}

pub(super) fn triggered_send(conn: &mut DbConnection, call: &Call) -> Result<Reply> {
    let account_id = call.account_id;
    let Some(request) = call.system.child("TriggeredSend") else {
        return Ok(Reply::fault(code::INVALID, "<TriggeredSend> is required"));
    };
    let key = request
        .child("TriggeredSendDefinition")
        .and_then(|d| d.child_text("CustomerKey"))
        .map_or("", str::trim);
    let Some(definition) = triggered_sends::find(conn, account_id, key)? else {
        return Ok(Reply::fault(
            code::DEFINITION_NOT_FOUND,
            format!("Triggered send {key} does not exist"),
        ));
    };
    let subscribers: Vec<&Element> = request.children_named("Subscribers").collect();
    if subscribers.is_empty() {
        return Ok(Reply::fault(code::INVALID, "<Subscribers> is required"));
    }
    // Attributes beside the subscribers (one client's variant) apply to all.
    let mut shared = serde_json::Map::new();
    attributes(request, &mut shared);
    for subscriber in subscribers {
        let address = [
            subscriber.child_text("EmailAddress"),
            subscriber.child_text("SubscriberKey"),
        ]
        .into_iter()
        .flatten()
        .map(str::trim)
        .find(|a| !a.is_empty());
        let Some(address) = address else {
            return Ok(Reply::fault(
                code::INVALID,
                "A subscriber needs an EmailAddress",
            ));
        };
        let mut values = shared.clone();
        attributes(subscriber, &mut values);
        let mut params = serde_json::Map::new();
        params.insert(ATTRIBUTES.into(), serde_json::Value::Object(values));
        let enqueued = sends::enqueue_single(
            conn,
            account_id,
            &NewSingle {
                kind: SendKind::Single,
                message_id: definition.message_id,
                to: To::Address(address.to_string()),
                params,
                idempotency_key: None,
            },
        );
        let enqueued = match enqueued {
            Ok(enqueued) => enqueued,
            // A master-unsubscribed address is not mailed; the others are.
            Err(Error::Blocklisted) => continue,
            Err(e) => return Err(e),
        };
        let owner = subscriber.child("Owner");
        let owner_email = owner
            .and_then(|o| o.child_text("FromAddress"))
            .map_or("", str::trim);
        let owner_name = owner
            .and_then(|o| o.child_text("FromName"))
            .map_or("", str::trim);
        let sender = if !owner_email.is_empty() {
            Some((owner_name, owner_email))
        } else if !definition.from_email.is_empty() {
            Some((
                definition.from_name.as_str(),
                definition.from_email.as_str(),
            ))
        } else {
            None
        };
        if let Some((name, email)) = sender {
            sends::set_sender(conn, account_id, enqueued.send_id, name, email)?;
        }
    }
    Ok(Reply::wrapped("triggeredsend", |w| {
        w.leaf(
            "triggered_send_info",
            "Triggered Send was added successfully",
        )
        .leaf("triggered_send_description", "0");
    }))
}
