//! The journal of opens and clicks (decision 57). A pixel or link request
//! appends its hit as one line to this process's journal file and is answered
//! at once; a thread of its own applies the journal to the database in large
//! batches. An appended hit survives the process being killed, as a committed
//! SQLite transaction does (`synchronous = NORMAL` does not wait for the disk
//! either), so answering before the database has it loses nothing; and the
//! database sees thousands of hits per transaction instead of the few that
//! arrive together, which is what made a hit expensive.
//!
//! The journal is a directory of segment files, `<data_dir>/hits/*.hits`.
//! Each segment has a row in `hit_journal_segments`, written before the
//! segment is used and advanced in the transaction that applies its hits, so
//! every hit is applied exactly once. A process holds an exclusive lock on the
//! segment it writes; a segment nobody holds (its process stopped or died) is
//! applied to its end by the next process that finds it, then removed. A
//! segment without a row in this database belongs to another database and is
//! left alone.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::Thread;
use std::time::{Duration, Instant};

use diesel::prelude::*;

use crate::db::Db;
use crate::db::schema::hit_journal_segments;
use crate::domain::tracking::{self, PendingHit};
use crate::{Error, Result};

/// A segment is closed and a new one started once this much of it is applied.
const SEGMENT_BYTES: u64 = 16 << 20;
/// Most hits applied in one transaction. Hits spread over many sends and
/// recipients dirty an index page each up to a few thousand; beyond that,
/// more hits per transaction share pages, and the commit writes fewer per
/// hit. A full batch holds the write lock for a few tenths of a second,
/// which other writers then wait (only when hits arrive faster than that).
const MAX_BATCH: usize = 16_384;
/// Appending waits (the request is answered later) while this many hits are
/// not yet applied: a server taking in hits faster than the database takes
/// them slows down instead of falling ever further behind.
const MAX_BACKLOG: u64 = 2 * MAX_BATCH as u64;
/// After applying fewer than [`MAX_BATCH`] hits the applier lets this much
/// time pass before it reads again, so that hits gather into large batches
/// instead of being applied (and the thread woken) a few at a time.
const GATHER: Duration = Duration::from_millis(50);
/// How often segments left by stopped processes are looked for.
const ORPHAN_SCAN: Duration = Duration::from_secs(60);
/// The wait before a failed batch is tried again. A batch is never given up:
/// its hits stay in the journal until the database takes them.
const RETRY: Duration = Duration::from_secs(1);

/// The writing end of the journal; cloned handles share it.
#[derive(Clone)]
pub struct HitJournal {
    shared: Arc<Shared>,
}

struct Shared {
    dir: PathBuf,
    writing: Mutex<Segment>,
    /// Hits appended and applied by this process (for `settle` and metrics).
    appended: AtomicU64,
    applied: AtomicU64,
    /// Notified whenever hits were applied, for appenders waiting for room.
    room: tokio::sync::Notify,
    applier: OnceLock<Thread>,
}

/// A segment file this process writes, locked while it is open.
struct Segment {
    name: String,
    file: File,
}

impl HitJournal {
    /// Opens a new segment in `<data_dir>/hits/` and starts the thread that
    /// applies it (and any segment a stopped process left).
    pub fn open(db: Db, data_dir: &Path) -> Result<HitJournal> {
        HitJournal::open_with_segments_of(db, data_dir, SEGMENT_BYTES)
    }

