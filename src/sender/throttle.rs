//! Token buckets for rate limits (per provider, per recipient domain), kept in the
//! database so every process shares them and a restart does not refill them.

use chrono::Duration;
use diesel::prelude::*;

use crate::Result;
use crate::db::schema::throttles;
use crate::db::{DbConnection, backend, write_transaction};
use crate::domain::now;

/// Takes up to `wanted` tokens from the bucket that refills at `rate` per second
/// (holding at most one second's worth, and at least one token). Returns how
/// many were granted and, if fewer than wanted, when the next token is due.
pub fn take(
    conn: &mut DbConnection,
    bucket: &str,
    rate: f64,
    wanted: usize,
) -> Result<(usize, Duration)> {
    let capacity = rate.max(1.0);
    write_transaction(conn, |conn| {
        let stamp = now();
        backend::lock_throttle(conn, bucket, capacity, stamp)?;
        let (tokens, updated_at): (f64, chrono::NaiveDateTime) = throttles::table
            .find(bucket)
            .select((throttles::tokens, throttles::updated_at))
            .first(conn)?;
        let elapsed = (stamp - updated_at)
            .num_microseconds()
            .unwrap_or(i64::MAX)
            .max(0) as f64
            / 1e6;
        let available = (tokens + elapsed * rate).min(capacity);
        let granted = (available.floor().max(0.0) as usize).min(wanted);
        let left = available - granted as f64;
        diesel::update(throttles::table.find(bucket))
            .set((throttles::tokens.eq(left), throttles::updated_at.eq(stamp)))
            .execute(conn)?;
        let wait_seconds = if rate > 0.0 {
            (1.0 - left.fract()).max(0.0) / rate
        } else {
            60.0
        };
        Ok((
            granted,
            Duration::milliseconds((wait_seconds * 1000.0).ceil() as i64),
        ))
    })
}
