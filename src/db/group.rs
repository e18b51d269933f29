//! Group commit on SQLite: writing requests that arrive together share one
//! transaction on the process's writing connection, each in a savepoint of its
//! own, and every request is answered only after that transaction committed.
//!
//! SQLite has one writer; a transaction per request makes every request pay
//! for BEGIN, COMMIT and the WAL append alone, and the requests queue one by
//! one for the connection. Here a thread takes everything queued (up to
//! [`MAX_GROUP`]), runs it and commits once. A request that fails (or panics)
//! rolls back its own savepoint only; the others are unaffected. If the commit
//! itself fails, every request of the group gets the error and nothing of the
//! group is stored, which is what each of them would have seen alone.

use std::panic::{AssertUnwindSafe, catch_unwind};

use diesel::connection::{AnsiTransactionManager, TransactionManager};
use diesel::prelude::*;
use diesel::r2d2::Pool;
use tokio::sync::{mpsc, oneshot};

use super::{DbConnection, Manager};
use crate::{Error, Result};

/// Most requests in one transaction: enough to amortise the commit, few enough
/// that the first of them is not kept long.
const MAX_GROUP: usize = 256;

/// Runs one request in the group's transaction (or, given the error that kept
/// the group from starting, does not) and returns how to answer it once the
/// outcome of the commit is known.
type Job = Box<dyn FnOnce(std::result::Result<&mut DbConnection, &Error>) -> Finish + Send>;
/// Answers a request: given the commit's error, if any.
type Finish = Box<dyn FnOnce(Option<&Error>) + Send>;

/// The queue is unbounded: each queued job is a request waiting for its
/// answer, so its length is bounded by the requests in flight.
pub struct GroupWriter {
    queue: mpsc::UnboundedSender<Job>,
}

impl GroupWriter {
    pub fn start(writer: Pool<Manager>) -> Result<GroupWriter> {
        let (queue, mut waiting) = mpsc::unbounded_channel::<Job>();
        std::thread::Builder::new()
            .name("group-writer".into())
            .spawn(move || {
                while let Some(first) = waiting.blocking_recv() {
                    let mut group = vec![first];
                    while group.len() < MAX_GROUP {
                        match waiting.try_recv() {
                            Ok(next) => group.push(next),
                            Err(_) => break,
                        }
                    }
                    run_group(&writer, group);
                }
            })
            .map_err(|e| Error::Internal(format!("group writer not started: {e}")))?;
        Ok(GroupWriter { queue })
    }

    /// Runs `f` in a savepoint of the next group and returns its result once
    /// the group has committed.
    pub async fn run<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce(&mut DbConnection) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let (answer, answered) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let result = match conn {
                Ok(conn) => in_savepoint(conn, f),
                Err(e) => Err(Error::Unavailable(format!("group not started: {e}"))),
            };
            Box::new(move |commit_error: Option<&Error>| {
                let result = match commit_error {
                    None => result,
                    Some(e) => Err(Error::Unavailable(format!("group commit failed: {e}"))),
                };
                let _ = answer.send(result);
            })
        });
        if self.queue.send(job).is_err() {
            return Err(Error::Internal("group writer is gone".into()));
        }
        answered
            .await
            .map_err(|_| Error::Internal("group writer dropped a request".into()))?
    }
}

type Tm = <DbConnection as Connection>::TransactionManager;

/// `f` in a savepoint: committed into the group on `Ok`, rolled back on `Err`
/// or panic (the panic becomes an error of this request alone).
fn in_savepoint<T, F>(conn: &mut DbConnection, f: F) -> Result<T>
where
    F: FnOnce(&mut DbConnection) -> Result<T>,
{
    let depth = depth(conn)?;
    match catch_unwind(AssertUnwindSafe(|| conn.transaction(f))) {
        Ok(result) => result,
        Err(_) => {
            // Savepoints the panic left open are rolled back, down to the
            // group's own transaction.
            while self::depth(conn)? > depth {
                Tm::rollback_transaction(conn)?;
            }
            Err(Error::Internal("a grouped write panicked".into()))
        }
    }
}

fn depth(conn: &mut DbConnection) -> Result<u32> {
    let status = match conn {
        DbConnection::Sqlite(c) => AnsiTransactionManager::transaction_manager_status_mut(c),
        DbConnection::Postgresql(c) => AnsiTransactionManager::transaction_manager_status_mut(c),
    };
    Ok(status.transaction_depth()?.map_or(0, |d| d.get()))
}

fn run_group(writer: &Pool<Manager>, group: Vec<Job>) {
    // Without a transaction the requests are answered with the error, unrun.
    let fail_all = |group: Vec<Job>, error: Error| {
        log::error!("group of {} writes not run: {error}", group.len());
        for job in group {
            job(Err(&error))(None);
        }
    };
    let mut conn = match writer.get() {
        Ok(conn) => conn,
        Err(e) => return fail_all(group, e.into()),
    };
    let begun = match &mut *conn {
        DbConnection::Sqlite(c) => {
            AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")
        }
        DbConnection::Postgresql(c) => AnsiTransactionManager::begin_transaction(c),
    };
    if let Err(e) = begun {
        return fail_all(group, e.into());
    }
    let finishers: Vec<Finish> = group.into_iter().map(|job| job(Ok(&mut conn))).collect();
    // Only the group's own transaction may be open now; anything else (a
    // request's savepoint left behind) would make the commit a mere release.
    let committed = match depth(&mut conn) {
        Ok(1) => Tm::commit_transaction(&mut *conn).map_err(Error::from),
        Ok(depth) => Err(Error::Internal(format!(
            "group transaction at depth {depth} before commit"
        ))),
        Err(e) => Err(e),
    };
    if let Err(e) = &committed {
        log::error!("group commit of {} writes failed: {e}", finishers.len());
        // Everything of the group is undone. A connection whose transaction
        // state is broken is discarded by the pool (`has_broken`).
        while depth(&mut conn).is_ok_and(|d| d > 0) {
            if let Err(rollback) = Tm::rollback_transaction(&mut *conn) {
                log::error!("rollback after a failed group commit failed: {rollback}");
                break;
            }
        }
    }
    for finish in finishers {
        finish(committed.as_ref().err());
    }
}
