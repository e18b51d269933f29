//! The order of an account's campaign queue (MailUp's SetNewsletterQueueOrder).
//! The queue is the account's unfinished e-mail campaigns (draft, scheduled,
//! sending, paused), in creation order until someone moves one. Moving one
//! writes every queued campaign's position; from then on the sender takes
//! them one after another in that order: a campaign waits while one ahead of
//! it is sending (the claim in `db::backend::claim_deliveries`). A campaign
//! created after the last move has no position and is not held.

use diesel::prelude::*;

use super::messages::MessageKind;
use super::sends::{self, SendStatus};
use crate::db::schema::send_queue_positions;
use crate::db::{DbConnection, write_transaction};
use crate::{Error, Result};

const QUEUED: [SendStatus; 4] = [
    SendStatus::Draft,
    SendStatus::Scheduled,
    SendStatus::Sending,
    SendStatus::Paused,
];

/// The account's queued campaigns in queue order.
pub fn order(conn: &mut DbConnection, account_id: i64) -> Result<Vec<i64>> {
    let ids = sends::campaigns_in(conn, account_id, MessageKind::Email, &QUEUED)?;
    let positions: Vec<(i64, i64)> = send_queue_positions::table
        .filter(send_queue_positions::account_id.eq(account_id))
        .select((
            send_queue_positions::send_id,
            send_queue_positions::position,
        ))
        .load(conn)?;
    let position = |id: i64| {
        positions
            .iter()
            .find(|(send, _)| *send == id)
            .map_or(i64::MAX, |(_, p)| *p)
    };
    let mut ordered = ids;
    // Stable: campaigns without a position keep their creation order, last.
    ordered.sort_by_key(|&id| position(id));
    Ok(ordered)
}

/// Moves a queued campaign one place up (sooner) or down; at either end it
/// stays. Returns the queue's new order.
pub fn move_one(
    conn: &mut DbConnection,
    account_id: i64,
    send_id: i64,
    up: bool,
) -> Result<Vec<i64>> {
    write_transaction(conn, |conn| {
        let mut ordered = order(conn, account_id)?;
        let at = ordered
            .iter()
            .position(|&id| id == send_id)
            .ok_or(Error::NotFound("send"))?;
        let other = if up { at.checked_sub(1) } else { Some(at + 1) };
        if let Some(other) = other.filter(|&o| o < ordered.len()) {
            ordered.swap(at, other);
        }
        diesel::delete(
            send_queue_positions::table.filter(send_queue_positions::account_id.eq(account_id)),
        )
        .execute(conn)?;
        for (position, &id) in ordered.iter().enumerate() {
            diesel::insert_into(send_queue_positions::table)
                .values((
                    send_queue_positions::send_id.eq(id),
                    send_queue_positions::account_id.eq(account_id),
                    send_queue_positions::position.eq(position as i64 + 1),
                ))
                .execute(conn)?;
        }
        Ok(ordered)
    })
}
