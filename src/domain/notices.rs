//! System notices: mails the system writes on its own account rather than the
//! account's campaigns: a list's welcome to a new member, and a note to an API
//! user's own address. Each uses a system message created with a default text
//! on first use (the account can edit it like any message), and goes out in the
//! system lane.

use diesel::prelude::*;

use super::lists::List;
use super::messages::{self, NewMessage};
use super::recipients::RecipientKey;
use super::sends::{self, Enqueued, NewSingle, SendKind, To};
use crate::Result;
use crate::db::schema::system_messages;
use crate::db::{DbConnection, backend};

/// Puts the list's welcome mail to a new member in the outbox.
pub fn welcome(
    conn: &mut DbConnection,
    account_id: i64,
    list: &List,
    recipient: RecipientKey,
) -> Result<Enqueued> {
    let key = format!("welcome:list:{}", list.number);
    let message_id = system_message(conn, account_id, &key, || {
        let mut message = NewMessage::email(
            "Welcome to {{ list.name }}",
            "<p>Hello,</p>\n<p>you are now subscribed to <b>{{ list.name }}</b>. Welcome!</p>\n\
             <p>You can unsubscribe at any time from any of its messages.</p>",
        );
        message.list = Some(list.number);
        message
    })?;
    enqueue_system(
        conn,
        account_id,
        message_id,
        To::Recipient(recipient),
        serde_json::Map::new(),
    )
}

/// Puts a plain-text note with this subject and text to `address` (an API
/// user's own) in the outbox. Both are taken as written, never as templates.
pub fn note_to(
    conn: &mut DbConnection,
    account_id: i64,
    address: &str,
    subject: &str,
    text: &str,
) -> Result<Enqueued> {
    let message_id = system_message(conn, account_id, "note:api-user", || {
        let mut message = NewMessage::email("{{ params.subject }}", "");
        message.html = None;
        message.text = Some("{{ params.text }}".into());
        message
    })?;
    let mut params = serde_json::Map::new();
    params.insert("subject".into(), subject.into());
    params.insert("text".into(), text.into());
    enqueue_system(
        conn,
        account_id,
        message_id,
        To::Address(address.to_string()),
        params,
    )
}

/// Puts one mail of a system message in the system lane of the outbox.
pub(super) fn enqueue_system(
    conn: &mut DbConnection,
    account_id: i64,
    message_id: i64,
    to: To,
    params: serde_json::Map<String, serde_json::Value>,
) -> Result<Enqueued> {
    sends::enqueue_single(
        conn,
        account_id,
        &NewSingle {
            kind: SendKind::System,
            message_id,
            to,
            params,
            idempotency_key: None,
        },
    )
}

/// The system message stored under `key`, created from `make` on first use.
pub(super) fn system_message(
    conn: &mut DbConnection,
    account_id: i64,
    key: &str,
    make: impl FnOnce() -> NewMessage,
) -> Result<i64> {
    if let Some(id) = find(conn, account_id, key)? {
        return Ok(id);
    }
    // Two first users at once must not both create it.
    backend::lock_account(conn, account_id)?;
    if let Some(id) = find(conn, account_id, key)? {
        return Ok(id);
    }
    let mut message = make();
    message.name = key.to_string();
    let created = messages::create(conn, account_id, &message)?;
    diesel::insert_into(system_messages::table)
        .values((
            system_messages::account_id.eq(account_id),
            system_messages::key.eq(key),
            system_messages::message_id.eq(created.id),
        ))
        .execute(conn)?;
    Ok(created.id)
}

fn find(conn: &mut DbConnection, account_id: i64, key: &str) -> Result<Option<i64>> {
    Ok(system_messages::table
        .filter(system_messages::account_id.eq(account_id))
        .filter(system_messages::key.eq(key))
        .select(system_messages::message_id)
        .first(conn)
        .optional()?)
}
