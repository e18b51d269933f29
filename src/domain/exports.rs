//! Exports: a document written as a zip file to the account's export folder,
//! `<data_dir>/exports/<console id>/`, and recorded as a batch that callers ask
//! about by id. The caller makes the document (its format is the protocol's);
//! this module stores it.

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::{accounts, now};
use crate::db::schema::export_batches;
use crate::db::{DbConnection, write_transaction};
use crate::{Error, Result};

#[derive(Debug, Clone, Queryable, Selectable, PartialEq)]
#[diesel(table_name = export_batches)]
pub struct Batch {
    pub id: i64,
    pub account_id: i64,
    /// What was exported (the caller's name for it).
    pub kind: String,
    /// `Complete` once the file is written.
    pub status: String,
    /// The zip file's name in the export folder.
    pub file_name: String,
    pub created_at: NaiveDateTime,
}

/// The export folder of the account with this console id.
pub fn folder(data_dir: &Path, console_id: i64) -> PathBuf {
    data_dir.join("exports").join(console_id.to_string())
}

/// Writes `content` as `entry` inside `<kind>_<batch id>.zip` in the account's
/// export folder and records the batch; nothing is recorded if the file
/// cannot be written.
pub fn save(
    conn: &mut DbConnection,
    account_id: i64,
    data_dir: &Path,
    kind: &str,
    entry: &str,
    content: &[u8],
) -> Result<Batch> {
    let account = accounts::get(conn, account_id)?;
    let folder = folder(data_dir, account.console_id);
    write_transaction(conn, |conn| {
        let id: i64 = diesel::insert_into(export_batches::table)
            .values((
                export_batches::account_id.eq(account_id),
                export_batches::kind.eq(kind),
                export_batches::status.eq("Complete"),
                export_batches::file_name.eq(""),
                export_batches::created_at.eq(now()),
            ))
            .returning(export_batches::id)
            .get_result(conn)?;
        let file_name = format!("{kind}_{id}.zip");
        let written = std::fs::create_dir_all(&folder)
            .and_then(|()| std::fs::write(folder.join(&file_name), zip_stored(entry, content)));
        if let Err(e) = written {
            return Err(Error::Internal(format!(
                "writing {}: {e}",
                folder.join(&file_name).display()
            )));
        }
        diesel::update(export_batches::table.find(id))
            .set(export_batches::file_name.eq(&file_name))
            .execute(conn)?;
        get(conn, account_id, id)
    })
}

/// Records a batch of work that finished within its call and left no file
/// (a group refresh), so that callers polling for it find it complete.
pub fn record_done(conn: &mut DbConnection, account_id: i64, kind: &str) -> Result<Batch> {
    let id: i64 = diesel::insert_into(export_batches::table)
        .values((
            export_batches::account_id.eq(account_id),
            export_batches::kind.eq(kind),
            export_batches::status.eq("Complete"),
            export_batches::file_name.eq(""),
            export_batches::created_at.eq(now()),
        ))
        .returning(export_batches::id)
        .get_result(conn)?;
    get(conn, account_id, id)
}

pub fn get(conn: &mut DbConnection, account_id: i64, id: i64) -> Result<Batch> {
    export_batches::table
        .filter(export_batches::account_id.eq(account_id))
        .filter(export_batches::id.eq(id))
        .select(Batch::as_select())
        .first(conn)
        .optional()?
        .ok_or(Error::NotFound("batch"))
}

/// A zip archive holding one file, stored without compression (every unzip
/// reads it; the exports are text that the caller may compress again).
fn zip_stored(name: &str, content: &[u8]) -> Vec<u8> {
    let crc = crc32(content);
    let size = content.len() as u32;
    let name = name.as_bytes();
    let mut out = Vec::with_capacity(content.len() + 2 * name.len() + 100);
    // Local file header: version 2.0, no flags, stored, no time.
    let _ = out.write_all(&0x0403_4b50u32.to_le_bytes());
    for half in [20u16, 0, 0, 0, 0] {
        out.extend_from_slice(&half.to_le_bytes());
    }
    for word in [crc, size, size] {
        out.extend_from_slice(&word.to_le_bytes());
    }
    out.extend_from_slice(&(name.len() as u16).to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(name);
    out.extend_from_slice(content);
    let directory_at = out.len() as u32;
    // Central directory entry.
    out.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
    for half in [20u16, 20, 0, 0, 0, 0] {
        out.extend_from_slice(&half.to_le_bytes());
    }
    for word in [crc, size, size] {
        out.extend_from_slice(&word.to_le_bytes());
    }
    for half in [name.len() as u16, 0, 0, 0, 0] {
        out.extend_from_slice(&half.to_le_bytes());
    }
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(name);
    let directory_size = out.len() as u32 - directory_at;
    // End of central directory.
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    for half in [0u16, 0, 1, 1] {
        out.extend_from_slice(&half.to_le_bytes());
    }
    out.extend_from_slice(&directory_size.to_le_bytes());
    out.extend_from_slice(&directory_at.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

/// CRC-32 (IEEE), as zip records it.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for byte in data {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_of_the_check_string() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }
}
