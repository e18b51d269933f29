//! The BulkAsync exports and `batch/inquire`. An export is written at once,
//! as an XML document inside a zip file in the account's export folder
//! (`<data_dir>/exports/<console id>/`, where the product used its FTP
//! server), and the call answers its batch id; `batch/inquire` reports the
//! batch's status and file. The documents' format is ours
//! (docs/compat/exacttarget.md).

use std::collections::HashMap;

use super::subscriber::{status_text, write_block};
use super::{
    Call, Range, Reply, catalogue, code, date_range, encode_name, format_time, named_range,
    or_fault,
};
use crate::Result;
use crate::db::DbConnection;
use crate::domain::events::{self, Filter};
use crate::domain::recipients::{self, RecipientKey};
use crate::domain::{exports, lists, sends, subscriptions};
use crate::xml::XmlWriter;

/// Rows are read this many at a time.
const PAGE: i64 = 1_000;

fn recorded(wrapper: &str, batch: &exports::Batch) -> Reply {
    Reply::wrapped(wrapper, |w| {
        w.leaf("info", "Your request has been recorded")
            .leaf("batchID", &batch.id.to_string());
    })
}

fn unknown_sub_action(call: &Call) -> Reply {
    Reply::fault(
        code::UNKNOWN_CALL,
        format!("Sub action {:?} is not supported", call.text("sub_action")),
    )
}

fn document(root: &str, content: impl FnOnce(&mut XmlWriter)) -> Vec<u8> {
    let mut w = XmlWriter::new();
    w.raw("<?xml version=\"1.0\" encoding=\"utf-8\"?>")
        .open(root, &[]);
    content(&mut w);
    w.finish().into_bytes()
}

/// `subscriber/BulkAsync/SubsStatus_ToFTP`: every subscriber's status (of one
/// list with `search_type=lid`), master unsubscribe first, then bounces.
pub(super) fn subscriber_statuses(conn: &mut DbConnection, call: &Call) -> Result<Reply> {
    if call.sub_action() != "subsstatus_toftp" {
        return Ok(unknown_sub_action(call));
    }
    let account_id = call.account_id;
    let mut rows = Vec::new();
    if call.search_type() == "lid" {
        let text = call.search_value();
        let Ok(number) = text.parse::<i64>() else {
            return Ok(Reply::fault(
                code::INVALID,
                format!("Invalid list id {text:?}"),
            ));
        };
        let mut after = 0;
        loop {
            let page = subscriptions::members(conn, account_id, number, None, after, PAGE)?;
            let Some(last) = page.last() else { break };
            after = last.recipient.id;
            for member in page {
                let status = status_text(&member.recipient, Some(member.subscription.status()?));
                rows.push((member.recipient, status));
            }
        }
    } else {
        let mut after = 0;
        loop {
            let page = recipients::page(conn, account_id, after, PAGE)?;
            let Some(last) = page.last() else { break };
            after = last.id;
            rows.extend(page.into_iter().map(|r| {
                let status = status_text(&r, None);
                (r, status)
            }));
        }
    }
    let content = document("subscribers", |w| {
        for (recipient, status) in &rows {
            w.open("subscriber", &[])
                .leaf("subid", &recipient.id.to_string())
                .leaf("email_address", recipient.email.as_deref().unwrap_or(""))
                .leaf("status", status)
                .close();
        }
    });
    let batch = exports::save(
        conn,
        account_id,
        &call.data_dir,
        "SubsStatus",
        "subscribers.xml",
        &content,
    )?;
    Ok(recorded("subscriber", &batch))
}

/// `list/bulkasync/Subs_ToFTP`: a list's subscribers with their attributes,
/// optionally of one status (`search_status`).
pub(super) fn list_subscribers(conn: &mut DbConnection, call: &Call) -> Result<Reply> {
    if call.sub_action() != "subs_toftp" {
        return Ok(unknown_sub_action(call));
    }
    let account_id = call.account_id;
    let text = call.search_value();
    let Ok(number) = text.parse::<i64>() else {
        return Ok(Reply::fault(
            code::INVALID,
            format!("Invalid list id {text:?}"),
        ));
    };
    let wanted = call.text("search_status").to_string();
    let list = lists::get(conn, account_id, number)?;
    let catalogue = catalogue(conn, account_id)?;
    let mut w = XmlWriter::new();
    w.raw("<?xml version=\"1.0\" encoding=\"utf-8\"?>")
        .open("subscribers", &[("listid", &list.number.to_string())]);
    let mut after = 0;
    loop {
        let page = subscriptions::members(conn, account_id, number, None, after, PAGE)?;
        let Some(last) = page.last() else { break };
        after = last.recipient.id;
        let ids: Vec<i64> = page.iter().map(|m| m.recipient.id).collect();
        let mut values = recipients::with_field_values(conn, account_id, &ids)?;
        for member in &page {
            let status = status_text(&member.recipient, Some(member.subscription.status()?));
            if !wanted.is_empty() && !wanted.eq_ignore_ascii_case(status) {
                continue;
            }
            let fields: HashMap<i32, String> = values
                .remove(&member.recipient.id)
                .map(|r| r.fields.into_iter().collect())
                .unwrap_or_default();
            write_block(&mut w, &member.recipient, None, status, &fields, &catalogue);
        }
    }
    let content = w.finish().into_bytes();
    let batch = exports::save(
        conn,
        account_id,
        &call.data_dir,
        "Subs",
        "subscribers.xml",
        &content,
    )?;
    Ok(recorded("list", &batch))
}

