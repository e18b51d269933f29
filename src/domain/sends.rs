//! Sends: a message going out to an audience. Four kinds: campaigns (a list, some
//! of its groups, or explicit recipients; now or scheduled), single/transactional
//! messages, system messages (double opt-in confirmations, welcomes) and OTPs.
//! Campaigns go in the bulk lane; the rest in the priority lane, which workers
//! serve first and never behind a campaign.
//!
//! Deliveries (the outbox) are written here, in the caller's transaction, so an
//! accepted request is never lost. A list campaign is expanded into deliveries in
//! batches, resumably: the cursor (the last recipient id expanded) moves in the
//! same transaction as the batch it covers.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::messages::{self, Message, MessageKind};
use super::recipients::{self, Recipient, RecipientKey};
use super::{fields, groups, lists, now};
use crate::db::schema::{
    deliveries, group_members, recipient_field_values, recipients as recipients_table,
    send_excluded_groups, send_lists, send_senders, sends, subscriptions,
};
use crate::db::{DbConnection, MultiBackend, backend, write_transaction};
use crate::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendKind {
    Campaign,
    Single,
    System,
    Otp,
}

impl SendKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SendKind::Campaign => "campaign",
            SendKind::Single => "single",
            SendKind::System => "system",
            SendKind::Otp => "otp",
        }
    }

    pub fn lane(self) -> Lane {
        match self {
            SendKind::Campaign => Lane::Bulk,
            SendKind::Single | SendKind::System | SendKind::Otp => Lane::Priority,
        }
    }

    fn parse(text: &str) -> Result<SendKind> {
        match text {
            "campaign" => Ok(SendKind::Campaign),
            "single" => Ok(SendKind::Single),
            "system" => Ok(SendKind::System),
            "otp" => Ok(SendKind::Otp),
            other => Err(Error::Internal(format!("unknown send kind {other:?}"))),
        }
    }
}

/// Deliveries of the priority lane are claimed before, and separately from, the
/// bulk lane's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lane {
    Priority = 0,
    Bulk = 1,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendStatus {
    Draft,
    Scheduled,
    Sending,
    Paused,
    Completed,
    Cancelled,
}

impl SendStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SendStatus::Draft => "draft",
            SendStatus::Scheduled => "scheduled",
            SendStatus::Sending => "sending",
            SendStatus::Paused => "paused",
            SendStatus::Completed => "completed",
            SendStatus::Cancelled => "cancelled",
        }
    }

    fn parse(text: &str) -> Result<SendStatus> {
        Ok(match text {
            "draft" => SendStatus::Draft,
            "scheduled" => SendStatus::Scheduled,
            "sending" => SendStatus::Sending,
            "paused" => SendStatus::Paused,
            "completed" => SendStatus::Completed,
            "cancelled" => SendStatus::Cancelled,
            other => return Err(Error::Internal(format!("unknown send status {other:?}"))),
        })
    }
}

#[derive(Debug, Clone, Queryable, Selectable, PartialEq)]
#[diesel(table_name = sends)]
pub struct Send {
    pub id: i64,
    pub account_id: i64,
    pub message_id: i64,
    kind: String,
    status: String,
    pub list_id: Option<i64>,
    group_ids: String,
    field_filter: String,
    params: String,
    pub provider_id: Option<i64>,
    pub scheduled_at: Option<NaiveDateTime>,
    pub started_at: Option<NaiveDateTime>,
    pub completed_at: Option<NaiveDateTime>,
    pub expansion_cursor: i64,
    pub expanded: bool,
    /// Deliveries enqueued so far.
    pub to_send: i64,
    pub sent: i64,
    /// Deliveries waiting for a retry after a temporary failure.
    pub deferred: i64,
    /// Deliveries given up (bounced ones included).
    pub failed: i64,
    /// Deliveries refused permanently by the receiving server.
    pub bounced: i64,
    /// Opens and clicks are tracked (links rewritten, a pixel added).
    pub tracking: bool,
}

impl Send {
    pub fn kind(&self) -> Result<SendKind> {
        SendKind::parse(&self.kind)
    }

    pub fn status(&self) -> Result<SendStatus> {
        SendStatus::parse(&self.status)
    }

    /// Per-send template parameters.
    pub fn params(&self) -> serde_json::Map<String, serde_json::Value> {
        serde_json::from_str(&self.params).unwrap_or_default()
    }

    /// The field conditions a list campaign's recipients must meet.
    fn field_filter(&self) -> Vec<FieldEquals> {
        serde_json::from_str(&self.field_filter).unwrap_or_default()
    }

    /// Internal ids of the groups a list campaign is limited to.
    fn group_ids(&self) -> Vec<i64> {
        split_ids(&self.group_ids)
    }
}

/// Who a campaign goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    /// The subscribed members of a list (public number), optionally only those in
    /// at least one of the given groups (public numbers) and matching every
    /// field condition.
    List {
        list: i64,
        groups: Vec<i64>,
        filter: Vec<FieldEquals>,
    },
    /// The subscribed members of several lists (or groups of them), each
    /// recipient once, leaving out the members of the `exclude` lists or
    /// groups, and matching every field condition. Targets naming one list
    /// merge (a whole list wins over its groups). One target and no
    /// exclusions is the same as [`Audience::List`].
    Lists {
        targets: Vec<ListPart>,
        exclude: Vec<ListPart>,
        filter: Vec<FieldEquals>,
    },
    /// Named recipients of the account.
    Recipients(Vec<RecipientKey>),
}

/// A list (public number), whole, or only the members of some of its groups
/// (public numbers; empty for the whole list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListPart {
    pub list: i64,
    pub groups: Vec<i64>,
}

/// A list part of a send as stored: row ids.
#[derive(Debug, Clone, PartialEq, Eq)]
struct StoredPart {
    list_id: i64,
    group_ids: Vec<i64>,
}

/// A campaign filter condition: field `field` (1..=39) has exactly this value.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FieldEquals {
    pub field: i32,
    pub value: String,
}

#[derive(Debug, Clone)]
pub struct NewCampaign {
    pub message_id: i64,
    pub audience: Audience,
    pub params: serde_json::Map<String, serde_json::Value>,
    /// Start at this time (UTC) instead of as soon as started.
    pub scheduled_at: Option<NaiveDateTime>,
    /// A retried request with the same key returns the first send.
    pub idempotency_key: Option<String>,
}

