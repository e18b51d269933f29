//! Bounces and complaints. Each delivery leaves with a VERP return path
//! (`b<delivery id>-<tag>@<bounce domain>`, the tag signed), so a bounce names
//! its delivery without relying on headers the remote server may or may not
//! copy back; the original Message-ID is the fallback. Delivery status
//! notifications (RFC 3464) and feedback reports (ARF, RFC 5965) are read with
//! `mail-parser`.
//!
//! Classification (recorded in docs/decisions.md): a permanent failure (5.x.x)
//! is hard, except a full mailbox (5.2.2) and policy or content blocks (5.7.x),
//! which are soft, as are all 4.x.x; an ARF report is a complaint. A hard bounce
//! unsubscribes the recipient from every list with reason 8 and marks the
//! address bounced; a complaint with reason 16 and blocklists it; the third soft
//! bounce within 30 days counts as repeated soft bounces (reason 512) and marks
//! the address bounced.

use chrono::Duration;
use diesel::prelude::*;
use mail_parser::{MessageParser, MimeHeaders};

use super::events::{self, NewDeliveryEvent};
use super::links::{LinkSigner, Purpose};
use super::subscriptions::{self, UnsubscribeReason};
use super::{Channel, Origin, now, recipients};
use crate::Result;
use crate::db::DbConnection;
use crate::db::schema::{deliveries, delivery_events, recipients as recipients_table, sends};

/// Soft bounces within this window that make an address bounced.
const SOFT_BOUNCE_LIMIT: i64 = 3;
const SOFT_BOUNCE_WINDOW: Duration = Duration::days(30);

/// The envelope sender of a delivery.
pub fn return_path(signer: &LinkSigner, delivery_id: i64, bounce_domain: &str) -> String {
    let tag = signer.short_tag(Purpose::Bounce, &delivery_id.to_string());
    format!("b{delivery_id}-{tag}@{bounce_domain}")
}

/// The delivery a VERP address names, if its tag is genuine.
pub fn delivery_of(signer: &LinkSigner, address: &str) -> Option<i64> {
    let address = address.trim().trim_start_matches('<').trim_end_matches('>');
    let local = address.rsplit_once('@').map_or(address, |(l, _)| l);
    let rest = local
        .strip_prefix('b')
        .or_else(|| local.strip_prefix('B'))?;
    let (id, tag) = rest.split_once('-')?;
    signer
        .verify_short_tag(Purpose::Bounce, id, tag)
        .then(|| id.parse().ok())
        .flatten()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Hard,
    Soft,
    Complaint,
}

impl Kind {
    fn event(self) -> &'static str {
        match self {
            Kind::Hard => "bounced_hard",
            Kind::Soft => "bounced_soft",
            Kind::Complaint => "complaint",
        }
    }
}

/// What one report says about one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub kind: Kind,
    /// From the VERP address the report was sent to (verified).
    pub delivery_id: Option<i64>,
    /// The original message's Message-ID, when the report carries it.
    pub message_id: Option<String>,
    /// `Final-Recipient` / `Original-Rcpt-To`.
    pub recipient: Option<String>,
    /// Enhanced status code (`5.1.1`), or the feedback type of a complaint.
    pub status: String,
    pub diagnostic: String,
}

