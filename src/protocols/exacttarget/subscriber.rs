//! The `subscriber` system: add, edit, retrieve, delete, masterunsub.

use std::collections::HashMap;

use super::{
    Call, EMAIL_ADDRESS, Reply, Values, catalogue, code, encode_name, or_fault, read_values,
};
use crate::Result;
use crate::db::DbConnection;
use crate::domain::fields::Field;
use crate::domain::lists;
use crate::domain::recipients::{self, Contact, MessageChannel, Recipient, RecipientKey};
use crate::domain::subscriptions::{self, Status, Subscribe, UnsubscribeReason};
use crate::xml::XmlWriter;

const ADDED: &str = "Subscriber was added/updated successfully";
/// The product's spelling, which one client compares exactly.
const DELETED: &str = "Subscriber Deleted Sucessfully";
/// The list every subscriber of the account is on, shown when a subscriber is
/// looked up across lists; it has no number of its own.
const ALL_SUBSCRIBERS: &str = "All Subscribers";
const ALL_SUBSCRIBERS_ID: i64 = 0;

/// The `<status>` a call asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wanted {
    Active,
    Unsubscribed,
}

/// `<status>` and `<reason>`, inside `<values>` or beside it.
fn wanted_status(call: &Call) -> std::result::Result<(Option<Wanted>, String), Reply> {
    let in_values = |name: &str| {
        call.system
            .child("values")
            .and_then(|v| v.child_text(name))
            .map(str::trim)
    };
    let status = in_values("status").unwrap_or_else(|| call.text("status"));
    let reason = in_values("reason").unwrap_or_else(|| call.text("reason"));
    let wanted = match status.to_ascii_lowercase().as_str() {
        "" => None,
        "active" => Some(Wanted::Active),
        "unsub" | "unsubscribed" => Some(Wanted::Unsubscribed),
        other => {
            return Err(Reply::fault(
                code::INVALID,
                format!("Invalid status {other:?}: active or unsub"),
            ));
        }
    };
    Ok((wanted, reason.to_string()))
}

fn list_number(text: &str) -> std::result::Result<i64, Reply> {
    text.trim()
        .parse()
        .map_err(|_| Reply::fault(code::INVALID, format!("Invalid list id {text:?}")))
}

fn not_found(list: &str, email: &str) -> Reply {
    Reply::fault(
        code::SUBSCRIBER_NOT_FOUND,
        format!("Subscriber not found with ListID = {list} Email Address = {email}"),
    )
}

fn added(recipient_id: i64) -> Reply {
    Reply::wrapped("subscriber", |w| {
        w.leaf("subscriber_info", ADDED)
            .leaf("subscriber_description", &recipient_id.to_string());
    })
}

pub(super) fn add(conn: &mut DbConnection, call: &Call) -> Result<Reply> {
    let account_id = call.account_id;
    let number = or_fault!(list_number(call.search_value()));
    let values = or_fault!(read_values(conn, account_id, call.system.child("values"))?);
    let (wanted, reason) = or_fault!(wanted_status(call));
    let Some(email) = values.email.clone().filter(|e| !e.is_empty()) else {
        return Ok(Reply::fault(
            code::INVALID,
            format!("{EMAIL_ADDRESS} is required"),
        ));
    };
    let update = call.text("update").eq_ignore_ascii_case("true");
    lists::get(conn, account_id, number)?;
    let key = RecipientKey::Email(email.clone());
    let current = subscriptions::status(conn, account_id, number, &key)?;
    if current.is_some() && !update {
        return Ok(Reply::fault(
            code::ALREADY_EXISTS,
            "The subscriber already exists in the list",
        ));
    }
    if wanted == Some(Wanted::Active) {
        reactivate(conn, account_id, &key)?;
    }
    let recipient_id = match current {
        // An update leaves the status alone unless one is asked for.
        Some(_) if wanted != Some(Wanted::Active) => {
            subscriptions::update_member(conn, account_id, number, &key, &values.fields, None)?;
            recipients::get(conn, account_id, &key)?.id
        }
        _ => subscribe(conn, call, number, &email, &values)?,
    };
    if wanted == Some(Wanted::Unsubscribed) {
        unsubscribe(conn, call, number, recipient_id, &reason)?;
    }
    Ok(added(recipient_id))
}

fn subscribe(
    conn: &mut DbConnection,
    call: &Call,
    number: i64,
    email: &str,
    values: &Values,
) -> Result<i64> {
    let done = subscriptions::subscribe(
        conn,
        call.account_id,
        &Subscribe {
            list: number,
            contact: Contact::email(email),
            fields: values.fields.clone(),
            groups: Vec::new(),
            // ExactTarget has no confirmation step: the caller collected consent.
            double_opt_in: Some(false),
            source: "exacttarget".into(),
            origin: call.origin.clone(),
        },
    )?;
    Ok(done.recipient_id)
}

