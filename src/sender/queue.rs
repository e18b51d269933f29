//! The outbox's state machine: claim with a lease, record outcomes, reap expired
//! leases. Send counters move in the same transactions as the deliveries.
//!
//! ```text
//! queued ─claim─▶ sending ─▶ sent
//!    ▲               ├─▶ deferred (4xx; retried with backoff) ─claim─▶ sending …
//!    │               ├─▶ failed (5xx = bounce, or given up)
//!    │               └─▶ unknown (lease ran out / connection lost mid-send)
//!    └─ throttled: back to its state, attempt not counted      ─claim─▶ sending …
//! ```
//!
//! `unknown` deliveries are re-sent (the policy: better a rare duplicate, which
//! carries the same Message-ID, than a lost message).

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Nullable, Text};

use crate::Result;
use crate::db::schema::{deliveries, sends};
use crate::db::{DbConnection, backend, write_transaction};
use crate::domain::events::{self, NewDeliveryEvent};
use crate::domain::sends::{Lane, complete_if_done};
use crate::domain::{bounces, credits};
use crate::domain::{first_chars, now};

/// A delivery reserved by this worker.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct Claimed {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = BigInt)]
    pub account_id: i64,
    #[diesel(sql_type = BigInt)]
    pub send_id: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub recipient_id: Option<i64>,
    #[diesel(sql_type = Text)]
    pub channel: String,
    #[diesel(sql_type = Text)]
    pub address: String,
    #[diesel(sql_type = Text)]
    pub message_id: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub params: Option<String>,
    /// Attempts including this one.
    #[diesel(sql_type = Integer)]
    pub attempts: i32,
    #[diesel(sql_type = Text)]
    pub previous_state: String,
}

/// What became of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted by the server or provider (its reply).
    Sent(String),
    /// Temporarily refused (4xx): retry later.
    Deferred(String),
    /// Permanently refused by the receiving server (5xx): a bounce.
    Bounced(String),
    /// Could not be sent at all (bad address, template error): no retry.
    Failed(String),
    /// The connection broke mid-send: it may or may not have arrived.
    Unknown(String),
    /// Held back by a rate limit; retry after this long without counting an attempt.
    Throttled(Duration),
}

/// Retry rules.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub base: Duration,
    pub max_attempts: i32,
}

impl RetryPolicy {
    /// base · 2^(attempt−1), at most six hours.
    fn delay(&self, attempts: i32) -> Duration {
        let factor = 1i64 << (attempts.clamp(1, 20) - 1);
        (self.base * factor as i32).min(Duration::hours(6))
    }
}

/// Claims due deliveries of a lane for `owner` until `lease` from now.
pub fn claim(
    conn: &mut DbConnection,
    lane: Lane,
    owner: &str,
    limit: usize,
    lease: Duration,
) -> Result<Vec<Claimed>> {
    write_transaction(conn, |conn| {
        let stamp = now();
        let claimed = backend::claim_deliveries(
            conn,
            lane as i32,
            owner,
            limit as i64,
            stamp,
            stamp + lease,
        )?;
        // `deferred` counts deliveries waiting in that state; these left it.
        // Sorted: every transaction locks send rows in id order (no deadlocks).
        let mut left_deferred: BTreeMap<i64, i64> = BTreeMap::new();
        for c in claimed.iter().filter(|c| c.previous_state == "deferred") {
            *left_deferred.entry(c.send_id).or_default() += 1;
        }
        for (send_id, n) in left_deferred {
            diesel::update(sends::table.find(send_id))
                .set(sends::deferred.eq(sends::deferred - n))
                .execute(conn)?;
        }
        Ok(claimed)
    })
}

#[derive(Default)]
struct CounterDelta {
    sent: i64,
    deferred: i64,
    failed: i64,
    bounced: i64,
}

