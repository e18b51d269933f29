//! The event store: every delivery event is written through `record` and read
//! back by time, send, recipient and kind, a page at a time. Reports that need
//! counts read the aggregates instead (see `tracking` and `sends`).

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::Result;
use crate::db::DbConnection;
use crate::db::schema::delivery_events;

/// One event to store. The sender's outcomes leave the tracking fields
/// empty. None is NULL, not DEFAULT, so PostgreSQL takes many rows per INSERT.
#[derive(Debug, Clone, Default, Insertable)]
#[diesel(table_name = delivery_events, treat_none_as_null = true)]
pub struct NewDeliveryEvent {
    pub account_id: i64,
    pub send_id: i64,
    pub delivery_id: i64,
    pub recipient_id: Option<i64>,
    pub kind: &'static str,
    pub detail: String,
    pub created_at: NaiveDateTime,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub url: Option<String>,
    pub machine: bool,
}

/// Stores events (in the caller's transaction).
pub fn record(conn: &mut DbConnection, events: &[NewDeliveryEvent]) -> Result<()> {
    crate::db::backend::insert_delivery_events(conn, events)
}

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = delivery_events)]
pub struct Event {
    pub id: i64,
    pub send_id: i64,
    pub delivery_id: i64,
    pub recipient_id: Option<i64>,
    /// `sent`, `deferred`, `bounced`, `failed`, `unknown`, `opened`,
    /// `clicked`, `unsubscribed`, `bounced_hard`, `bounced_soft`, `complaint`.
    pub kind: String,
    pub detail: String,
    pub created_at: NaiveDateTime,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub url: Option<String>,
    pub machine: bool,
}

/// Which events; every condition is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// From this time on (inclusive).
    pub from: Option<NaiveDateTime>,
    /// Before this time (exclusive).
    pub until: Option<NaiveDateTime>,
    pub send_id: Option<i64>,
    pub recipient_id: Option<i64>,
    pub kinds: Vec<String>,
}

/// One page of an account's events in id order: pass the last id of a page as
/// `after` for the next.
pub fn list(
    conn: &mut DbConnection,
    account_id: i64,
    filter: &Filter,
    after: i64,
    limit: i64,
) -> Result<Vec<Event>> {
    Ok(filtered(account_id, filter)
        .filter(delivery_events::id.gt(after))
        .order(delivery_events::id)
        .limit(limit.clamp(1, 10_000))
        .select(Event::as_select())
        .load(conn)?)
}

/// Whether the account has any event the filter lets through (unordered, so
/// the first found answers).
pub fn any(conn: &mut DbConnection, account_id: i64, filter: &Filter) -> Result<bool> {
    Ok(filtered(account_id, filter)
        .select(delivery_events::id)
        .first::<i64>(conn)
        .optional()?
        .is_some())
}

fn filtered<'a>(
    account_id: i64,
    filter: &'a Filter,
) -> delivery_events::BoxedQuery<'a, crate::db::MultiBackend> {
    let mut query = delivery_events::table
        .filter(delivery_events::account_id.eq(account_id))
        .into_boxed();
    if let Some(from) = filter.from {
        query = query.filter(delivery_events::created_at.ge(from));
    }
    if let Some(until) = filter.until {
        query = query.filter(delivery_events::created_at.lt(until));
    }
    if let Some(send_id) = filter.send_id {
        query = query.filter(delivery_events::send_id.eq(send_id));
    }
    if let Some(recipient_id) = filter.recipient_id {
        query = query.filter(delivery_events::recipient_id.eq(recipient_id));
    }
    if !filter.kinds.is_empty() {
        query = query.filter(delivery_events::kind.eq_any(&filter.kinds));
    }
    query
}
