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
use crate::domain::lists;
use crate::domain::message_stats;
use crate::domain::messages::{self, Message};
use crate::domain::recipients::RecipientKey;
use crate::domain::sends::{self, Audience, NewCampaign, NewSingle, SendKind, To};

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

/// `lookupMessages(lookupParams)`: `MessageInfo` of the account's messages,
/// filtered by `messageId`, `messageName`, `messageSubject`, `messageType`
/// and `groupId` when given, a batch at a time.
pub fn lookup(conn: &mut DbConnection, caller: &Caller, p: &Params) -> Outcome {
    let lookup = p.child("lookupParams");
    let param = |name: &str| {
        lookup
            .and_then(|l| l.child_text(name))
            .map(str::trim)
            .filter(|t| !t.is_empty())
    };
    let offset: i64 = param("batchOffset")
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    let size: i64 = param("batchSize")
        .and_then(|t| t.parse().ok())
        .unwrap_or(MAX_BATCH)
        .clamp(1, MAX_BATCH);
    let candidates = match param("messageId") {
        Some(id) => match id.parse() {
            Ok(id) => match messages::get(conn, caller.account_id, id) {
                Ok(message) => vec![message],
                Err(Error::NotFound(_)) => Vec::new(),
                Err(e) => return Err(e.into()),
            },
            Err(_) => Vec::new(),
        },
        None => messages::page(conn, caller.account_id, offset, size)?,
    };
    let mut records = Vec::new();
    for message in candidates {
        let group = match message.list_id {
            Some(list_id) => Some(lists::by_id(conn, caller.account_id, list_id)?.number),
            None => None,
        };
        let kind = if group.is_some() { "normal" } else { "single" };
        let wanted = param("messageName").is_none_or(|n| message.name.contains(n))
            && param("messageSubject").is_none_or(|s| message.subject.contains(s))
            && param("messageType").is_none_or(|t| t.eq_ignore_ascii_case(kind))
            && param("groupId").is_none_or(|g| group.is_some_and(|n| n.to_string() == g));
        if wanted {
            let totals = message_stats::totals(conn, caller.account_id, message.id)?;
            records.push(message_info(&message, group, kind, &totals));
        }
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

/// An `xsd:dateTime`, with an offset (converted to UTC) or without (read as UTC).
fn date_param(p: &Params, name: &str) -> std::result::Result<NaiveDateTime, EcmFault> {
    let text = p.required(name)?;
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