/// Records the outcomes of deliveries this worker claimed, with their events and
/// the send counters, in one transaction. A delivery whose lease this worker lost
/// (another worker re-claimed it after expiry) is left alone.
pub fn finish(
    conn: &mut DbConnection,
    owner: &str,
    results: &[(Claimed, Outcome)],
    policy: RetryPolicy,
) -> Result<()> {
    write_transaction(conn, |conn| {
        let stamp = now();
        let mut deltas: BTreeMap<i64, CounterDelta> = BTreeMap::new();
        let mut events = Vec::with_capacity(results.len());
        let outcomes: Vec<(&Claimed, Outcome)> = results
            .iter()
            .map(|(claimed, outcome)| (claimed, give_up_if_exhausted(claimed, outcome, policy)))
            .collect();
        // The common case, sent, in one statement; the server's reply stays in
        // the event.
        let sent: Vec<i64> = outcomes
            .iter()
            .filter(|(_, outcome)| matches!(outcome, Outcome::Sent(_)))
            .map(|(claimed, _)| claimed.id)
            .collect();
        let recorded_sent: std::collections::HashSet<i64> = if sent.is_empty() {
            Default::default()
        } else {
            diesel::update(
                deliveries::table
                    .filter(deliveries::id.eq_any(&sent))
                    .filter(deliveries::state.eq("sending"))
                    .filter(deliveries::lease_owner.eq(owner)),
            )
            .set((
                deliveries::state.eq("sent"),
                deliveries::lease_owner.eq(None::<String>),
                deliveries::lease_until.eq(None::<NaiveDateTime>),
                deliveries::sent_at.eq(Some(stamp)),
                deliveries::last_reply.eq(None::<String>),
            ))
            .returning(deliveries::id)
            .get_results(conn)?
            .into_iter()
            .collect()
        };
        // Deliveries of sends cancelled while they were out: if not sent, they
        // end as cancelled.
        let send_ids: Vec<i64> = outcomes.iter().map(|(c, _)| c.send_id).collect();
        let cancelled: std::collections::HashSet<i64> = sends::table
            .filter(sends::id.eq_any(&send_ids))
            .filter(sends::status.eq("cancelled"))
            .select(sends::id)
            .load::<i64>(conn)?
            .into_iter()
            .collect();
        for (claimed, outcome) in &outcomes {
            let stopped = cancelled.contains(&claimed.send_id)
                && matches!(
                    outcome,
                    Outcome::Deferred(_) | Outcome::Unknown(_) | Outcome::Throttled(_)
                );
            let recorded = match outcome {
                Outcome::Sent(_) => recorded_sent.contains(&claimed.id),
                other => record_one(conn, owner, claimed, other, stopped, policy, stamp)?,
            };
            if !recorded {
                log::warn!(
                    "delivery {}: lease lost before its outcome was recorded",
                    claimed.id
                );
                continue;
            }
            if stopped {
                continue;
            }
            let delta = deltas.entry(claimed.send_id).or_default();
            let (event, detail) = match outcome {
                Outcome::Sent(reply) => {
                    delta.sent += 1;
                    ("sent", reply)
                }
                Outcome::Deferred(reply) => {
                    delta.deferred += 1;
                    ("deferred", reply)
                }
                Outcome::Bounced(reply) => {
                    delta.failed += 1;
                    delta.bounced += 1;
                    if let Some(recipient_id) = claimed.recipient_id {
                        bounces::refused_while_sending(
                            conn,
                            claimed.account_id,
                            recipient_id,
                            reply,
                        )?;
                    }
                    ("bounced", reply)
                }
                Outcome::Failed(reply) => {
                    delta.failed += 1;
                    ("failed", reply)
                }
                Outcome::Unknown(reason) => ("unknown", reason),
                Outcome::Throttled(_) => {
                    if claimed.previous_state == "deferred" {
                        delta.deferred += 1;
                    }
                    continue;
                }
            };
            events.push(NewDeliveryEvent {
                account_id: claimed.account_id,
                send_id: claimed.send_id,
                delivery_id: claimed.id,
                recipient_id: claimed.recipient_id,
                kind: event,
                detail: truncate(detail),
                created_at: stamp,
                ..NewDeliveryEvent::default()
            });
        }
        events::record(conn, &events)?;
        // Each message sent takes a credit from its account's balance, if it
        // has one; in key order, as every transaction locks these rows.
        let mut spent: BTreeMap<(i64, &str), i64> = BTreeMap::new();
        for (claimed, _) in outcomes
            .iter()
            .filter(|(c, _)| recorded_sent.contains(&c.id))
        {
            *spent
                .entry((claimed.account_id, claimed.channel.as_str()))
                .or_default() += 1;
        }
        for ((account_id, channel), n) in spent {
            credits::spend(conn, account_id, channel, n)?;
        }
        let send_ids: Vec<i64> = deltas.keys().copied().collect();
        for (send_id, d) in deltas {
            diesel::update(sends::table.find(send_id))
                .set((
                    sends::sent.eq(sends::sent + d.sent),
                    sends::deferred.eq(sends::deferred + d.deferred),
                    sends::failed.eq(sends::failed + d.failed),
                    sends::bounced.eq(sends::bounced + d.bounced),
                ))
                .execute(conn)?;
        }
        complete_if_done(conn, &send_ids)
    })
}