    /// [`HitJournal::open`] with segments closed at `segment_bytes` (tests
    /// rotate small ones).
    pub fn open_with_segments_of(
        db: Db,
        data_dir: &Path,
        segment_bytes: u64,
    ) -> Result<HitJournal> {
        let dir = data_dir.join("hits");
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::Internal(format!("{}: {e}", dir.display())))?;
        let segment = Segment::create(&db, &dir)?;
        let reading = Reading::open(&dir, &segment.name, 0)
            .map_err(|e| Error::Internal(format!("hit journal {}: {e}", segment.name)))?;
        let shared = Arc::new(Shared {
            dir,
            writing: Mutex::new(segment),
            appended: AtomicU64::new(0),
            applied: AtomicU64::new(0),
            room: tokio::sync::Notify::new(),
            applier: OnceLock::new(),
        });
        let applying = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("hit-journal".into())
            .spawn(move || {
                Applier {
                    db,
                    shared: applying,
                    reading,
                    segment_bytes,
                }
                .run()
            })
            .map_err(|e| Error::Internal(format!("hit journal not started: {e}")))?;
        let _ = shared.applier.set(thread.thread().clone());
        Ok(HitJournal { shared })
    }

    /// Appends a hit; once this returns `Ok` the hit will be applied even if
    /// the process dies next. Returns once the backlog is below
    /// [`MAX_BACKLOG`].
    pub async fn append(&self, hit: &PendingHit) -> Result<()> {
        self.write(hit)?;
        while self.backlog() > MAX_BACKLOG {
            // Made before the check, so a notification in between is not missed.
            let applied = self.shared.room.notified();
            if self.backlog() <= MAX_BACKLOG {
                break;
            }
            applied.await;
        }
        Ok(())
    }

    fn write(&self, hit: &PendingHit) -> Result<()> {
        let mut line = serde_json::to_vec(hit)
            .map_err(|e| Error::Internal(format!("hit not serialised: {e}")))?;
        line.push(b'\n');
        {
            let mut segment = self
                .shared
                .writing
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            // One write of the whole line: a concurrent reader sees either
            // none of it or (perhaps only part of) it, never another line
            // inside it.
            segment
                .file
                .write_all(&line)
                .map_err(|e| Error::Internal(format!("hit journal {}: {e}", segment.name)))?;
        }
        self.shared.appended.fetch_add(1, Ordering::Release);
        if let Some(applier) = self.shared.applier.get() {
            applier.unpark();
        }
        Ok(())
    }

    /// Hits appended by this process and not yet applied.
    pub fn backlog(&self) -> u64 {
        let applied = self.shared.applied.load(Ordering::Acquire);
        self.shared
            .appended
            .load(Ordering::Acquire)
            .saturating_sub(applied)
    }

    /// Waits until every hit appended before the call is applied, or `limit`
    /// passes; true if they are. (For a stopping server and for tests, which
    /// read the database after this: it looks every few milliseconds.)
    pub fn settle(&self, limit: Duration) -> bool {
        let target = self.shared.appended.load(Ordering::Acquire);
        let deadline = Instant::now() + limit;
        while self.shared.applied.load(Ordering::Acquire) < target {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        true
    }
}

impl Segment {
    /// A new segment: its row first, then the file, locked before it gets
    /// its name so that no other process can take it for a stopped one's.
    fn create(db: &Db, dir: &Path) -> Result<Segment> {
        static SEQUENCE: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "{}-{}-{}.hits",
            chrono::Utc::now().timestamp_micros(),
            std::process::id(),
            SEQUENCE.fetch_add(1, Ordering::Relaxed)
        );
        let row = name.clone();
        db.write_blocking(move |conn| {
            diesel::insert_into(hit_journal_segments::table)
                .values((
                    hit_journal_segments::name.eq(&row),
                    hit_journal_segments::applied_bytes.eq(0),
                ))
                .execute(conn)?;
            Ok(())
        })?;
        let io = |e: std::io::Error| Error::Internal(format!("hit journal {name}: {e}"));
        let unnamed = dir.join(format!("{name}.new"));
        let file = OpenOptions::new()
            .append(true)
            .create_new(true)
            .open(&unnamed)
            .map_err(io)?;
        file.try_lock().map_err(|e| io(e.into()))?;
        std::fs::rename(&unnamed, dir.join(&name)).map_err(io)?;
        Ok(Segment { name, file })
    }
}

/// The applying thread's state: the segment being read and how far.
struct Applier {
    db: Db,
    shared: Arc<Shared>,
    reading: Reading,
    segment_bytes: u64,
}

/// A segment being read from `offset`, which is where its row says it is
/// applied to; `pending` holds read bytes of a line not yet complete.
struct Reading {
    name: String,
    file: File,
    offset: u64,
    pending: Vec<u8>,
}

impl Reading {
    fn open(dir: &Path, name: &str, offset: u64) -> std::io::Result<Reading> {
        let mut file = File::open(dir.join(name))?;
        file.seek(SeekFrom::Start(offset))?;
        Ok(Reading {
            name: name.to_string(),
            file,
            offset,
            pending: Vec::new(),
        })
    }

