//! The `email` system: add (HTMLPaste, text) and retrieve (all, htmlemail).
//! E-mails are messages in the ExactTarget dialect, so `%%Attribute%%`
//! strings are filled in per subscriber when they are sent.

use std::collections::BTreeMap;

use super::{Call, Reply, code, date_range, format_date, or_fault};
use crate::Result;
use crate::db::DbConnection;
use crate::domain::messages::{self, EmailFilter, MessageKind, NewMessage};
use crate::render::Dialect;

fn email_id(call: &Call) -> std::result::Result<i64, Reply> {
    let text = call.search_value();
    text.parse()
        .map_err(|_| Reply::fault(code::INVALID, format!("Invalid email id {text:?}")))
}

fn unknown_sub_action(call: &Call) -> Reply {
    Reply::fault(
        code::UNKNOWN_CALL,
        format!("Sub action {:?} is not supported", call.text("sub_action")),
    )
}

/// Bodies are pasted into the call; files on the product's FTP server are
/// not, as there is none.
fn body(call: &Call) -> std::result::Result<String, Reply> {
    let body = call.system.child_text("email_body").unwrap_or("");
    if body.trim().is_empty() {
        let message = if call.text("file_name").is_empty() {
            "email_body is required"
        } else {
            "file_name is not supported: paste the body into email_body"
        };
        return Err(Reply::fault(code::INVALID, message));
    }
    Ok(body.to_string())
}

pub(super) fn add(conn: &mut DbConnection, call: &Call) -> Result<Reply> {
    match call.sub_action().as_str() {
        "htmlpaste" => {
            let html = or_fault!(body(call));
            let name = call.text("email_name");
            let subject = call.text("email_subject");
            if name.is_empty() || subject.is_empty() {
                return Ok(Reply::fault(
                    code::INVALID,
                    "email_name and email_subject are required",
                ));
            }
            let message = messages::create(
                conn,
                call.account_id,
                &NewMessage {
                    kind: MessageKind::Email,
                    dialect: Dialect::ExactTarget,
                    name: name.to_string(),
                    subject: subject.to_string(),
                    html: Some(html),
                    text: None,
                    from_name: String::new(),
                    from_email: String::new(),
                    reply_to: String::new(),
                    headers: BTreeMap::new(),
                    list: None,
                },
            )?;
            Ok(Reply::wrapped("email", |w| {
                w.leaf("emailID", &message.id.to_string());
            }))
        }
        "text" => {
            let id = or_fault!(email_id(call));
            let text = or_fault!(body(call));
            messages::set_text(conn, call.account_id, id, &text)?;
            Ok(Reply::wrapped("email", |w| {
                w.leaf("email_info", "Email updated successfully");
            }))
        }
        _ => Ok(unknown_sub_action(call)),
    }
}

pub(super) fn retrieve(conn: &mut DbConnection, call: &Call) -> Result<Reply> {
    match call.sub_action().as_str() {
        "" | "all" => retrieve_all(conn, call),
        "htmlemail" => {
            let id = or_fault!(email_id(call));
            let message = messages::get(conn, call.account_id, id)?;
            if message.kind()? != MessageKind::Email {
                return Err(crate::Error::NotFound("message"));
            }
            Ok(Reply::wrapped("email", |w| {
                w.leaf("emailid", &message.id.to_string())
                    .open("htmlbody", &[])
                    .cdata(message.html.as_deref().unwrap_or(""))
                    .close();
            }))
        }
        _ => Ok(unknown_sub_action(call)),
    }
}

fn retrieve_all(conn: &mut DbConnection, call: &Call) -> Result<Reply> {
    let search = call.search_type();
    let by_name = matches!(search.as_str(), "emailname" | "emailnameanddaterange");
    let by_date = matches!(search.as_str(), "daterange" | "emailnameanddaterange");
    let mut filter = EmailFilter::default();
    if by_name && !call.search_value().is_empty() {
        filter.name_contains = Some(call.search_value().to_string());
    }
    if by_date {
        (filter.from, filter.until) = or_fault!(date_range(call));
    }
    let found = messages::emails(conn, call.account_id, &filter)?;
    Ok(Reply::wrapped("email", |w| {
        for message in &found {
            w.open("emaillist", &[])
                .leaf("emailid", &message.id.to_string())
                .leaf("emailname", &message.name)
                .leaf("emailsubject", &message.subject)
                .leaf("emailcreateddate", &format_date(message.created_at))
                .leaf("categoryid", "0")
                .close();
        }
    }))
}