#[derive(Insertable)]
#[diesel(table_name = deliveries)]
pub struct NewDelivery {
    pub account_id: i64,
    pub send_id: i64,
    pub recipient_id: Option<i64>,
    pub channel: &'static str,
    pub address: String,
    pub lane: i32,
    pub state: &'static str,
    pub message_id: String,
    pub params: Option<String>,
    pub next_attempt_at: NaiveDateTime,
    pub created_at: NaiveDateTime,
}

/// Creates a campaign as a draft; [`start`] sends it.
pub fn create_campaign(
    conn: &mut DbConnection,
    account_id: i64,
    new: &NewCampaign,
) -> Result<Send> {
    write_transaction(conn, |conn| {
        if let Some(existing) = find_by_key(conn, account_id, new.idempotency_key.as_deref())? {
            return Ok(existing);
        }
        let message = messages::get(conn, account_id, new.message_id)?;
        // The parts of a several-list audience, stored beside the send.
        let mut parts: Vec<(StoredPart, bool)> = Vec::new();
        let (list_id, group_ids, filter) = match &new.audience {
            Audience::List {
                list,
                groups: numbers,
                filter,
            } => {
                check_filter(conn, account_id, filter)?;
                let part = resolve_part(conn, account_id, *list, numbers)?;
                (
                    Some(part.list_id),
                    join_ids(&part.group_ids),
                    filter.as_slice(),
                )
            }
            Audience::Lists {
                targets,
                exclude,
                filter,
            } => {
                check_filter(conn, account_id, filter)?;
                let targets = resolve_parts(conn, account_id, targets)?;
                let exclude = resolve_parts(conn, account_id, exclude)?;
                let Some(first) = targets.first().cloned() else {
                    return Err(Error::invalid("lists", "at least one list is needed"));
                };
                if targets.len() > 1 || !exclude.is_empty() {
                    parts.extend(targets.into_iter().map(|p| (p, false)));
                    parts.extend(exclude.into_iter().map(|p| (p, true)));
                }
                // The first target is the send's list: its sender and its
                // unsubscribe page unless the recipient came from another.
                (
                    Some(first.list_id),
                    join_ids(&first.group_ids),
                    filter.as_slice(),
                )
            }
            Audience::Recipients(keys) => {
                if keys.is_empty() {
                    return Err(Error::invalid(
                        "recipients",
                        "at least one recipient is needed",
                    ));
                }
                (None, String::new(), [].as_slice())
            }
        };
        let row = SendRow {
            kind: SendKind::Campaign,
            list_id,
            group_ids,
            field_filter: filter,
            params: &new.params,
            scheduled_at: new.scheduled_at,
            idempotency_key: new.idempotency_key.as_deref(),
        };
        let send_id = match insert_send_once(conn, account_id, &message, row)? {
            Inserted::New(id) => id,
            Inserted::Existing(send) => return Ok(*send),
        };
        // A row at a time: the parts are few, and batch inserts are not
        // available on both backends.
        for (part, excluded) in &parts {
            diesel::insert_into(send_lists::table)
                .values((
                    send_lists::send_id.eq(send_id),
                    send_lists::account_id.eq(account_id),
                    send_lists::list_id.eq(part.list_id),
                    send_lists::group_ids.eq(join_ids(&part.group_ids)),
                    send_lists::excluded.eq(*excluded),
                ))
                .execute(conn)?;
        }
        if let Audience::Recipients(keys) = &new.audience {
            // Named recipients are few: they are enqueued now (as queued rows of a
            // draft send, which workers do not claim until it starts).
            let stamp = now();
            let mut rows = Vec::with_capacity(keys.len());
            for key in keys {
                let recipient = recipients::get(conn, account_id, key)?;
                if let Some(address) = address_for(&recipient, message.kind()?) {
                    rows.push(delivery_row(
                        &message,
                        send_id,
                        Some(recipient.id),
                        address,
                        SendKind::Campaign,
                        None,
                        stamp,
                    ));
                }
            }
            rows.sort_by_key(|r| r.recipient_id);
            rows.dedup_by_key(|r| r.recipient_id);
            insert_deliveries(conn, send_id, &rows)?;
            diesel::update(sends::table.find(send_id))
                .set(sends::expanded.eq(true))
                .execute(conn)?;
        }
        get(conn, account_id, send_id)
    })
}

fn check_filter(conn: &mut DbConnection, account_id: i64, filter: &[FieldEquals]) -> Result<()> {
    for condition in filter {
        fields::resolve(conn, account_id, &fields::FieldRef::Number(condition.field))?;
    }
    Ok(())
}

fn resolve_part(
    conn: &mut DbConnection,
    account_id: i64,
    list: i64,
    numbers: &[i64],
) -> Result<StoredPart> {
    let list = lists::get(conn, account_id, list)?;
    let groups = groups::resolve_in_list(conn, account_id, list.id, numbers)?;
    Ok(StoredPart {
        list_id: list.id,
        group_ids: groups.iter().map(|g| g.id).collect(),
    })
}

/// The parts resolved, one per list: a list named whole and by groups is the
/// whole list; groups of one list named apart are put together.
fn resolve_parts(
    conn: &mut DbConnection,
    account_id: i64,
    parts: &[ListPart],
) -> Result<Vec<StoredPart>> {
    let mut merged: Vec<StoredPart> = Vec::new();
    for part in parts {
        let resolved = resolve_part(conn, account_id, part.list, &part.groups)?;
        match merged.iter_mut().find(|p| p.list_id == resolved.list_id) {
            Some(existing) if existing.group_ids.is_empty() => {}
            Some(existing) if resolved.group_ids.is_empty() => existing.group_ids.clear(),
            Some(existing) => {
                for id in resolved.group_ids {
                    if !existing.group_ids.contains(&id) {
                        existing.group_ids.push(id);
                    }
                }
            }
            None => merged.push(resolved),
        }
    }
    Ok(merged)
}

