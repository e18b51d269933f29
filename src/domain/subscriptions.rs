//! Subscriptions (recipient × list): pending, subscribed or unsubscribed, with
//! the reason for an unsubscribe, the double opt-in confirmation token, list
//! counters kept in step, and every change written to the history.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::fields::FieldRef;
use super::history::{self, Change};
use super::lists::{self, List};
use super::recipients::{self, Contact, MessageChannel, Recipient, RecipientKey};
use super::{Origin, groups, list_blocklist, now, secrets};
use crate::db::schema::{lists as lists_table, recipients as recipients_table, subscriptions};
use crate::db::{DbConnection, Shared, backend, on_backend, write_transaction};
use crate::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Waiting for the recipient to confirm (double opt-in).
    Pending,
    Subscribed,
    Unsubscribed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Subscribed => "subscribed",
            Status::Unsubscribed => "unsubscribed",
        }
    }

    fn parse(text: &str) -> Result<Status> {
        match text {
            "pending" => Ok(Status::Pending),
            "subscribed" => Ok(Status::Subscribed),
            "unsubscribed" => Ok(Status::Unsubscribed),
            other => Err(Error::Internal(format!(
                "unknown subscription status {other:?}"
            ))),
        }
    }
}

/// Why a subscription ended, with MailUp's reason codes (its unsubscriber export
/// and console use them; other protocols map onto them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnsubscribeReason {
    /// Changed by an operator or an API call (`0`, also written `01`).
    AdminConsole,
    /// The recipient followed the unsubscribe link (`2`).
    Link,
    /// Imported as unsubscribed (`4`).
    Imported,
    HardBounce,
    /// Spam complaint through a feedback loop (`16`).
    Complaint,
    /// The mailbox provider's List-Unsubscribe button, by HTTP (`32`).
    ListUnsubscribeLink,
    /// List-Unsubscribe by mail (`64`).
    ListUnsubscribeMailto,
    BadSyntax,
    BadDomain,
    AbandonedMailbox,
    Inactive,
    Blocked,
    RepeatedSoftBounces,
    BlockedKnownSpammer,
    BlockedSpamContent,
    BlockedMtaConfiguration,
}

impl UnsubscribeReason {
    const ALL: [UnsubscribeReason; 16] = [
        UnsubscribeReason::AdminConsole,
        UnsubscribeReason::Link,
        UnsubscribeReason::Imported,
        UnsubscribeReason::HardBounce,
        UnsubscribeReason::Complaint,
        UnsubscribeReason::ListUnsubscribeLink,
        UnsubscribeReason::ListUnsubscribeMailto,
        UnsubscribeReason::BadSyntax,
        UnsubscribeReason::BadDomain,
        UnsubscribeReason::AbandonedMailbox,
        UnsubscribeReason::Inactive,
        UnsubscribeReason::Blocked,
        UnsubscribeReason::RepeatedSoftBounces,
        UnsubscribeReason::BlockedKnownSpammer,
        UnsubscribeReason::BlockedSpamContent,
        UnsubscribeReason::BlockedMtaConfiguration,
    ];

    pub fn code(self) -> i32 {
        match self {
            UnsubscribeReason::AdminConsole => 0,
            UnsubscribeReason::Link => 2,
            UnsubscribeReason::Imported => 4,
            UnsubscribeReason::HardBounce => 8,
            UnsubscribeReason::Complaint => 16,
            UnsubscribeReason::ListUnsubscribeLink => 32,
            UnsubscribeReason::ListUnsubscribeMailto => 64,
            UnsubscribeReason::BadSyntax => 81,
            UnsubscribeReason::BadDomain => 82,
            UnsubscribeReason::AbandonedMailbox => 83,
            UnsubscribeReason::Inactive => 128,
            UnsubscribeReason::Blocked => 256,
            UnsubscribeReason::RepeatedSoftBounces => 512,
            UnsubscribeReason::BlockedKnownSpammer => 2561,
            UnsubscribeReason::BlockedSpamContent => 2562,
            UnsubscribeReason::BlockedMtaConfiguration => 2563,
        }
    }

