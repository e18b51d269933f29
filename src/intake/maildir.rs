//! A Maildir (`new/`, `cur/`, `tmp/`) of bounce reports. Each message in `new/`
//! is taken in and then moved to `cur/` with the Seen flag, as a mail reader
//! would; an unreadable one is moved with the Trashed flag. The database, not
//! the move, decides whether a message was applied, so a crash between the
//! two never applies a report twice.

use std::path::Path;

use super::{Taken, take};
use crate::Result;
use crate::db::DbConnection;
use crate::domain::links::LinkSigner;

/// Counts of one pass over a Maildir.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pass {
    pub applied: usize,
    pub repeated: usize,
    pub unreadable: usize,
    /// Findings that named no delivery of ours.
    pub unmatched: usize,
}

/// Takes in every message waiting in `dir/new`.
pub fn process(conn: &mut DbConnection, signer: &LinkSigner, dir: &Path) -> Result<Pass> {
    let new = dir.join("new");
    let cur = dir.join("cur");
    let io = |what: &str, e: std::io::Error| crate::Error::Unavailable(format!("{what}: {e}"));
    std::fs::create_dir_all(&cur).map_err(|e| io("maildir cur", e))?;
    let mut names: Vec<_> = match std::fs::read_dir(&new) {
        Ok(entries) => entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .map(|e| e.file_name())
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Pass::default()),
        Err(e) => return Err(io("maildir new", e)),
    };
    names.sort();
    let mut pass = Pass::default();
    for name in names {
        let name = name.to_string_lossy().into_owned();
        // The unique part of a Maildir name, before any ":2,flags".
        let unique = name.split(':').next().unwrap_or(&name).to_string();
        let path = new.join(&name);
        let raw = std::fs::read(&path).map_err(|e| io("maildir message", e))?;
        let flag = match take(conn, signer, &format!("maildir:{unique}"), &raw)? {
            Taken::Applied { unmatched, .. } => {
                pass.applied += 1;
                pass.unmatched += unmatched;
                "S"
            }
            Taken::Repeated => {
                pass.repeated += 1;
                "S"
            }
            Taken::Unreadable => {
                pass.unreadable += 1;
                "T"
            }
        };
        std::fs::rename(&path, cur.join(format!("{unique}:2,{flag}")))
            .map_err(|e| io("maildir move", e))?;
    }
    Ok(pass)
}