fn join_ids(ids: &[i64]) -> String {
    ids.iter()
        .map(|id| id.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

fn split_ids(text: &str) -> Vec<i64> {
    text.split(',').filter_map(|id| id.parse().ok()).collect()
}

/// The target and excluded parts of a several-list send (both empty for a
/// send to one list, or not to lists).
fn stored_parts(
    conn: &mut DbConnection,
    send: &Send,
) -> Result<(Vec<StoredPart>, Vec<StoredPart>)> {
    let rows: Vec<(i64, String, bool)> = send_lists::table
        .filter(send_lists::account_id.eq(send.account_id))
        .filter(send_lists::send_id.eq(send.id))
        .order(send_lists::id)
        .select((
            send_lists::list_id,
            send_lists::group_ids,
            send_lists::excluded,
        ))
        .load(conn)?;
    let (mut targets, mut exclude) = (Vec::new(), Vec::new());
    for (list_id, group_ids, excluded) in rows {
        let part = StoredPart {
            list_id,
            group_ids: split_ids(&group_ids),
        };
        if excluded {
            exclude.push(part);
        } else {
            targets.push(part);
        }
    }
    Ok((targets, exclude))
}

/// The lists (row ids) a send goes to: its targets, or its one list.
pub fn target_lists(conn: &mut DbConnection, send: &Send) -> Result<Vec<i64>> {
    let (targets, _) = stored_parts(conn, send)?;
    Ok(if targets.is_empty() {
        send.list_id.into_iter().collect()
    } else {
        targets.iter().map(|p| p.list_id).collect()
    })
}

/// The list (row id) a recipient had a send for: of a send to several lists,
/// the first target the recipient is subscribed to (else the first target);
/// otherwise the send's list. The unsubscribe page takes them off that one.
pub fn list_for(
    conn: &mut DbConnection,
    send: &Send,
    recipient_id: Option<i64>,
) -> Result<Option<i64>> {
    let (targets, _) = stored_parts(conn, send)?;
    let (Some(recipient_id), false) = (recipient_id, targets.is_empty()) else {
        return Ok(send.list_id);
    };
    let ids: Vec<i64> = targets.iter().map(|p| p.list_id).collect();
    let subscribed: Vec<i64> = subscriptions::table
        .filter(subscriptions::account_id.eq(send.account_id))
        .filter(subscriptions::recipient_id.eq(recipient_id))
        .filter(subscriptions::list_id.eq_any(&ids))
        .filter(subscriptions::status.eq("subscribed"))
        .select(subscriptions::list_id)
        .load(conn)?;
    Ok(ids
        .iter()
        .find(|id| subscribed.contains(id))
        .or(ids.first())
        .copied())
}

/// Leaves the members of these groups of the campaign's list (public
/// numbers) out of a draft campaign, whoever else it goes to. Named
/// recipients already enqueued who are members are taken out now; a list
/// campaign skips them as it is expanded.
pub fn exclude_groups(
    conn: &mut DbConnection,
    account_id: i64,
    send_id: i64,
    list_number: i64,
    group_numbers: &[i64],
) -> Result<Send> {
    write_transaction(conn, |conn| {
        let send = get(conn, account_id, send_id)?;
        if send.status()? != SendStatus::Draft || send.kind()? != SendKind::Campaign {
            return Err(Error::Conflict(
                "groups can only be excluded from a campaign before it starts".into(),
            ));
        }
        let list = lists::get(conn, account_id, list_number)?;
        let groups = groups::resolve_in_list(conn, account_id, list.id, group_numbers)?;
        let mut ids: Vec<i64> = groups.iter().map(|g| g.id).collect();
        ids.sort_unstable();
        ids.dedup();
        diesel::delete(
            send_excluded_groups::table.filter(send_excluded_groups::send_id.eq(send.id)),
        )
        .execute(conn)?;
        let excluded = diesel::delete(
            deliveries::table
                .filter(deliveries::send_id.eq(send.id))
                .filter(deliveries::state.eq("queued"))
                .filter(
                    deliveries::recipient_id.eq_any(
                        group_members::table
                            .filter(group_members::group_id.eq_any(&ids))
                            .select(group_members::recipient_id.nullable()),
                    ),
                ),
        )
        .execute(conn)?;
        for &group_id in &ids {
            diesel::insert_into(send_excluded_groups::table)
                .values((
                    send_excluded_groups::send_id.eq(send.id),
                    send_excluded_groups::group_id.eq(group_id),
                    send_excluded_groups::account_id.eq(account_id),
                ))
                .execute(conn)?;
        }
        diesel::update(sends::table.find(send.id))
            .set((
                sends::to_send.eq(sends::to_send - excluded as i64),
                sends::updated_at.eq(now()),
            ))
            .execute(conn)?;
        get(conn, account_id, send_id)
    })
}

/// Turns open and click tracking of a send on or off. Only before it starts:
/// a campaign's messages are all tracked alike.
pub fn set_tracking(
    conn: &mut DbConnection,
    account_id: i64,
    send_id: i64,
    on: bool,
) -> Result<Send> {
    let send = get(conn, account_id, send_id)?;
    if send.status()? != SendStatus::Draft {
        return Err(Error::Conflict(
            "tracking can only change before a send starts".into(),
        ));
    }
    diesel::update(sends::table.find(send_id))
        .set(sends::tracking.eq(on))
        .execute(conn)?;
    get(conn, account_id, send_id)
}

/// Sets (or clears) the time a draft is to start at.
pub fn set_schedule(
    conn: &mut DbConnection,
    account_id: i64,
    send_id: i64,
    at: Option<NaiveDateTime>,
) -> Result<Send> {
    let send = get(conn, account_id, send_id)?;
    if send.status()? != SendStatus::Draft {
        return Err(Error::Conflict(format!(
            "send {send_id} is {}; only a draft can be rescheduled",
            send.status
        )));
    }
    diesel::update(sends::table.find(send_id))
        .set((sends::scheduled_at.eq(at), sends::updated_at.eq(now())))
        .execute(conn)?;
    get(conn, account_id, send_id)
}

/// Starts a draft: scheduled if its time is in the future, sending otherwise.
pub fn start(conn: &mut DbConnection, account_id: i64, send_id: i64) -> Result<Send> {
    write_transaction(conn, |conn| {
        let send = get(conn, account_id, send_id)?;
        if send.status()? != SendStatus::Draft {
            return Err(Error::Conflict(format!(
                "send {send_id} is {}, not a draft",
                send.status
            )));
        }
        let status = match send.scheduled_at {
            Some(at) if at > now() => SendStatus::Scheduled,
            _ => SendStatus::Sending,
        };
        set_status(conn, send_id, status)?;
        get(conn, account_id, send_id)
    })
}

/// Moves scheduled sends whose time has come to sending. Returns how many.
pub fn start_due(conn: &mut DbConnection) -> Result<usize> {
    let stamp = now();
    Ok(diesel::update(
        sends::table
            .filter(sends::status.eq(SendStatus::Scheduled.as_str()))
            .filter(sends::scheduled_at.le(stamp)),
    )
    .set((
        sends::status.eq(SendStatus::Sending.as_str()),
        sends::started_at.eq(Some(stamp)),
        sends::updated_at.eq(stamp),
    ))
    .execute(conn)?)
}

/// Stops claiming a send's deliveries (those in flight finish).
pub fn pause(conn: &mut DbConnection, account_id: i64, send_id: i64) -> Result<Send> {
    change_status(
        conn,
        account_id,
        send_id,
        &[SendStatus::Sending, SendStatus::Scheduled],
        SendStatus::Paused,
    )
}

pub fn resume(conn: &mut DbConnection, account_id: i64, send_id: i64) -> Result<Send> {
    write_transaction(conn, |conn| {
        let to = match get(conn, account_id, send_id)?.scheduled_at {
            Some(at) if at > now() => SendStatus::Scheduled,
            _ => SendStatus::Sending,
        };
        change_status(conn, account_id, send_id, &[SendStatus::Paused], to)
    })
}

/// Cancels a send: nothing more of it is sent; its waiting deliveries are marked
/// cancelled (and those in flight when their outcome comes, unless sent).
pub fn cancel(conn: &mut DbConnection, account_id: i64, send_id: i64) -> Result<Send> {
    write_transaction(conn, |conn| {
        let status = get(conn, account_id, send_id)?.status()?;
        if matches!(status, SendStatus::Completed | SendStatus::Cancelled) {
            return Err(Error::Conflict(format!(
                "send {send_id} is {}; cannot become cancelled",
                status.as_str()
            )));
        }
        // Deliveries before the send row: workers lock in that order too.
        diesel::update(
            deliveries::table
                .filter(deliveries::send_id.eq(send_id))
                .filter(deliveries::state.eq_any(["queued", "deferred", "unknown"])),
        )
        .set(deliveries::state.eq("cancelled"))
        .execute(conn)?;
        set_status(conn, send_id, SendStatus::Cancelled)?;
        diesel::update(sends::table.find(send_id))
            .set(sends::deferred.eq(0))
            .execute(conn)?;
        get(conn, account_id, send_id)
    })
}

fn change_status(
    conn: &mut DbConnection,
    account_id: i64,
    send_id: i64,
    from: &[SendStatus],
    to: SendStatus,
) -> Result<Send> {
    write_transaction(conn, |conn| {
        let send = get(conn, account_id, send_id)?;
        if !from.contains(&send.status()?) {
            return Err(Error::Conflict(format!(
                "send {send_id} is {}; cannot become {}",
                send.status,
                to.as_str()
            )));
        }
        set_status(conn, send_id, to)?;
        get(conn, account_id, send_id)
    })
}

fn set_status(conn: &mut DbConnection, send_id: i64, status: SendStatus) -> Result<()> {
    let stamp = now();
    diesel::update(sends::table.find(send_id))
        .set((
            sends::status.eq(status.as_str()),
            sends::updated_at.eq(stamp),
        ))
        .execute(conn)?;
    if status == SendStatus::Sending {
        // Its last deliveries may have finished while it was paused, or it may
        // have none at all.
        complete_if_done(conn, &[send_id])?;
        diesel::update(
            sends::table
                .find(send_id)
                .filter(sends::started_at.is_null()),
        )
        .set(sends::started_at.eq(Some(stamp)))
        .execute(conn)?;
    }
    Ok(())
}

/// The recipient of a single message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum To {
    /// A recipient of the account.
    Recipient(RecipientKey),
    /// An address (e-mail or mobile number) that need not be a recipient; if it
    /// is one, the delivery is linked to it.
    Address(String),
}

#[derive(Debug, Clone)]
pub struct NewSingle {
    /// Single, system or OTP.
    pub kind: SendKind,
    pub message_id: i64,
    pub to: To,
    /// Template parameters for this message.
    pub params: serde_json::Map<String, serde_json::Value>,
    pub idempotency_key: Option<String>,
}

/// A single message placed in the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Enqueued {
    pub send_id: i64,
    pub delivery_id: i64,
    /// The idempotency key had been used: this is the earlier send, not a new one.
    pub repeated: bool,
}