/// The job a tracking export names in `search_value`: error 4 for a text
/// that is no id, 8 for no job of the account.
fn job(conn: &mut DbConnection, call: &Call) -> Result<std::result::Result<sends::Send, Reply>> {
    let text = call.search_value();
    let Ok(job) = text.parse::<i64>() else {
        return Ok(Err(Reply::fault(
            code::INVALID,
            format!("Invalid job id {text:?}"),
        )));
    };
    match sends::get(conn, call.account_id, job) {
        Ok(send) => Ok(Ok(send)),
        Err(crate::Error::NotFound(_)) => Ok(Err(Reply::fault(
            code::JOB_NOT_FOUND,
            format!("Job {job} does not exist"),
        ))),
        Err(e) => Err(e),
    }
}

/// The addresses of recipients by id, read once each.
struct Addresses(HashMap<i64, String>);

impl Addresses {
    fn of(&mut self, conn: &mut DbConnection, account_id: i64, id: Option<i64>) -> Result<String> {
        let Some(id) = id else {
            return Ok(String::new());
        };
        if let Some(email) = self.0.get(&id) {
            return Ok(email.clone());
        }
        let found = recipients::find(conn, account_id, &RecipientKey::Id(id))?
            .and_then(|r| r.email)
            .unwrap_or_default();
        self.0.insert(id, found.clone());
        Ok(found)
    }
}

/// `tracking/BulkAsync`: `all_ToFTP` / `all_attributes_ToFTP` (every event of
/// a job, people's and link scanners' marked) and `all_jobs_ToFTP` (the jobs
/// of a period).
pub(super) fn tracking(conn: &mut DbConnection, call: &Call) -> Result<Reply> {
    let account_id = call.account_id;
    let content = match call.sub_action().as_str() {
        "all_toftp" | "all_attributes_toftp" => {
            let send = or_fault!(job(conn, call)?);
            let (from, until) = or_fault!(date_range(call));
            let filter = Filter {
                send_id: Some(send.id),
                from,
                until,
                ..Filter::default()
            };
            let mut rows = Vec::new();
            let mut addresses = Addresses(HashMap::new());
            let mut after = 0;
            loop {
                let page = events::list(conn, account_id, &filter, after, PAGE)?;
                let Some(last) = page.last() else { break };
                after = last.id;
                for event in page {
                    let email = addresses.of(conn, account_id, event.recipient_id)?;
                    rows.push((event, email));
                }
            }
            document("events", |w| {
                for (event, email) in &rows {
                    w.open("event", &[])
                        .leaf("jobID", &event.send_id.to_string())
                        .leaf(
                            "subid",
                            &event
                                .recipient_id
                                .map(|id| id.to_string())
                                .unwrap_or_default(),
                        )
                        .leaf("email_address", email)
                        .leaf("type", &event.kind)
                        .leaf("date", &format_time(event.created_at))
                        .leaf("url", event.url.as_deref().unwrap_or(""))
                        .leaf("machine", if event.machine { "True" } else { "False" })
                        .close();
                }
            })
        }
        "all_jobs_toftp" => or_fault!(all_jobs(conn, call)?),
        _ => return Ok(unknown_sub_action(call)),
    };
    save_tracking(conn, call, "", &content)
}

/// `tracking/BulkAsyncEnterprise/all_jobs_ToFTP`: an Enterprise account's
/// jobs with its member accounts'. Accounts here have no members, so it is
/// the account's own jobs, as `BulkAsync` gives them.
pub(super) fn enterprise_jobs(conn: &mut DbConnection, call: &Call) -> Result<Reply> {
    if call.sub_action() != "all_jobs_toftp" {
        return Ok(unknown_sub_action(call));
    }
    let content = or_fault!(all_jobs(conn, call)?);
    save_tracking(conn, call, "", &content)
}

