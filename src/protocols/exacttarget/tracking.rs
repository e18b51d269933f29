//! The `tracking` system: `retrieve` with sub-actions `summary` (one job's
//! counts) and `masterunsub` (the master-unsubscribed addresses).

use super::{Call, Reply, code, format_time, or_fault, parse_date};
use crate::Result;
use crate::db::DbConnection;
use crate::domain::events::{self, Filter};
use crate::domain::{messages, recipients, sends, tracking};

/// Rows are read this many at a time.
const PAGE: i64 = 1_000;

pub(super) fn retrieve(conn: &mut DbConnection, call: &Call) -> Result<Reply> {
    match call.sub_action().as_str() {
        "summary" => summary(conn, call),
        "masterunsub" => master_unsubscribed(conn, call),
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
    let (mut from, mut until) = (None, None);
    if let Some(range) = call.system.child("daterange") {
        let date = |name: &str| {
            let text = range.child_text(name).map_or("", str::trim);
            if text.is_empty() {
                return Ok(None);
            }
            parse_date(text).map(Some).ok_or_else(|| {
                Reply::fault(code::INVALID, format!("Invalid {name} {text:?}: M/D/YYYY"))
            })
        };
        from = or_fault!(date("startdate")).map(|d| d.and_time(chrono::NaiveTime::MIN));
        // The end date is a whole day.
        until = or_fault!(date("enddate"))
            .and_then(|d| d.succ_opt())
            .map(|d| d.and_time(chrono::NaiveTime::MIN));
    }
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