    /// Reads a code as written in MailUp files, where `0` also appears as `01`.
    pub fn from_code(code: &str) -> Option<UnsubscribeReason> {
        let code = code.trim();
        if code == "01" {
            return Some(UnsubscribeReason::AdminConsole);
        }
        UnsubscribeReason::from_number(code.parse().ok()?)
    }

    /// The reason a stored code stands for.
    pub fn from_number(value: i32) -> Option<UnsubscribeReason> {
        UnsubscribeReason::ALL
            .into_iter()
            .find(|r| r.code() == value)
    }
}

#[derive(Debug, Clone, Queryable, Selectable, PartialEq)]
#[diesel(table_name = subscriptions)]
pub struct Subscription {
    pub id: i64,
    pub account_id: i64,
    pub list_id: i64,
    pub recipient_id: i64,
    status: String,
    pub source: String,
    unsubscribe_reason: Option<i32>,
    pub created_at: NaiveDateTime,
    pub status_changed_at: NaiveDateTime,
    pub confirmed_at: Option<NaiveDateTime>,
    pub unsubscribed_at: Option<NaiveDateTime>,
}

impl Subscription {
    pub fn status(&self) -> Result<Status> {
        Status::parse(&self.status)
    }

    pub fn unsubscribe_reason(&self) -> Option<UnsubscribeReason> {
        self.unsubscribe_reason
            .and_then(UnsubscribeReason::from_number)
    }
}

#[derive(Insertable)]
#[diesel(table_name = subscriptions)]
pub struct NewSubscription {
    pub account_id: i64,
    pub list_id: i64,
    pub recipient_id: i64,
    pub status: &'static str,
    pub source: String,
    pub confirmation_token_hash: Option<String>,
    pub created_at: NaiveDateTime,
    pub status_changed_at: NaiveDateTime,
    pub confirmed_at: Option<NaiveDateTime>,
}

/// A request to subscribe someone to a list.
#[derive(Debug, Clone)]
pub struct Subscribe {
    /// The list's public number.
    pub list: i64,
    pub contact: Contact,
    pub fields: Vec<(FieldRef, String)>,
    /// Public numbers of groups of that list to join.
    pub groups: Vec<i64>,
    /// Ask for confirmation first; `None` uses the list's setting.
    pub double_opt_in: Option<bool>,
    /// Where the subscription came from (form, import, integration name).
    pub source: String,
    pub origin: Origin,
}

/// What a subscribe did.
#[derive(Debug, Clone, PartialEq)]
pub struct Subscribed {
    pub recipient_id: i64,
    pub subscription_id: i64,
    pub recipient_created: bool,
    /// The status before the request (`None`: not on the list).
    pub previous: Option<Status>,
    pub status: Status,
    /// Set when the subscription is pending: the token for the confirmation link
    /// (only its digest is stored).
    pub confirmation_token: Option<String>,
}

impl Subscribed {
    pub fn was_already_subscribed(&self) -> bool {
        self.previous == Some(Status::Subscribed)
    }
}

const CONFIRMATION_TOKEN_LENGTH: usize = 32;

/// Subscribes a recipient (created if new) to a list, directly or pending a
/// confirmation. Repeating it never creates a second recipient or subscription; an
/// already subscribed recipient stays subscribed (fields and groups are still
/// applied). A pending one gets a fresh confirmation token.
pub fn subscribe(
    conn: &mut DbConnection,
    account_id: i64,
    request: &Subscribe,
) -> Result<Subscribed> {
    write_transaction(conn, |conn| {
        let list = lists::get(conn, account_id, request.list)?;
        let groups = groups::resolve_in_list(conn, account_id, list.id, &request.groups)?;
        subscribe_in(conn, &list, &groups, request, None)
    })
}