/// The jobs sent in `<jobdaterange>` that had activity in `<daterange>` (one
/// range given is both; none, every job). Activity is the job's start or any
/// event of it.
fn all_jobs(conn: &mut DbConnection, call: &Call) -> Result<std::result::Result<Vec<u8>, Reply>> {
    let account_id = call.account_id;
    let activity = match named_range(call, "daterange") {
        Ok(range) => range,
        Err(reply) => return Ok(Err(reply)),
    };
    let sent = match named_range(call, "jobdaterange") {
        Ok(range) => range,
        Err(reply) => return Ok(Err(reply)),
    };
    let (activity, sent) = match (activity, sent) {
        (Some(activity), Some(sent)) => (activity, sent),
        (Some(one), None) | (None, Some(one)) => (one, one),
        (None, None) => ((None, None), (None, None)),
    };
    let within = |at: chrono::NaiveDateTime, (from, until): Range| {
        from.is_none_or(|f| at >= f) && until.is_none_or(|u| at < u)
    };
    let mut jobs = Vec::new();
    let mut after = 0;
    loop {
        let page = sends::campaigns_started(conn, account_id, sent.0, sent.1, after, PAGE)?;
        let Some(last) = page.last() else { break };
        after = last.id;
        for send in page {
            let started_within = send.started_at.is_some_and(|at| within(at, activity));
            let active = started_within || {
                let filter = Filter {
                    send_id: Some(send.id),
                    from: activity.0,
                    until: activity.1,
                    ..Filter::default()
                };
                events::any(conn, account_id, &filter)?
            };
            if active {
                jobs.push(send);
            }
        }
    }
    Ok(Ok(document("jobs", |w| {
        for send in &jobs {
            w.open("job", &[])
                .leaf("jobID", &send.id.to_string())
                .leaf("emailID", &send.message_id.to_string())
                .leaf(
                    "jobSendDate",
                    &send.started_at.map(format_time).unwrap_or_default(),
                )
                .leaf("sent", &send.sent.to_string())
                .leaf("undeliverable", &send.failed.to_string())
                .close();
        }
    })))
}

/// `tracking/Sent_BulkAsync`: `all_ToFTP` (the messages of a job that went
/// out) and `all_attributes_ToFTP` (with each subscriber's attributes).
pub(super) fn sent(conn: &mut DbConnection, call: &Call) -> Result<Reply> {
    let with_attributes = match call.sub_action().as_str() {
        "all_toftp" => false,
        "all_attributes_toftp" => true,
        _ => return Ok(unknown_sub_action(call)),
    };
    let account_id = call.account_id;
    let send = or_fault!(job(conn, call)?);
    let (from, until) = or_fault!(date_range(call));
    let catalogue = if with_attributes {
        catalogue(conn, account_id)?
    } else {
        Vec::new()
    };
    let mut w = XmlWriter::new();
    w.raw("<?xml version=\"1.0\" encoding=\"utf-8\"?>")
        .open("sent", &[]);
    let mut after = 0;
    loop {
        let page = sends::sent_records(conn, account_id, send.id, from, until, after, PAGE)?;
        let Some(last) = page.last() else { break };
        after = last.delivery_id;
        let mut values = if with_attributes {
            let ids: Vec<i64> = page.iter().filter_map(|r| r.recipient_id).collect();
            recipients::with_field_values(conn, account_id, &ids)?
        } else {
            HashMap::new()
        };
        for record in &page {
            w.open("subscriber", &[])
                .leaf("jobID", &send.id.to_string())
                .leaf(
                    "subid",
                    &record
                        .recipient_id
                        .map(|id| id.to_string())
                        .unwrap_or_default(),
                )
                .leaf("email_address", &record.address)
                .leaf("sendDate", &format_time(record.sent_at));
            if with_attributes {
                let fields: HashMap<i32, String> = record
                    .recipient_id
                    .and_then(|id| values.remove(&id))
                    .map(|r| r.fields.into_iter().collect())
                    .unwrap_or_default();
                w.open("attributes", &[]);
                for field in &catalogue {
                    let value = fields.get(&field.number).map_or("", String::as_str);
                    w.leaf(&encode_name(&field.name), value);
                }
                w.close();
            }
            w.close();
        }
    }
    let content = w.finish().into_bytes();
    save_tracking(conn, call, "Sent_", &content)
}

/// Saves a tracking export as `<prefix><sub_action>_<batch id>.zip`.
fn save_tracking(
    conn: &mut DbConnection,
    call: &Call,
    prefix: &str,
    content: &[u8],
) -> Result<Reply> {
    let kind = format!("{prefix}{}", call.text("sub_action"));
    let batch = exports::save(
        conn,
        call.account_id,
        &call.data_dir,
        &kind,
        "tracking.xml",
        content,
    )?;
    Ok(recorded("tracking", &batch))
}

/// `batch/inquire`: `<Batch>` (capital B) directly in `<system>`.
pub(super) fn inquire(conn: &mut DbConnection, call: &Call) -> Result<Reply> {
    let text = call.search_value();
    let Ok(id) = text.parse::<i64>() else {
        return Ok(Reply::fault(
            code::INVALID,
            format!("Invalid batch id {text:?}"),
        ));
    };
    let batch = exports::get(conn, call.account_id, id)?;
    let mut w = XmlWriter::new();
    w.open("Batch", &[])
        .leaf("batchid", &batch.id.to_string())
        .leaf("status", &batch.status)
        .leaf("filename", &batch.file_name);
    Ok(Reply::Done(w.finish()))
}
