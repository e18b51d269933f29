//! Storage: one connection type over PostgreSQL and SQLite, the pool, migrations
//! and the transaction rules. Backend-specific SQL lives in `backend.rs` only;
//! the set-based statements of bulk imports in `bulk.rs`.

/// Runs the same diesel expression on whichever concrete connection `conn`
/// holds. Backend-only DSL (ON CONFLICT, FOR UPDATE) type-checks per backend
/// this way; and a statement of the common DSL run on the concrete connection
/// is found in diesel's statement cache by its type, where through the
/// `MultiConnection` its SQL text is built anew and walked twice more on every
/// run (the hot paths use this, decision 38).
macro_rules! on_backend {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::db::DbConnection::Postgresql($c) => $body,
            $crate::db::DbConnection::Sqlite($c) => $body,
        }
    };
}
pub(crate) use on_backend;

pub mod backend;
pub mod bulk;
mod checkpoint;
mod group;
pub use group::Shared;
pub mod schema;
pub mod stamp;

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::prelude::*;
use diesel::r2d2::{ManageConnection, Pool, PooledConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::{Error, Result};

/// A connection to either backend. Queries written with diesel's DSL run on both;
/// the rest is matched on the variant in `backend.rs`.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Postgresql(diesel::PgConnection),
    Sqlite(diesel::SqliteConnection),
}

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Which database a URL points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A file path (created with its directory if missing).
    Sqlite(String),
    /// A libpq connection URL.
    Postgres(String),
}

impl Target {
    /// `sqlite://relative/path.db`, `sqlite:///absolute/path.db`, `postgres://…` or
    /// `postgresql://…`. Anything else is refused rather than guessed, so a mistyped
    /// PostgreSQL URL never silently becomes a SQLite file.
    pub fn parse(url: &str) -> Result<Target> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(Error::invalid(
                    "database URL",
                    "sqlite:// needs a file path",
                ));
            }
            Ok(Target::Sqlite(path.to_string()))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Target::Postgres(url.to_string()))
        } else {
            Err(Error::invalid(
                "database URL",
                "expected sqlite://PATH or postgres://…",
            ))
        }
    }
}

/// Opens connections for the pool, applying the per-connection SQLite settings.
#[derive(Debug)]
pub struct Manager {
    target: Target,
    /// The connection of the process's writer (see [`Db`]'s `writer`).
    writer: bool,
}

/// WAL pages after which the writer's commit checkpoints the log itself
/// (SQLite's default is 1,000). A thread of its own copies the log's pages
/// meanwhile (`checkpoint.rs`), so this checkpoint finds little left to copy
/// and sync; it is the one that lets the log start over. Under a stream of
/// small transactions the same hot pages are copied again at every
/// checkpoint, so fewer, larger ones cost less: about 7% of the writer's time
/// at 1,000 pages. Not larger: at 8,000 and 16,000 pages subscribes ran a
/// few percent faster but their p99 latency doubled and tripled (decision 74,
/// docs/benchmarks.md, session 12).
const WRITER_WAL_AUTOCHECKPOINT: u32 = 4000;

/// The writer's page cache, in KiB (other connections keep 8 MiB). The
/// writer's batches (hits spread over every send and recipient, imports)
/// touch index pages all over the event and recipient tables; with 8 MiB
/// these were evicted between batches and read back from the file again
/// (decision 68). Not larger: whenever a transaction split b-tree pages,
/// SQLite walks every page the cache holds at its commit (decision 78).
pub const WRITER_CACHE_KIB: u32 = 16 * 1024;