/// Puts one message for one recipient in the outbox, in the caller's transaction.
pub fn enqueue_single(
    conn: &mut DbConnection,
    account_id: i64,
    new: &NewSingle,
) -> Result<Enqueued> {
    if new.kind == SendKind::Campaign {
        return Err(Error::invalid(
            "send kind",
            "campaigns are created with create_campaign",
        ));
    }
    write_transaction(conn, |conn| {
        if let Some(existing) = find_by_key(conn, account_id, new.idempotency_key.as_deref())? {
            return repeated(conn, &existing);
        }
        let message = messages::get(conn, account_id, new.message_id)?;
        let kind = message.kind()?;
        let (recipient, address) = match &new.to {
            To::Recipient(key) => {
                let recipient = recipients::get(conn, account_id, key)?;
                let address = address_for(&recipient, kind).ok_or(Error::invalid(
                    "recipient",
                    format!("has no {} address", kind.as_str()),
                ))?;
                (Some(recipient), address)
            }
            To::Address(address) => {
                // Checked and normalised (a mobile number to `+<digits>`).
                let (key, address) = match kind {
                    MessageKind::Email => {
                        let key = RecipientKey::Email(address.clone());
                        (key, address.trim().to_string())
                    }
                    MessageKind::Sms => {
                        let mobile = recipients::Mobile::new(address.clone());
                        let normalised = recipients::mobile_key(conn, account_id, &mobile)?;
                        (RecipientKey::Mobile(mobile), normalised)
                    }
                };
                let recipient = recipients::find(conn, account_id, &key)?;
                let address = match &recipient {
                    Some(r) => address_for(r, kind).unwrap_or(address),
                    None => address,
                };
                (recipient, address)
            }
        };
        if let Some(r) = &recipient {
            let allowed = match kind {
                MessageKind::Email => r.email_allowed(),
                MessageKind::Sms => r.sms_allowed(),
            };
            if !allowed {
                return Err(Error::Blocklisted);
            }
        }
        let row = SendRow {
            kind: new.kind,
            list_id: None,
            group_ids: String::new(),
            field_filter: &[],
            params: &serde_json::Map::new(),
            scheduled_at: None,
            idempotency_key: new.idempotency_key.as_deref(),
        };
        let send_id = match insert_send_once(conn, account_id, &message, row)? {
            Inserted::New(id) => id,
            Inserted::Existing(send) => return repeated(conn, &send),
        };
        let params = (!new.params.is_empty())
            .then(|| serde_json::to_string(&new.params))
            .transpose()
            .map_err(|e| Error::Internal(e.to_string()))?;
        let row = delivery_row(
            &message,
            send_id,
            recipient.as_ref().map(|r| r.id),
            address,
            new.kind,
            params,
            now(),
        );
        insert_deliveries(conn, send_id, std::slice::from_ref(&row))?;
        diesel::update(sends::table.find(send_id))
            .set(sends::expanded.eq(true))
            .execute(conn)?;
        set_status(conn, send_id, SendStatus::Sending)?;
        let delivery_id = deliveries::table
            .filter(deliveries::send_id.eq(send_id))
            .select(deliveries::id)
            .first(conn)?;
        Ok(Enqueued {
            send_id,
            delivery_id,
            repeated: false,
        })
    })
}

