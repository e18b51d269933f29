//! Single messages and message statistics. A "single message" is a message of
//! the account (prepared in eCircle's placeholder dialect, `<%parameter.NAME%>`
//! and friends); sending it to a user puts one delivery in the outbox of the
//! transactional lane.

use chrono::NaiveDateTime;

use super::params::Params;
use super::session::Caller;
use super::users;
use super::{EcmFault, Failure, Outcome, Return};
use crate::Error;
use crate::db::DbConnection;
use crate::domain::message_stats;
use crate::domain::messages::{self, Message, MessageOrder, MessageSearch, SendState};
use crate::domain::recipients::RecipientKey;
use crate::domain::sends::{self, Audience, NewCampaign, NewSingle, SendKind, To};
use crate::domain::{credentials, lists, notices};

/// `sendSingleMessageToUser(singleMessageId, userId)` and the parametrised form
/// with its paired `names`/`values` (the priority variants land here too).
pub fn send_single(
    conn: &mut DbConnection,
    caller: &Caller,
    p: &Params,
    parametrised: bool,
) -> Outcome {
    let message_id = p.text("singleMessageId").unwrap_or("");
    let message = find_message(conn, caller, message_id)?;
    let recipient = users::by_id_param(conn, caller, p, "userId")?;
    let params = if parametrised {
        parameters(&p.all("names"), &p.all("values"))?
    } else {
        serde_json::Map::new()
    };
    sends::enqueue_single(
        conn,
        caller.account_id,
        &NewSingle {
            kind: SendKind::Single,
            message_id: message.id,
            to: To::Recipient(RecipientKey::Id(recipient.id)),
            params,
            idempotency_key: None,
        },
    )?;
    Ok(Return::Nothing)
}

/// `sendGroupMessageToUser(groupid, messageId, userId)`: a message of the
/// group sent again to one of its members.
pub fn send_group_message(conn: &mut DbConnection, caller: &Caller, p: &Params) -> Outcome {
    let message = find_message(conn, caller, p.text("messageId").unwrap_or(""))?;
    let (recipient, group) = super::members::member_of(conn, caller, p, &["groupid"])?;
    let list = lists::get(conn, caller.account_id, group)?;
    if message.list_id != Some(list.id) {
        return Err(EcmFault::no_message(&message.id.to_string()).into());
    }
    sends::enqueue_single(
        conn,
        caller.account_id,
        &NewSingle {
            kind: SendKind::Single,
            message_id: message.id,
            to: To::Recipient(RecipientKey::Id(recipient.id)),
            params: serde_json::Map::new(),
            idempotency_key: None,
        },
    )?;
    Ok(Return::Nothing)
}

/// `sendEmailToMe(subject, message)`: the message, as plain text, to the
/// address of the API user the session was opened with, in the system lane.
/// An API user without an address gets eC-M's permission fault.
pub fn send_email_to_me(conn: &mut DbConnection, caller: &Caller, p: &Params) -> Outcome {
    let address = match caller.credential_id {
        Some(id) => credentials::get(conn, caller.account_id, id)?.email,
        None => String::new(),
    };
    if address.is_empty() {
        log::info!(
            "eCircle sendEmailToMe refused: the API user of account {} has no address",
            caller.account_id
        );
        return Err(EcmFault::permission().into());
    }
    notices::note_to(
        conn,
        caller.account_id,
        &address,
        p.raw("subject").unwrap_or("").trim(),
        p.raw("message").unwrap_or(""),
    )?;
    Ok(Return::Nothing)
}

/// `deleteMessage(messageId)`: `false` when the message was sent (its
/// statistics need it) and so is kept.
pub fn delete(conn: &mut DbConnection, caller: &Caller, p: &Params) -> Outcome {
    let message = find_message(conn, caller, p.text("messageId").unwrap_or(""))?;
    Ok(Return::Bool(messages::delete(
        conn,
        caller.account_id,
        message.id,
    )?))
}

/// `copyAndSendDraftMessage(groupId, messageId)`: a copy of the message,
/// belonging to the group, sent to its members as a campaign; the copy's id.
pub fn copy_and_send(conn: &mut DbConnection, caller: &Caller, p: &Params) -> Outcome {
    let message = find_message(conn, caller, p.text("messageId").unwrap_or(""))?;
    let group = p
        .id("groupId")
        .filter(|&n| matches!(lists::find(conn, caller.account_id, n), Ok(Some(_))))
        .ok_or_else(EcmFault::permission)?;
    let copy = messages::copy_to_list(conn, caller.account_id, message.id, group)?;
    let send = sends::create_campaign(
        conn,
        caller.account_id,
        &NewCampaign {
            message_id: copy.id,
            audience: Audience::List {
                list: group,
                groups: Vec::new(),
                filter: Vec::new(),
            },
            params: serde_json::Map::new(),
            scheduled_at: None,
            idempotency_key: None,
        },
    )?;
    sends::start(conn, caller.account_id, send.id)?;
    Ok(Return::Text(copy.id.to_string()))
}