/// [`subscribe`] to a list and groups of it that the caller has looked up
/// (`request.list` and `request.groups` are not read again), within the
/// caller's writing transaction: the one savepoint is the caller's. Given a
/// write group's shared values, a new subscription's list counts are left to
/// them (written when the group commits, see [`Shared::add_list_counts`]).
pub(crate) fn subscribe_in(
    conn: &mut DbConnection,
    list: &List,
    groups: &[groups::Group],
    request: &Subscribe,
    group: Option<&mut Shared>,
) -> Result<Subscribed> {
    let account_id = list.account_id;
    let (recipient, recipient_created) =
        recipients::find_or_create_in(conn, account_id, &request.contact)?;
    let channel = if request.contact.email.is_some() {
        MessageChannel::Email
    } else {
        MessageChannel::Sms
    };
    let allowed = match channel {
        MessageChannel::Email => recipient.email_allowed(),
        MessageChannel::Sms => recipient.sms_allowed(),
    };
    let barred_from_list = match &recipient.email {
        Some(email) if channel == MessageChannel::Email => {
            list_blocklist::contains(conn, list.id, &email.to_lowercase())?
        }
        _ => false,
    };
    if !allowed || barred_from_list {
        return Err(Error::Blocklisted);
    }
    recipients::store_fields(conn, &recipient, &request.fields, !recipient_created)?;

    let target = if request.double_opt_in.unwrap_or(list.double_opt_in) {
        Status::Pending
    } else {
        Status::Subscribed
    };
    let token =
        (target == Status::Pending).then(|| secrets::random_token(CONFIRMATION_TOKEN_LENGTH));
    let stamp = now();
    let inserted = backend::insert_subscription_if_absent(
        conn,
        &NewSubscription {
            account_id,
            list_id: list.id,
            recipient_id: recipient.id,
            status: target.as_str(),
            source: request.source.clone(),
            confirmation_token_hash: token.as_deref().map(secrets::token_digest),
            created_at: stamp,
            status_changed_at: stamp,
            confirmed_at: (target == Status::Subscribed).then_some(stamp),
        },
    )?;
    let (subscription_id, previous) = match inserted {
        Some(id) => {
            match group {
                Some(shared) => shared.add_list_counts(list.id, count_changes(None, target)),
                None => adjust_counts(conn, list.id, None, target)?,
            }
            history::record(
                conn,
                &Change {
                    account_id,
                    subscription_id: id,
                    list_id: list.id,
                    recipient_id: recipient.id,
                    from: None,
                    to: target,
                    reason: None,
                    origin: &request.origin,
                    note: &request.source,
                },
            )?;
            (id, None)
        }
        None => {
            let subscription = locked(conn, list, recipient.id)?;
            let current = subscription.status()?;
            match (current, target) {
                (Status::Subscribed, _) => {}
                (Status::Pending, Status::Pending) => {
                    set_token(conn, subscription.id, token.as_deref())?;
                }
                (_, _) => {
                    transition(
                        conn,
                        &subscription,
                        target,
                        None,
                        &request.origin,
                        &request.source,
                    )?;
                    set_token(conn, subscription.id, token.as_deref())?;
                }
            }
            (subscription.id, Some(current))
        }
    };
    for group in groups {
        groups::add_member(conn, group, recipient.id)?;
    }
    let status = if previous == Some(Status::Subscribed) {
        Status::Subscribed
    } else {
        target
    };
    Ok(Subscribed {
        recipient_id: recipient.id,
        subscription_id,
        recipient_created,
        previous,
        status,
        confirmation_token: if status == Status::Pending {
            token
        } else {
            None
        },
    })
}

/// What a confirmation did.
#[derive(Debug, Clone, PartialEq)]
pub struct Confirmed {
    pub account_id: i64,
    pub list_number: i64,
    pub recipient_id: i64,
    /// The link had already been used; nothing changed.
    pub already_confirmed: bool,
}

