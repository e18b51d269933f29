//! Unsubscribes that arrive through a message: the link in its body and the
//! RFC 8058 one-click POST of its `List-Unsubscribe` header. The signed token
//! names the delivery; the delivery leads to the recipient and the list the
//! message was sent for.

use diesel::prelude::*;

use super::events::{self, NewDeliveryEvent};
use super::links::{LinkSigner, Purpose};
use super::recipients::RecipientKey;
use super::subscriptions::{self, UnsubscribeReason, Unsubscribed};
use super::{Origin, lists, messages, now, sends};
use crate::Result;
use crate::db::DbConnection;
use crate::db::schema::deliveries;

/// How the recipient asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// The unsubscribe page reached from the message (MailUp reason 2).
    Link,
    /// The mailbox provider's one-click button (List-Unsubscribe-Post; reason 32).
    OneClick,
}

impl Via {
    fn reason(self) -> UnsubscribeReason {
        match self {
            Via::Link => UnsubscribeReason::Link,
            Via::OneClick => UnsubscribeReason::ListUnsubscribeLink,
        }
    }
}

/// What following an unsubscribe token did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Unsubscribed from this list.
    Unsubscribed { list_name: String },
    /// Was not subscribed (any more): nothing changed.
    AlreadyOut { list_name: String },
    /// A message not sent for a list (transactional): every subscription of the
    /// recipient ended.
    OptedOutEverywhere { lists: usize },
    /// The token is not ours or names nothing we know.
    Invalid,
}

/// The list a token's delivery was sent for, if genuine: for the page that asks
/// the recipient to confirm.
pub fn describe(
    conn: &mut DbConnection,
    signer: &LinkSigner,
    token: &str,
) -> Result<Option<String>> {
    let Some(target) = target(conn, signer, token)? else {
        return Ok(None);
    };
    Ok(Some(target.list.map(|l| l.name).unwrap_or_default()))
}

/// Unsubscribes the recipient of the token's delivery. Idempotent: a repeated
/// request changes nothing and records nothing.
pub fn apply(
    conn: &mut DbConnection,
    signer: &LinkSigner,
    token: &str,
    via: Via,
    origin: &Origin,
) -> Result<Outcome> {
    let Some(target) = target(conn, signer, token)? else {
        return Ok(Outcome::Invalid);
    };
    let Some(recipient_id) = target.recipient_id else {
        return Ok(Outcome::Invalid);
    };
    let outcome = match &target.list {
        Some(list) => {
            let done = subscriptions::unsubscribe(
                conn,
                target.account_id,
                list.number,
                &RecipientKey::Id(recipient_id),
                via.reason(),
                origin,
            )?;
            match done {
                Unsubscribed::Done { .. } => Outcome::Unsubscribed {
                    list_name: list.name.clone(),
                },
                Unsubscribed::AlreadyUnsubscribed | Unsubscribed::NotOnList => {
                    Outcome::AlreadyOut {
                        list_name: list.name.clone(),
                    }
                }
            }
        }
        None => {
            let ended = subscriptions::end_all(
                conn,
                target.account_id,
                recipient_id,
                via.reason(),
                origin,
                "unsubscribe from a message without a list",
            )?;
            Outcome::OptedOutEverywhere { lists: ended }
        }
    };
    let changed = matches!(
        outcome,
        Outcome::Unsubscribed { .. } | Outcome::OptedOutEverywhere { lists: 1.. }
    );
    if changed {
        events::record(
            conn,
            &[NewDeliveryEvent {
                account_id: target.account_id,
                send_id: target.send_id,
                delivery_id: target.delivery_id,
                recipient_id: Some(recipient_id),
                kind: "unsubscribed",
                detail: via.reason().code().to_string(),
                created_at: now(),
                ..NewDeliveryEvent::default()
            }],
        )?;
    }
    Ok(outcome)
}

struct Target {
    account_id: i64,
    send_id: i64,
    delivery_id: i64,
    recipient_id: Option<i64>,
    list: Option<lists::List>,
}

fn target(conn: &mut DbConnection, signer: &LinkSigner, token: &str) -> Result<Option<Target>> {
    let Ok(payload) = signer.verify(Purpose::Unsubscribe, token) else {
        return Ok(None);
    };
    let Ok(delivery_id) = payload.parse::<i64>() else {
        return Ok(None);
    };
    let found: Option<(i64, i64, Option<i64>)> = deliveries::table
        .find(delivery_id)
        .select((
            deliveries::account_id,
            deliveries::send_id,
            deliveries::recipient_id,
        ))
        .first(conn)
        .optional()?;
    let Some((account_id, send_id, recipient_id)) = found else {
        return Ok(None);
    };
    let send = sends::get(conn, account_id, send_id)?;
    let list_id = match sends::list_for(conn, &send, recipient_id)? {
        Some(id) => Some(id),
        None => messages::get(conn, account_id, send.message_id)?.list_id,
    };
    let list = list_id
        .map(|id| lists::by_id(conn, account_id, id))
        .transpose()?;
    Ok(Some(Target {
        account_id,
        send_id,
        delivery_id,
        recipient_id,
        list,
    }))
}