/// The columns of a new send that differ between kinds.
struct SendRow<'a> {
    kind: SendKind,
    list_id: Option<i64>,
    group_ids: String,
    field_filter: &'a [FieldEquals],
    params: &'a serde_json::Map<String, serde_json::Value>,
    scheduled_at: Option<NaiveDateTime>,
    idempotency_key: Option<&'a str>,
}

fn insert_send(conn: &mut DbConnection, message: &Message, row: SendRow) -> Result<i64> {
    let params = serde_json::to_string(row.params).map_err(|e| Error::Internal(e.to_string()))?;
    let filter =
        serde_json::to_string(row.field_filter).map_err(|e| Error::Internal(e.to_string()))?;
    let stamp = now();
    Ok(diesel::insert_into(sends::table)
        .values((
            sends::account_id.eq(message.account_id),
            sends::message_id.eq(message.id),
            sends::kind.eq(row.kind.as_str()),
            sends::lane.eq(row.kind.lane() as i32),
            sends::status.eq(SendStatus::Draft.as_str()),
            sends::list_id.eq(row.list_id),
            sends::group_ids.eq(row.group_ids),
            sends::field_filter.eq(filter),
            sends::params.eq(params),
            sends::idempotency_key.eq(row.idempotency_key),
            sends::scheduled_at.eq(row.scheduled_at),
            sends::created_at.eq(stamp),
            sends::updated_at.eq(stamp),
        ))
        .returning(sends::id)
        .get_result(conn)?)
}

/// The answer to a single send repeated with the same idempotency key.
fn repeated(conn: &mut DbConnection, send: &Send) -> Result<Enqueued> {
    let delivery_id = deliveries::table
        .filter(deliveries::send_id.eq(send.id))
        .select(deliveries::id)
        .first(conn)?;
    Ok(Enqueued {
        send_id: send.id,
        delivery_id,
        repeated: true,
    })
}

enum Inserted {
    New(i64),
    /// A concurrent request with the same idempotency key got there first.
    Existing(Box<Send>),
}

/// Inserts the send in a savepoint; if a concurrent request committed one with
/// the same idempotency key meanwhile (PostgreSQL: unique violation), that one.
fn insert_send_once(
    conn: &mut DbConnection,
    account_id: i64,
    message: &Message,
    row: SendRow,
) -> Result<Inserted> {
    let key = row.idempotency_key;
    match write_transaction(conn, |conn| insert_send(conn, message, row)) {
        Ok(id) => Ok(Inserted::New(id)),
        Err(Error::Database(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        ))) if key.is_some() => find_by_key(conn, account_id, key)?
            .map(|send| Inserted::Existing(Box::new(send)))
            .ok_or_else(|| Error::Internal("send with this key vanished".into())),
        Err(e) => Err(e),
    }
}

fn find_by_key(
    conn: &mut DbConnection,
    account_id: i64,
    key: Option<&str>,
) -> Result<Option<Send>> {
    let Some(key) = key else {
        return Ok(None);
    };
    Ok(sends::table
        .filter(sends::account_id.eq(account_id))
        .filter(sends::idempotency_key.eq(key))
        .select(Send::as_select())
        .first(conn)
        .optional()?)
}

pub fn get(conn: &mut DbConnection, account_id: i64, send_id: i64) -> Result<Send> {
    sends::table
        .filter(sends::account_id.eq(account_id))
        .filter(sends::id.eq(send_id))
        .select(Send::as_select())
        .first(conn)
        .optional()?
        .ok_or(Error::NotFound("send"))
}

/// Gives a send its own sender, in place of the message's and the list's
/// (a caller's from override). Before the send's messages go out: set it in
/// the transaction that creates the send.
pub fn set_sender(
    conn: &mut DbConnection,
    account_id: i64,
    send_id: i64,
    name: &str,
    email: &str,
) -> Result<()> {
    let email = recipients::checked_email(email)?;
    if name.contains(['\r', '\n']) {
        return Err(Error::invalid("from name", "has a line break"));
    }
    let send = get(conn, account_id, send_id)?;
    diesel::insert_into(send_senders::table)
        .values((
            send_senders::send_id.eq(send.id),
            send_senders::account_id.eq(account_id),
            send_senders::from_name.eq(name.trim()),
            send_senders::from_email.eq(email),
        ))
        .execute(conn)?;
    Ok(())
}