/// Confirms the pending subscription a confirmation token belongs to.
pub fn confirm(conn: &mut DbConnection, token: &str, origin: &Origin) -> Result<Confirmed> {
    let digest = secrets::token_digest(token);
    write_transaction(conn, |conn| {
        let id: i64 = subscriptions::table
            .filter(subscriptions::confirmation_token_hash.eq(&digest))
            .select(subscriptions::id)
            .first(conn)
            .optional()?
            .ok_or(Error::NotFound("confirmation token"))?;
        backend::lock_subscription(conn, id)?;
        let subscription: Subscription = subscriptions::table
            .find(id)
            .select(Subscription::as_select())
            .first(conn)?;
        let list = lists::by_id(conn, subscription.account_id, subscription.list_id)?;
        let already_confirmed = match subscription.status()? {
            Status::Pending => {
                transition(
                    conn,
                    &subscription,
                    Status::Subscribed,
                    None,
                    origin,
                    "confirmed",
                )?;
                false
            }
            Status::Subscribed => true,
            Status::Unsubscribed => return Err(Error::NotFound("confirmation token")),
        };
        Ok(Confirmed {
            account_id: subscription.account_id,
            list_number: list.number,
            recipient_id: subscription.recipient_id,
            already_confirmed,
        })
    })
}

/// What an unsubscribe did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unsubscribed {
    /// The subscription ended; it had this status.
    Done {
        previous: Status,
    },
    AlreadyUnsubscribed,
    /// The recipient is unknown or not on the list.
    NotOnList,
}

/// Ends a recipient's subscription to a list, with a reason. Idempotent.
pub fn unsubscribe(
    conn: &mut DbConnection,
    account_id: i64,
    list_number: i64,
    recipient: &RecipientKey,
    reason: UnsubscribeReason,
    origin: &Origin,
) -> Result<Unsubscribed> {
    unsubscribe_noted(conn, account_id, list_number, recipient, reason, origin, "")
}

/// [`unsubscribe`] with the caller's words for it (a reason given as free
/// text) kept in the history.
pub fn unsubscribe_noted(
    conn: &mut DbConnection,
    account_id: i64,
    list_number: i64,
    recipient: &RecipientKey,
    reason: UnsubscribeReason,
    origin: &Origin,
    note: &str,
) -> Result<Unsubscribed> {
    write_transaction(conn, |conn| {
        let list = lists::get(conn, account_id, list_number)?;
        let Some(recipient) = recipients::find(conn, account_id, recipient)? else {
            return Ok(Unsubscribed::NotOnList);
        };
        let Some(subscription) = find_locked(conn, &list, recipient.id)? else {
            return Ok(Unsubscribed::NotOnList);
        };
        match subscription.status()? {
            Status::Unsubscribed => Ok(Unsubscribed::AlreadyUnsubscribed),
            previous => {
                transition(
                    conn,
                    &subscription,
                    Status::Unsubscribed,
                    Some(reason),
                    origin,
                    note,
                )?;
                Ok(Unsubscribed::Done { previous })
            }
        }
    })
}

/// Ends every subscription of a recipient (erase, global opt-out).
pub(crate) fn end_all(
    conn: &mut DbConnection,
    account_id: i64,
    recipient_id: i64,
    reason: UnsubscribeReason,
    origin: &Origin,
    note: &str,
) -> Result<usize> {
    let ids: Vec<i64> = subscriptions::table
        .filter(subscriptions::account_id.eq(account_id))
        .filter(subscriptions::recipient_id.eq(recipient_id))
        .filter(subscriptions::status.ne(Status::Unsubscribed.as_str()))
        .select(subscriptions::id)
        .load(conn)?;
    for id in &ids {
        backend::lock_subscription(conn, *id)?;
        let subscription: Subscription = subscriptions::table
            .find(id)
            .select(Subscription::as_select())
            .first(conn)?;
        if subscription.status()? != Status::Unsubscribed {
            transition(
                conn,
                &subscription,
                Status::Unsubscribed,
                Some(reason),
                origin,
                note,
            )?;
        }
    }
    Ok(ids.len())
}

