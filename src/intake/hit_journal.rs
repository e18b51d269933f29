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
use std::io::ErrorKind;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
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
/// A segment is written through a memory mapping of this much of it at a
/// time (plus [`MAX_LINE`]), allocated on disk before it is mapped.
const WINDOW: usize = 1 << 20;
/// The longest line a hit may take (its user agent and URL come from the
/// request): a line starting inside a window ends inside its mapping.
const MAX_LINE: usize = 64 << 10;
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

/// A segment file this process writes, locked while it is open. Lines are
/// copied into a shared mapping of the file rather than written with a
/// system call each, which was most of what a hit cost its request
/// (decision 69): the copy is in the kernel's page cache at once, so it
/// survives the process as a write would. The file is allocated ahead of the
/// lines, in zeros; a reader takes the lines before the first zero byte,
/// which no line contains (so a line still being copied is not taken).
struct Segment {
    name: String,
    file: File,
    /// Bytes of lines in the file.
    len: u64,
    mapping: Mapping,
}

/// The part of a segment file from `start` (a multiple of [`WINDOW`]) mapped
/// into memory: [`WINDOW`] + [`MAX_LINE`] bytes, allocated on disk first so
/// that a full disk is an error here and not a fault on a later copy.
struct Mapping {
    at: std::ptr::NonNull<u8>,
    start: u64,
}

const MAPPED: usize = WINDOW + MAX_LINE;

// The mapping is used only by its segment's owner, under the journal's mutex.
unsafe impl Send for Mapping {}

impl Mapping {
    fn new(file: &File, start: u64) -> std::io::Result<Mapping> {
        let offset = libc::off_t::try_from(start).map_err(std::io::Error::other)?;
        // SAFETY: plain system calls on an open descriptor; the result of
        // mmap is checked before it is used.
        let at = unsafe {
            let rc = libc::posix_fallocate(file.as_raw_fd(), offset, MAPPED as libc::off_t);
            if rc != 0 {
                return Err(std::io::Error::from_raw_os_error(rc));
            }
            libc::mmap(
                std::ptr::null_mut(),
                MAPPED,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                offset,
            )
        };
        if at == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let at = std::ptr::NonNull::new(at.cast()).ok_or_else(std::io::Error::last_os_error)?;
        Ok(Mapping { at, start })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly what `new` mapped; nothing points into it.
        unsafe {
            libc::munmap(self.at.as_ptr().cast(), MAPPED);
        }
    }
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
            segment
                .append(&line)
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
            .read(true)
            .write(true)
            .create_new(true)
            .open(&unnamed)
            .map_err(io)?;
        file.try_lock().map_err(|e| io(e.into()))?;
        let mapping = Mapping::new(&file, 0).map_err(io)?;
        std::fs::rename(&unnamed, dir.join(&name)).map_err(io)?;
        Ok(Segment {
            name,
            file,
            len: 0,
            mapping,
        })
    }

    /// Copies a whole line (ending in a newline) after the last one.
    fn append(&mut self, line: &[u8]) -> std::io::Result<()> {
        if line.len() > MAX_LINE {
            return Err(std::io::Error::other(format!(
                "a hit of {} bytes is longer than a line may be",
                line.len()
            )));
        }
        if self.len >= self.mapping.start + WINDOW as u64 {
            self.mapping = Mapping::new(&self.file, self.mapping.start + WINDOW as u64)?;
        }
        // Below WINDOW, since the window is moved on once it is passed.
        let at = (self.len - self.mapping.start) as usize;
        // SAFETY: `at + line.len()` is at most WINDOW + MAX_LINE, the mapping's
        // length, and only this segment's owner writes the mapping.
        unsafe {
            std::ptr::copy_nonoverlapping(
                line.as_ptr(),
                self.mapping.at.as_ptr().add(at),
                line.len(),
            );
        }
        self.len += line.len() as u64;
        Ok(())
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
        let file = File::open(dir.join(name))?;
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
        // Set by the read that reached the last line written so far; the
        // lines it brought are taken before the loop ends.
        let mut ended = false;
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
            if lines == MAX_BATCH || ended {
                break;
            }
            let len = self.pending.len();
            self.pending.resize(len + READ, 0);
            let read = match self
                .file
                .read_at(&mut self.pending[len..], self.offset + len as u64)
            {
                Ok(read) => read,
                Err(e) => {
                    self.pending.truncate(len);
                    return Err(e);
                }
            };
            // The lines end where the zeros the file was allocated with begin.
            let written = memchr::memchr(0, &self.pending[len..len + read]);
            self.pending.truncate(len + written.unwrap_or(read));
            ended = read == 0 || written.is_some();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::tracking::{Activity, Hit};

    fn hit(delivery_id: i64, agent_bytes: usize) -> PendingHit {
        PendingHit {
            delivery_id,
            activity: Activity::Open,
            url: None,
            hit: Hit {
                ip: None,
                user_agent: Some("a".repeat(agent_bytes)),
                head: false,
            },
            at: crate::domain::now(),
        }
    }

    fn line(hit: &PendingHit) -> Vec<u8> {
        let mut line = serde_json::to_vec(hit).unwrap();
        line.push(b'\n');
        line
    }

    #[test]
    fn lines_cross_mapping_windows_and_are_read_back_up_to_the_zeros() {
        let dir = tempfile::tempdir().unwrap();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(dir.path().join("s.hits"))
            .unwrap();
        let mapping = Mapping::new(&file, 0).unwrap();
        let mut segment = Segment {
            name: "s.hits".into(),
            file,
            len: 0,
            mapping,
        };
        // Lines of many lengths, the longest a line may be among them, over
        // three windows; and one line too long, refused without a trace.
        let mut written = Vec::new();
        let mut id = 0;
        while segment.len < 3 * WINDOW as u64 {
            id += 1;
            let hit = if id == 1000 {
                let mut longest = hit(id, 0);
                let room = MAX_LINE - line(&longest).len();
                longest.hit.user_agent = Some("a".repeat(room));
                assert_eq!(line(&longest).len(), MAX_LINE);
                longest
            } else {
                hit(id, (id as usize * 37) % 700)
            };
            segment.append(&line(&hit)).unwrap();
            written.push(hit);
        }
        assert!(segment.append(&line(&hit(0, MAX_LINE))).is_err());
        assert_eq!(segment.mapping.start, 2 * WINDOW as u64);
        // The file is allocated beyond the lines, in zeros.
        assert!(std::fs::metadata(dir.path().join("s.hits")).unwrap().len() > segment.len);

        // Fewer lines than a batch: one read takes them all, up to the zeros.
        assert!(written.len() < MAX_BATCH);
        let mut reading = Reading::open(dir.path(), "s.hits", 0).unwrap();
        let (read, lines, end) = reading.next_hits().unwrap();
        assert_eq!(lines, written.len());
        assert_eq!(end, segment.len);
        reading.offset = end;
        assert!(reading.pending.is_empty());
        assert_eq!(reading.next_hits().unwrap().1, 0);
        // (Times are kept to the microsecond, so hits are compared by the rest.)
        let key = |hit: &PendingHit| {
            (
                hit.delivery_id,
                hit.hit.user_agent.as_ref().map(String::len),
            )
        };
        assert_eq!(read.len(), written.len());
        assert!(read.iter().map(key).eq(written.iter().map(key)));
    }
}
