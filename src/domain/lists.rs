//! Lists: each has a per-account number (the id legacy clients hard-code) and a
//! GUID, sender settings and a double opt-in default. Member counts per status
//! are kept up to date by the subscription operations.

use diesel::prelude::*;

use super::accounts::{self, Numbered};
use super::now;
use crate::db::schema::lists;
use crate::db::{DbConnection, on_backend, write_transaction};
use crate::{Error, Result};

#[derive(Debug, Clone, Queryable, Selectable, PartialEq)]
#[diesel(table_name = lists)]
pub struct List {
    pub id: i64,
    pub account_id: i64,
    /// The public, per-account list id.
    pub number: i64,
    pub guid: String,
    pub name: String,
    pub sender_name: String,
    pub sender_email: String,
    pub reply_to: String,
    pub double_opt_in: bool,
    pub description: String,
    pub subscribed_count: i64,
    pub pending_count: i64,
    pub unsubscribed_count: i64,
    pub updated_at: chrono::NaiveDateTime,
    /// Opens and clicks of this list's messages are tracked.
    pub tracking: bool,
}

#[derive(Debug, Clone)]
pub struct NewList {
    /// Set to keep a migrated integration's hard-coded id; otherwise the next free.
    pub number: Option<i64>,
    /// Set to keep a migrated integration's GUID; otherwise a new UUID.
    pub guid: Option<String>,
    pub name: String,
    pub sender_name: String,
    pub sender_email: String,
    pub reply_to: String,
    pub double_opt_in: bool,
    pub description: String,
}

impl Default for NewList {
    fn default() -> Self {
        NewList {
            number: None,
            guid: None,
            name: String::new(),
            sender_name: String::new(),
            sender_email: String::new(),
            reply_to: String::new(),
            // MailUp's frontend defaults to double opt-in (Confirm=1).
            double_opt_in: true,
            description: String::new(),
        }
    }
}

pub fn create(conn: &mut DbConnection, account_id: i64, new: &NewList) -> Result<List> {
    let name = new.name.trim();
    if name.is_empty() {
        return Err(Error::invalid("list name", "must not be empty"));
    }
    let guid = match &new.guid {
        Some(guid) => {
            let guid = guid.trim();
            if guid.is_empty() || guid.len() > 64 {
                return Err(Error::invalid("list GUID", "must have 1 to 64 characters"));
            }
            guid.to_string()
        }
        None => uuid::Uuid::new_v4().to_string(),
    };
    write_transaction(conn, |conn| {
        let number =
            accounts::allocate_number(conn, account_id, Numbered::List, new.number, |conn, n| {
                Ok(find(conn, account_id, n)?.is_some())
            })?;
        if find_by_guid(conn, account_id, &guid)?.is_some() {
            return Err(Error::Conflict(format!("list GUID {guid} is taken")));
        }
        let stamp = now();
        let id: i64 = diesel::insert_into(lists::table)
            .values((
                lists::account_id.eq(account_id),
                lists::number.eq(number),
                lists::guid.eq(&guid),
                lists::name.eq(name),
                lists::sender_name.eq(&new.sender_name),
                lists::sender_email.eq(&new.sender_email),
                lists::reply_to.eq(&new.reply_to),
                lists::double_opt_in.eq(new.double_opt_in),
                lists::description.eq(&new.description),
                lists::created_at.eq(stamp),
                lists::updated_at.eq(stamp),
            ))
            .returning(lists::id)
            .get_result(conn)?;
        by_id(conn, account_id, id)
    })
}

/// The list with this public number in the account.
pub fn find(conn: &mut DbConnection, account_id: i64, number: i64) -> Result<Option<List>> {
    Ok(on_backend!(conn, |c| lists::table
        .filter(lists::account_id.eq(account_id))
        .filter(lists::number.eq(number))
        .select(List::as_select())
        .first(c)
        .optional())?)
}

/// Like [`find`], but a missing list is an error.
pub fn get(conn: &mut DbConnection, account_id: i64, number: i64) -> Result<List> {
    find(conn, account_id, number)?.ok_or(Error::NotFound("list"))
}

