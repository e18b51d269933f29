//! The `tracking` system: `retrieve` with sub-actions `summary` (one job's
//! counts), `single` (one subscriber in one job) and `masterunsub` (the
//! master-unsubscribed addresses); `jobretrieve` (the jobs of a period); and
//! `tracking-channel/retrieve` (the unsubscribes of a period).

use super::{
    Call, EMAIL_ADDRESS, Reply, code, date_range, encode_name, format_time, or_fault, range_of,
};
use crate::Result;
use crate::db::DbConnection;
use crate::domain::events::{self, Filter};
use crate::domain::recipients::RecipientKey;
use crate::domain::{history, lists, messages, recipients, sends, tracking};

/// Rows are read this many at a time.
const PAGE: i64 = 1_000;

pub(super) fn retrieve(conn: &mut DbConnection, call: &Call) -> Result<Reply> {
    match call.sub_action().as_str() {
        "summary" => summary(conn, call),
        "masterunsub" => master_unsubscribed(conn, call),
        "single" => single(conn, call),
        _ => Ok(Reply::fault(
            code::UNKNOWN_CALL,
            format!("Sub action {:?} is not supported", call.text("sub_action")),
        )),
    }
}

/// A job's counts. The element names are ours: the product's are unknown
/// (docs/compat/exacttarget.md).
fn summary(conn: &mut DbConnection, call: &Call) -> Result<Reply> {
    let account_id = call.account_id;
    let text = call.search_value();
    let Ok(job) = text.parse::<i64>() else {
        return Ok(Reply::fault(
            code::INVALID,
            format!("Invalid job id {text:?}"),
        ));
    };
    let send = match sends::get(conn, account_id, job) {
        Ok(send) => send,
        Err(crate::Error::NotFound(_)) => {
            return Ok(Reply::fault(
                code::JOB_NOT_FOUND,
                format!("Job {job} does not exist"),
            ));
        }
        Err(e) => return Err(e),
    };
    let message = messages::get(conn, account_id, send.message_id)?;
    let activity = tracking::send_activity(conn, account_id, send.id)?;
    // Unsubscribes are few next to deliveries: read, not kept as a counter.
    let filter = Filter {
        send_id: Some(send.id),
        kinds: vec!["unsubscribed".into()],
        ..Filter::default()
    };
    let mut unsubscribes = 0;
    let mut after = 0;
    loop {
        let page = events::list(conn, account_id, &filter, after, PAGE)?;
        let Some(last) = page.last() else { break };
        after = last.id;
        unsubscribes += page.len();
    }
    let send_date = send
        .started_at
        .or(send.scheduled_at)
        .map(format_time)
        .unwrap_or_default();
    Ok(Reply::wrapped("tracking", |w| {
        w.open("emailSummary", &[])
            .leaf("jobID", &send.id.to_string())
            .leaf("emailID", &message.id.to_string())
            .leaf("emailName", &message.name)
            .leaf("emailSubject", &message.subject)
            .leaf("sendDate", &send_date)
            .leaf("totalSent", &send.to_send.to_string())
            .leaf("delivered", &send.sent.to_string())
            .leaf("undeliverable", &send.failed.to_string())
            .leaf("bounces", &send.bounced.to_string())
            .leaf("opens", &activity.opens.to_string())
            .leaf("uniqueOpens", &activity.unique_opens.to_string())
            .leaf("clicks", &activity.clicks.to_string())
            .leaf("uniqueClicks", &activity.unique_clicks.to_string())
            .leaf("unsubscribes", &unsubscribes.to_string())
            .close();
    }))
}

fn master_unsubscribed(conn: &mut DbConnection, call: &Call) -> Result<Reply> {
    let account_id = call.account_id;
    let (from, until) = or_fault!(date_range(call));
    let mut found = Vec::new();
    let mut after = 0;
    loop {
        let page = recipients::email_blocklisted(conn, account_id, from, until, after, PAGE)?;
        let Some(last) = page.last() else { break };
        after = last.id;
        found.extend(page);
    }
    Ok(Reply::wrapped("tracking", |w| {
        w.open("masterunsub", &[]);
        for recipient in &found {
            w.open("subscriber", &[])
                .leaf("subid", &recipient.id.to_string())
                .leaf("email_address", recipient.email.as_deref().unwrap_or(""))
                .leaf("name", "")
                .leaf("reason", "Master unsubscribe")
                .leaf("unsub_date_time", &format_time(recipient.updated_at))
                .close();
        }
        w.close();
    }))
}

/// The send a job id names; error 8 when there is none.
fn job_of(
    conn: &mut DbConnection,
    account_id: i64,
    job: i64,
) -> Result<std::result::Result<sends::Send, Reply>> {
    match sends::get(conn, account_id, job) {
        Ok(send) => Ok(Ok(send)),
        Err(crate::Error::NotFound(_)) => Ok(Err(Reply::fault(
            code::JOB_NOT_FOUND,
            format!("Job {job} does not exist"),
        ))),
        Err(e) => Err(e),
    }
}

