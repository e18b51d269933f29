//! A message's statistics across all its sends (eCircle reports per message,
//! not per send): delivery and activity totals from the counters the sender and
//! tracking keep on each send, and unsubscriptions and hourly activity from the
//! event store.

use chrono::{NaiveDateTime, Timelike};
use diesel::prelude::*;

use crate::Result;
use crate::db::DbConnection;
use crate::db::schema::{delivery_events, sends};

/// Totals of every send of one message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MessageTotals {
    pub sends: i64,
    /// Sends scheduled, sending or paused.
    pub in_progress: i64,
    /// Deliveries enqueued.
    pub to_send: i64,
    pub sent: i64,
    /// Given up, bounces included.
    pub failed: i64,
    pub bounced: i64,
    pub unique_opens: i64,
    pub unique_clicks: i64,
    pub unsubscriptions: i64,
    /// When the first send started.
    pub first_started_at: Option<NaiveDateTime>,
}

type Counters = (i64, i64, i64, i64, i64, i64, Option<NaiveDateTime>, String);

pub fn totals(conn: &mut DbConnection, account_id: i64, message_id: i64) -> Result<MessageTotals> {
    let rows: Vec<Counters> = sends::table
        .filter(sends::account_id.eq(account_id))
        .filter(sends::message_id.eq(message_id))
        .select((
            sends::to_send,
            sends::sent,
            sends::failed,
            sends::bounced,
            sends::unique_opens,
            sends::unique_clicks,
            sends::started_at,
            sends::status,
        ))
        .load(conn)?;
    let mut totals = MessageTotals {
        sends: rows.len() as i64,
        ..MessageTotals::default()
    };
    for (to_send, sent, failed, bounced, opens, clicks, started, status) in rows {
        if matches!(status.as_str(), "scheduled" | "sending" | "paused") {
            totals.in_progress += 1;
        }
        totals.to_send += to_send;
        totals.sent += sent;
        totals.failed += failed;
        totals.bounced += bounced;
        totals.unique_opens += opens;
        totals.unique_clicks += clicks;
        totals.first_started_at = match (totals.first_started_at, started) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    totals.unsubscriptions = delivery_events::table
        .inner_join(sends::table.on(sends::id.eq(delivery_events::send_id)))
        .filter(delivery_events::account_id.eq(account_id))
        .filter(sends::message_id.eq(message_id))
        .filter(delivery_events::kind.eq("unsubscribed"))
        .count()
        .get_result(conn)?;
    Ok(totals)
}

/// One hour of a message's activity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HourlyStats {
    /// The start of the hour.
    pub hour: NaiveDateTime,
    pub bounces: i64,
    pub clicks: i64,
    pub opens: i64,
    pub unsubscriptions: i64,
}

/// The most events one hourly report reads; a message with more in the period
/// is reported on the first ones (the period can be narrowed).
const MAX_EVENTS: i64 = 200_000;

/// The hours of `[from, until)` in which the message had activity, in order.
pub fn hourly(
    conn: &mut DbConnection,
    account_id: i64,
    message_id: i64,
    from: NaiveDateTime,
    until: NaiveDateTime,
) -> Result<Vec<HourlyStats>> {
    let events: Vec<(String, NaiveDateTime)> = delivery_events::table
        .inner_join(sends::table.on(sends::id.eq(delivery_events::send_id)))
        .filter(delivery_events::account_id.eq(account_id))
        .filter(sends::message_id.eq(message_id))
        .filter(delivery_events::created_at.ge(from))
        .filter(delivery_events::created_at.lt(until))
        .filter(delivery_events::machine.eq(false))
        .order(delivery_events::created_at)
        .limit(MAX_EVENTS)
        .select((delivery_events::kind, delivery_events::created_at))
        .load(conn)?;
    let mut hours: Vec<HourlyStats> = Vec::new();
    for (kind, at) in events {
        let hour = at.date().and_hms_opt(at.hour(), 0, 0).unwrap_or(at);
        if hours.last().is_none_or(|h| h.hour != hour) {
            hours.push(HourlyStats {
                hour,
                bounces: 0,
                clicks: 0,
                opens: 0,
                unsubscriptions: 0,
            });
        }
        let Some(current) = hours.last_mut() else {
            continue;
        };
        match kind.as_str() {
            "opened" => current.opens += 1,
            "clicked" => current.clicks += 1,
            "unsubscribed" => current.unsubscriptions += 1,
            "bounced" | "bounced_hard" | "bounced_soft" => current.bounces += 1,
            _ => {}
        }
    }
    Ok(hours)
}
