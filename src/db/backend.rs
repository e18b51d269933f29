//! The SQL that differs between PostgreSQL and SQLite: inserts that tolerate a
//! concurrent twin, upserts and row locks. Diesel's multi-backend DSL has no
//! ON CONFLICT, and SQLite has no FOR UPDATE (its writing transactions already
//! hold the database's write lock, taken by `BEGIN IMMEDIATE`).

use diesel::prelude::*;

use super::DbConnection;
use super::schema::{accounts, group_members, recipient_field_values, recipients, subscriptions};
use crate::Result;
use crate::domain::groups::NewGroupMember;
use crate::domain::recipients::{FieldValueRow, NewRecipient};
use crate::domain::subscriptions::NewSubscription;

/// Runs the same diesel expression on whichever concrete connection `conn` holds,
/// so backend-only DSL (ON CONFLICT, FOR UPDATE) type-checks per backend.
macro_rules! on_backend {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            DbConnection::Postgresql($c) => $body,
            DbConnection::Sqlite($c) => $body,
        }
    };
}

/// Inserts the recipient unless one with the same e-mail or mobile key exists in
/// the account. Returns whether a row was inserted.
pub fn insert_recipient_if_absent(conn: &mut DbConnection, row: &NewRecipient) -> Result<bool> {
    let inserted = on_backend!(conn, |c| diesel::insert_into(recipients::table)
        .values(row)
        .on_conflict_do_nothing()
        .execute(c))?;
    Ok(inserted == 1)
}

/// Inserts the subscription unless the recipient already has one on that list.
pub fn insert_subscription_if_absent(
    conn: &mut DbConnection,
    row: &NewSubscription,
) -> Result<bool> {
    let inserted = on_backend!(conn, |c| diesel::insert_into(subscriptions::table)
        .values(row)
        .on_conflict((subscriptions::list_id, subscriptions::recipient_id))
        .do_nothing()
        .execute(c))?;
    Ok(inserted == 1)
}

/// Adds the group membership unless it exists.
pub fn insert_group_member_if_absent(
    conn: &mut DbConnection,
    row: &NewGroupMember,
) -> Result<bool> {
    let inserted = on_backend!(conn, |c| diesel::insert_into(group_members::table)
        .values(row)
        .on_conflict((group_members::group_id, group_members::recipient_id))
        .do_nothing()
        .execute(c))?;
    Ok(inserted == 1)
}

/// Sets one field value of a recipient, inserting or replacing it.
pub fn upsert_field_value(conn: &mut DbConnection, row: &FieldValueRow) -> Result<()> {
    on_backend!(conn, |c| diesel::insert_into(recipient_field_values::table)
        .values(row)
        .on_conflict((
            recipient_field_values::recipient_id,
            recipient_field_values::field_number
        ))
        .do_update()
        .set(recipient_field_values::value.eq(&row.value))
        .execute(c))?;
    Ok(())
}

/// Locks the account row until the transaction ends (PostgreSQL), serialising
/// the allocation of per-account numbers.
pub fn lock_account(conn: &mut DbConnection, account_id: i64) -> Result<()> {
    if let DbConnection::Postgresql(c) = conn {
        accounts::table
            .find(account_id)
            .select(accounts::id)
            .for_update()
            .first::<i64>(c)?;
    }
    Ok(())
}

/// Locks one subscription row until the transaction ends (PostgreSQL), so two
/// concurrent status changes of the same subscription apply one after the other.
pub fn lock_subscription(conn: &mut DbConnection, subscription_id: i64) -> Result<()> {
    if let DbConnection::Postgresql(c) = conn {
        subscriptions::table
            .find(subscription_id)
            .select(subscriptions::id)
            .for_update()
            .first::<i64>(c)?;
    }
    Ok(())
}
