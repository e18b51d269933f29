//! Triggered-send definitions (ExactTarget's "interactions"): an external key,
//! the `CustomerKey` API calls fire, naming the message to send, optionally the
//! list it is sent for (its sender and unsubscribe link) and a sender that
//! overrides the message's. Created by the operator (CLI, later the console).

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::{lists, messages, now, recipients};
use crate::db::DbConnection;
use crate::db::schema::triggered_sends;
use crate::{Error, Result};

#[derive(Debug, Clone, Queryable, Selectable, PartialEq)]
#[diesel(table_name = triggered_sends)]
pub struct TriggeredSend {
    pub id: i64,
    pub account_id: i64,
    pub customer_key: String,
    pub message_id: i64,
    pub list_id: Option<i64>,
    pub from_name: String,
    pub from_email: String,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Default)]
pub struct NewTriggeredSend {
    pub customer_key: String,
    pub message_id: i64,
    /// The public number of the list, if any.
    pub list: Option<i64>,
    pub from_name: String,
    pub from_email: String,
}

pub fn create(
    conn: &mut DbConnection,
    account_id: i64,
    new: &NewTriggeredSend,
) -> Result<TriggeredSend> {
    let key = new.customer_key.trim();
    if key.is_empty() || key.len() > 200 {
        return Err(Error::invalid(
            "customer key",
            "must have 1 to 200 characters",
        ));
    }
    let from_email = match new.from_email.trim() {
        "" => String::new(),
        address => recipients::checked_email(address)?,
    };
    crate::db::write_transaction(conn, |conn| {
        let message = messages::get(conn, account_id, new.message_id)?;
        let list_id = match new.list {
            Some(number) => Some(lists::get(conn, account_id, number)?.id),
            None => None,
        };
        if find(conn, account_id, key)?.is_some() {
            return Err(Error::Conflict(format!("triggered send {key:?} exists")));
        }
        diesel::insert_into(triggered_sends::table)
            .values((
                triggered_sends::account_id.eq(account_id),
                triggered_sends::customer_key.eq(key),
                triggered_sends::message_id.eq(message.id),
                triggered_sends::list_id.eq(list_id),
                triggered_sends::from_name.eq(new.from_name.trim()),
                triggered_sends::from_email.eq(&from_email),
                triggered_sends::created_at.eq(now()),
            ))
            .execute(conn)?;
        find(conn, account_id, key)?.ok_or(Error::Internal(
            "triggered send vanished after insert".into(),
        ))
    })
}

/// The definition with this customer key (compared exactly) in the account.
pub fn find(
    conn: &mut DbConnection,
    account_id: i64,
    customer_key: &str,
) -> Result<Option<TriggeredSend>> {
    Ok(triggered_sends::table
        .filter(triggered_sends::account_id.eq(account_id))
        .filter(triggered_sends::customer_key.eq(customer_key))
        .select(TriggeredSend::as_select())
        .first(conn)
        .optional()?)
}

pub fn all(conn: &mut DbConnection, account_id: i64) -> Result<Vec<TriggeredSend>> {
    Ok(triggered_sends::table
        .filter(triggered_sends::account_id.eq(account_id))
        .order(triggered_sends::customer_key)
        .select(TriggeredSend::as_select())
        .load(conn)?)
}
