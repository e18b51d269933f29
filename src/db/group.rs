//! Group commit: writing requests that arrive together share one
//! transaction on one connection (SQLite's writing connection, or one of
//! PostgreSQL's pool), and every request is answered only after that
//! transaction committed.
//!
//! SQLite has one writer; a transaction per request makes every request pay
//! for BEGIN, COMMIT and the WAL append alone, and the requests queue one by
//! one for the connection. On PostgreSQL a transaction per request paid
//! those round trips too, and concurrent requests queued on the rows they
//! share (a list's counts) while our server's CPU per round trip bounded the
//! rate (decision 73). Here a thread takes everything queued (up to
//! [`MAX_GROUP`]), runs it and commits once.
//!
//! The requests of a group first run one after the other straight in the
//! transaction. A savepoint per request would let one fail alone, but SQLite
//! then copies every page a request changes that an earlier request of the
//! group had changed into the savepoint's journal, and under load that was
//! about a tenth of a subscribe's cost; requests rarely fail. When one does
//! fail (or panics), the whole transaction is rolled back and the group runs
//! again, each request in a savepoint of its own, so that the failure undoes
//! that request's writes only and the others are unaffected. A request may
//! therefore run twice: it must do nothing but read and write through the
//! connection it is given. If the commit itself fails, every request of the
//! group gets the error and nothing of the group is stored, which is what
//! each of them would have seen alone.
//!
//! Answers go out one per worker thread and group (see [`Siblings`]): each
//! wake-up from this thread is a system call that also preempted it, and
//! under load that was about a tenth of its time.

use std::any::Any;
use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::thread::ThreadId;

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::prelude::*;
use diesel::r2d2::Pool;
use tokio::sync::{mpsc, oneshot};

use super::{DbConnection, Manager, backend};
use crate::{Error, Result};

/// Most requests in one transaction: enough to amortise the commit, few enough
/// that the first of them is not kept long.
const MAX_GROUP: usize = 256;

/// One queued request: run (once or twice, see the module's comment) and
/// then answered.
trait Job: Send {
    /// Runs the request in the group's transaction, in a savepoint of its own
    /// if `isolated`; `false` if it failed.
    fn run(&mut self, conn: &mut DbConnection, shared: &mut Shared, isolated: bool) -> bool;
    /// Settles the request's answer: its last run's result, or the error
    /// that kept the group from committing.
    fn settle(&mut self, group_error: Option<&Error>);
    /// The thread the request waits on.
    fn thread(&self) -> ThreadId;
    /// Answers the request, handing it `siblings` (settled requests waiting
    /// on the same thread) to answer in turn; gives them back if the request
    /// no longer waits (its client went away).
    fn answer(self: Box<Self>, siblings: Siblings) -> std::result::Result<(), Siblings>;
}

/// Settled requests that one answered request answers on its own thread: a
/// wake-up from the writer thread is a system call and a switch of that
/// thread per request, a wake-up from a request on the same thread is
/// neither. Whoever ends up holding them (the request told, or, if that
/// request was given up before it read its answer, whatever drops it)
/// answers them all at once, so every request is answered exactly once and
/// none waits for another to run first.
struct Siblings(Vec<Box<dyn Job>>);

impl Drop for Siblings {
    fn drop(&mut self) {
        for job in std::mem::take(&mut self.0) {
            // A request that no longer waits needs no answer.
            let _ = job.answer(Siblings(Vec::new()));
        }
    }
}

/// Answers the first request of `jobs` that still waits (from the writer
/// thread), handing it the rest.
fn tell(mut jobs: Vec<Box<dyn Job>>) {
    while !jobs.is_empty() {
        let first = jobs.swap_remove(0);
        match first.answer(Siblings(jobs)) {
            Ok(()) => return,
            Err(mut undelivered) => jobs = std::mem::take(&mut undelivered.0),
        }
    }
}

/// What a waiting request receives.
struct Answer<T> {
    result: Result<T>,
    siblings: Siblings,
}

struct Request<T, F> {
    f: F,
    result: Option<Result<T>>,
    thread: ThreadId,
    answer: oneshot::Sender<Answer<T>>,
}