/// Takes a recipient off a list altogether (ExactTarget's delete from a list):
/// the subscription ends (recorded in the history like any unsubscribe), then
/// its row and the recipient's groups of that list go. `false` when the
/// recipient was not on the list.
pub fn remove(
    conn: &mut DbConnection,
    account_id: i64,
    list_number: i64,
    recipient: &RecipientKey,
    origin: &Origin,
) -> Result<bool> {
    write_transaction(conn, |conn| {
        let list = lists::get(conn, account_id, list_number)?;
        let Some(recipient) = recipients::find(conn, account_id, recipient)? else {
            return Ok(false);
        };
        let Some(subscription) = find_locked(conn, &list, recipient.id)? else {
            return Ok(false);
        };
        if subscription.status()? != Status::Unsubscribed {
            transition(
                conn,
                &subscription,
                Status::Unsubscribed,
                Some(UnsubscribeReason::AdminConsole),
                origin,
                "removed from the list",
            )?;
        }
        for group in groups::memberships(conn, account_id, list.id, recipient.id)? {
            groups::remove_member(conn, account_id, group.id, recipient.id)?;
        }
        diesel::delete(subscriptions::table.find(subscription.id)).execute(conn)?;
        diesel::update(lists_table::table.find(list.id))
            .set(lists_table::unsubscribed_count.eq(lists_table::unsubscribed_count - 1))
            .execute(conn)?;
        Ok(true)
    })
}

/// A global opt-out (ExactTarget's master unsubscribe): the address, created if
/// unknown so it stays out of future imports and sends, is blocked for e-mail
/// and every subscription of it ends. Returns the recipient id.
pub fn master_unsubscribe(
    conn: &mut DbConnection,
    account_id: i64,
    email: &str,
    origin: &Origin,
) -> Result<i64> {
    write_transaction(conn, |conn| {
        let (recipient, _) = recipients::find_or_create(conn, account_id, &Contact::email(email))?;
        recipients::set_blocklisted(conn, account_id, recipient.id, MessageChannel::Email, true)?;
        end_all(
            conn,
            account_id,
            recipient.id,
            UnsubscribeReason::AdminConsole,
            origin,
            "master unsubscribe",
        )?;
        Ok(recipient.id)
    })
}

/// A change of group membership within one list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupChange {
    /// Public group numbers (all of the member's list).
    pub groups: Vec<i64>,
    /// Replace the member's groups in this list instead of adding to them.
    pub replace: bool,
}

/// Updates fields and group memberships of a recipient who is on the list (in any
/// status). A recipient not on the list is `NotFound("subscription")`.
pub fn update_member(
    conn: &mut DbConnection,
    account_id: i64,
    list_number: i64,
    recipient: &RecipientKey,
    fields: &[(FieldRef, String)],
    group_change: Option<&GroupChange>,
) -> Result<()> {
    write_transaction(conn, |conn| {
        let list = lists::get(conn, account_id, list_number)?;
        let recipient = recipients::find(conn, account_id, recipient)?
            .ok_or(Error::NotFound("subscription"))?;
        find_locked(conn, &list, recipient.id)?.ok_or(Error::NotFound("subscription"))?;
        recipients::store_fields(conn, &recipient, fields, true)?;
        if let Some(change) = group_change {
            let wanted = groups::resolve_in_list(conn, account_id, list.id, &change.groups)?;
            if change.replace {
                for current in groups::memberships(conn, account_id, list.id, recipient.id)? {
                    if !wanted.iter().any(|g| g.id == current.id) {
                        groups::remove_member(conn, account_id, current.id, recipient.id)?;
                    }
                }
            }
            for group in &wanted {
                groups::add_member(conn, group, recipient.id)?;
            }
        }
        Ok(())
    })
}

/// The recipient's status on the list; `None` if unknown or not on the list.
pub fn status(
    conn: &mut DbConnection,
    account_id: i64,
    list_number: i64,
    recipient: &RecipientKey,
) -> Result<Option<Status>> {
    let list = lists::get(conn, account_id, list_number)?;
    let Some(recipient) = recipients::find(conn, account_id, recipient)? else {
        return Ok(None);
    };
    find(conn, &list, recipient.id)?
        .map(|s| s.status())
        .transpose()
}

/// A list member as listed.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub recipient: Recipient,
    pub subscription: Subscription,
}