/// The send's own sender (name, address), if it was given one.
pub fn sender(
    conn: &mut DbConnection,
    account_id: i64,
    send_id: i64,
) -> Result<Option<(String, String)>> {
    Ok(send_senders::table
        .filter(send_senders::account_id.eq(account_id))
        .filter(send_senders::send_id.eq(send_id))
        .select((send_senders::from_name, send_senders::from_email))
        .first(conn)
        .optional()?)
}

/// One page of the account's campaigns started in `[from, until)`, in id
/// order (pass the last id as `after`).
pub fn campaigns_started(
    conn: &mut DbConnection,
    account_id: i64,
    from: Option<NaiveDateTime>,
    until: Option<NaiveDateTime>,
    after: i64,
    limit: i64,
) -> Result<Vec<Send>> {
    let mut query = sends::table
        .filter(sends::account_id.eq(account_id))
        .filter(sends::kind.eq(SendKind::Campaign.as_str()))
        .filter(sends::started_at.is_not_null())
        .filter(sends::id.gt(after))
        .into_boxed();
    if let Some(from) = from {
        query = query.filter(sends::started_at.ge(from));
    }
    if let Some(until) = until {
        query = query.filter(sends::started_at.lt(until));
    }
    Ok(query
        .order(sends::id)
        .limit(limit.clamp(1, 10_000))
        .select(Send::as_select())
        .load(conn)?)
}

/// A message of a send that went out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentRecord {
    pub delivery_id: i64,
    pub recipient_id: Option<i64>,
    pub address: String,
    pub sent_at: NaiveDateTime,
}

/// One page of a send's messages that went out (whatever became of them
/// later), sent in `[from, until)`, in delivery id order (pass the last id as
/// `after`).
pub fn sent_records(
    conn: &mut DbConnection,
    account_id: i64,
    send_id: i64,
    from: Option<NaiveDateTime>,
    until: Option<NaiveDateTime>,
    after: i64,
    limit: i64,
) -> Result<Vec<SentRecord>> {
    let mut query = deliveries::table
        .filter(deliveries::account_id.eq(account_id))
        .filter(deliveries::send_id.eq(send_id))
        .filter(deliveries::id.gt(after))
        .filter(deliveries::sent_at.is_not_null())
        .into_boxed();
    if let Some(from) = from {
        query = query.filter(deliveries::sent_at.ge(from));
    }
    if let Some(until) = until {
        query = query.filter(deliveries::sent_at.lt(until));
    }
    let rows: Vec<(i64, Option<i64>, String, Option<NaiveDateTime>)> = query
        .order(deliveries::id)
        .limit(limit.clamp(1, 10_000))
        .select((
            deliveries::id,
            deliveries::recipient_id,
            deliveries::address,
            deliveries::sent_at,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(|(delivery_id, recipient_id, address, sent_at)| {
            Some(SentRecord {
                delivery_id,
                recipient_id,
                address,
                sent_at: sent_at?,
            })
        })
        .collect())
}

/// The sends of a message, oldest first.
pub fn of_message(conn: &mut DbConnection, account_id: i64, message_id: i64) -> Result<Vec<Send>> {
    Ok(sends::table
        .filter(sends::account_id.eq(account_id))
        .filter(sends::message_id.eq(message_id))
        .order(sends::id)
        .select(Send::as_select())
        .load(conn)?)
}

/// The sends of the messages of the list with row id `list_id` in one of these
/// states, oldest first.
pub fn of_list(
    conn: &mut DbConnection,
    account_id: i64,
    list_id: i64,
    states: &[SendStatus],
) -> Result<Vec<Send>> {
    let states: Vec<&str> = states.iter().map(|s| s.as_str()).collect();
    Ok(sends::table
        .filter(sends::account_id.eq(account_id))
        .filter(
            sends::message_id.eq_any(
                crate::db::schema::messages::table
                    .filter(crate::db::schema::messages::account_id.eq(account_id))
                    .filter(crate::db::schema::messages::list_id.eq(list_id))
                    .select(crate::db::schema::messages::id),
            ),
        )
        .filter(sends::status.eq_any(states))
        .order(sends::id)
        .select(Send::as_select())
        .load(conn)?)
}

/// The account's campaigns of a channel in one of these states (for pausing
/// or resuming all of them).
pub fn campaigns_in(
    conn: &mut DbConnection,
    account_id: i64,
    kind: MessageKind,
    states: &[SendStatus],
) -> Result<Vec<i64>> {
    use crate::db::schema::messages;
    let states: Vec<&str> = states.iter().map(|s| s.as_str()).collect();
    Ok(sends::table
        .filter(sends::account_id.eq(account_id))
        .filter(
            sends::message_id.eq_any(
                messages::table
                    .filter(messages::account_id.eq(account_id))
                    .filter(messages::channel.eq(kind.as_str()))
                    .select(messages::id),
            ),
        )
        .filter(sends::kind.eq(SendKind::Campaign.as_str()))
        .filter(sends::status.eq_any(states))
        .order(sends::id)
        .select(sends::id)
        .load(conn)?)
}

/// Where a delivery of `kind` goes for this recipient, if it has such an address.
fn address_for(recipient: &Recipient, kind: MessageKind) -> Option<String> {
    match kind {
        MessageKind::Email => recipient
            .email
            .clone()
            .filter(|_| recipient.erased_at.is_none()),
        MessageKind::Sms => recipient.mobile_key.clone(),
    }
}

/// A Message-ID fixed at enqueue: every attempt sends the same one, so a
/// duplicate caused by a retry is recognisable.
fn message_id_for(message: &Message) -> String {
    let domain = message
        .from_email
        .rsplit_once('@')
        .map(|(_, domain)| domain.trim())
        .filter(|d| {
            !d.is_empty()
                && d.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        })
        .unwrap_or("espbridge.invalid");
    format!("<{}@{domain}>", uuid::Uuid::new_v4().simple())
}

fn delivery_row(
    message: &Message,
    send_id: i64,
    recipient_id: Option<i64>,
    address: String,
    kind: SendKind,
    params: Option<String>,
    stamp: NaiveDateTime,
) -> NewDelivery {
    NewDelivery {
        account_id: message.account_id,
        send_id,
        recipient_id,
        channel: if message.kind().ok() == Some(MessageKind::Sms) {
            "sms"
        } else {
            "email"
        },
        address,
        lane: kind.lane() as i32,
        state: "queued",
        message_id: message_id_for(message),
        params,
        next_attempt_at: stamp,
        created_at: stamp,
    }
}

fn insert_deliveries(conn: &mut DbConnection, send_id: i64, rows: &[NewDelivery]) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    backend::insert_deliveries(conn, rows)?;
    diesel::update(sends::table.find(send_id))
        .set(sends::to_send.eq(sends::to_send + rows.len() as i64))
        .execute(conn)?;
    Ok(())
}

