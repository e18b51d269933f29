//! Double opt-in: the confirmation mail for pending subscriptions and the signed
//! link in it. The link carries the subscriptions' confirmation tokens and an
//! expiry, signed with the installation's link key, so it can be neither forged
//! nor stretched; following it confirms every subscription it names.

use chrono::{Duration, NaiveDateTime};

use super::links::{LinkSigner, Purpose};
use super::lists::List;
use super::messages::NewMessage;
use super::notices;
use super::sends::{Enqueued, To};
use super::subscriptions::{self, Confirmed};
use super::{Origin, now, recipients::RecipientKey};
use crate::db::DbConnection;
use crate::{Error, Result};

/// How long a confirmation link works.
pub const VALIDITY: Duration = Duration::days(7);

/// The sender of a confirmation mail when the request names one (MailUp's
/// `Dynsndmail` / `dynsndname`); otherwise the list's sender is used.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SenderOverride {
    pub email: String,
    pub name: String,
}

/// What a confirmation mail is about.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// The list whose confirmation message is used.
    pub list: &'a List,
    pub recipient: RecipientKey,
    /// The confirmation tokens of every subscription the mail confirms.
    pub tokens: Vec<String>,
    pub sender: Option<SenderOverride>,
    /// The confirmation page the link leads to, e.g.
    /// `https://news.example.com/confirm`.
    pub confirm_page: &'a str,
}

/// Puts the confirmation mail in the outbox (system lane), in the caller's
/// transaction, so a pending subscription never exists without its mail.
pub fn enqueue(
    conn: &mut DbConnection,
    signer: &LinkSigner,
    account_id: i64,
    request: &Request<'_>,
) -> Result<Enqueued> {
    let message_id = confirmation_message(conn, account_id, request.list, request.sender.as_ref())?;
    let link = format!(
        "{}?t={}",
        request.confirm_page,
        link_token(signer, &request.tokens, now() + VALIDITY)
    );
    let mut params = serde_json::Map::new();
    params.insert("confirm_url".into(), link.into());
    notices::enqueue_system(
        conn,
        account_id,
        message_id,
        To::Recipient(request.recipient.clone()),
        params,
    )
}

/// How many held confirmation mails one transaction enqueues.
const HELD_BATCH: i64 = 500;

/// Sends the confirmation mails held back for the list's pending
/// subscriptions (imports with `ConfirmEmail`, which MailUp queued for the
/// console): each gets a fresh token and the list's confirmation mail. Once
/// none is left, the list's finished imports that asked for confirmations
/// report them sent. One batch per transaction, so a large import does not
/// hold the database; returns how many mails were enqueued.
pub fn send_held(
    db: &crate::db::Db,
    signer: &LinkSigner,
    account_id: i64,
    list_number: i64,
    confirm_page: &str,
) -> Result<usize> {
    let mut total = 0;
    loop {
        let (sent, last) = db.write_blocking(|conn| {
            let list = super::lists::get(conn, account_id, list_number)?;
            let held = subscriptions::held_confirmations(conn, account_id, list.id, HELD_BATCH)?;
            let mut sent = 0;
            for one in &held {
                let Some(token) =
                    subscriptions::token_for_held(conn, account_id, one.subscription_id)?
                else {
                    continue;
                };
                sent += 1;
                enqueue(
                    conn,
                    signer,
                    account_id,
                    &Request {
                        list: &list,
                        recipient: RecipientKey::Email(one.email.clone()),
                        tokens: vec![token],
                        sender: None,
                        confirm_page,
                    },
                )?;
            }
            let last = (held.len() as i64) < HELD_BATCH;
            if last {
                super::imports::mark_confirmations_sent(conn, account_id, list.id)?;
            }
            Ok((sent, last))
        })?;
        total += sent;
        if last {
            return Ok(total);
        }
    }
}

/// The signed link token: `tokens joined by ',' | expiry as Unix seconds`.
pub fn link_token(signer: &LinkSigner, tokens: &[String], expires_at: NaiveDateTime) -> String {
    let payload = format!("{}|{}", tokens.join(","), expires_at.and_utc().timestamp());
    signer.sign(Purpose::Confirm, &payload)
}

/// Why a confirmation link was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Not made by us, or altered.
    Forged,
    Expired,
    /// Genuine, but its subscriptions no longer wait for it (unsubscribed since).
    Unknown,
}

/// Follows a confirmation link: every subscription it names becomes active.
pub fn follow(
    conn: &mut DbConnection,
    signer: &LinkSigner,
    link_token: &str,
    origin: &Origin,
) -> Result<Result<Vec<Confirmed>, Refused>> {
    let Ok(payload) = signer.verify(Purpose::Confirm, link_token) else {
        return Ok(Err(Refused::Forged));
    };
    let Some((tokens, expiry)) = payload.rsplit_once('|') else {
        return Ok(Err(Refused::Forged));
    };
    let Ok(expiry) = expiry.parse::<i64>() else {
        return Ok(Err(Refused::Forged));
    };
    if now().and_utc().timestamp() > expiry {
        return Ok(Err(Refused::Expired));
    }
    let mut confirmed = Vec::new();
    for token in tokens.split(',').filter(|t| !t.is_empty()) {
        match subscriptions::confirm(conn, token, origin) {
            Ok(done) => confirmed.push(done),
            Err(Error::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    if confirmed.is_empty() {
        return Ok(Err(Refused::Unknown));
    }
    Ok(Ok(confirmed))
}

/// The list's confirmation message, created with a default text on first use
/// (one per sender override, since the sender is part of the message).
fn confirmation_message(
    conn: &mut DbConnection,
    account_id: i64,
    list: &List,
    sender: Option<&SenderOverride>,
) -> Result<i64> {
    let key = match sender {
        None => format!("confirmation:list:{}", list.number),
        Some(s) => format!("confirmation:list:{}:{}:{}", list.number, s.email, s.name),
    };
    notices::system_message(conn, account_id, &key, || {
        let mut message = NewMessage::email(
            "Please confirm your subscription to {{ list.name }}",
            "<p>Hello,</p>\n<p>please confirm your subscription to <b>{{ list.name }}</b> by \
             following this link:</p>\n<p><a href=\"{{ params.confirm_url }}\">Confirm my \
             subscription</a></p>\n<p>If you did not ask for it, ignore this message; you will \
             not be subscribed.</p>",
        );
        message.list = Some(list.number);
        if let Some(sender) = sender {
            message.from_email = sender.email.clone();
            message.from_name = sender.name.clone();
        }
        message
    })
}