/// Records an outcome other than sent (as `cancelled` when the send was
/// `stopped`); false if this worker no longer holds the delivery's lease.
fn record_one(
    conn: &mut DbConnection,
    owner: &str,
    claimed: &Claimed,
    outcome: &Outcome,
    stopped: bool,
    policy: RetryPolicy,
    stamp: NaiveDateTime,
) -> Result<bool> {
    let retry_at = stamp + policy.delay(claimed.attempts);
    let (state, reply, next_attempt, attempts) = match outcome {
        Outcome::Sent(reply) => ("sent", reply.as_str(), stamp, claimed.attempts),
        Outcome::Deferred(reply) => ("deferred", reply.as_str(), retry_at, claimed.attempts),
        Outcome::Bounced(reply) | Outcome::Failed(reply) => {
            ("failed", reply.as_str(), stamp, claimed.attempts)
        }
        Outcome::Unknown(reason) => ("unknown", reason.as_str(), retry_at, claimed.attempts),
        Outcome::Throttled(wait) => {
            let back = match claimed.previous_state.as_str() {
                "deferred" => "deferred",
                "unknown" => "unknown",
                _ => "queued",
            };
            // Waiting for a rate limit is not an attempt.
            let reply = "held back by a rate limit";
            (back, reply, stamp + *wait, claimed.attempts - 1)
        }
    };
    let state = if stopped { "cancelled" } else { state };
    let updated = diesel::update(
        deliveries::table
            .find(claimed.id)
            .filter(deliveries::state.eq("sending"))
            .filter(deliveries::lease_owner.eq(owner)),
    )
    .set((
        deliveries::state.eq(state),
        deliveries::lease_owner.eq(None::<String>),
        deliveries::lease_until.eq(None::<NaiveDateTime>),
        deliveries::next_attempt_at.eq(next_attempt),
        deliveries::attempts.eq(attempts),
        deliveries::last_reply.eq(truncate(reply)),
    ))
    .execute(conn)?;
    Ok(updated == 1)
}

/// A temporary outcome on the last allowed attempt becomes final.
fn give_up_if_exhausted(claimed: &Claimed, outcome: &Outcome, policy: RetryPolicy) -> Outcome {
    match outcome {
        Outcome::Deferred(reply) | Outcome::Unknown(reply)
            if claimed.attempts >= policy.max_attempts =>
        {
            Outcome::Failed(format!(
                "gave up after {} attempts: {reply}",
                claimed.attempts
            ))
        }
        other => other.clone(),
    }
}

/// A server's or provider's reply as stored: at most 1,000 characters, and
/// without NUL characters, which PostgreSQL refuses in text (a reply carrying
/// one would fail its batch's outcome write on every retry).
fn truncate(text: &str) -> String {
    first_chars(text, 1000).replace('\0', "")
}

/// Extends the leases of the deliveries among `ids` that `owner` still holds to
/// `lease` from now; returns those renewed.
pub fn renew(
    conn: &mut DbConnection,
    owner: &str,
    ids: &[i64],
    lease: Duration,
) -> Result<Vec<i64>> {
    backend::renew_leases(conn, owner, ids, now() + lease)
}

/// Deliveries whose lease ran out (their worker died or stalled) become `unknown`
/// and due now, so they are re-sent. Returns how many.
pub fn reap(conn: &mut DbConnection) -> Result<usize> {
    backend::expire_leases(conn, now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_six_hours() {
        let policy = RetryPolicy {
            base: Duration::seconds(60),
            max_attempts: 8,
        };
        assert_eq!(policy.delay(1), Duration::seconds(60));
        assert_eq!(policy.delay(3), Duration::seconds(240));
        assert_eq!(policy.delay(30), Duration::hours(6));
    }

    #[test]
    fn stored_replies_are_capped_and_lose_nul_characters() {
        assert_eq!(truncate("550 user\0unknown"), "550 userunknown");
        let long = "é".repeat(1500);
        assert_eq!(truncate(&long).chars().count(), 1000);
    }
}
