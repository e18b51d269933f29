//! Where bounce and complaint reports come in from: a Maildir that the local
//! MTA delivers the VERP addresses into (and, later, an IMAP mailbox and
//! provider webhooks). Each report is applied exactly once: its source key is
//! recorded in the transaction that applies it.

pub mod maildir;

use diesel::prelude::*;

use crate::Result;
use crate::db::schema::bounce_reports;
use crate::db::{DbConnection, write_transaction};
use crate::domain::bounces::{self, Applied};
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

/// Parses and applies one raw report under a unique source key.
pub fn take(
    conn: &mut DbConnection,
    signer: &LinkSigner,
    source: &str,
    raw: &[u8],
) -> Result<Taken> {
    write_transaction(conn, |conn| {
        let seen = bounce_reports::table
            .filter(bounce_reports::source.eq(source))
            .count()
            .get_result::<i64>(conn)?;
        if seen > 0 {
            return Ok(Taken::Repeated);
        }
        let taken = match bounces::parse(raw, signer) {
            Ok(findings) => {
                let mut matched = 0;
                let mut unmatched = 0;
                for finding in &findings {
                    match bounces::apply(conn, finding)? {
                        Applied::Unmatched => unmatched += 1,
                        Applied::Recorded | Applied::Unsubscribed(_) => matched += 1,
                    }
                }
                Taken::Applied { matched, unmatched }
            }
            Err(reason) => {
                log::warn!("bounce report {source} skipped: {reason}");
                Taken::Unreadable
            }
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