fn find_message(
    conn: &mut DbConnection,
    caller: &Caller,
    id: &str,
) -> std::result::Result<Message, Failure> {
    let not_found = || Failure::Fault(EcmFault::no_message(id));
    let number: i64 = id.parse().map_err(|_| not_found())?;
    match messages::get(conn, caller.account_id, number) {
        Ok(message) => Ok(message),
        Err(Error::NotFound(_)) => Err(not_found()),
        Err(e) => Err(e.into()),
    }
}

/// `names` and `values` paired by position. Empty names (clients send one
/// empty pair when there are no parameters) are skipped; unequal counts are
/// refused rather than guessed at.
fn parameters(
    names: &[&str],
    values: &[&str],
) -> std::result::Result<serde_json::Map<String, serde_json::Value>, EcmFault> {
    if names.len() != values.len() {
        return Err(EcmFault::invalid(format!(
            "{} names but {} values",
            names.len(),
            values.len()
        )));
    }
    Ok(names
        .iter()
        .zip(values)
        .filter(|(name, _)| !name.trim().is_empty())
        .map(|(name, value)| {
            (
                name.trim().to_string(),
                serde_json::Value::String((*value).to_string()),
            )
        })
        .collect())
}

/// Largest page `lookupMessages` answers.
const MAX_BATCH: i64 = 500;

/// `lookupMessages(lookupParams)`: `MessageInfo` of the account's messages
/// that match every filter given (`messageId`, `messageName`,
/// `messageSubject`, `messageType`, `messageStatus`, `groupId`, `groupName`,
/// the creation and send date ranges), sorted by `sortProperty` (a
/// `MessageInfo` field name: `id`, `name`, `subject`, `creationDate`,
/// `sendDate`, `groupId`; anything else is `id`), a batch at a time.
pub fn lookup(conn: &mut DbConnection, caller: &Caller, p: &Params) -> Outcome {
    let lookup = p.child("lookupParams");
    let param = |name: &str| {
        lookup
            .and_then(|l| l.child_text(name))
            .map(str::trim)
            .filter(|t| !t.is_empty())
    };
    let date = |name: &str| {
        param(name)
            .map(|text| date_time_value(name, text))
            .transpose()
    };
    let mut search = MessageSearch {
        name_contains: param("messageName").map(str::to_string),
        subject_contains: param("messageSubject").map(str::to_string),
        created_from: date("messageCreationDateFrom")?,
        created_to: date("messageCreationDateTo")?,
        first_sent_from: date("messageSendDateFrom")?,
        first_sent_to: date("messageSendDateTo")?,
        offset: param("batchOffset")
            .and_then(|t| t.parse().ok())
            .unwrap_or(0),
        limit: param("batchSize")
            .and_then(|t| t.parse().ok())
            .unwrap_or(MAX_BATCH)
            .clamp(1, MAX_BATCH),
        descending: param("sortAscending")
            .is_some_and(|s| s.eq_ignore_ascii_case("false") || s == "0"),
        ..MessageSearch::default()
    };
    search.order = match param("sortProperty")
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("name") => MessageOrder::Name,
        Some("subject") => MessageOrder::Subject,
        Some("creationdate") => MessageOrder::Created,
        Some("senddate") => MessageOrder::FirstSent,
        Some("groupid") => MessageOrder::List,
        _ => MessageOrder::Id,
    };
    // A filter no message can match answers an empty list.
    let nothing = Ok(Return::Records(Vec::new()));
    if let Some(id) = param("messageId") {
        match id.parse() {
            Ok(id) => search.id = Some(id),
            Err(_) => return nothing,
        }
    }
    match param("messageType").map(str::to_ascii_lowercase).as_deref() {
        None => {}
        Some("normal") => search.of_a_list = Some(true),
        Some("single") => search.of_a_list = Some(false),
        Some(_) => return nothing,
    }
    match param("messageStatus")
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None => {}
        Some("new") => search.state = Some(SendState::New),
        Some("sending") => search.state = Some(SendState::Sending),
        Some("sent") => search.state = Some(SendState::Sent),
        Some(_) => return nothing,
    }
    if param("groupId").is_some() || param("groupName").is_some() {
        let number = param("groupId").map(|g| g.parse::<i64>().ok());
        let name = param("groupName").map(str::to_lowercase);
        let ids: Vec<i64> = lists::all(conn, caller.account_id)?
            .into_iter()
            .filter(|l| number.is_none_or(|n| n == Some(l.number)))
            .filter(|l| {
                name.as_deref()
                    .is_none_or(|n| l.name.to_lowercase().contains(n))
            })
            .map(|l| l.id)
            .collect();
        if ids.is_empty() {
            return nothing;
        }
        search.lists = Some(ids);
    }
    let mut records = Vec::new();
    for message in messages::search(conn, caller.account_id, &search)? {
        let group = match message.list_id {
            Some(list_id) => Some(lists::by_id(conn, caller.account_id, list_id)?.number),
            None => None,
        };
        let kind = if group.is_some() { "normal" } else { "single" };
        let totals = message_stats::totals(conn, caller.account_id, message.id)?;
        records.push(message_info(&message, group, kind, &totals));
    }
    Ok(Return::Records(records))
}

