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

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
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
type Job =
    Box<dyn FnOnce(std::result::Result<(&mut DbConnection, &mut Shared), &Error>) -> Finish + Send>;
/// Answers a request: given the commit's error, if any.
type Finish = Box<dyn FnOnce(Option<&Error>) + Send>;

/// What the requests of one group share while its transaction lasts: a
/// request may keep what it looked up (an account, a list) for the requests
/// after it. Nothing else writes while the transaction is open, so such a
/// memo stays true until the group ends, when it is dropped. Values are kept
/// by type, each created empty by the first request that asks for it.
#[derive(Default)]
pub struct Shared(Vec<Box<dyn Any + Send>>);

impl Shared {
    /// The group's value of type `T`.
    pub fn get<T: Any + Send + Default>(&mut self) -> &mut T {
        let at = match self.0.iter().position(|value| value.is::<T>()) {
            Some(at) => at,
            None => {
                self.0.push(Box::new(T::default()));
                self.0.len() - 1
            }
        };
        self.0[at]
            .downcast_mut()
            .expect("the value was found or made as a T")
    }
}

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
        F: FnOnce(&mut DbConnection, &mut Shared) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let (answer, answered) = oneshot::channel();
        let job: Job = Box::new(move |group| {
            let result = match group {
                Ok((conn, shared)) => in_savepoint(conn, |conn| f(conn, shared)),
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
    run(conn, RequestSavepoint::Open)?;
    let outcome = catch_unwind(AssertUnwindSafe(|| f(&mut *conn)));
    if outcome.is_err() {
        // Savepoints of the request's own that the panic left open are
        // rolled back first, down to the group's transaction.
        while self::depth(conn)? > depth {
            Tm::rollback_transaction(conn)?;
        }
    }
    match outcome {
        Ok(Ok(value)) => {
            run(conn, RequestSavepoint::Release)?;
            Ok(value)
        }
        Ok(Err(error)) => {
            run(conn, RequestSavepoint::RollBack)?;
            run(conn, RequestSavepoint::Release)?;
            Err(error)
        }
        Err(_) => {
            run(conn, RequestSavepoint::RollBack)?;
            run(conn, RequestSavepoint::Release)?;
            Err(Error::Internal("a grouped write panicked".into()))
        }
    }
}

/// The statements of a request's savepoint. Diesel's transaction manager
/// sends its savepoints as text, which SQLite parses on every use; these are
/// kept prepared (a static query id per statement), as they run twice for
/// every grouped request. Diesel's own savepoints, which a request may open
/// inside this one, have names of their own.
#[derive(Clone, Copy)]
enum RequestSavepoint {
    Open,
    Release,
    RollBack,
}

macro_rules! fixed_statement {
    ($name:ident = $sql:literal) => {
        struct $name;

        impl diesel::query_builder::QueryId for $name {
            type QueryId = $name;
            const HAS_STATIC_QUERY_ID: bool = true;
        }

        impl diesel::query_builder::QueryFragment<diesel::sqlite::Sqlite> for $name {
            fn walk_ast<'b>(
                &'b self,
                mut out: diesel::query_builder::AstPass<'_, 'b, diesel::sqlite::Sqlite>,
            ) -> QueryResult<()> {
                out.push_sql($sql);
                Ok(())
            }
        }

        impl RunQueryDsl<diesel::SqliteConnection> for $name {}
    };
}

fixed_statement!(OpenSqlite = "SAVEPOINT grouped_request");
fixed_statement!(ReleaseSqlite = "RELEASE grouped_request");
fixed_statement!(RollBackSqlite = "ROLLBACK TO grouped_request");

fn run(conn: &mut DbConnection, statement: RequestSavepoint) -> Result<()> {
    match conn {
        DbConnection::Sqlite(c) => {
            match statement {
                RequestSavepoint::Open => OpenSqlite.execute(c)?,
                RequestSavepoint::Release => ReleaseSqlite.execute(c)?,
                RequestSavepoint::RollBack => RollBackSqlite.execute(c)?,
            };
        }
        DbConnection::Postgresql(c) => c.batch_execute(match statement {
            RequestSavepoint::Open => "SAVEPOINT grouped_request",
            RequestSavepoint::Release => "RELEASE SAVEPOINT grouped_request",
            RequestSavepoint::RollBack => "ROLLBACK TO SAVEPOINT grouped_request",
        })?,
    }
    Ok(())
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
    let mut shared = Shared::default();
    let finishers: Vec<Finish> = group
        .into_iter()
        .map(|job| job(Ok((&mut conn, &mut shared))))
        .collect();
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

#[cfg(test)]
mod tests {
    use super::Shared;

    #[test]
    fn shared_values_are_kept_by_type() {
        let mut shared = Shared::default();
        *shared.get::<u32>() += 1;
        shared.get::<String>().push_str("list 1");
        *shared.get::<u32>() += 1;
        assert_eq!(*shared.get::<u32>(), 2);
        assert_eq!(shared.get::<String>(), "list 1");
        assert_eq!(*shared.get::<u64>(), 0);
    }
}
