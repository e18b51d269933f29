//! Where bounce and complaint reports come in from: a Maildir that the local
//! MTA delivers the VERP addresses into, an IMAP mailbox, and provider
//! webhooks. Each report is applied exactly once: its source key is recorded in
//! the transaction that applies it. (`import_folder` takes in recipient files
//! the same way.)

pub mod hit_journal;
pub mod imap;
pub mod import_folder;
pub mod maildir;

use diesel::prelude::*;

use crate::Result;
use crate::db::schema::bounce_reports;
use crate::db::{DbConnection, write_transaction};
use crate::domain::bounces::{self, Applied, Finding};
use crate::domain::links::LinkSigner;
use crate::domain::now;

/// What taking in one report did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    /// Applied: how many findings matched a delivery of ours.
    Applied { matched: usize, unmatched: usize },
    /// Seen before (same source key): nothing done.
    Repeated,
    /// Not a bounce or complaint we can read; logged, recorded, skipped.
    Unreadable,
}

/// Parses and applies one raw report (a bounce or complaint message) under a
/// unique source key.
pub fn take(
    conn: &mut DbConnection,
    signer: &LinkSigner,
    source: &str,
    raw: &[u8],
) -> Result<Taken> {
    let findings = match bounces::parse(raw, signer) {
        Ok(findings) => Some(findings),
        Err(reason) => {
            log::warn!("bounce report {source} skipped: {reason}");
            None
        }
    };
    take_findings(conn, source, None, findings.as_deref())
}

/// Applies findings (or records an unreadable report: `None`) under a unique
/// source key; with `account`, only that account's deliveries match.
pub fn take_findings(
    conn: &mut DbConnection,
    source: &str,
    account: Option<i64>,
    findings: Option<&[Finding]>,
) -> Result<Taken> {
    write_transaction(conn, |conn| {
        let seen = bounce_reports::table
            .filter(bounce_reports::source.eq(source))
            .count()
            .get_result::<i64>(conn)?;
        if seen > 0 {
            return Ok(Taken::Repeated);
        }
        let taken = match findings {
            Some(findings) => {
                let mut matched = 0;
                let mut unmatched = 0;
                for finding in findings {
                    match bounces::apply(conn, account, finding)? {
                        Applied::Unmatched => unmatched += 1,
                        Applied::Recorded | Applied::Unsubscribed(_) => matched += 1,
                    }
                }
                Taken::Applied { matched, unmatched }
            }
            None => Taken::Unreadable,
        };
        let outcome = match taken {
            Taken::Applied { matched, unmatched } => {
                format!("applied {matched}, unmatched {unmatched}")
            }
            Taken::Unreadable => "unreadable".to_string(),
            Taken::Repeated => unreachable!("returned above"),
        };
        diesel::insert_into(bounce_reports::table)
            .values((
                bounce_reports::source.eq(source),
                bounce_reports::outcome.eq(&outcome),
                bounce_reports::received_at.eq(now()),
            ))
            .execute(conn)?;
        Ok(taken)
    })
}