/// A send whose deliveries still have to be generated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpansionJob {
    pub account_id: i64,
    pub send_id: i64,
}

/// Sending campaigns not yet fully expanded whose expansion no other process holds;
/// each returned job is leased to the caller for `lease`.
pub fn lease_expansions(
    conn: &mut DbConnection,
    lease: chrono::Duration,
    limit: i64,
) -> Result<Vec<ExpansionJob>> {
    write_transaction(conn, |conn| {
        let stamp = now();
        let candidates: Vec<(i64, i64)> = sends::table
            .filter(sends::status.eq(SendStatus::Sending.as_str()))
            .filter(sends::expanded.eq(false))
            .filter(
                sends::expansion_lease_until
                    .is_null()
                    .or(sends::expansion_lease_until.lt(stamp)),
            )
            .order(sends::id)
            .limit(limit)
            .select((sends::id, sends::account_id))
            .load(conn)?;
        let mut jobs = Vec::with_capacity(candidates.len());
        for (send_id, account_id) in candidates {
            // Conditional, so two processes racing for one send cannot both win.
            let won = diesel::update(
                sends::table.find(send_id).filter(
                    sends::expansion_lease_until
                        .is_null()
                        .or(sends::expansion_lease_until.lt(stamp)),
                ),
            )
            .set(sends::expansion_lease_until.eq(Some(stamp + lease)))
            .execute(conn)?;
            if won == 1 {
                jobs.push(ExpansionJob {
                    account_id,
                    send_id,
                });
            }
        }
        Ok(jobs)
    })
}

/// Enqueues the next `batch` subscribed members of a campaign's list after its
/// cursor, and moves the cursor past them, atomically, renewing the expansion
/// lease for `lease`. Returns how many were enqueued; 0 means the expansion is
/// complete (and it is marked so).
pub fn expand_next_batch(
    conn: &mut DbConnection,
    job: ExpansionJob,
    batch: i64,
    lease: chrono::Duration,
) -> Result<usize> {
    write_transaction(conn, |conn| {
        let send = get(conn, job.account_id, job.send_id)?;
        if send.expanded || send.status()? != SendStatus::Sending {
            return Ok(0);
        }
        let message = messages::get(conn, send.account_id, send.message_id)?;
        let kind = message.kind()?;
        let (targets, exclude) = stored_parts(conn, &send)?;
        let next = if targets.is_empty() {
            let list_id = send
                .list_id
                .ok_or(Error::Internal("list campaign without list".into()))?;
            one_list_batch(conn, &send, list_id, kind, batch)?
        } else {
            several_lists_batch(conn, &send, &targets, &exclude, kind, batch)?
        };
        let Some(Batch {
            members,
            cursor: last,
        }) = next
        else {
            diesel::update(sends::table.find(send.id))
                .set((
                    sends::expanded.eq(true),
                    sends::expansion_lease_until.eq(None::<NaiveDateTime>),
                ))
                .execute(conn)?;
            complete_if_done(conn, &[send.id])?;
            return Ok(0);
        };
        let stamp = now();
        let rows: Vec<NewDelivery> = members
            .into_iter()
            .filter_map(|(recipient_id, email, mobile)| {
                let address = match kind {
                    MessageKind::Email => email,
                    MessageKind::Sms => mobile,
                }?;
                Some(delivery_row(
                    &message,
                    send.id,
                    Some(recipient_id),
                    address,
                    SendKind::Campaign,
                    None,
                    stamp,
                ))
            })
            .collect();
        insert_deliveries(conn, send.id, &rows)?;
        // Guarded by the old cursor: if another expander got here first (a lease
        // that expired under a stalled process), this batch rolls back.
        let moved = diesel::update(
            sends::table
                .find(send.id)
                .filter(sends::expansion_cursor.eq(send.expansion_cursor))
                .filter(sends::status.eq(SendStatus::Sending.as_str())),
        )
        .set((
            sends::expansion_cursor.eq(last),
            sends::expansion_lease_until.eq(Some(stamp + lease)),
        ))
        .execute(conn)?;
        if moved != 1 {
            return Err(Error::Conflict(format!(
                "send {} was expanded or stopped concurrently",
                send.id
            )));
        }
        Ok(rows.len())
    })
}

/// An expansion batch's members as (recipient id, e-mail, mobile key).
type Members = Vec<(i64, Option<String>, Option<String>)>;

/// The next members of a send, and the recipient id its cursor moves to (the
/// last one looked at, which may not be a member).
struct Batch {
    members: Members,
    cursor: i64,
}

/// The next members of a send to one list (or groups of it).
fn one_list_batch(
    conn: &mut DbConnection,
    send: &Send,
    list_id: i64,
    kind: MessageKind,
    batch: i64,
) -> Result<Option<Batch>> {
    let mut query = subscriptions::table
        .inner_join(recipients_table::table)
        .filter(subscriptions::account_id.eq(send.account_id))
        .filter(subscriptions::list_id.eq(list_id))
        .filter(subscriptions::status.eq("subscribed"))
        .filter(subscriptions::recipient_id.gt(send.expansion_cursor))
        .filter(recipients_table::erased_at.is_null())
        .into_boxed();
    query = match kind {
        MessageKind::Email => query
            .filter(recipients_table::email.is_not_null())
            .filter(recipients_table::email_blocklisted.eq(false))
            .filter(recipients_table::bounced.eq(false)),
        MessageKind::Sms => query
            .filter(recipients_table::mobile_key.is_not_null())
            .filter(recipients_table::sms_blocklisted.eq(false)),
    };
    for condition in send.field_filter() {
        query = query.filter(diesel::dsl::exists(
            recipient_field_values::table
                .filter(recipient_field_values::recipient_id.eq(subscriptions::recipient_id))
                .filter(recipient_field_values::field_number.eq(condition.field))
                .filter(recipient_field_values::value.eq(condition.value)),
        ));
    }
    let group_ids = send.group_ids();
    if !group_ids.is_empty() {
        query = query.filter(diesel::dsl::exists(
            group_members::table
                .filter(group_members::recipient_id.eq(subscriptions::recipient_id))
                .filter(group_members::group_id.eq_any(group_ids)),
        ));
    }
    let excluded: Vec<i64> = send_excluded_groups::table
        .filter(send_excluded_groups::send_id.eq(send.id))
        .select(send_excluded_groups::group_id)
        .load(conn)?;
    if !excluded.is_empty() {
        query = query.filter(diesel::dsl::not(diesel::dsl::exists(
            group_members::table
                .filter(group_members::recipient_id.eq(subscriptions::recipient_id))
                .filter(group_members::group_id.eq_any(excluded)),
        )));
    }
    let members: Members = query
        .order(subscriptions::recipient_id)
        .limit(batch)
        .select((
            subscriptions::recipient_id,
            recipients_table::email,
            recipients_table::mobile_key,
        ))
        .load(conn)?;
    Ok(members
        .last()
        .map(|&(id, _, _)| id)
        .map(|cursor| Batch { members, cursor }))
}