/// Reads a bounce or complaint message. `Err` explains why it is not one.
pub fn parse(raw: &[u8], signer: &LinkSigner) -> std::result::Result<Vec<Finding>, String> {
    let message = MessageParser::default()
        .parse(raw)
        .ok_or("not a MIME message")?;
    // The VERP address: where the report was delivered to.
    let delivery_id = ["Delivered-To", "X-Original-To", "Envelope-To", "To"]
        .iter()
        .filter_map(|name| message.header_raw(*name))
        .flat_map(|value| value.split(','))
        .find_map(|address| {
            let address = address.trim();
            let address = address
                .rsplit_once('<')
                .map_or(address, |(_, a)| a.trim_end_matches('>'));
            delivery_of(signer, address)
        });
    let mut message_id = None;
    let mut status_fields = None;
    let mut feedback_fields = None;
    for part in &message.parts {
        let Some(content_type) = part.content_type() else {
            continue;
        };
        let subtype = content_type.subtype().unwrap_or("").to_ascii_lowercase();
        let text = String::from_utf8_lossy(part.contents()).into_owned();
        match (
            content_type.ctype().to_ascii_lowercase().as_str(),
            subtype.as_str(),
        ) {
            ("message", "delivery-status") | ("message", "global-delivery-status") => {
                status_fields = Some(text)
            }
            ("message", "feedback-report") => feedback_fields = Some(text),
            ("message", "rfc822") | ("text", "rfc822-headers") | ("message", "rfc822-headers") => {
                message_id = message_id.or_else(|| header_in(&text, "Message-ID"))
            }
            _ => {}
        }
    }
    if let Some(fields) = feedback_fields {
        let blocks = field_blocks(&fields);
        let all: Vec<(String, String)> = blocks.into_iter().flatten().collect();
        let get = |name: &str| {
            all.iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        return Ok(vec![Finding {
            kind: Kind::Complaint,
            delivery_id,
            message_id,
            recipient: get("Original-Rcpt-To").map(|r| address_part(&r)),
            status: get("Feedback-Type").unwrap_or_else(|| "abuse".into()),
            diagnostic: get("User-Agent").unwrap_or_default(),
        }]);
    }
    let fields =
        status_fields.ok_or("neither a delivery status notification nor a feedback report")?;
    let mut findings = Vec::new();
    // The first block describes the message; the others one recipient each.
    for block in field_blocks(&fields).into_iter().skip(1) {
        let get = |name: &str| {
            block
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        let action = get("Action").unwrap_or_default().to_ascii_lowercase();
        let status = get("Status").unwrap_or_default();
        let kind = match action.as_str() {
            "failed" => classify(&status),
            "delayed" => Kind::Soft,
            _ => continue,
        };
        findings.push(Finding {
            kind,
            delivery_id,
            message_id: message_id.clone(),
            recipient: get("Final-Recipient")
                .or_else(|| get("Original-Recipient"))
                .map(|r| address_part(&r)),
            status,
            diagnostic: get("Diagnostic-Code").unwrap_or_default(),
        });
    }
    if findings.is_empty() {
        return Err("a delivery status notification without failed recipients".into());
    }
    Ok(findings)
}

/// Hard or soft, by the enhanced status code.
pub fn classify(status: &str) -> Kind {
    let status = status.trim();
    if status.starts_with("5.2.2") || status.starts_with("5.7.") || !status.starts_with('5') {
        Kind::Soft
    } else {
        Kind::Hard
    }
}

/// `rfc822; user@example.com` → `user@example.com`.
fn address_part(value: &str) -> String {
    value
        .rsplit_once(';')
        .map_or(value, |(_, a)| a)
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_string()
}

fn header_in(text: &str, name: &str) -> Option<String> {
    text.lines()
        .take_while(|l| !l.trim().is_empty())
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
}

/// RFC 822-style field groups separated by blank lines, continuation lines
/// folded.
fn field_blocks(text: &str) -> Vec<Vec<(String, String)>> {
    let mut blocks = Vec::new();
    let mut current: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !current.is_empty() {
                blocks.push(std::mem::take(&mut current));
            }
        } else if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = current.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            current.push((name.trim().to_string(), value.trim().to_string()));
        }
    }
    if !current.is_empty() {
        blocks.push(current);
    }
    blocks
}

/// What applying a finding did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Recorded; the recipient's subscriptions ended with this reason.
    Unsubscribed(UnsubscribeReason),
    /// Recorded; nothing else changed (a soft bounce below the limit).
    Recorded,
    /// No delivery of ours matches.
    Unmatched,
}

