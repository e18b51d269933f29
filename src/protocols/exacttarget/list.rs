//! The `list` system: add, edit (rename), retrieve, delete, retrieve_sub,
//! retrievegroups.

use std::collections::HashMap;

use super::subscriber::{status_text, write_block};
use super::{Call, Reply, catalogue, code, format_time, or_fault};
use crate::Result;
use crate::db::DbConnection;
use crate::domain::file_imports::{self, ImportRequest};
use crate::domain::lists::{self, NewList};
use crate::domain::{exports, groups, recipients, subscriptions};
use crate::xml::XmlWriter;

/// The list types a client may ask for; every list behaves as a public one.
const LIST_TYPES: [&str; 3] = ["public", "private", "salesforce"];

/// Members are read this many at a time.
const PAGE: i64 = 1_000;

fn list_id(call: &Call) -> std::result::Result<i64, Reply> {
    let text = call.search_value();
    text.parse()
        .map_err(|_| Reply::fault(code::INVALID, format!("Invalid list id {text:?}")))
}

fn done(info: &str, number: i64) -> Reply {
    Reply::wrapped("list", |w| {
        w.leaf("list_info", info)
            .leaf("list_description", &number.to_string());
    })
}

pub(super) fn add(conn: &mut DbConnection, call: &Call) -> Result<Reply> {
    let name = call.text("list_name");
    if name.is_empty() {
        return Ok(Reply::fault(code::INVALID, "list_name is required"));
    }
    let kind = call.text("list_type").to_ascii_lowercase();
    if !kind.is_empty() && !LIST_TYPES.contains(&kind.as_str()) {
        return Ok(Reply::fault(
            code::INVALID,
            format!("Invalid list_type {kind:?}: public, private or salesforce"),
        ));
    }
    let list = lists::create(
        conn,
        call.account_id,
        &NewList {
            name: name.to_string(),
            // ExactTarget lists have no confirmation step.
            double_opt_in: false,
            ..NewList::default()
        },
    )?;
    Ok(done("List was added successfully", list.number))
}

pub(super) fn edit(conn: &mut DbConnection, call: &Call) -> Result<Reply> {
    let number = or_fault!(list_id(call));
    let name = call.text("list_name");
    if name.is_empty() {
        return Ok(Reply::fault(code::INVALID, "list_name is required"));
    }
    let changes = lists::ListChanges {
        name: Some(name.to_string()),
        ..lists::ListChanges::default()
    };
    lists::update(conn, call.account_id, number, &changes)?;
    Ok(done("List was modified successfully", number))
}

pub(super) fn delete(conn: &mut DbConnection, call: &Call) -> Result<Reply> {
    let number = or_fault!(list_id(call));
    lists::delete(conn, call.account_id, number)?;
    Ok(done("List was deleted successfully", number))
}

pub(super) fn retrieve(conn: &mut DbConnection, call: &Call) -> Result<Reply> {
    if call.search_type() == "listid" {
        let number = or_fault!(list_id(call));
        let list = lists::get(conn, call.account_id, number)?;
        let total = list.subscribed_count + list.pending_count + list.unsubscribed_count;
        return Ok(Reply::wrapped("list", |w| {
            w.leaf("list_name", &list.name)
                .leaf("list_type", "Public")
                .leaf("modified", &format_time(list.updated_at))
                .leaf("subscriber_count", &total.to_string())
                .leaf("active_total", &list.subscribed_count.to_string())
                .leaf("held_count", &list.pending_count.to_string())
                .leaf("bounce_count", "0")
                .leaf("unsub_count", &list.unsubscribed_count.to_string());
        }));
    }
    // By name: a part of it, without regard to case; empty names every list.
    let wanted = call.search_value().to_lowercase();
    let found: Vec<i64> = lists::all(conn, call.account_id)?
        .into_iter()
        .filter(|l| l.name.to_lowercase().contains(&wanted))
        .map(|l| l.number)
        .collect();
    Ok(Reply::wrapped("list", |w| {
        for number in &found {
            w.leaf("listid", &number.to_string());
        }
    }))
}

pub(super) fn retrieve_subscribers(conn: &mut DbConnection, call: &Call) -> Result<Reply> {
    let account_id = call.account_id;
    let number = or_fault!(list_id(call));
    let filter = call.text("search_status").to_ascii_lowercase();
    let filter = match filter.as_str() {
        "" => None,
        "active" | "unsubscribed" | "held" => Some(filter.clone()),
        "returned" | "undeliverable" => Some("undeliverable".to_string()),
        // Deleted subscribers are gone from the list.
        "deleted" => Some("deleted".to_string()),
        other => {
            return Ok(Reply::fault(
                code::INVALID,
                format!("Invalid search_status {other:?}"),
            ));
        }
    };
    lists::get(conn, account_id, number)?;
    let catalogue = catalogue(conn, account_id)?;
    let mut w = XmlWriter::new();
    w.open("list", &[]).open("subscribers", &[]);
    let mut after = 0;
    loop {
        let members = subscriptions::members(conn, account_id, number, None, after, PAGE)?;
        let Some(last) = members.last() else {
            break;
        };
        after = last.recipient.id;
        let ids: Vec<i64> = members.iter().map(|m| m.recipient.id).collect();
        let mut values = recipients::with_field_values(conn, account_id, &ids)?;
        for member in &members {
            let status = status_text(&member.recipient, Some(member.subscription.status()?));
            if filter
                .as_deref()
                .is_some_and(|f| !f.eq_ignore_ascii_case(status))
            {
                continue;
            }
            let fields: HashMap<i32, String> = values
                .remove(&member.recipient.id)
                .map(|r| r.fields.into_iter().collect())
                .unwrap_or_default();
            write_block(&mut w, &member.recipient, None, status, &fields, &catalogue);
        }
    }
    Ok(Reply::Done(w.finish()))
}