impl ManageConnection for Manager {
    type Connection = DbConnection;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> std::result::Result<DbConnection, Self::Error> {
        match &self.target {
            Target::Sqlite(path) => {
                configure_sqlite();
                let mut conn = SqliteConnection::establish(path)
                    .map_err(diesel::r2d2::Error::ConnectionError)?;
                // busy_timeout first: switching to WAL itself may wait for a lock.
                // temp_store = MEMORY keeps savepoint journals in memory: a
                // savepoint that changed more than 64 KiB of pages (a grouped
                // subscribe, decision 39) otherwise spilled them to a file.
                conn.batch_execute(
                    "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; \
                     PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
                     PRAGMA cache_size = -8192; PRAGMA temp_store = MEMORY;",
                )
                .map_err(diesel::r2d2::Error::QueryError)?;
                if self.writer {
                    conn.batch_execute(&format!(
                        "PRAGMA wal_autocheckpoint = {WRITER_WAL_AUTOCHECKPOINT}; PRAGMA cache_size = -{WRITER_CACHE_KIB};"
                    ))
                    .map_err(diesel::r2d2::Error::QueryError)?;
                }
                Ok(DbConnection::Sqlite(conn))
            }
            Target::Postgres(url) => PgConnection::establish(url)
                .map(DbConnection::Postgresql)
                .map_err(diesel::r2d2::Error::ConnectionError),
        }
    }