/// Lifts a master unsubscribe: `status=active` brings a subscriber back.
fn reactivate(conn: &mut DbConnection, account_id: i64, key: &RecipientKey) -> Result<()> {
    if let Some(recipient) = recipients::find(conn, account_id, key)?
        && recipient.email_blocklisted
    {
        recipients::set_blocklisted(conn, account_id, recipient.id, MessageChannel::Email, false)?;
    }
    Ok(())
}

fn unsubscribe(
    conn: &mut DbConnection,
    call: &Call,
    number: i64,
    recipient_id: i64,
    reason: &str,
) -> Result<()> {
    subscriptions::unsubscribe_noted(
        conn,
        call.account_id,
        number,
        &RecipientKey::Id(recipient_id),
        UnsubscribeReason::AdminConsole,
        &call.origin,
        reason,
    )?;
    Ok(())
}

/// `or_fault!` for functions answering `Result<Result<_, Reply>>`.
macro_rules! or_fault_in {
    ($value:expr) => {
        match $value {
            Ok(v) => v,
            Err(reply) => return Ok(Err(reply)),
        }
    };
}

/// The subscriber a call names by `subid` (search_value) or by list id and
/// current address (search_value, search_value2), with the lists it concerns.
fn named(
    conn: &mut DbConnection,
    call: &Call,
) -> Result<std::result::Result<(Recipient, Vec<i64>), Reply>> {
    let account_id = call.account_id;
    if call.search_type() == "subid" {
        let id = call.search_value();
        let found = match id.parse::<i64>() {
            Ok(id) => live(recipients::find(conn, account_id, &RecipientKey::Id(id))?),
            Err(_) => None,
        };
        let Some(recipient) = found else {
            return Ok(Err(Reply::fault(
                code::SUBSCRIBER_NOT_FOUND,
                format!("Subscriber not found with SubscriberID = {id}"),
            )));
        };
        let lists = subscriptions::of_recipient(conn, account_id, recipient.id)?
            .into_iter()
            .map(|(number, _)| number)
            .collect();
        return Ok(Ok((recipient, lists)));
    }
    let list = call.search_value();
    let email = call.search_value2();
    let number = or_fault_in!(list_number(list));
    lists::get(conn, account_id, number)?;
    let key = RecipientKey::Email(email.to_string());
    if email.is_empty() || subscriptions::status(conn, account_id, number, &key)?.is_none() {
        return Ok(Err(not_found(list, email)));
    }
    let recipient = recipients::get(conn, account_id, &key)?;
    Ok(Ok((recipient, vec![number])))
}

/// An erased recipient is gone as far as callers can tell.
fn live(recipient: Option<Recipient>) -> Option<Recipient> {
    recipient.filter(|r| r.erased_at.is_none())
}

pub(super) fn edit(conn: &mut DbConnection, call: &Call) -> Result<Reply> {
    let account_id = call.account_id;
    let values = or_fault!(read_values(conn, account_id, call.system.child("values"))?);
    let (wanted, reason) = or_fault!(wanted_status(call));
    let (recipient, lists) = or_fault!(named(conn, call)?);
    let new_email = values
        .email
        .as_deref()
        .filter(|e| !e.is_empty() && Some(*e) != recipient.email.as_deref());
    if values.fields.is_empty() && new_email.is_none() && wanted.is_none() {
        return Ok(Reply::fault(code::NO_ATTRIBUTES, "No attributes provided"));
    }
    if let Some(email) = new_email {
        recipients::change_email(conn, account_id, recipient.id, email)?;
    }
    recipients::set_fields(conn, account_id, recipient.id, &values.fields)?;
    let key = RecipientKey::Id(recipient.id);
    match wanted {
        None => {}
        Some(Wanted::Active) => {
            reactivate(conn, account_id, &key)?;
            let email = recipients::get(conn, account_id, &key)?
                .email
                .unwrap_or_default();
            for number in lists {
                subscribe(conn, call, number, &email, &Values::default())?;
            }
        }
        Some(Wanted::Unsubscribed) => {
            for number in lists {
                unsubscribe(conn, call, number, recipient.id, &reason)?;
            }
        }
    }
    Ok(added(recipient.id))
}

/// A subscriber's status as ExactTarget names it, on one list or (`None`)
/// across the account.
pub(super) fn status_text(recipient: &Recipient, on_list: Option<Status>) -> &'static str {
    if recipient.bounced {
        "Undeliverable"
    } else if recipient.email_blocklisted {
        "Unsubscribed"
    } else {
        match on_list {
            None | Some(Status::Subscribed) => "Active",
            // Waiting for a confirmation asked for through another interface.
            Some(Status::Pending) => "Held",
            Some(Status::Unsubscribed) => "Unsubscribed",
        }
    }
}