pub(super) fn retrieve_groups(conn: &mut DbConnection, call: &Call) -> Result<Reply> {
    let mut found = Vec::new();
    for list in lists::all(conn, call.account_id)? {
        for group in groups::in_list(conn, call.account_id, list.number)? {
            found.push((list.number, group));
        }
    }
    Ok(Reply::wrapped("list", |w| {
        w.open("groups", &[]);
        for (list, group) in &found {
            w.open("group", &[])
                .leaf("parentlistID", &list.to_string())
                .leaf("groupID", &group.number.to_string())
                .leaf("groupName", &group.name)
                .leaf("description", &group.notes)
                .close();
        }
        w.close();
    }))
}

/// `import` (a file of the account's import folder into a list) and
/// `import`/`importstatus` (the outcome). Imports finish within the call, so
/// the status is known at once; no notification mail is sent.
pub(super) fn import(conn: &mut DbConnection, call: &Call) -> Result<Reply> {
    if call.sub_action() == "importstatus" {
        let text = call.search_value();
        let Ok(id) = text.parse::<i64>() else {
            return Ok(Reply::fault(
                code::INVALID,
                format!("Invalid import id {text:?}"),
            ));
        };
        let done = file_imports::get(conn, call.account_id, id)?;
        return Ok(Reply::wrapped("list", |w| {
            w.leaf("import_info", &done.status)
                .leaf("importid", &done.id.to_string());
        }));
    }
    if !call.sub_action().is_empty() {
        return Ok(Reply::fault(
            code::UNKNOWN_CALL,
            format!("Sub action {:?} is not supported", call.text("sub_action")),
        ));
    }
    // One list in `search_value`, or several in `<search_values>`.
    let mut numbers = Vec::new();
    let several = call
        .system
        .child("search_values")
        .map(|v| {
            v.children_named("search_value")
                .map(|e| e.text.trim())
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    for text in std::iter::once(call.search_value())
        .chain(several)
        .filter(|t| !t.is_empty())
    {
        let Ok(number) = text.parse::<i64>() else {
            return Ok(Reply::fault(
                code::INVALID,
                format!("Invalid list id {text:?}"),
            ));
        };
        if !numbers.contains(&number) {
            numbers.push(number);
        }
    }
    if numbers.is_empty() {
        return Ok(Reply::fault(code::INVALID, "Invalid list id \"\""));
    }
    let delimiter = match call.text("file_type").to_ascii_lowercase().as_str() {
        "" | "csv" => ',',
        "tab" => '\t',
        other => {
            return Ok(Reply::fault(
                code::INVALID,
                format!("Invalid file_type {other:?}: tab or csv"),
            ));
        }
    };
    if call.text("encrypted").eq_ignore_ascii_case("true") {
        return Ok(Reply::fault(
            code::INVALID,
            "Encrypted files are not supported",
        ));
    }
    let mapping = call
        .system
        .child("file_mapping")
        .map(|m| {
            m.children_named("field")
                .map(|f| f.text.trim().to_string())
                .collect()
        })
        .unwrap_or_default();
    let done = file_imports::import(
        conn,
        call.account_id,
        &call.data_dir,
        &ImportRequest {
            lists: numbers,
            file_name: call.text("file_name").to_string(),
            delimiter,
            headings: !call.text("column_headings").eq_ignore_ascii_case("false"),
            mapping,
            origin: call.origin.clone(),
        },
    )?;
    Ok(Reply::wrapped("list", |w| {
        w.leaf(
            "import_info",
            "Your file is being imported. You will receive an email when it completes.",
        )
        .leaf("importid", &done.id.to_string());
    }))
}

/// `refresh_group`: groups here hold their members as they change, so a
/// refresh has nothing to recompute; it is recorded as a finished batch that
/// `batch/inquire` reports `Complete`.
pub(super) fn refresh_group(conn: &mut DbConnection, call: &Call) -> Result<Reply> {
    let text = call.search_value();
    let Ok(number) = text.parse::<i64>() else {
        return Ok(Reply::fault(
            code::INVALID,
            format!("Invalid group id {text:?}"),
        ));
    };
    let group =
        groups::find(conn, call.account_id, number)?.ok_or(crate::Error::NotFound("group"))?;
    let batch = exports::record_done(conn, call.account_id, "refresh_group")?;
    Ok(Reply::wrapped("list", |w| {
        w.open("groupRefresh", &[])
            .leaf("groupID", &group.number.to_string())
            .leaf("groupAsyncID", &batch.id.to_string())
            .close();
    }))
}