    fn is_valid(&self, conn: &mut DbConnection) -> std::result::Result<(), Self::Error> {
        conn.batch_execute("SELECT 1")
            .map_err(diesel::r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut DbConnection) -> bool {
        diesel::r2d2::R2D2Connection::is_broken(conn)
    }
}

/// Process-wide SQLite settings, applied once before the first connection.
///
/// SQLite is built thread-safe in "serialized" mode: every call on a
/// connection or statement takes that connection's mutex, and with memory
/// statistics on, every allocation SQLite makes takes one global mutex.
/// Diesel uses a connection and its statements on one thread at a time (the
/// pool hands each out to one user), which is what "multi-thread" mode asks,
/// and nothing reads SQLite's memory statistics; both mutexes were about 4%
/// of a grouped subscribe's time on the writer thread. These options only
/// take effect before SQLite initialises, i.e. before the first connection
/// or the auto-extension below, hence here.
///
/// It also turns on SQLite's query planner stability guarantee (QPSG) for every
/// connection the process opens from now on. Without it SQLite marks a
/// prepared statement for re-preparing whenever a value is bound to a
/// parameter its plan looked at, and since 3.4x that includes every `LIMIT ?`:
/// each diesel `.first()` (which binds `LIMIT 1`) was parsed and planned anew
/// on every run although diesel had it cached. With QPSG plans never depend
/// on bound values, which our queries do not rely on (partial indexes are
/// served by literal values, decision 13). The setting has no PRAGMA, so an
/// auto-extension applies it: SQLite runs it for each connection it opens.
fn configure_sqlite() {
    use std::ffi::{c_char, c_int};

    use libsqlite3_sys as ffi;

    unsafe extern "C" fn enable_qpsg(
        db: *mut ffi::sqlite3,
        _error: *mut *mut c_char,
        _api: *const ffi::sqlite3_api_routines,
    ) -> c_int {
        // SAFETY: SQLite passes the connection it is opening; the option
        // takes an int (1: on) and an optional int pointer for the result.
        unsafe {
            ffi::sqlite3_db_config(
                db,
                ffi::SQLITE_DBCONFIG_ENABLE_QPSG,
                1 as c_int,
                std::ptr::null_mut::<c_int>(),
            );
        }
        ffi::SQLITE_OK
    }

    static REGISTERED: std::sync::Once = std::sync::Once::new();
    REGISTERED.call_once(|| {
        // SAFETY: both options take the arguments given (none; one int), and
        // SQLite refuses them (SQLITE_MISUSE) rather than misbehave once it
        // is initialised, e.g. if another library in the process opened a
        // database first; the settings are then merely not applied.
        let rc = unsafe { ffi::sqlite3_config(ffi::SQLITE_CONFIG_MULTITHREAD) };
        let rc = match rc {
            ffi::SQLITE_OK => unsafe {
                ffi::sqlite3_config(ffi::SQLITE_CONFIG_MEMSTATUS, 0 as c_int)
            },
            rc => rc,
        };
        if rc != ffi::SQLITE_OK {
            log::warn!("SQLite left in serialized mode with memory statistics (code {rc})");
        }
        // SAFETY: registers a function with the signature SQLite expects.
        let rc = unsafe { ffi::sqlite3_auto_extension(Some(enable_qpsg)) };
        if rc != ffi::SQLITE_OK {
            log::warn!("SQLite plan stability not enabled (code {rc})");
        }
    });
}

pub type Conn = PooledConnection<Manager>;

/// The database handle shared by the whole process (cheap to clone).
#[derive(Clone)]
pub struct Db {
    pool: Pool<Manager>,
    backend: Backend,
    /// SQLite: one connection for all writing transactions of this process.
    /// SQLite has one writer at a time anyway; queueing for this connection
    /// wakes a writer as soon as the last one is done, where SQLite's busy
    /// handler polls in steps of up to 100 ms. And a connection's page cache is
    /// dropped whenever another connection changed the file, so the writer's
    /// stays warm only if it is always the same connection.
    writer: Option<Pool<Manager>>,
    /// SQLite: the thread that group-commits [`Db::write_grouped`] requests,
    /// started on first use.
    group: Arc<OnceLock<group::GroupWriter>>,
    /// SQLite: the thread that checkpoints the WAL, while any clone lives.
    _checkpointer: Option<Arc<checkpoint::Checkpointer>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

impl Db {
    /// Opens a pool on `url`. SQLite gets a small pool: it has one writer anyway.
    pub fn connect(url: &str, pool_size: Option<u32>) -> Result<Db> {
        let target = Target::parse(url)?;
        let backend = match &target {
            Target::Sqlite(path) => {
                if let Some(dir) = Path::new(path).parent()
                    && !dir.as_os_str().is_empty()
                {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        Error::Unavailable(format!("cannot create {}: {e}", dir.display()))
                    })?;
                }
                Backend::Sqlite
            }
            Target::Postgres(_) => Backend::Postgres,
        };
        let default_size = match backend {
            Backend::Sqlite => 8,
            Backend::Postgres => 16,
        };
        // r2d2 runs `SELECT 1` on every checkout by default. A SQLite
        // connection is a file handle that cannot go stale like a socket, and
        // the frontend checks out a connection per request: the test cost
        // more than some of the statements it guarded.
        let test_on_check_out = backend == Backend::Postgres;
        let (writer, checkpointer) = match backend {
            Backend::Sqlite => (
                Some(
                    Pool::builder()
                        .max_size(1)
                        .test_on_check_out(test_on_check_out)
                        .connection_timeout(Duration::from_secs(60))
                        .build(Manager {
                            target: target.clone(),
                            writer: true,
                        })?,
                ),
                Some(Arc::new(checkpoint::Checkpointer::start(Manager {
                    target: target.clone(),
                    writer: false,
                })?)),
            ),
            Backend::Postgres => (None, None),
        };
        let pool = Pool::builder()
            .max_size(pool_size.unwrap_or(default_size))
            .test_on_check_out(test_on_check_out)
            .min_idle(Some(1))
            .connection_timeout(Duration::from_secs(30))
            .build(Manager {
                target,
                writer: false,
            })?;
        Ok(Db {
            pool,
            backend,
            writer,
            group: Arc::default(),
            _checkpointer: checkpointer,
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A connection for synchronous callers (CLI, tests, blocking tasks). Async
    /// code uses [`Db::run`] instead.
    pub fn conn(&self) -> Result<Conn> {
        Ok(self.pool.get()?)
    }

    /// (open, idle, maximum) connections of the main pool, for `/metrics`.
    pub fn pool_state(&self) -> (u32, u32, u32) {
        let state = self.pool.state();
        (
            state.connections,
            state.idle_connections,
            self.pool.max_size(),
        )
    }

    /// Runs the pending migrations of this backend. On PostgreSQL an advisory
    /// lock keeps several processes starting at once from migrating together.
    pub fn migrate(&self) -> Result<()> {
        let mut conn = self.conn()?;
        let failed = |e| Error::Internal(format!("migration failed: {e}"));
        let applied: Vec<String> = match &mut *conn {
            DbConnection::Sqlite(c) => c
                .run_pending_migrations(SQLITE_MIGRATIONS)
                .map(|versions| versions.iter().map(ToString::to_string).collect())
                .map_err(failed)?,
            DbConnection::Postgresql(c) => {
                c.batch_execute("SELECT pg_advisory_lock(7263540001)")?;
                let result = c
                    .run_pending_migrations(POSTGRES_MIGRATIONS)
                    .map(|versions| versions.iter().map(ToString::to_string).collect());
                c.batch_execute("SELECT pg_advisory_unlock(7263540001)")?;
                result.map_err(failed)?
            }
        };
        for version in applied {
            log::info!("applied migration {version}");
        }
        Ok(())
    }

    /// Runs `f` with a pooled connection on the blocking thread pool, so that an
    /// actix worker thread never waits on the database.
    pub async fn run<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce(&mut DbConnection) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let pool = self.pool.clone();
        actix_web::rt::task::spawn_blocking(move || {
            let mut conn = pool.get()?;
            f(&mut conn)
        })
        .await
        .map_err(|e| Error::Internal(format!("database task failed: {e}")))?
    }

    /// [`Db::run`] inside a writing transaction (see [`write_transaction`]),
    /// on SQLite on the process's one writing connection. Async code writes
    /// through this.
    pub async fn write<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce(&mut DbConnection) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let pool = self.writer.clone().unwrap_or_else(|| self.pool.clone());
        actix_web::rt::task::spawn_blocking(move || {
            let mut conn = pool.get()?;
            write_transaction(&mut conn, f)
        })
        .await
        .map_err(|e| Error::Internal(format!("database task failed: {e}")))?
    }