/// One page of a list's members, optionally of one status, in recipient id order:
/// pass the last recipient id of a page as `after` to get the next.
pub fn members(
    conn: &mut DbConnection,
    account_id: i64,
    list_number: i64,
    status: Option<Status>,
    after: i64,
    limit: i64,
) -> Result<Vec<Member>> {
    let list = lists::get(conn, account_id, list_number)?;
    let mut query = subscriptions::table
        .inner_join(recipients_table::table)
        .filter(subscriptions::account_id.eq(account_id))
        .filter(subscriptions::list_id.eq(list.id))
        .filter(subscriptions::recipient_id.gt(after))
        .into_boxed();
    if let Some(status) = status {
        query = query.filter(subscriptions::status.eq(status.as_str()));
    }
    let rows: Vec<(Subscription, Recipient)> = query
        .order(subscriptions::recipient_id)
        .limit(limit.clamp(1, 10_000))
        .select((Subscription::as_select(), Recipient::as_select()))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(subscription, recipient)| Member {
            recipient,
            subscription,
        })
        .collect())
}

/// Every subscription of a recipient with its list's public number.
pub fn of_recipient(
    conn: &mut DbConnection,
    account_id: i64,
    recipient_id: i64,
) -> Result<Vec<(i64, Subscription)>> {
    Ok(subscriptions::table
        .inner_join(lists_table::table)
        .filter(subscriptions::account_id.eq(account_id))
        .filter(subscriptions::recipient_id.eq(recipient_id))
        .order(lists_table::number)
        .select((lists_table::number, Subscription::as_select()))
        .load(conn)?)
}

fn find(conn: &mut DbConnection, list: &List, recipient_id: i64) -> Result<Option<Subscription>> {
    Ok(on_backend!(conn, |c| subscriptions::table
        .filter(subscriptions::account_id.eq(list.account_id))
        .filter(subscriptions::list_id.eq(list.id))
        .filter(subscriptions::recipient_id.eq(recipient_id))
        .select(Subscription::as_select())
        .first(c)
        .optional())?)
}

/// The subscription, locked for this transaction, if it exists.
fn find_locked(
    conn: &mut DbConnection,
    list: &List,
    recipient_id: i64,
) -> Result<Option<Subscription>> {
    let Some(found) = find(conn, list, recipient_id)? else {
        return Ok(None);
    };
    backend::lock_subscription(conn, found.id)?;
    // Re-read: another transaction may have changed it before we got the lock.
    find(conn, list, recipient_id)
}

fn locked(conn: &mut DbConnection, list: &List, recipient_id: i64) -> Result<Subscription> {
    find_locked(conn, list, recipient_id)?.ok_or(Error::Internal("subscription vanished".into()))
}

/// A pending subscription whose confirmation mail was held back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub subscription_id: i64,
    pub email: String,
}

/// Up to `limit` pending subscriptions of the list (row id) that never had a
/// confirmation mail (no token: an import with `ConfirmEmail` leaves them so)
/// and whose recipient can get one (an address, not blocked, bounced or
/// erased), oldest first.
pub fn held_confirmations(
    conn: &mut DbConnection,
    account_id: i64,
    list_id: i64,
    limit: i64,
) -> Result<Vec<Held>> {
    use crate::db::schema::recipients;
    let rows: Vec<(i64, Option<String>)> = subscriptions::table
        .inner_join(recipients::table)
        .filter(subscriptions::account_id.eq(account_id))
        .filter(subscriptions::list_id.eq(list_id))
        .filter(subscriptions::status.eq(Status::Pending.as_str()))
        .filter(subscriptions::confirmation_token_hash.is_null())
        .filter(recipients::email.is_not_null())
        .filter(recipients::email_blocklisted.eq(false))
        .filter(recipients::bounced.eq(false))
        .filter(recipients::erased_at.is_null())
        .order(subscriptions::id)
        .limit(limit)
        .select((subscriptions::id, recipients::email))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(|(subscription_id, email)| {
            email.map(|email| Held {
                subscription_id,
                email,
            })
        })
        .collect())
}