/// A condition on a recipient, built at run time.
type Condition = Box<
    dyn BoxableExpression<recipients_table::table, MultiBackend, SqlType = diesel::sql_types::Bool>,
>;

/// The recipient is on the part's list (of any status) and, for some of its
/// groups, in one of them.
fn on_part(part: &StoredPart) -> Condition {
    let on_list = diesel::dsl::exists(
        subscriptions::table
            .filter(subscriptions::recipient_id.eq(recipients_table::id))
            .filter(subscriptions::list_id.eq(part.list_id)),
    );
    if part.group_ids.is_empty() {
        return Box::new(on_list);
    }
    Box::new(
        on_list.and(diesel::dsl::exists(
            group_members::table
                .filter(group_members::recipient_id.eq(recipients_table::id))
                .filter(group_members::group_id.eq_any(part.group_ids.clone())),
        )),
    )
}

/// The first `batch` subscribed members of a target part after `cursor`, by
/// recipient id (from the list's members index, as a one-list send reads).
fn part_candidates(
    conn: &mut DbConnection,
    account_id: i64,
    part: &StoredPart,
    cursor: i64,
    batch: i64,
) -> Result<Vec<i64>> {
    let mut query = subscriptions::table
        .filter(subscriptions::account_id.eq(account_id))
        .filter(subscriptions::list_id.eq(part.list_id))
        .filter(subscriptions::status.eq("subscribed"))
        .filter(subscriptions::recipient_id.gt(cursor))
        .into_boxed();
    if !part.group_ids.is_empty() {
        query = query.filter(diesel::dsl::exists(
            group_members::table
                .filter(group_members::recipient_id.eq(subscriptions::recipient_id))
                .filter(group_members::group_id.eq_any(part.group_ids.clone())),
        ));
    }
    Ok(query
        .order(subscriptions::recipient_id)
        .limit(batch)
        .select(subscriptions::recipient_id)
        .load(conn)?)
}

/// The next recipients of a send to several lists: subscribed to one of the
/// targets, each once (a recipient is one address), none on an excluded part.
/// The `batch` lowest recipient ids after the cursor over all targets are
/// the candidates (each target's first `batch` hold them all); those that may
/// be mailed are the members. Candidates that all fail move the cursor on
/// and the next ones are read, so no members means the end.
fn several_lists_batch(
    conn: &mut DbConnection,
    send: &Send,
    targets: &[StoredPart],
    exclude: &[StoredPart],
    kind: MessageKind,
    batch: i64,
) -> Result<Option<Batch>> {
    let mut cursor = send.expansion_cursor;
    loop {
        let mut candidates = Vec::new();
        for part in targets {
            candidates.extend(part_candidates(conn, send.account_id, part, cursor, batch)?);
        }
        candidates.sort_unstable();
        candidates.dedup();
        candidates.truncate(usize::try_from(batch).unwrap_or(usize::MAX));
        let Some(&last) = candidates.last() else {
            return Ok(None);
        };
        cursor = last;
        let mut query = recipients_table::table
            .filter(recipients_table::account_id.eq(send.account_id))
            .filter(recipients_table::id.eq_any(candidates))
            .filter(recipients_table::erased_at.is_null())
            .into_boxed();
        query = match kind {
            MessageKind::Email => query
                .filter(recipients_table::email.is_not_null())
                .filter(recipients_table::email_blocklisted.eq(false))
                .filter(recipients_table::bounced.eq(false)),
            MessageKind::Sms => query
                .filter(recipients_table::mobile_key.is_not_null())
                .filter(recipients_table::sms_blocklisted.eq(false)),
        };
        for part in exclude {
            query = query.filter(diesel::dsl::not(on_part(part)));
        }
        for condition in send.field_filter() {
            query = query.filter(diesel::dsl::exists(
                recipient_field_values::table
                    .filter(recipient_field_values::recipient_id.eq(recipients_table::id))
                    .filter(recipient_field_values::field_number.eq(condition.field))
                    .filter(recipient_field_values::value.eq(condition.value)),
            ));
        }
        let members: Members = query
            .order(recipients_table::id)
            .select((
                recipients_table::id,
                recipients_table::email,
                recipients_table::mobile_key,
            ))
            .load(conn)?;
        if !members.is_empty() {
            return Ok(Some(Batch { members, cursor }));
        }
    }
}

/// Marks the given sends completed if they are fully expanded and every delivery
/// reached a final state.
pub fn complete_if_done(conn: &mut DbConnection, send_ids: &[i64]) -> Result<()> {
    let stamp = now();
    diesel::update(
        sends::table
            .filter(sends::id.eq_any(send_ids))
            .filter(sends::status.eq(SendStatus::Sending.as_str()))
            .filter(sends::expanded.eq(true))
            .filter((sends::sent + sends::failed).ge(sends::to_send)),
    )
    .set((
        sends::status.eq(SendStatus::Completed.as_str()),
        sends::completed_at.eq(Some(stamp)),
        sends::updated_at.eq(stamp),
    ))
    .execute(conn)?;
    Ok(())
}
