//! Opens and clicks. Links in a message carry signed tokens naming the delivery
//! (and, for a click, the URL it leads to), so a click can only ever redirect to
//! a URL we put into that message. Every hit is stored as an event; hits that
//! look like machines (link scanners, prefetching mail proxies) are flagged and
//! kept out of the human counts. Per-send, per-delivery and per-recipient
//! aggregates are updated with each event, so reports never scan the events.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use super::events::{self, NewDeliveryEvent};
use super::links::{LinkSigner, Purpose};
use super::{first_chars, now};
use crate::Result;
use crate::db::schema::{recipient_activity, sends};
use crate::db::{DbConnection, backend};

/// A human opening a message does not do so within this time of its delivery;
/// mail proxies that fetch images on arrival do.
const OPEN_PREFETCH_WINDOW: Duration = Duration::seconds(2);
/// Link scanners follow every link as the message arrives.
const CLICK_SCAN_WINDOW: Duration = Duration::seconds(5);
/// User agents of link scanners and security gateways (lower case substrings).
const SCANNER_AGENTS: [&str; 12] = [
    "bot",
    "spider",
    "crawler",
    "scanner",
    "barracuda",
    "mimecast",
    "proofpoint",
    "urldefense",
    "safelinks",
    "python-requests",
    "go-http-client",
    "headless",
];

/// One request for a pixel or a link.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hit {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// A HEAD request: checks a link without a person behind it.
    pub head: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Activity {
    Open,
    Click,
}

impl Activity {
    fn kind(self) -> &'static str {
        match self {
            Activity::Open => "opened",
            Activity::Click => "clicked",
        }
    }
}

/// The token of a delivery's open pixel.
pub fn open_token(signer: &LinkSigner, delivery_id: i64) -> String {
    signer.sign(Purpose::Open, &delivery_id.to_string())
}

/// The token of a link of a delivery.
pub fn click_token(signer: &LinkSigner, delivery_id: i64, url: &str) -> String {
    signer.sign(Purpose::Click, &format!("{delivery_id}|{url}"))
}

/// Whether a hit looks like a machine rather than a person.
pub fn is_machine(
    activity: Activity,
    hit: &Hit,
    sent_at: Option<NaiveDateTime>,
    at: NaiveDateTime,
) -> bool {
    if hit.head {
        return true;
    }
    let agent = hit.user_agent.as_deref().unwrap_or("").to_ascii_lowercase();
    if agent.is_empty() || SCANNER_AGENTS.iter().any(|s| agent.contains(s)) {
        return true;
    }
    let window = match activity {
        Activity::Open => OPEN_PREFETCH_WINDOW,
        Activity::Click => CLICK_SCAN_WINDOW,
    };
    sent_at.is_some_and(|sent| at - sent < window)
}

/// The delivery a pixel token names, if the token is genuine.
pub fn open_target(signer: &LinkSigner, token: &str) -> Option<i64> {
    signer.verify(Purpose::Open, token).ok()?.parse().ok()
}

/// The delivery and URL a link token names, if the token is genuine.
pub fn click_target(signer: &LinkSigner, token: &str) -> Option<(i64, String)> {
    let payload = signer.verify(Purpose::Click, token).ok()?;
    let (id, url) = payload.split_once('|')?;
    Some((id.parse().ok()?, url.to_string()))
}

/// A hit waiting to be recorded (a line of the hit journal).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingHit {
    pub delivery_id: i64,
    pub activity: Activity,
    /// The click's destination.
    pub url: Option<String>,
    pub hit: Hit,
    /// In microseconds in the journal: written and read by every hit.
    #[serde(with = "chrono::naive::serde::ts_microseconds")]
    pub at: NaiveDateTime,
}

/// Increments of one recipient's activity row.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = recipient_activity, treat_none_as_null = true)]
pub struct ActivityIncrement {
    pub recipient_id: i64,
    pub account_id: i64,
    pub opens: i64,
    pub clicks: i64,
    pub last_opened_at: Option<NaiveDateTime>,
    pub last_clicked_at: Option<NaiveDateTime>,
}

/// Per-send increments of one batch.
#[derive(Debug, Clone, Copy, Default)]
pub struct SendIncrement {
    pub opens: i64,
    pub unique_opens: i64,
    pub clicks: i64,
    pub unique_clicks: i64,
    pub machine_opens: i64,
    pub machine_clicks: i64,
}