/// Gives a held pending subscription (see [`held_confirmations`]) its
/// confirmation token, for the mail about to be sent; `None` when it is no
/// longer held (confirmed, or taken by a concurrent run meanwhile: the update
/// re-checks, so each held subscription gets one mail).
pub fn token_for_held(
    conn: &mut DbConnection,
    account_id: i64,
    subscription_id: i64,
) -> Result<Option<String>> {
    let token = secrets::random_token(CONFIRMATION_TOKEN_LENGTH);
    let changed = diesel::update(
        subscriptions::table
            .filter(subscriptions::account_id.eq(account_id))
            .filter(subscriptions::id.eq(subscription_id))
            .filter(subscriptions::status.eq(Status::Pending.as_str()))
            .filter(subscriptions::confirmation_token_hash.is_null()),
    )
    .set(subscriptions::confirmation_token_hash.eq(secrets::token_digest(&token)))
    .execute(conn)?;
    Ok((changed == 1).then_some(token))
}

fn set_token(conn: &mut DbConnection, subscription_id: i64, token: Option<&str>) -> Result<()> {
    diesel::update(subscriptions::table.find(subscription_id))
        .set(subscriptions::confirmation_token_hash.eq(token.map(secrets::token_digest)))
        .execute(conn)?;
    Ok(())
}

/// Moves a (locked) subscription to a new status: timestamps, reason, list
/// counters and history in one go.
fn transition(
    conn: &mut DbConnection,
    subscription: &Subscription,
    to: Status,
    reason: Option<UnsubscribeReason>,
    origin: &Origin,
    note: &str,
) -> Result<()> {
    let from = subscription.status()?;
    let stamp = now();
    let target = subscriptions::table.find(subscription.id);
    match to {
        Status::Subscribed => diesel::update(target)
            .set((
                subscriptions::status.eq(to.as_str()),
                subscriptions::status_changed_at.eq(stamp),
                subscriptions::confirmed_at.eq(Some(stamp)),
                subscriptions::unsubscribe_reason.eq(None::<i32>),
            ))
            .execute(conn)?,
        Status::Pending => diesel::update(target)
            .set((
                subscriptions::status.eq(to.as_str()),
                subscriptions::status_changed_at.eq(stamp),
                subscriptions::unsubscribe_reason.eq(None::<i32>),
            ))
            .execute(conn)?,
        Status::Unsubscribed => diesel::update(target)
            .set((
                subscriptions::status.eq(to.as_str()),
                subscriptions::status_changed_at.eq(stamp),
                subscriptions::unsubscribed_at.eq(Some(stamp)),
                subscriptions::unsubscribe_reason.eq(reason.map(UnsubscribeReason::code)),
                // A confirmation link must not resubscribe someone who left.
                subscriptions::confirmation_token_hash.eq(None::<String>),
            ))
            .execute(conn)?,
    };
    adjust_counts(conn, subscription.list_id, Some(from), to)?;
    history::record(
        conn,
        &Change {
            account_id: subscription.account_id,
            subscription_id: subscription.id,
            list_id: subscription.list_id,
            recipient_id: subscription.recipient_id,
            from: Some(from),
            to,
            reason,
            origin,
            note,
        },
    )
}

/// Keeps the list's per-status member counts in step with a status change.
fn adjust_counts(
    conn: &mut DbConnection,
    list_id: i64,
    from: Option<Status>,
    to: Status,
) -> Result<()> {
    backend::adjust_list_counts(conn, list_id, count_changes(from, to))
}

/// What a status change adds to a list's (subscribed, pending, unsubscribed)
/// counts.
fn count_changes(from: Option<Status>, to: Status) -> (i64, i64, i64) {
    let delta =
        |status: Status| -> i64 { i64::from(to == status) - i64::from(from == Some(status)) };
    (
        delta(Status::Subscribed),
        delta(Status::Pending),
        delta(Status::Unsubscribed),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_codes_round_trip_and_accept_01() {
        for reason in UnsubscribeReason::ALL {
            assert_eq!(
                UnsubscribeReason::from_code(&reason.code().to_string()),
                Some(reason)
            );
        }
        assert_eq!(
            UnsubscribeReason::from_code("01"),
            Some(UnsubscribeReason::AdminConsole)
        );
        assert_eq!(UnsubscribeReason::from_code("3"), None);
        assert_eq!(UnsubscribeReason::RepeatedSoftBounces.code(), 512);
    }
}