    /// The hits of the complete lines that have arrived (at most
    /// `MAX_BATCH` lines), how many lines that was, and the offset just after
    /// the last of them. A line that cannot be read (the file was damaged) is
    /// logged and skipped.
    fn next_hits(&mut self) -> std::io::Result<(Vec<PendingHit>, usize, u64)> {
        const READ: usize = 256 * 1024;
        let mut hits = Vec::new();
        let mut lines = 0;
        let mut taken = 0;
        loop {
            while lines < MAX_BATCH {
                let Some(at) = self.pending[taken..].iter().position(|&b| b == b'\n') else {
                    break;
                };
                match serde_json::from_slice(&self.pending[taken..taken + at]) {
                    Ok(hit) => hits.push(hit),
                    Err(e) => log::error!("hit journal {}: line skipped ({e})", self.name),
                }
                lines += 1;
                taken += at + 1;
            }
            if lines == MAX_BATCH {
                break;
            }
            let len = self.pending.len();
            self.pending.resize(len + READ, 0);
            let read = self.file.read(&mut self.pending[len..]);
            self.pending.truncate(len + *read.as_ref().unwrap_or(&0));
            if read? == 0 {
                break;
            }
        }
        self.pending.drain(..taken);
        Ok((hits, lines, self.offset + taken as u64))
    }

    /// Applies the next batch of complete lines to the database and moves
    /// past them; how many lines that was (0: none has arrived).
    fn apply_next(&mut self, db: &Db) -> std::io::Result<usize> {
        let (hits, lines, end) = self.next_hits()?;
        if lines > 0 {
            apply(db, &self.name, &hits, end);
            self.offset = end;
        }
        Ok(lines)
    }
}

impl Applier {
    fn run(mut self) {
        let mut scanned: Option<Instant> = None;
        loop {
            if scanned.is_none_or(|at| at.elapsed() >= ORPHAN_SCAN) {
                self.apply_orphans();
                scanned = Some(Instant::now());
            }
            // Also under a steady stream of hits: a segment is never read to
            // an end that stays put while they keep coming.
            if self.reading.offset >= self.segment_bytes && self.rotate() {
                continue;
            }
            match self.apply_next() {
                0 => std::thread::park_timeout(ORPHAN_SCAN),
                MAX_BATCH => {}
                _ => std::thread::sleep(GATHER),
            }
        }
    }

    /// Applies the next batch of this process's own segment; how many lines
    /// it held. A segment that cannot be read is tried again until it can: what is
    /// in it must not be skipped.
    fn apply_next(&mut self) -> usize {
        let lines = loop {
            match self.reading.apply_next(&self.db) {
                Ok(lines) => break lines,
                Err(e) => {
                    log::error!("hit journal {}: {e}", self.reading.name);
                    std::thread::sleep(RETRY);
                }
            }
        };
        if lines > 0 {
            self.shared
                .applied
                .fetch_add(lines as u64, Ordering::Release);
            self.shared.room.notify_waiters();
        }
        lines
    }

    /// Starts a new segment for the writers, applies the rest of the old
    /// one and removes it; false if no new segment could be started (the
    /// current one goes on growing).
    fn rotate(&mut self) -> bool {
        let started = Segment::create(&self.db, &self.shared.dir).and_then(|fresh| {
            let reading = Reading::open(&self.shared.dir, &fresh.name, 0)
                .map_err(|e| Error::Internal(format!("hit journal {}: {e}", fresh.name)))?;
            Ok((fresh, reading))
        });
        let (fresh, reading) = match started {
            Ok(started) => started,
            Err(e) => {
                log::error!("hit journal: no new segment ({e})");
                return false;
            }
        };
        let old = std::mem::replace(
            &mut *self
                .shared
                .writing
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
            fresh,
        );
        // Hits appended between the last read and the swap are in the old
        // segment's tail; it is read to its end while still locked.
        while self.apply_next() > 0 {}
        let done = std::mem::replace(&mut self.reading, reading);
        drop(old);
        finish(&self.db, &self.shared.dir.join(&done.name), &done.name);
        true
    }