/// Records a batch of hits in the caller's transaction with a few statements
/// per batch rather than per hit: the events, the deliveries' firsts (one
/// conditional UPDATE each for opens and clicks), the sends' counters and the
/// recipients' activity (decision 52). Hits of
/// deliveries that no longer exist are dropped. Returns how many events were
/// stored.
pub fn record_batch(conn: &mut DbConnection, hits: &[PendingHit]) -> Result<usize> {
    use std::collections::{BTreeMap, BTreeSet};
    let ids: Vec<i64> = hits
        .iter()
        .map(|h| h.delivery_id)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let known: BTreeMap<i64, backend::TrackingTarget> = backend::tracking_targets(conn, &ids)?
        .into_iter()
        .map(|row| (row.0, row))
        .collect();
    let mut events = Vec::with_capacity(hits.len());
    let mut human_open: BTreeSet<i64> = BTreeSet::new();
    let mut human_click: BTreeSet<i64> = BTreeSet::new();
    let mut per_send: BTreeMap<i64, SendIncrement> = BTreeMap::new();
    let mut per_recipient: BTreeMap<i64, ActivityIncrement> = BTreeMap::new();
    for pending in hits {
        let Some(&(delivery_id, account_id, send_id, recipient_id, sent_at)) =
            known.get(&pending.delivery_id)
        else {
            continue;
        };
        let machine = is_machine(pending.activity, &pending.hit, sent_at, pending.at);
        events.push(NewDeliveryEvent {
            account_id,
            send_id,
            delivery_id,
            recipient_id,
            kind: pending.activity.kind(),
            detail: String::new(),
            created_at: pending.at,
            ip: pending.hit.ip.clone(),
            user_agent: pending
                .hit
                .user_agent
                .as_deref()
                .map(|a| first_chars(a, 512).to_string()),
            url: pending.url.clone(),
            machine,
        });
        let send = per_send.entry(send_id).or_default();
        match (pending.activity, machine) {
            (Activity::Open, true) => send.machine_opens += 1,
            (Activity::Click, true) => send.machine_clicks += 1,
            (Activity::Open, false) => send.opens += 1,
            (Activity::Click, false) => send.clicks += 1,
        }
        if machine {
            continue;
        }
        // A click proves the message was opened, even with images blocked.
        human_open.insert(delivery_id);
        if pending.activity == Activity::Click {
            human_click.insert(delivery_id);
        }
        if let Some(recipient_id) = recipient_id {
            let row = per_recipient
                .entry(recipient_id)
                .or_insert(ActivityIncrement {
                    recipient_id,
                    account_id,
                    opens: 0,
                    clicks: 0,
                    last_opened_at: None,
                    last_clicked_at: None,
                });
            match pending.activity {
                Activity::Open => {
                    row.opens += 1;
                    row.last_opened_at = row.last_opened_at.max(Some(pending.at));
                }
                Activity::Click => {
                    row.clicks += 1;
                    row.last_clicked_at = row.last_clicked_at.max(Some(pending.at));
                }
            }
        }
    }
    events::record(conn, &events)?;
    let at = hits.iter().map(|h| h.at).max().unwrap_or_else(now);
    // "First" is decided by the conditional UPDATE itself, so hits taken in by
    // two processes at once cannot both count as the first.
    let human_open: Vec<i64> = human_open.into_iter().collect();
    let human_click: Vec<i64> = human_click.into_iter().collect();
    for id in backend::mark_first_opened(conn, &human_open, at)? {
        if let Some(row) = known.get(&id) {
            per_send.entry(row.2).or_default().unique_opens += 1;
        }
    }
    for id in backend::mark_first_clicked(conn, &human_click, at)? {
        if let Some(row) = known.get(&id) {
            per_send.entry(row.2).or_default().unique_clicks += 1;
        }
    }
    let per_send: Vec<(i64, SendIncrement)> = per_send.into_iter().collect();
    backend::add_send_activity(conn, &per_send)?;
    let increments: Vec<ActivityIncrement> = per_recipient.into_values().collect();
    backend::add_recipient_activity(conn, &increments)?;
    Ok(events.len())
}

/// A send's activity counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Queryable)]
pub struct SendActivity {
    pub opens: i64,
    pub unique_opens: i64,
    pub clicks: i64,
    pub unique_clicks: i64,
    pub machine_opens: i64,
    pub machine_clicks: i64,
}

pub fn send_activity(
    conn: &mut DbConnection,
    account_id: i64,
    send_id: i64,
) -> Result<SendActivity> {
    Ok(sends::table
        .filter(sends::account_id.eq(account_id))
        .filter(sends::id.eq(send_id))
        .select((
            sends::opens,
            sends::unique_opens,
            sends::clicks,
            sends::unique_clicks,
            sends::machine_opens,
            sends::machine_clicks,
        ))
        .first(conn)?)
}

/// A recipient's activity counts: (opens, clicks), zero when none.
pub fn recipient_activity(
    conn: &mut DbConnection,
    account_id: i64,
    recipient_id: i64,
) -> Result<(i64, i64)> {
    Ok(recipient_activity::table
        .filter(recipient_activity::account_id.eq(account_id))
        .filter(recipient_activity::recipient_id.eq(recipient_id))
        .select((recipient_activity::opens, recipient_activity::clicks))
        .first(conn)
        .optional()?
        .unwrap_or((0, 0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(agent: &str) -> Hit {
        Hit {
            ip: None,
            user_agent: Some(agent.into()),
            head: false,
        }
    }

    #[test]
    fn machines_are_told_apart() {
        let sent = now() - Duration::minutes(10);
        let browser = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Firefox/128.0";
        assert!(!is_machine(
            Activity::Click,
            &hit(browser),
            Some(sent),
            now()
        ));
        assert!(is_machine(
            Activity::Click,
            &Hit {
                head: true,
                ..hit(browser)
            },
            Some(sent),
            now()
        ));
        assert!(is_machine(
            Activity::Click,
            &hit("Mimecast-Scanner/1.0"),
            Some(sent),
            now()
        ));
        assert!(is_machine(Activity::Open, &hit(""), Some(sent), now()));
        let just_sent = now() - Duration::seconds(1);
        assert!(is_machine(
            Activity::Click,
            &hit(browser),
            Some(just_sent),
            now()
        ));
        assert!(is_machine(
            Activity::Open,
            &hit(browser),
            Some(just_sent),
            now()
        ));
        assert!(!is_machine(Activity::Open, &hit(browser), None, now()));
    }
}