pub fn find_by_guid(conn: &mut DbConnection, account_id: i64, guid: &str) -> Result<Option<List>> {
    Ok(lists::table
        .filter(lists::account_id.eq(account_id))
        .filter(lists::guid.eq(guid))
        .select(List::as_select())
        .first(conn)
        .optional()?)
}

pub fn all(conn: &mut DbConnection, account_id: i64) -> Result<Vec<List>> {
    Ok(lists::table
        .filter(lists::account_id.eq(account_id))
        .order(lists::number)
        .select(List::as_select())
        .load(conn)?)
}

/// Changes to a list's settings; `None` keeps the value.
#[derive(Debug, Clone, Default)]
pub struct ListChanges {
    pub name: Option<String>,
    pub sender_name: Option<String>,
    pub sender_email: Option<String>,
    pub reply_to: Option<String>,
    pub double_opt_in: Option<bool>,
    pub description: Option<String>,
    pub tracking: Option<bool>,
}

/// Changes a list's settings (tracking applies to messages sent from then on).
pub fn update(
    conn: &mut DbConnection,
    account_id: i64,
    number: i64,
    changes: &ListChanges,
) -> Result<List> {
    if changes.name.as_deref().is_some_and(|n| n.trim().is_empty()) {
        return Err(Error::invalid("list name", "must not be empty"));
    }
    let list = get(conn, account_id, number)?;
    diesel::update(lists::table.find(list.id))
        .set((
            lists::name.eq(changes
                .name
                .as_deref()
                .map_or(list.name.as_str(), str::trim)),
            lists::sender_name.eq(changes.sender_name.as_ref().unwrap_or(&list.sender_name)),
            lists::sender_email.eq(changes.sender_email.as_ref().unwrap_or(&list.sender_email)),
            lists::reply_to.eq(changes.reply_to.as_ref().unwrap_or(&list.reply_to)),
            lists::double_opt_in.eq(changes.double_opt_in.unwrap_or(list.double_opt_in)),
            lists::description.eq(changes.description.as_ref().unwrap_or(&list.description)),
            lists::tracking.eq(changes.tracking.unwrap_or(list.tracking)),
            lists::updated_at.eq(now()),
        ))
        .execute(conn)?;
    by_id(conn, account_id, list.id)
}

pub fn by_id(conn: &mut DbConnection, account_id: i64, list_id: i64) -> Result<List> {
    lists::table
        .filter(lists::account_id.eq(account_id))
        .filter(lists::id.eq(list_id))
        .select(List::as_select())
        .first(conn)
        .optional()?
        .ok_or(Error::NotFound("list"))
}

/// Deletes a list with its groups, subscriptions and barred addresses; its
/// messages and finished sends stay (without a list), and the subscription
/// history stays for audits. A list with a send scheduled, sending or paused is
/// refused.
pub fn delete(conn: &mut DbConnection, account_id: i64, number: i64) -> Result<()> {
    use crate::db::schema::{send_lists, sends};
    write_transaction(conn, |conn| {
        let list = get(conn, account_id, number)?;
        // A send under way to the list, or to several lists of which it is
        // one or one left out (deleting a suppression list would let its
        // members be mailed).
        let busy: i64 = sends::table
            .filter(sends::account_id.eq(account_id))
            .filter(
                sends::list_id.eq(list.id).or(sends::id.eq_any(
                    send_lists::table
                        .filter(send_lists::account_id.eq(account_id))
                        .filter(send_lists::list_id.eq(list.id))
                        .select(send_lists::send_id),
                )),
            )
            .filter(sends::status.eq_any(["scheduled", "sending", "paused"]))
            .count()
            .get_result(conn)?;
        if busy > 0 {
            return Err(Error::Conflict(format!(
                "list {number} has {busy} sends under way"
            )));
        }
        diesel::delete(lists::table.find(list.id)).execute(conn)?;
        Ok(())
    })
}