/// One `<subscriber>` block: ids, list, address, status, then every attribute
/// of the catalogue (empty when the subscriber has no value).
pub(super) fn write_block(
    w: &mut XmlWriter,
    recipient: &Recipient,
    list: Option<(i64, &str)>,
    status: &str,
    values: &HashMap<i32, String>,
    catalogue: &[Field],
) {
    w.open("subscriber", &[])
        .leaf("subid", &recipient.id.to_string());
    if let Some((number, name)) = list {
        w.leaf("listid", &number.to_string())
            .leaf("list_name", name);
    }
    w.leaf(
        &encode_name(EMAIL_ADDRESS),
        recipient.email.as_deref().unwrap_or(""),
    )
    .leaf("Status", status);
    for field in catalogue {
        let value = values.get(&field.number).map_or("", String::as_str);
        w.leaf(&encode_name(&field.name), value);
    }
    w.close();
}

pub(super) fn retrieve(conn: &mut DbConnection, call: &Call) -> Result<Reply> {
    let account_id = call.account_id;
    let across_lists = call.search_type() == "listid" && call.search_value().is_empty();
    let (recipient, numbers) = if across_lists {
        let email = call.search_value2();
        let found = match recipients::find(conn, account_id, &RecipientKey::Email(email.into())) {
            Ok(found) => live(found),
            Err(crate::Error::Invalid { .. }) => None,
            Err(e) => return Err(e),
        };
        let Some(recipient) = found else {
            return Ok(not_found("", email));
        };
        let numbers = subscriptions::of_recipient(conn, account_id, recipient.id)?
            .into_iter()
            .map(|(number, _)| number)
            .collect();
        (recipient, numbers)
    } else {
        or_fault!(named(conn, call)?)
    };
    let catalogue = catalogue(conn, account_id)?;
    let values: HashMap<i32, String> = recipients::field_values(conn, account_id, recipient.id)?
        .into_iter()
        .collect();
    let mut blocks = Vec::with_capacity(numbers.len() + 1);
    for number in numbers {
        let list = lists::get(conn, account_id, number)?;
        let status =
            subscriptions::status(conn, account_id, number, &RecipientKey::Id(recipient.id))?;
        blocks.push((list.number, list.name, status_text(&recipient, status)));
    }
    if across_lists {
        blocks.push((
            ALL_SUBSCRIBERS_ID,
            ALL_SUBSCRIBERS.to_string(),
            status_text(&recipient, None),
        ));
    }
    let mut w = XmlWriter::new();
    for (number, name, status) in &blocks {
        write_block(
            &mut w,
            &recipient,
            Some((*number, name)),
            status,
            &values,
            &catalogue,
        );
    }
    Ok(Reply::Done(w.finish()))
}

pub(super) fn delete(conn: &mut DbConnection, call: &Call) -> Result<Reply> {
    let account_id = call.account_id;
    let list = call.search_value();
    let whole_account = call.search_type() == "subid"
        || list.is_empty()
        || list.parse::<i64>() == Ok(ALL_SUBSCRIBERS_ID);
    if whole_account {
        let found = if call.search_type() == "subid" {
            match list.parse::<i64>() {
                Ok(id) => live(recipients::find(conn, account_id, &RecipientKey::Id(id))?),
                Err(_) => None,
            }
        } else {
            let key = RecipientKey::Email(call.search_value2().to_string());
            match recipients::find(conn, account_id, &key) {
                Ok(found) => live(found),
                Err(crate::Error::Invalid { .. }) => None,
                Err(e) => return Err(e),
            }
        };
        let Some(recipient) = found else {
            return Ok(if call.search_type() == "subid" {
                Reply::fault(
                    code::SUBSCRIBER_NOT_FOUND,
                    format!("Subscriber not found with SubscriberID = {list}"),
                )
            } else {
                not_found(list, call.search_value2())
            });
        };
        recipients::erase(conn, account_id, recipient.id, &call.origin)?;
    } else {
        let number = or_fault!(list_number(list));
        let email = call.search_value2();
        let key = RecipientKey::Email(email.to_string());
        let removed = match subscriptions::remove(conn, account_id, number, &key, &call.origin) {
            Ok(removed) => removed,
            Err(crate::Error::Invalid { .. }) => false,
            Err(e) => return Err(e),
        };
        if !removed {
            return Ok(not_found(list, email));
        }
    }
    Ok(Reply::wrapped("subscriber", |w| {
        w.leaf("subscriber_info", DELETED);
    }))
}

pub(super) fn master_unsubscribe(conn: &mut DbConnection, call: &Call) -> Result<Reply> {
    let addresses: Vec<String> = call
        .system
        .child("search_value")
        .map(|v| {
            v.children_named("emailaddress")
                .map(|e| e.text.trim().to_string())
                .filter(|e| !e.is_empty())
                .collect()
        })
        .unwrap_or_default();
    if addresses.is_empty() {
        return Ok(Reply::fault(
            code::INVALID,
            "No <emailaddress> in <search_value>",
        ));
    }
    for address in &addresses {
        subscriptions::master_unsubscribe(conn, call.account_id, address, &call.origin)?;
    }
    Ok(Reply::wrapped("subscriber", |w| {
        for address in &addresses {
            w.open("subscriberunsub", &[])
                .leaf("emailaddress", address)
                .leaf("status", "masterunsub")
                .close();
        }
    }))
}