    /// Applies and removes every segment of this database that no process
    /// holds: a process that stopped or died left it.
    fn apply_orphans(&self) {
        let entries = match std::fs::read_dir(&self.shared.dir) {
            Ok(entries) => entries,
            Err(e) => {
                log::error!("hit journal {}: {e}", self.shared.dir.display());
                return;
            }
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let outcome = if name.ends_with(".hits") {
                self.apply_orphan(&name)
            } else if let Some(segment) = name.strip_suffix(".new") {
                self.remove_unnamed(&name, segment)
            } else {
                Ok(())
            };
            if let Err(e) = outcome {
                log::error!("hit journal {name}: {e}");
            }
        }
    }

    /// A segment whose process died between creating and naming it never
    /// held a hit: it is removed, with its row, once it is surely abandoned
    /// (a minute old and held by no process).
    fn remove_unnamed(&self, file: &str, segment: &str) -> Result<()> {
        let io = |e: std::io::Error| Error::Internal(e.to_string());
        let path = self.shared.dir.join(file);
        let held = File::open(&path).map_err(io)?;
        let age = held
            .metadata()
            .and_then(|m| m.modified())
            .map_err(io)?
            .elapsed()
            .unwrap_or_default();
        if age < ORPHAN_SCAN || held.try_lock().is_err() {
            return Ok(());
        }
        finish(&self.db, &path, segment);
        Ok(())
    }

    fn apply_orphan(&self, name: &str) -> Result<()> {
        let io = |e: std::io::Error| Error::Internal(e.to_string());
        let held = File::open(self.shared.dir.join(name)).map_err(io)?;
        match held.try_lock() {
            Ok(()) => {}
            // Its process is alive (this one's own segment among them).
            Err(std::fs::TryLockError::WouldBlock) => return Ok(()),
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        let applied: Option<i64> = hit_journal_segments::table
            .find(name)
            .select(hit_journal_segments::applied_bytes)
            .first(&mut *self.db.conn()?)
            .optional()?;
        // Not this database's: another installation shares the data folder.
        let Some(applied) = applied else {
            return Ok(());
        };
        let mut reading =
            Reading::open(&self.shared.dir, name, u64::try_from(applied).unwrap_or(0))
                .map_err(io)?;
        let mut applied = 0;
        loop {
            match reading.apply_next(&self.db).map_err(io)? {
                0 => break,
                lines => applied += lines,
            }
        }
        if !reading.pending.is_empty() {
            log::warn!(
                "hit journal {name}: {} bytes of an unfinished last line dropped",
                reading.pending.len()
            );
        }
        log::info!("hit journal {name}: {applied} lines of a stopped process applied");
        finish(&self.db, &self.shared.dir.join(name), name);
        Ok(())
    }
}

/// Applies hits of segment `name` and records `end` as how far it is
/// applied, in one transaction; tried until the database takes it.
fn apply(db: &Db, name: &str, hits: &[PendingHit], end: u64) {
    let end = i64::try_from(end).unwrap_or(i64::MAX);
    loop {
        let written = db.write_blocking(|conn| {
            tracking::record_batch(conn, hits)?;
            diesel::update(hit_journal_segments::table.find(name))
                .set(hit_journal_segments::applied_bytes.eq(end))
                .execute(conn)?;
            Ok(())
        });
        match written {
            Ok(()) => return,
            Err(e) => {
                log::warn!(
                    "hit journal {name}: {} hits not applied yet ({e}); trying again",
                    hits.len()
                );
                std::thread::sleep(RETRY);
            }
        }
    }
}

/// Removes a segment that holds nothing left to apply: its file first, then
/// its row, so a crash in between leaves a row without a file (harmless) and
/// never a file without its row, which would be taken for another
/// database's.
fn finish(db: &Db, file: &Path, segment: &str) {
    match std::fs::remove_file(file) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => {
            log::error!("hit journal {} not removed: {e}", file.display());
            return;
        }
    }
    let row = segment.to_string();
    if let Err(e) = db.write_blocking(move |conn| {
        diesel::delete(hit_journal_segments::table.find(&row)).execute(conn)?;
        Ok(())
    }) {
        log::warn!("hit journal {segment}: row not removed ({e})");
    }
}