impl<T, F> Job for Request<T, F>
where
    F: FnMut(&mut DbConnection, &mut Shared) -> Result<T> + Send,
    T: Send,
{
    fn run(&mut self, conn: &mut DbConnection, shared: &mut Shared, isolated: bool) -> bool {
        let f = &mut self.f;
        let result = if isolated {
            // What a failing request added to the counts is undone with it.
            let counts = shared.list_counts.clone();
            let result = in_savepoint(conn, |conn| f(conn, shared));
            if result.is_err() {
                shared.list_counts = counts;
            }
            result
        } else {
            catch_unwind(AssertUnwindSafe(|| f(conn, shared)))
                .unwrap_or_else(|_| Err(Error::Internal("a grouped write panicked".into())))
        };
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn settle(&mut self, group_error: Option<&Error>) {
        self.result = Some(match (group_error, self.result.take()) {
            (Some(e), _) => Err(Error::Unavailable(format!("group not committed: {e}"))),
            (None, Some(result)) => result,
            (None, None) => Err(Error::Internal("grouped write not run".into())),
        });
    }

    fn thread(&self) -> ThreadId {
        self.thread
    }

    fn answer(self: Box<Self>, siblings: Siblings) -> std::result::Result<(), Siblings> {
        let result = self
            .result
            .unwrap_or_else(|| Err(Error::Internal("grouped write not settled".into())));
        self.answer
            .send(Answer { result, siblings })
            .map_err(|undelivered| undelivered.siblings)
    }
}

/// What the requests of one group share while its transaction lasts: a
/// request may keep what it looked up (an account, a list) for the requests
/// after it. On SQLite nothing else writes while the transaction is open, so
/// such a memo stays true until the group ends, when it is dropped; on
/// PostgreSQL it is as current as a read earlier in one request's
/// transaction would be (read committed), for the few milliseconds a group
/// lasts. Values are kept by type, each created empty by the first request
/// that asks for it.
///
/// It also gathers the changes the requests make to lists' member counts,
/// written once per list just before the group commits: one update per list
/// and group instead of one per subscribe, and on PostgreSQL the list row's
/// lock held only for the commit (decision 72).
#[derive(Default)]
pub struct Shared {
    values: Vec<Box<dyn Any + Send>>,
    /// (subscribed, pending, unsubscribed) to add, by list row id.
    list_counts: BTreeMap<i64, (i64, i64, i64)>,
}

impl Shared {
    /// The group's value of type `T`.
    pub fn get<T: Any + Send + Default>(&mut self) -> &mut T {
        let at = match self.values.iter().position(|value| value.is::<T>()) {
            Some(at) => at,
            None => {
                self.values.push(Box::new(T::default()));
                self.values.len() - 1
            }
        };
        self.values[at]
            .downcast_mut()
            .expect("the value was found or made as a T")
    }

    /// Adds to a list's member counts when the transaction commits.
    pub fn add_list_counts(&mut self, list_id: i64, changes: (i64, i64, i64)) {
        let counts = self.list_counts.entry(list_id).or_default();
        counts.0 += changes.0;
        counts.1 += changes.1;
        counts.2 += changes.2;
    }

    /// Writes the gathered count changes (in the transaction, before its
    /// commit), in the order of the lists' ids: concurrent transactions
    /// lock the rows in one order.
    fn write_list_counts(&mut self, conn: &mut DbConnection) -> Result<()> {
        for (list_id, counts) in std::mem::take(&mut self.list_counts) {
            if counts != (0, 0, 0) {
                backend::adjust_list_counts(conn, list_id, counts)?;
            }
        }
        Ok(())
    }
}

/// The queue is unbounded: each queued job is a request waiting for its
/// answer, so its length is bounded by the requests in flight.
pub struct GroupWriter {
    queue: mpsc::UnboundedSender<Box<dyn Job>>,
}

impl GroupWriter {
    pub fn start(writer: Pool<Manager>) -> Result<GroupWriter> {
        let (queue, mut waiting) = mpsc::unbounded_channel::<Box<dyn Job>>();
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

    /// Runs `f` in the next group (see the module's comment: `f` may run
    /// twice) and returns its result once the group has committed.
    pub async fn run<T, F>(&self, f: F) -> Result<T>
    where
        F: FnMut(&mut DbConnection, &mut Shared) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let (answer, answered) = oneshot::channel();
        let job = Box::new(Request {
            f,
            result: None,
            thread: std::thread::current().id(),
            answer,
        });
        if self.queue.send(job).is_err() {
            return Err(Error::Internal("group writer is gone".into()));
        }
        let Answer { result, siblings } = answered
            .await
            .map_err(|_| Error::Internal("group writer dropped a request".into()))?;
        // The other requests of the group waiting on this thread.
        drop(siblings);
        result
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

fn run_group(writer: &Pool<Manager>, mut group: Vec<Box<dyn Job>>) {
    let outcome = match writer.get() {
        Err(e) => Err(e.into()),
        Ok(mut conn) => match attempt(&mut conn, &mut group, false) {
            // A request failed: it alone must not be stored.
            Ok(false) => attempt(&mut conn, &mut group, true).map(|_| ()),
            Ok(true) => Ok(()),
            Err(e) => Err(e),
        },
    };
    if let Err(e) = &outcome {
        log::error!("group of {} writes not committed: {e}", group.len());
    }
    // One wake-up from this thread per thread that requests wait on.
    let mut by_thread: Vec<(ThreadId, Vec<Box<dyn Job>>)> = Vec::new();
    for mut job in group {
        job.settle(outcome.as_ref().err());
        let thread = job.thread();
        match by_thread.iter_mut().find(|(t, _)| *t == thread) {
            Some((_, jobs)) => jobs.push(job),
            None => by_thread.push((thread, vec![job])),
        }
    }
    for (_, jobs) in by_thread {
        tell(jobs);
    }
}

/// Runs the group in one transaction and commits it. Not `isolated`, the
/// first request that fails rolls the whole transaction back and stops the
/// attempt (`Ok(false)`).
fn attempt(conn: &mut DbConnection, group: &mut [Box<dyn Job>], isolated: bool) -> Result<bool> {
    match conn {
        DbConnection::Sqlite(c) => {
            AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")?
        }
        DbConnection::Postgresql(c) => AnsiTransactionManager::begin_transaction(c)?,
    }
    let mut shared = Shared::default();
    for job in group.iter_mut() {
        if !job.run(conn, &mut shared, isolated) && !isolated {
            roll_back_all(conn);
            return Ok(false);
        }
    }
    // Only the group's own transaction may be open now; anything else (a
    // savepoint a request left behind) would make the commit a mere release.
    let committed = match depth(conn) {
        Ok(1) => shared
            .write_list_counts(conn)
            .and_then(|()| Tm::commit_transaction(conn).map_err(Error::from)),
        Ok(depth) => Err(Error::Internal(format!(
            "group transaction at depth {depth} before commit"
        ))),
        Err(e) => Err(e),
    };
    if committed.is_err() {
        roll_back_all(conn);
    }
    committed.map(|()| true)
}

/// Undoes everything of the group: the savepoints a failed request left open
/// and the group's transaction. A connection whose transaction state is
/// broken is discarded by the pool (`has_broken`).
fn roll_back_all(conn: &mut DbConnection) {
    while depth(conn).is_ok_and(|d| d > 0) {
        if let Err(e) = Tm::rollback_transaction(conn) {
            log::error!("rollback of a group's transaction failed: {e}");
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::sync::oneshot;

    use super::{Answer, Job, Request, Shared, tell};
    use crate::db::DbConnection;

    type Waiting = oneshot::Receiver<Answer<u32>>;

    /// A settled request answering `value`, and what its caller waits on.
    fn settled(value: u32) -> (Box<dyn Job>, Waiting) {
        let (answer, answered) = oneshot::channel();
        let mut request = Request {
            f: move |_: &mut DbConnection, _: &mut Shared| -> crate::Result<u32> { Ok(value) },
            result: Some(Ok(value)),
            thread: std::thread::current().id(),
            answer,
        };
        request.settle(None);
        (Box::new(request), answered)
    }

    fn value_of(answer: Answer<u32>) -> u32 {
        answer.result.expect("answered with a value")
    }

    #[test]
    fn siblings_are_answered_once_whoever_drops_them() {
        let (gone, gone_waiting) = settled(1);
        let mut jobs = vec![gone];
        let mut waiting = Vec::new();
        for value in 2..=4 {
            let (job, answered) = settled(value);
            jobs.push(job);
            waiting.push((value, answered));
        }
        // A request that no longer waits is skipped: one of the others is
        // told and handed the rest.
        drop(gone_waiting);
        tell(jobs);
        let mut told = Vec::new();
        for (value, answered) in &mut waiting {
            if let Ok(answer) = answered.try_recv() {
                told.push((*value, answer));
            }
        }
        assert_eq!(told.len(), 1, "one wake-up for the thread");
        let (value_told, Answer { result, siblings }) = told.pop().unwrap();
        assert_eq!(result.unwrap(), value_told);
        assert_eq!(siblings.0.len(), 2);
        // Dropping the siblings (after reading the answer) answers them all.
        drop(siblings);
        for (value, answered) in &mut waiting {
            if *value != value_told {
                assert_eq!(value_of(answered.try_recv().unwrap()), *value);
            }
        }
    }

    #[test]
    fn siblings_of_a_request_given_up_after_its_answer_came_are_answered() {
        let (first, first_waiting) = settled(1);
        let (second, mut second_waiting) = settled(2);
        tell(vec![first, second]);
        // The told request's future is dropped before it read its answer.
        drop(first_waiting);
        assert_eq!(value_of(second_waiting.try_recv().unwrap()), 2);
    }

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
