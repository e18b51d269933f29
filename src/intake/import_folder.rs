//! MailUp's batch import folder (`../shared/specs/mailup.md` §3.1): a file
//! dropped into `<data dir>/ftp/import/<list id>/` (on a single-account
//! install) or `<data dir>/ftp/<console id>/import/<list id>/` is imported into
//! that list with MailUp's default semantics (new recipients subscribed,
//! existing ones get their fields, no status changes). Each file is queued
//! exactly once: its name, size and modification time are the import's source,
//! checked in the transaction that queues it, so a file found again (another
//! runner, a restart before it was moved) is only moved. Then it goes to
//! `done/`, or to `failed/` with a `.txt` saying why.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::db::DbConnection;
use crate::domain::accounts::{self, Account};
use crate::domain::imports::{self, ImportType, NewImport, StatusRules};
use crate::domain::{Channel, Origin, lists};
use crate::protocols::mailup::csv;
use crate::{Error, Result};

/// A file changed more recently than this may still be being uploaded.
const SETTLE: Duration = Duration::from_secs(5);

/// What one look at the folders did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pass {
    pub queued: usize,
    /// Files already imported, found again: moved away only.
    pub repeated: usize,
    pub refused: usize,
}

/// Looks through every account's import folders once.
pub fn scan(conn: &mut DbConnection, data_dir: &Path) -> Result<Pass> {
    let mut pass = Pass::default();
    let ftp = data_dir.join("ftp");
    for entry in directories(&ftp) {
        let name = entry.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let account = if name == "import" {
            accounts::only_account(conn)?.map(|a| (a, entry.clone()))
        } else {
            match name.parse::<i64>() {
                Ok(console_id) => accounts::find_by_console_id(conn, console_id)?
                    .map(|a| (a, entry.join("import"))),
                Err(_) => None,
            }
        };
        if let Some((account, folder)) = account {
            scan_account(conn, &account, &folder, &mut pass)?;
        }
    }
    Ok(pass)
}

fn scan_account(
    conn: &mut DbConnection,
    account: &Account,
    folder: &Path,
    pass: &mut Pass,
) -> Result<()> {
    for list_dir in directories(folder) {
        let Some(number) = list_dir
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.parse::<i64>().ok())
        else {
            continue;
        };
        for file in settled_files(&list_dir) {
            match take(conn, account, number, &file) {
                Ok(Some(_)) => {
                    pass.queued += 1;
                    set_aside(&file, "done", None);
                }
                Ok(None) => {
                    pass.repeated += 1;
                    set_aside(&file, "done", None);
                }
                Err(e) if e.is_internal() => return Err(e),
                Err(e) => {
                    log::warn!("import file {} refused: {e}", file.display());
                    pass.refused += 1;
                    set_aside(&file, "failed", Some(&e.to_string()));
                }
            }
        }
    }
    Ok(())
}

/// Reads a file and queues its import; `None` when it was imported before.
fn take(
    conn: &mut DbConnection,
    account: &Account,
    list: i64,
    file: &Path,
) -> Result<Option<imports::Process>> {
    let bytes = std::fs::read(file)
        .map_err(|e| Error::Unavailable(format!("reading {}: {e}", file.display())))?;
    let modified = std::fs::metadata(file)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("");
    lists::get(conn, account.id, list)?;
    let read = csv::read(&bytes).map_err(|e| Error::invalid("import file", e.to_string()))?;
    let new = NewImport {
        list,
        groups: Vec::new(),
        rows: read.rows,
        unreadable: read.unreadable,
        import_type: ImportType::default(),
        rules: StatusRules::default(),
        replace_groups: false,
        confirm_message: None,
        source: format!(
            "file {list}/{name} ({} bytes, modified {modified})",
            bytes.len()
        ),
        origin: Origin::new(Channel::MailupImport, "import folder"),
    };
    let queued = imports::queue_once(conn, account.id, new)?;
    if let Some(process) = &queued {
        log::info!(
            "import file {} queued as import {}",
            file.display(),
            process.id
        );
    }
    Ok(queued)
}

fn directories(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect();
    found.sort();
    found
}

/// Regular files not touched for [`SETTLE`], oldest name first; hidden files
/// (an upload in progress, often) are left alone.
fn settled_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let now = SystemTime::now();
    let mut found: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .filter(|e| {
            e.metadata().is_ok_and(|m| {
                m.is_file()
                    && m.modified()
                        .ok()
                        .and_then(|t| now.duration_since(t).ok())
                        .is_some_and(|age| age >= SETTLE)
            })
        })
        .map(|e| e.path())
        .collect();
    found.sort();
    found
}

/// Moves a file into `<its folder>/<to>/`, with a note beside it if given. A
/// file that cannot be moved is logged; it will be found again and recognised.
fn set_aside(file: &Path, to: &str, note: Option<&str>) {
    let (Some(dir), Some(name)) = (file.parent(), file.file_name()) else {
        return;
    };
    let target = dir.join(to);
    let moved =
        std::fs::create_dir_all(&target).and_then(|()| std::fs::rename(file, target.join(name)));
    if let Err(e) = moved {
        log::error!("moving {} to {to}/: {e}", file.display());
        return;
    }
    if let Some(note) = note {
        let mut report = name.to_os_string();
        report.push(".txt");
        if let Err(e) = std::fs::write(target.join(report), format!("{note}\n")) {
            log::error!("writing the note for {}: {e}", file.display());
        }
    }
}
