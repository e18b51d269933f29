//! The append-only history of subscription status changes: who (actor), through
//! which interface (channel), when and why. The database refuses updates and
//! deletes of these rows.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::subscriptions::{Status, UnsubscribeReason};
use super::{Origin, now};
use crate::Result;
use crate::db::schema::subscription_history;
use crate::db::{DbConnection, backend};

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

/// A history row as stored.
pub struct NewEntry<'a> {
    pub account_id: i64,
    pub subscription_id: i64,
    pub list_id: i64,
    pub recipient_id: i64,
    pub from_status: Option<&'static str>,
    pub to_status: &'static str,
    pub reason: Option<i32>,
    pub actor: &'a str,
    pub channel: &'static str,
    pub note: &'a str,
    pub created_at: NaiveDateTime,
}

pub(crate) fn record(conn: &mut DbConnection, change: &Change) -> Result<()> {
    backend::insert_history(
        conn,
        &NewEntry {
            account_id: change.account_id,
            subscription_id: change.subscription_id,
            list_id: change.list_id,
            recipient_id: change.recipient_id,
            from_status: change.from.map(Status::as_str),
            to_status: change.to.as_str(),
            reason: change.reason.map(UnsubscribeReason::code),
            actor: &change.origin.actor,
            channel: change.origin.channel.as_str(),
            note: change.note,
            created_at: now(),
        },
    )
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

/// Which unsubscribes an export lists; empty lists mean all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnsubscriberFilter {
    /// Public list numbers.
    pub lists: Vec<i64>,
    pub from: Option<NaiveDateTime>,
    pub until: Option<NaiveDateTime>,
    /// Reason codes to include.
    pub reasons: Vec<i32>,
    /// Reason codes to leave out.
    pub excluded_reasons: Vec<i32>,
}

/// One unsubscribe, as MailUp's unsubscriber export lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscriber {
    pub email: Option<String>,
    pub mobile: Option<String>,
    pub list: i64,
    pub unsubscribed_at: NaiveDateTime,
    pub subscribed_at: NaiveDateTime,
    pub reason: Option<i32>,
}

/// The account's unsubscribes in the window, oldest first, with the
/// recipient's addresses and when the subscription began. An erased
/// recipient is left out (nothing identifies them any more).
pub fn unsubscribers(
    conn: &mut DbConnection,
    account_id: i64,
    filter: &UnsubscriberFilter,
) -> Result<Vec<Unsubscriber>> {
    use std::collections::HashMap;
    let mut list_numbers: HashMap<i64, i64> = HashMap::new();
    let mut found = Vec::new();
    let mut after = 0;
    loop {
        let page = unsubscribes(conn, account_id, filter.from, filter.until, after, 1_000)?;
        let Some(last) = page.last() else {
            return Ok(found);
        };
        after = last.id;
        for entry in page {
            let reason = entry.reason;
            let wanted = (filter.reasons.is_empty()
                || reason.is_some_and(|r| filter.reasons.contains(&r)))
                && !reason.is_some_and(|r| filter.excluded_reasons.contains(&r));
            if !wanted {
                continue;
            }
            let list = match list_numbers.get(&entry.list_id) {
                Some(number) => *number,
                None => match super::lists::by_id(conn, account_id, entry.list_id) {
                    Ok(list) => *list_numbers.entry(entry.list_id).or_insert(list.number),
                    Err(crate::Error::NotFound(_)) => continue,
                    Err(e) => return Err(e),
                },
            };
            if !filter.lists.is_empty() && !filter.lists.contains(&list) {
                continue;
            }
            let key = super::recipients::RecipientKey::Id(entry.recipient_id);
            let Some(recipient) =
                super::recipients::find(conn, account_id, &key)?.filter(|r| r.erased_at.is_none())
            else {
                continue;
            };
            let subscribed_at = crate::db::schema::subscriptions::table
                .filter(crate::db::schema::subscriptions::id.eq(entry.subscription_id))
                .filter(crate::db::schema::subscriptions::account_id.eq(account_id))
                .select(crate::db::schema::subscriptions::created_at)
                .first(conn)
                .optional()?
                .unwrap_or(entry.created_at);
            found.push(Unsubscriber {
                email: recipient.email,
                mobile: recipient.mobile_key,
                list,
                unsubscribed_at: entry.created_at,
                subscribed_at,
                reason,
            });
        }
    }
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
    // The status as a literal, so that the partial index of unsubscribes
    // serves the query (decisions 13 and 79).
    let unsubscribed = diesel::dsl::sql::<diesel::sql_types::Bool>(
        "subscription_history.to_status = 'unsubscribed'",
    );
    let mut query = subscription_history::table
        .filter(subscription_history::account_id.eq(account_id))
        .filter(unsubscribed)
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