/// An `xsd:float` share, always with a decimal point (`0.0`, `0.5`).
/// `lookupHourlyMessageStats(messageid, periodStartDate, periodEndDate)`: the
/// hours of the period in which the message had activity.
pub fn hourly_stats(conn: &mut DbConnection, caller: &Caller, p: &Params) -> Outcome {
    let id = p.text("messageid").unwrap_or("");
    let message = find_message(conn, caller, id)?;
    let from = date_param(p, "periodStartDate")?;
    let until = date_param(p, "periodEndDate")?;
    let hours = message_stats::hourly(conn, caller.account_id, message.id, from, until)?;
    Ok(Return::Records(
        hours
            .into_iter()
            .map(|h| {
                vec![
                    ("hour", Some(date_time(h.hour))),
                    ("noOfBounces", Some(h.bounces.to_string())),
                    ("noOfClicks", Some(h.clicks.to_string())),
                    ("noOfOpenings", Some(h.opens.to_string())),
                    ("noOfUnsubscriptions", Some(h.unsubscriptions.to_string())),
                ]
            })
            .collect(),
    ))
}

fn date_param(p: &Params, name: &str) -> std::result::Result<NaiveDateTime, EcmFault> {
    date_time_value(name, p.required(name)?)
}

/// An `xsd:dateTime`, with an offset (converted to UTC) or without (read as UTC).
fn date_time_value(name: &str, text: &str) -> std::result::Result<NaiveDateTime, EcmFault> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|d| d.naive_utc())
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f"))
        .map_err(|_| EcmFault::invalid(format!("{name} is not a date and time: {text:?}")))
}

fn rate(part: i64, whole: i64) -> String {
    let share = if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    };
    format!("{share:?}")
}

/// An `xsd:dateTime` in UTC.
pub fn date_time(at: NaiveDateTime) -> String {
    at.and_utc().format("%Y-%m-%dT%H:%M:%S.%3fZ").to_string()
}

fn message_info(
    message: &Message,
    group: Option<i64>,
    kind: &str,
    totals: &message_stats::MessageTotals,
) -> Vec<(&'static str, Option<String>)> {
    let done = totals.sent + totals.failed;
    let progress = rate(done, totals.to_send);
    let status = match (totals.sends, totals.in_progress) {
        (0, _) => "new",
        (_, 0) => "sent",
        _ => "sending",
    };
    let size = [
        Some(&message.subject),
        message.html.as_ref(),
        message.text.as_ref(),
    ]
    .into_iter()
    .flatten()
    .map(|part| part.len())
    .sum::<usize>();
    vec![
        ("actualRecipientCount", Some(totals.sent.to_string())),
        ("authorId", None),
        ("bounceCount", Some(totals.bounced.to_string())),
        ("clickRate", Some(rate(totals.unique_clicks, totals.sent))),
        ("clickerCount", Some(totals.unique_clicks.to_string())),
        ("creationDate", Some(date_time(message.created_at))),
        ("forwardCount", Some("0".into())),
        ("groupId", group.map(|g| g.to_string())),
        ("id", Some(message.id.to_string())),
        ("name", Some(message.name.clone())),
        ("openRate", Some(rate(totals.unique_opens, totals.sent))),
        ("readerCount", Some(totals.unique_opens.to_string())),
        ("recipientCount", Some(totals.to_send.to_string())),
        ("sendDate", totals.first_started_at.map(date_time)),
        ("sendoutProgress", Some(progress)),
        ("size", Some(size.to_string())),
        ("status", Some(status.into())),
        ("subject", Some(message.subject.clone())),
        ("type", Some(kind.into())),
        (
            "unsubscriptionCount",
            Some(totals.unsubscriptions.to_string()),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_values_pair_by_position() {
        let params = parameters(&["SUBJECT", "", "MSG_BODY"], &["Hi", "", "<b>x</b>"]).unwrap();
        assert_eq!(params.len(), 2);
        assert_eq!(params["MSG_BODY"], "<b>x</b>");
        assert!(parameters(&["A"], &[]).is_err());
        assert_eq!(date_time(chrono::Utc::now().naive_utc()).len(), 24);
    }
}