/// One subscriber in one job: the events' counts (element names ours).
fn single(conn: &mut DbConnection, call: &Call) -> Result<Reply> {
    let account_id = call.account_id;
    let (job, subscriber) = (call.search_value(), call.search_value2());
    let Ok(job) = job.parse::<i64>() else {
        return Ok(Reply::fault(
            code::INVALID,
            format!("Invalid job id {job:?}"),
        ));
    };
    let send = or_fault!(job_of(conn, account_id, job)?);
    let found = match subscriber.parse::<i64>() {
        Ok(id) => recipients::find(conn, account_id, &RecipientKey::Id(id))?,
        Err(_) => None,
    };
    let Some(recipient) = found else {
        return Ok(Reply::fault(
            code::SUBSCRIBER_NOT_FOUND,
            format!("Subscriber not found with SubscriberID = {subscriber}"),
        ));
    };
    let filter = Filter {
        send_id: Some(send.id),
        recipient_id: Some(recipient.id),
        ..Filter::default()
    };
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    let mut after = 0;
    loop {
        let page = events::list(conn, account_id, &filter, after, PAGE)?;
        let Some(last) = page.last() else { break };
        after = last.id;
        for event in page.iter().filter(|e| !e.machine) {
            *counts.entry(event.kind.clone()).or_default() += 1;
        }
    }
    let count = |kind: &str| counts.get(kind).copied().unwrap_or(0).to_string();
    Ok(Reply::wrapped("tracking", |w| {
        w.open("subscriber", &[])
            .leaf("subid", &recipient.id.to_string())
            .leaf("jobID", &send.id.to_string())
            .leaf("emailaddress", recipient.email.as_deref().unwrap_or(""))
            .leaf("sent", &count("sent"))
            .leaf("bounces", &count("bounced"))
            .leaf("opens", &count("opened"))
            .leaf("clicks", &count("clicked"))
            .leaf("unsubscribes", &count("unsubscribed"))
            .close();
    }))
}

/// `jobretrieve/jobs`: the jobs started in the period `search_value` to
/// `search_value2` (`M/D/YYYY h:m:s AM`; empty means unbounded).
pub(super) fn jobs(conn: &mut DbConnection, call: &Call) -> Result<Reply> {
    let account_id = call.account_id;
    if !call.sub_action().is_empty() && call.sub_action() != "jobs" {
        return Ok(Reply::fault(
            code::UNKNOWN_CALL,
            format!("Sub action {:?} is not supported", call.text("sub_action")),
        ));
    }
    let (from, until) = or_fault!(range_of(call.search_value(), call.search_value2()));
    let mut found = Vec::new();
    let mut after = 0;
    loop {
        let page = sends::campaigns_started(conn, account_id, from, until, after, PAGE)?;
        let Some(last) = page.last() else { break };
        after = last.id;
        for send in page {
            // Every list of a job to several.
            let mut numbers = Vec::new();
            for id in sends::target_lists(conn, &send)? {
                numbers.push(lists::by_id(conn, account_id, id)?.number);
            }
            found.push((send, numbers));
        }
    }
    Ok(Reply::wrapped("tracking", |w| {
        for (send, numbers) in &found {
            w.open("job", &[])
                .leaf("jobID", &send.id.to_string())
                .leaf(
                    "jobSendDate",
                    &send.started_at.map(format_time).unwrap_or_default(),
                )
                .open("lists", &[]);
            for number in numbers {
                w.leaf("listID", &number.to_string());
            }
            w.close().close();
        }
    }))
}

/// `tracking-channel/retrieve/unsubscribe`: every unsubscribe (from a list)
/// in the period `search_value` to `search_value2`.
pub(super) fn channel_unsubscribes(conn: &mut DbConnection, call: &Call) -> Result<Reply> {
    let account_id = call.account_id;
    if call.sub_action() != "unsubscribe" {
        return Ok(Reply::fault(
            code::UNKNOWN_CALL,
            format!("Sub action {:?} is not supported", call.text("sub_action")),
        ));
    }
    let (from, until) = or_fault!(range_of(call.search_value(), call.search_value2()));
    let mut rows = Vec::new();
    let mut names = std::collections::HashMap::new();
    let mut after = 0;
    loop {
        let page = history::unsubscribes(conn, account_id, from, until, after, PAGE)?;
        let Some(last) = page.last() else { break };
        after = last.id;
        for entry in page {
            let recipient =
                recipients::get(conn, account_id, &RecipientKey::Id(entry.recipient_id))?;
            // A deleted list keeps its history; its name is gone.
            let list = match names.get(&entry.list_id) {
                Some(name) => name,
                None => {
                    let name = match lists::by_id(conn, account_id, entry.list_id) {
                        Ok(list) => list.name,
                        Err(crate::Error::NotFound(_)) => String::new(),
                        Err(e) => return Err(e),
                    };
                    names.entry(entry.list_id).or_insert(name)
                }
            }
            .clone();
            rows.push((
                recipient.email.unwrap_or_default(),
                format_time(entry.created_at),
                list,
            ));
        }
    }
    Ok(Reply::wrapped("tracking-channel", |w| {
        for (email, date, list) in &rows {
            w.open("subscriber", &[])
                .leaf(&encode_name(EMAIL_ADDRESS), email)
                .leaf("Full__Name", "")
                .leaf("Email__Type", "HTML")
                .leaf("date", date)
                .leaf("interest", list)
                .close();
        }
    }))
}
