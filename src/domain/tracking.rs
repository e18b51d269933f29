//! Opens and clicks. Links in a message carry signed tokens naming the delivery
//! (and, for a click, the URL it leads to), so a click can only ever redirect to
//! a URL we put into that message. Every hit is stored as an event; hits that
//! look like machines (link scanners, prefetching mail proxies) are flagged and
//! kept out of the human counts. Per-send, per-delivery and per-recipient
//! aggregates are updated with each event, so reports never scan the events.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;

use super::links::{LinkSigner, Purpose};
use super::now;
use crate::Result;
use crate::db::schema::{deliveries, delivery_events, recipient_activity, sends};
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
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hit {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// A HEAD request: checks a link without a person behind it.
    pub head: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

/// What a recorded hit was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub delivery_id: i64,
    pub machine: bool,
    /// The click's destination.
    pub url: Option<String>,
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

/// Records an open of a delivery.
pub fn open(conn: &mut DbConnection, delivery_id: i64, hit: &Hit) -> Result<Recorded> {
    record(conn, delivery_id, Activity::Open, None, hit)
}

/// Records a click of a delivery's link.
pub fn click(conn: &mut DbConnection, delivery_id: i64, url: &str, hit: &Hit) -> Result<Recorded> {
    record(conn, delivery_id, Activity::Click, Some(url), hit)
}

fn record(
    conn: &mut DbConnection,
    delivery_id: i64,
    activity: Activity,
    url: Option<&str>,
    hit: &Hit,
) -> Result<Recorded> {
    type Row = (i64, i64, Option<i64>, Option<NaiveDateTime>);
    let found: Option<Row> = deliveries::table
        .find(delivery_id)
        .select((
            deliveries::account_id,
            deliveries::send_id,
            deliveries::recipient_id,
            deliveries::sent_at,
        ))
        .first(conn)
        .optional()?;
    // A genuine token of a delivery since deleted (its account erased):
    // nothing to count.
    let Some((account_id, send_id, recipient_id, sent_at)) = found else {
        return Ok(Recorded {
            delivery_id,
            machine: false,
            url: url.map(str::to_string),
        });
    };
    let at = now();
    let machine = is_machine(activity, hit, sent_at, at);
    diesel::insert_into(delivery_events::table)
        .values((
            delivery_events::account_id.eq(account_id),
            delivery_events::send_id.eq(send_id),
            delivery_events::delivery_id.eq(delivery_id),
            delivery_events::recipient_id.eq(recipient_id),
            delivery_events::kind.eq(activity.kind()),
            delivery_events::detail.eq(""),
            delivery_events::created_at.eq(at),
            delivery_events::ip.eq(hit.ip.as_deref()),
            delivery_events::user_agent.eq(hit.user_agent.as_deref().map(|a| truncate(a, 512))),
            delivery_events::url.eq(url),
            delivery_events::machine.eq(machine),
        ))
        .execute(conn)?;
    let send = sends::table.find(send_id);
    if machine {
        match activity {
            Activity::Open => diesel::update(send)
                .set(sends::machine_opens.eq(sends::machine_opens + 1))
                .execute(conn)?,
            Activity::Click => diesel::update(send)
                .set(sends::machine_clicks.eq(sends::machine_clicks + 1))
                .execute(conn)?,
        };
    } else {
        let delivery = deliveries::table.find(delivery_id);
        // "First" is decided by the row update itself, so two hits at once
        // cannot both count as the first. A click proves the message was
        // opened, even with images blocked.
        let first_open_now = diesel::update(delivery.filter(deliveries::first_opened_at.is_null()))
            .set(deliveries::first_opened_at.eq(at))
            .execute(conn)?
            == 1;
        if first_open_now {
            diesel::update(send)
                .set(sends::unique_opens.eq(sends::unique_opens + 1))
                .execute(conn)?;
        }
        match activity {
            Activity::Open => {
                diesel::update(send)
                    .set(sends::opens.eq(sends::opens + 1))
                    .execute(conn)?;
            }
            Activity::Click => {
                let first_click_now =
                    diesel::update(delivery.filter(deliveries::first_clicked_at.is_null()))
                        .set(deliveries::first_clicked_at.eq(at))
                        .execute(conn)?
                        == 1;
                diesel::update(send)
                    .set((
                        sends::clicks.eq(sends::clicks + 1),
                        sends::unique_clicks.eq(sends::unique_clicks + i64::from(first_click_now)),
                    ))
                    .execute(conn)?;
            }
        }
        if let Some(recipient_id) = recipient_id {
            backend::insert_recipient_activity_if_absent(conn, recipient_id, account_id)?;
            let row = recipient_activity::table.find(recipient_id);
            match activity {
                Activity::Open => diesel::update(row)
                    .set((
                        recipient_activity::opens.eq(recipient_activity::opens + 1),
                        recipient_activity::last_opened_at.eq(at),
                    ))
                    .execute(conn)?,
                Activity::Click => diesel::update(row)
                    .set((
                        recipient_activity::clicks.eq(recipient_activity::clicks + 1),
                        recipient_activity::last_clicked_at.eq(at),
                    ))
                    .execute(conn)?,
            };
        }
    }
    Ok(Recorded {
        delivery_id,
        machine,
        url: url.map(str::to_string),
    })
}

fn truncate(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((at, _)) => &text[..at],
        None => text,
    }
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