/// Records a finding against its delivery and acts on it. With `account`, only
/// a delivery of that account matches (reports from an account's own provider).
pub fn apply(conn: &mut DbConnection, account: Option<i64>, finding: &Finding) -> Result<Applied> {
    let delivery_id = match finding.delivery_id {
        Some(id) => Some(id),
        None => match &finding.message_id {
            Some(message_id) => deliveries::table
                .filter(deliveries::message_id.eq(format!(
                    "<{}>",
                    message_id.trim().trim_start_matches('<').trim_end_matches('>')
                )))
                .select(deliveries::id)
                .first::<i64>(conn)
                .optional()?,
            None => None,
        },
    };
    let Some(delivery_id) = delivery_id else {
        return Ok(Applied::Unmatched);
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
        return Ok(Applied::Unmatched);
    };
    if account.is_some_and(|a| a != account_id) {
        return Ok(Applied::Unmatched);
    }
    let at = now();
    events::record(
        conn,
        &[NewDeliveryEvent {
            account_id,
            send_id,
            delivery_id,
            recipient_id,
            kind: finding.kind.event(),
            detail: format!("{} {}", finding.status, finding.diagnostic)
                .trim()
                .to_string(),
            created_at: at,
            ..NewDeliveryEvent::default()
        }],
    )?;
    if finding.kind != Kind::Complaint {
        diesel::update(sends::table.find(send_id))
            .set(sends::bounced.eq(sends::bounced + 1))
            .execute(conn)?;
    }
    let Some(recipient_id) = recipient_id else {
        return Ok(Applied::Recorded);
    };
    act(
        conn,
        account_id,
        recipient_id,
        finding.kind,
        &finding.status,
    )
}

/// A 5xx reply the receiving server gave while we sent: a hard one (by its
/// enhanced status code, or any 5xx without one) ends the recipient's
/// subscriptions and marks the address bounced, as a hard bounce report would.
/// The delivery itself is already recorded as bounced by the sender.
pub fn refused_while_sending(
    conn: &mut DbConnection,
    account_id: i64,
    recipient_id: i64,
    reply: &str,
) -> Result<Applied> {
    let status = reply
        .split_whitespace()
        .find(|word| {
            let parts: Vec<&str> = word.split('.').collect();
            parts.len() == 3
                && parts
                    .iter()
                    .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
        })
        .unwrap_or("5.0.0");
    match classify(status) {
        Kind::Hard => act(conn, account_id, recipient_id, Kind::Hard, status),
        Kind::Soft | Kind::Complaint => Ok(Applied::Recorded),
    }
}

/// Unsubscribes and marks a recipient for a bounce or complaint; a soft bounce
/// only when it is the third within the window.
fn act(
    conn: &mut DbConnection,
    account_id: i64,
    recipient_id: i64,
    kind: Kind,
    status: &str,
) -> Result<Applied> {
    let reason = match kind {
        Kind::Hard => UnsubscribeReason::HardBounce,
        Kind::Complaint => UnsubscribeReason::Complaint,
        Kind::Soft => {
            let recent: i64 = delivery_events::table
                .filter(delivery_events::recipient_id.eq(recipient_id))
                .filter(delivery_events::kind.eq(Kind::Soft.event()))
                .filter(delivery_events::created_at.gt(now() - SOFT_BOUNCE_WINDOW))
                .count()
                .get_result(conn)?;
            if recent < SOFT_BOUNCE_LIMIT {
                return Ok(Applied::Recorded);
            }
            UnsubscribeReason::RepeatedSoftBounces
        }
    };
    let origin = Origin::new(Channel::System, "bounce processing");
    subscriptions::end_all(conn, account_id, recipient_id, reason, &origin, status)?;
    match kind {
        Kind::Complaint => recipients::set_blocklisted(
            conn,
            account_id,
            recipient_id,
            recipients::MessageChannel::Email,
            true,
        )?,
        Kind::Hard | Kind::Soft => {
            diesel::update(recipients_table::table.find(recipient_id))
                .set(recipients_table::bounced.eq(true))
                .execute(conn)?;
        }
    }
    Ok(Applied::Unsubscribed(reason))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_by_status() {
        assert_eq!(classify("5.1.1"), Kind::Hard);
        assert_eq!(classify("5.0.0"), Kind::Hard);
        assert_eq!(classify("5.2.2"), Kind::Soft);
        assert_eq!(classify("5.7.1"), Kind::Soft);
        assert_eq!(classify("4.2.2"), Kind::Soft);
        assert_eq!(classify(""), Kind::Soft);
    }

    #[test]
    fn folds_field_blocks() {
        let blocks = field_blocks(
            "Reporting-MTA: dns; mx\n\nFinal-Recipient: rfc822; a@b.c\nDiagnostic-Code: smtp; 550 no\n  such user\n",
        );
        assert_eq!(blocks.len(), 2);
        assert_eq!(
            blocks[1][1],
            (
                "Diagnostic-Code".to_string(),
                "smtp; 550 no such user".to_string()
            )
        );
        assert_eq!(address_part("rfc822; <a@b.c>"), "a@b.c");
    }
}
