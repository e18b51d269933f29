//! The append-only history of subscription status changes: who (actor), through
//! which interface (channel), when and why. The database refuses updates and
//! deletes of these rows.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::subscriptions::{Status, UnsubscribeReason};
use super::{Origin, now};
use crate::Result;
use crate::db::DbConnection;
use crate::db::schema::subscription_history;

#[derive(Debug, Clone, Queryable, Selectable, PartialEq)]
#[diesel(table_name = subscription_history)]
pub struct Entry {
    pub id: i64,
    pub subscription_id: i64,
    pub list_id: i64,
    pub recipient_id: i64,
    pub from_status: Option<String>,
    pub to_status: String,
    pub reason: Option<i32>,
    pub actor: String,
    pub channel: String,
    pub note: String,
    pub created_at: NaiveDateTime,
}

/// One status change to record.
pub(crate) struct Change<'a> {
    pub account_id: i64,
    pub subscription_id: i64,
    pub list_id: i64,
    pub recipient_id: i64,
    pub from: Option<Status>,
    pub to: Status,
    pub reason: Option<UnsubscribeReason>,
    pub origin: &'a Origin,
    pub note: &'a str,
}

pub(crate) fn record(conn: &mut DbConnection, change: &Change) -> Result<()> {
    diesel::insert_into(subscription_history::table)
        .values((
            subscription_history::account_id.eq(change.account_id),
            subscription_history::subscription_id.eq(change.subscription_id),
            subscription_history::list_id.eq(change.list_id),
            subscription_history::recipient_id.eq(change.recipient_id),
            subscription_history::from_status.eq(change.from.map(Status::as_str)),
            subscription_history::to_status.eq(change.to.as_str()),
            subscription_history::reason.eq(change.reason.map(UnsubscribeReason::code)),
            subscription_history::actor.eq(&change.origin.actor),
            subscription_history::channel.eq(change.origin.channel.as_str()),
            subscription_history::note.eq(change.note),
            subscription_history::created_at.eq(now()),
        ))
        .execute(conn)?;
    Ok(())
}

/// Every recorded change of a recipient's subscriptions, oldest first.
pub fn for_recipient(
    conn: &mut DbConnection,
    account_id: i64,
    recipient_id: i64,
) -> Result<Vec<Entry>> {
    Ok(subscription_history::table
        .filter(subscription_history::account_id.eq(account_id))
        .filter(subscription_history::recipient_id.eq(recipient_id))
        .order(subscription_history::id)
        .select(Entry::as_select())
        .load(conn)?)
}

/// One page of the account's changes to `unsubscribed` recorded in
/// `[from, until)`, in id order (pass the last id as `after`).
pub fn unsubscribes(
    conn: &mut DbConnection,
    account_id: i64,
    from: Option<NaiveDateTime>,
    until: Option<NaiveDateTime>,
    after: i64,
    limit: i64,
) -> Result<Vec<Entry>> {
    let mut query = subscription_history::table
        .filter(subscription_history::account_id.eq(account_id))
        .filter(subscription_history::to_status.eq(Status::Unsubscribed.as_str()))
        .filter(subscription_history::id.gt(after))
        .into_boxed();
    if let Some(from) = from {
        query = query.filter(subscription_history::created_at.ge(from));
    }
    if let Some(until) = until {
        query = query.filter(subscription_history::created_at.lt(until));
    }
    Ok(query
        .order(subscription_history::id)
        .limit(limit.clamp(1, 10_000))
        .select(Entry::as_select())
        .load(conn)?)
}
