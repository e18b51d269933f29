//! Addresses barred from one list (eCircle's group blacklist). Barring an
//! address ends its subscription to the list, and a later subscribe to that list
//! is refused as blocklisted; other lists are not affected.

use diesel::prelude::*;

use super::recipients::{self, RecipientKey};
use super::subscriptions::{self, UnsubscribeReason};
use super::{Origin, lists, now};
use crate::Result;
use crate::db::schema::list_blocklist;
use crate::db::{DbConnection, on_backend, write_transaction};

/// Bars `email` from list `list_number`. Returns whether it was not barred yet.
pub fn add(
    conn: &mut DbConnection,
    account_id: i64,
    list_number: i64,
    email: &str,
    origin: &Origin,
) -> Result<bool> {
    let address = recipients::checked_email(email)?;
    let key = address.to_lowercase();
    write_transaction(conn, |conn| {
        let list = lists::get(conn, account_id, list_number)?;
        if contains(conn, list.id, &key)? {
            return Ok(false);
        }
        diesel::insert_into(list_blocklist::table)
            .values((
                list_blocklist::account_id.eq(account_id),
                list_blocklist::list_id.eq(list.id),
                list_blocklist::email_key.eq(&key),
                list_blocklist::created_at.eq(now()),
            ))
            .execute(conn)?;
        subscriptions::unsubscribe(
            conn,
            account_id,
            list_number,
            &RecipientKey::Email(address),
            UnsubscribeReason::Blocked,
            origin,
        )?;
        Ok(true)
    })
}

/// Lifts the bar. Returns whether there was one.
pub fn remove(
    conn: &mut DbConnection,
    account_id: i64,
    list_number: i64,
    email: &str,
) -> Result<bool> {
    let key = recipients::checked_email(email)?.to_lowercase();
    let list = lists::get(conn, account_id, list_number)?;
    let removed = diesel::delete(
        list_blocklist::table
            .filter(list_blocklist::account_id.eq(account_id))
            .filter(list_blocklist::list_id.eq(list.id))
            .filter(list_blocklist::email_key.eq(key)),
    )
    .execute(conn)?;
    Ok(removed > 0)
}

/// Whether the address with this lower-case key is barred from the list (row id).
pub(crate) fn contains(conn: &mut DbConnection, list_id: i64, email_key: &str) -> Result<bool> {
    Ok(on_backend!(conn, |c| diesel::select(diesel::dsl::exists(
        list_blocklist::table
            .filter(list_blocklist::list_id.eq(list_id))
            .filter(list_blocklist::email_key.eq(email_key)),
    ))
    .get_result(c))?)
}