    /// [`Db::write`] for short requests that many clients make at once: `f`
    /// runs in a transaction shared with the other requests queued at the
    /// same moment (group commit, see `group.rs`), and the result is returned
    /// once that transaction has committed: an `Ok` is durable as with
    /// [`Db::write`], and an `Err` (or a panic) in `f` undoes `f`'s writes
    /// only. To undo them `f` may be run a second time, so it must act only
    /// through the connection. `f` also gets the group's [`Shared`] values.
    pub async fn write_grouped<T, F>(&self, f: F) -> Result<T>
    where
        F: FnMut(&mut DbConnection, &mut Shared) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let group = match self.group.get() {
            Some(group) => group,
            None => {
                let writer = self.writer.as_ref().unwrap_or(&self.pool);
                let started = group::GroupWriter::start(writer.clone())?;
                // Two first uses at once start two threads; the loser's ends
                // when its queue is dropped here.
                let _ = self.group.set(started);
                self.group.get().expect("set above")
            }
        };
        group.run(f).await
    }

    /// [`Db::write`] for code on a thread of its own (not an async task).
    pub fn write_blocking<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce(&mut DbConnection) -> Result<T>,
    {
        let pool = self.writer.as_ref().unwrap_or(&self.pool);
        let mut conn = pool.get()?;
        write_transaction(&mut conn, f)
    }
}

/// Runs `f` in a transaction that will write. On SQLite it starts with
/// `BEGIN IMMEDIATE`, taking the write lock up front: a deferred transaction that
/// reads and then writes can fail with SQLITE_BUSY instead of waiting. Called
/// inside another transaction it becomes a savepoint, so domain operations compose.
/// Commits when `f` returns `Ok`, rolls back otherwise.
pub fn write_transaction<T, F>(conn: &mut DbConnection, f: F) -> Result<T>
where
    F: FnOnce(&mut DbConnection) -> Result<T>,
{
    let nested = match conn {
        DbConnection::Sqlite(c) => in_transaction(c)?,
        DbConnection::Postgresql(c) => in_transaction(c)?,
    };
    if nested {
        return conn.transaction(f);
    }
    match conn {
        DbConnection::Sqlite(c) => {
            AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")?
        }
        DbConnection::Postgresql(c) => AnsiTransactionManager::begin_transaction(c)?,
    }
    type Tm = <DbConnection as Connection>::TransactionManager;
    match f(conn) {
        Ok(value) => {
            Tm::commit_transaction(conn)?;
            Ok(value)
        }
        Err(error) => {
            if let Err(rollback) = Tm::rollback_transaction(conn) {
                log::error!("rollback failed after {error}: {rollback}");
            }
            Err(error)
        }
    }
}

fn in_transaction<C>(conn: &mut C) -> Result<bool>
where
    C: Connection<TransactionManager = AnsiTransactionManager>,
{
    Ok(AnsiTransactionManager::transaction_manager_status_mut(conn)
        .transaction_depth()?
        .is_some())
}
