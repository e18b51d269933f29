//! SQLite's WAL checkpoints on a thread of their own (decision 74).
//!
//! A checkpoint copies the pages the log holds back into the database file;
//! before copying it syncs the log, and once it has copied everything it
//! syncs the file and the log can start over. Run by the writing connection
//! alone (SQLite's automatic checkpoint after 4,000 pages), every write
//! waited for it: under grouped subscribes the writer was blocked about 60 ms
//! (mostly syncing 16 MB of log) every half second, and every subscribe
//! queued behind it waited as long.
//!
//! Here a connection of its own copies what the log holds every
//! [`BUSY_INTERVAL`] without stopping the writer (a passive checkpoint never
//! takes the write lock). It cannot finish the job: under a steady stream of
//! writes it never reaches the log's end, so it never syncs the file and the
//! log never starts over. The writer's own automatic checkpoint stays on for
//! that, at the same size; when it runs, it finds only what was written
//! since this thread's last pass to sync and copy.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use diesel::prelude::*;
use diesel::r2d2::ManageConnection;
use diesel::sql_types::Integer;

use super::{DbConnection, Manager};
use crate::{Error, Result};

/// How soon the next checkpoint runs after one that copied pages.
const BUSY_INTERVAL: Duration = Duration::from_millis(100);

/// The longest wait between checkpoints while nothing is written.
const IDLE_INTERVAL: Duration = Duration::from_secs(2);

/// Runs the checkpoints of one SQLite database until dropped.
pub struct Checkpointer {
    /// Dropping it ends the thread at its next wake-up.
    _stop: mpsc::Sender<()>,
}

impl Checkpointer {
    pub fn start(manager: Manager) -> Result<Checkpointer> {
        let conn = manager
            .connect()
            .map_err(|e| Error::Unavailable(format!("checkpoint connection: {e}")))?;
        let DbConnection::Sqlite(mut conn) = conn else {
            return Err(Error::Internal("checkpoints are SQLite's".into()));
        };
        let (stop, stopped) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("wal-checkpoint".into())
            .spawn(move || {
                let mut interval = BUSY_INTERVAL;
                let mut last_log = 0;
                loop {
                    match stopped.recv_timeout(interval) {
                        Err(RecvTimeoutError::Timeout) => {}
                        Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
                    }
                    interval = match checkpoint(&mut conn) {
                        // The log changed since the last look: written to.
                        Ok(log) if log != last_log => {
                            last_log = log;
                            BUSY_INTERVAL
                        }
                        Ok(_) => (interval * 2).min(IDLE_INTERVAL),
                        Err(e) => {
                            log::warn!("WAL checkpoint failed: {e}");
                            IDLE_INTERVAL
                        }
                    };
                }
            })
            .map_err(|e| Error::Internal(format!("checkpoint thread not started: {e}")))?;
        Ok(Checkpointer { _stop: stop })
    }
}

#[derive(QueryableByName)]
struct CheckpointResult {
    /// Frames in the log, or -1 if the checkpoint could not run (another
    /// one was running).
    #[diesel(sql_type = Integer)]
    log: i32,
}

/// A passive checkpoint: copies what it can without waiting for anyone.
/// Returns the frames in the log.
fn checkpoint(conn: &mut SqliteConnection) -> Result<i32> {
    let result: CheckpointResult =
        diesel::sql_query("PRAGMA wal_checkpoint(PASSIVE)").get_result(conn)?;
    Ok(result.log)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use diesel::connection::SimpleConnection;

    use crate::db::Db;

    #[test]
    fn the_log_is_copied_into_the_database_without_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoint.db");
        let db = Db::connect(&format!("sqlite://{}", path.display()), None).unwrap();
        let file_size = || std::fs::metadata(&path).unwrap().len();
        let before = file_size();
        // About 250 pages: far below the writer's own checkpoint threshold,
        // so only the checkpoint thread copies them into the file.
        db.write_blocking(|conn| {
            conn.batch_execute(
                "CREATE TABLE filler (data BLOB);
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000)
                 INSERT INTO filler SELECT randomblob(1000) FROM n;",
            )?;
            Ok(())
        })
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while file_size() < before + 900_000 {
            assert!(
                Instant::now() < deadline,
                "database file still {} bytes (was {before})",
                file_size()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
