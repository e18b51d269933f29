//! Import processes: recipients loaded in bulk into a list (MailUp's
//! WSMailUpImport, the batch import folder). Preparing checks, normalises and
//! de-duplicates the rows and stages them; starting queues the process; a runner
//! (part of the sender, so any server or worker process may run it) applies the
//! staged rows a chunk at a time. Each chunk's changes, the counters and the
//! progress commit together, so a process interrupted by a crash resumes after
//! its last committed chunk when its lease runs out: no row is lost or applied
//! twice. One process per list runs at a time.

use std::collections::HashMap;

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use tokio::sync::Notify;

use super::groups::{self, Group};
use super::recipients::{self, Contact, Mobile};
use super::subscriptions::{Status, UnsubscribeReason};
use super::{Origin, accounts, lists, messages, now};
use crate::db::bulk::{self, Actor, Chunk};
use crate::db::schema::{import_processes, lists as lists_table};
use crate::db::{Db, DbConnection, backend, write_transaction};
use crate::{Error, Result};

/// Rows staged and applied per chunk (one transaction each): large enough
/// that the fixed cost of a chunk's statements is spread thin, small enough
/// that other writers wait only a moment for the write lock.
const CHUNK_ROWS: usize = 5_000;
/// How long a runner holds a process between chunks before another may take
/// it over.
const LEASE: Duration = Duration::seconds(60);
/// Lines of rejected rows kept in a process's report.
const REPORT_LINES: usize = 100;

/// MailUp's `importType`: which channels a row brings, and whether an empty
/// value overwrites a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportType(i32);

impl ImportType {
    /// 1 e-mail only, 2 SMS only, 3 both; 4–6 the same with empty values
    /// overwriting the stored ones.
    pub fn new(code: i32) -> Option<ImportType> {
        (1..=6).contains(&code).then_some(ImportType(code))
    }

    pub fn code(self) -> i32 {
        self.0
    }

    fn email(self) -> bool {
        matches!(self.0, 1 | 3 | 4 | 6)
    }

    fn mobile(self) -> bool {
        matches!(self.0, 2 | 3 | 5 | 6)
    }

    fn empty_overwrites(self) -> bool {
        self.0 >= 4
    }
}

impl Default for ImportType {
    fn default() -> Self {
        ImportType(3)
    }
}

/// How the rows' subscriptions change (MailUp's flags; all false changes no
/// existing status). For each row, in this order:
/// - a recipient blocked for the row's channel keeps its status (none if new);
/// - `as_opt_out`: unsubscribed (reason 4, imported as unsubscribed);
/// - an unsubscribed one stays so, unless `force_opt_in` and the reason was not
///   a hard bounce or complaint: then pending with `confirm_email`, else
///   subscribed;
/// - `confirm_email`: pending (new ones too), awaiting a confirmation mail;
/// - a pending one becomes subscribed with `as_pending` (the flag is misnamed
///   in MailUp's API), else stays pending;
/// - otherwise subscribed (new ones, and those already subscribed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatusRules {
    pub as_opt_out: bool,
    pub force_opt_in: bool,
    pub confirm_email: bool,
    pub as_pending: bool,
}

/// A row as a document or file gives it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Row {
    pub email: Option<String>,
    pub mobile: Option<Mobile>,
    /// Field number and value as given: empty leaves the field unchanged (types
    /// 1–3), a single space blanks it.
    pub fields: Vec<(i32, String)>,
}

/// A request to prepare an import.
#[derive(Debug, Clone)]
pub struct NewImport {
    pub list: i64,
    pub groups: Vec<i64>,
    pub rows: Vec<Row>,
    /// Rows the reader could not use, with the reason (kept in the report).
    pub unreadable: Vec<String>,
    pub import_type: ImportType,
    pub rules: StatusRules,
    pub replace_groups: bool,
    /// The message asking for confirmation (`None`: the list's own).
    pub confirm_message: Option<i64>,
    /// What the import came from, e.g. `WSMailUpImport` or a file name.
    pub source: String,
    pub origin: Origin,
}

/// Where a process is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Staged; waits to be started.
    Prepared,
    Queued,
    Running,
    Done,
    Failed,
}

impl State {
    fn as_str(self) -> &'static str {
        match self {
            State::Prepared => "prepared",
            State::Queued => "queued",
            State::Running => "running",
            State::Done => "done",
            State::Failed => "failed",
        }
    }

    fn parse(text: &str) -> Result<State> {
        Ok(match text {
            "prepared" => State::Prepared,
            "queued" => State::Queued,
            "running" => State::Running,
            "done" => State::Done,
            "failed" => State::Failed,
            other => return Err(Error::Internal(format!("unknown import state {other:?}"))),
        })
    }
}

#[derive(Debug, Clone, Queryable, Selectable, PartialEq)]
#[diesel(table_name = import_processes)]
pub struct Process {
    pub id: i64,
    pub account_id: i64,
    pub list_id: i64,
    group_numbers: String,
    pub import_type: i32,
    pub as_pending: bool,
    pub confirm_email: bool,
    pub as_opt_out: bool,
    pub force_opt_in: bool,
    pub replace_groups: bool,
    pub confirm_message_id: Option<i64>,
    pub source: String,
    pub actor: String,
    pub channel: String,
    state: String,
    /// Rows the document held, readable or not.
    pub total_rows: i64,
    /// Rows left after reading and merging duplicates.
    pub staged_rows: i64,
    pub rows_done: i64,
    pub new_email: i64,
    pub new_mobile: i64,
    pub existing_email: i64,
    pub existing_mobile: i64,
    pub optout_email: i64,
    pub optout_mobile: i64,
    pub rejected_rows: i64,
    pub report: String,
    pub confirmation_sent: bool,
    lease_owner: Option<String>,
    lease_until: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub started_at: Option<NaiveDateTime>,
    pub ended_at: Option<NaiveDateTime>,
}

impl Process {
    pub fn state(&self) -> Result<State> {
        State::parse(&self.state)
    }

    pub fn group_numbers(&self) -> Vec<i64> {
        self.group_numbers
            .split(',')
            .filter_map(|n| n.parse().ok())
            .collect()
    }

    fn rules(&self) -> StatusRules {
        StatusRules {
            as_opt_out: self.as_opt_out,
            force_opt_in: self.force_opt_in,
            confirm_email: self.confirm_email,
            as_pending: self.as_pending,
        }
    }
}

#[derive(Insertable)]
#[diesel(table_name = import_processes)]
struct NewProcess<'a> {
    account_id: i64,
    list_id: i64,
    group_numbers: String,
    import_type: i32,
    as_pending: bool,
    confirm_email: bool,
    as_opt_out: bool,
    force_opt_in: bool,
    replace_groups: bool,
    confirm_message_id: Option<i64>,
    source: &'a str,
    actor: &'a str,
    channel: &'a str,
    state: &'static str,
    total_rows: i64,
    staged_rows: i64,
    rejected_rows: i64,
    report: String,
    created_at: NaiveDateTime,
}

/// A row as staged for its process.
#[derive(Debug, Clone)]
pub struct StagedRow {
    pub row_no: i64,
    pub email: Option<String>,
    pub email_key: Option<String>,
    pub mobile_prefix: Option<String>,
    pub mobile_number: Option<String>,
    pub mobile_key: Option<String>,
}

/// A field value as staged for its process.
#[derive(Debug, Clone)]
pub struct StagedField {
    pub row_no: i64,
    pub field_number: i32,
    pub value: String,
}

/// A row checked and normalised, with the field values to write.
struct Normalised {
    contact: recipients::ContactKeys,
    /// Field number and value, each number once (a handful per row: a list
    /// is cheaper than a map).
    fields: Vec<(i32, String)>,
}

/// Sets a field's value in a row's list, a later value replacing an earlier.
fn set_field(fields: &mut Vec<(i32, String)>, number: i32, value: String) {
    match fields.iter_mut().find(|(n, _)| *n == number) {
        Some(field) => field.1 = value,
        None => fields.push((number, value)),
    }
}

/// The list's finished imports that asked for confirmation mails have had
/// them sent (GetProcessDetails' `ConfirmationSent`).
pub fn mark_confirmations_sent(
    conn: &mut DbConnection,
    account_id: i64,
    list_id: i64,
) -> Result<usize> {
    Ok(diesel::update(
        import_processes::table
            .filter(import_processes::account_id.eq(account_id))
            .filter(import_processes::list_id.eq(list_id))
            .filter(import_processes::confirm_email.eq(true))
            .filter(import_processes::confirmation_sent.eq(false))
            .filter(import_processes::state.eq(State::Done.as_str())),
    )
    .set(import_processes::confirmation_sent.eq(true))
    .execute(conn)?)
}

/// Prepares a process: the list, groups and confirmation message are checked,
/// the rows normalised, merged by address and staged. Nothing changes for the
/// recipients until the process is started and run.
pub fn prepare(conn: &mut DbConnection, account_id: i64, mut new: NewImport) -> Result<Process> {
    write_transaction(conn, |conn| {
        let list = lists::get(conn, account_id, new.list)?;
        groups::resolve_in_list(conn, account_id, list.id, &new.groups)?;
        if let Some(message) = new.confirm_message {
            messages::get(conn, account_id, message)?;
        }
        let default_prefix = accounts::get(conn, account_id)?
            .settings()
            .default_mobile_prefix;
        let total_rows = (new.rows.len() + new.unreadable.len()) as i64;
        let mut report = std::mem::take(&mut new.unreadable);
        let rows = normalise(
            std::mem::take(&mut new.rows),
            new.import_type,
            &default_prefix,
            &mut report,
        );
        let rejected = report.len() as i64;
        report.truncate(REPORT_LINES);
        let group_numbers: Vec<String> = new.groups.iter().map(i64::to_string).collect();
        let id: i64 = diesel::insert_into(import_processes::table)
            .values(&NewProcess {
                account_id,
                list_id: list.id,
                group_numbers: group_numbers.join(","),
                import_type: new.import_type.code(),
                as_pending: new.rules.as_pending,
                confirm_email: new.rules.confirm_email,
                as_opt_out: new.rules.as_opt_out,
                force_opt_in: new.rules.force_opt_in,
                replace_groups: new.replace_groups,
                confirm_message_id: new.confirm_message,
                source: &new.source,
                actor: &new.origin.actor,
                channel: new.origin.channel.as_str(),
                state: State::Prepared.as_str(),
                total_rows,
                staged_rows: rows.len() as i64,
                rejected_rows: rejected,
                report: report.join("\n"),
                created_at: now(),
            })
            .returning(import_processes::id)
            .get_result(conn)?;
        stage(conn, id, rows)?;
        get(conn, id)
    })
}

/// Checks each row, keeps the channels the import type brings, and merges
/// rows naming the same recipient (a later value wins), so the staged rows
/// never collide on an address.
fn normalise(
    given: Vec<Row>,
    kind: ImportType,
    default_prefix: &str,
    report: &mut Vec<String>,
) -> Vec<Normalised> {
    let mut rows: Vec<Normalised> = Vec::with_capacity(given.len());
    let mut by_email: HashMap<String, usize> = HashMap::with_capacity(given.len());
    let mut by_mobile: HashMap<String, usize> = HashMap::new();
    for (index, row) in given.into_iter().enumerate() {
        let line = index + 1;
        let contact = Contact {
            email: row.email.filter(|e| kind.email() && !e.trim().is_empty()),
            mobile: row
                .mobile
                .filter(|m| kind.mobile() && !m.number.trim().is_empty()),
        };
        if contact.email.is_none() && contact.mobile.is_none() {
            report.push(format!("row {line}: no e-mail address or mobile number"));
            continue;
        }
        let keys = match recipients::contact_keys(&contact, default_prefix) {
            Ok(keys) => keys,
            Err(e) => {
                report.push(format!("row {line}: {e}"));
                continue;
            }
        };
        let mut fields = Vec::with_capacity(row.fields.len());
        for (number, value) in row.fields {
            if !(1..=super::fields::MAX_FIELD_NUMBER).contains(&number) {
                report.push(format!(
                    "row {line}: field {number} ignored (fields are 1 to 39)"
                ));
                continue;
            }
            let value = match value.as_str() {
                " " => String::new(),
                "" if !kind.empty_overwrites() => continue,
                _ => value,
            };
            set_field(&mut fields, number, value);
        }
        let email_twin = keys
            .email_key
            .as_ref()
            .and_then(|k| by_email.get(k))
            .copied();
        let mobile_twin = keys
            .mobile_key
            .as_ref()
            .and_then(|k| by_mobile.get(k))
            .copied();
        match email_twin.or(mobile_twin) {
            Some(twin) => {
                let earlier = &mut rows[twin];
                for (number, value) in fields {
                    set_field(&mut earlier.fields, number, value);
                }
                if earlier.contact.email_key.is_none()
                    && let Some(key) = keys.email_key.clone()
                {
                    by_email.insert(key, twin);
                    earlier.contact.email = keys.email;
                    earlier.contact.email_key = keys.email_key;
                }
                // The mobile moves to this recipient only if no other row has it.
                if mobile_twin.is_none_or(|m| m == twin)
                    && let Some(key) = keys.mobile_key.clone()
                {
                    if let Some(old) = earlier.contact.mobile_key.take() {
                        by_mobile.remove(&old);
                    }
                    by_mobile.insert(key, twin);
                    earlier.contact.mobile_prefix = keys.mobile_prefix;
                    earlier.contact.mobile_number = keys.mobile_number;
                    earlier.contact.mobile_key = keys.mobile_key;
                }
            }
            None => {
                let at = rows.len();
                if let Some(key) = &keys.email_key {
                    by_email.insert(key.clone(), at);
                }
                if let Some(key) = &keys.mobile_key {
                    by_mobile.insert(key.clone(), at);
                }
                rows.push(Normalised {
                    contact: keys,
                    fields,
                });
            }
        }
    }
    rows
}

/// Stages the rows a chunk at a time, each chunk as the runner will apply it.
fn stage(conn: &mut DbConnection, process_id: i64, rows: Vec<Normalised>) -> Result<()> {
    let mut staged = Vec::with_capacity(CHUNK_ROWS);
    let mut fields = Vec::new();
    for (index, row) in rows.into_iter().enumerate() {
        let row_no = index as i64 + 1;
        let mut values = row.fields;
        values.sort_unstable();
        fields.extend(values.into_iter().map(|(field_number, value)| StagedField {
            row_no,
            field_number,
            value,
        }));
        let contact = row.contact;
        staged.push(StagedRow {
            row_no,
            email: contact.email,
            email_key: contact.email_key,
            mobile_prefix: contact.mobile_prefix,
            mobile_number: contact.mobile_number,
            mobile_key: contact.mobile_key,
        });
        if staged.len() == CHUNK_ROWS {
            bulk::stage_chunk(conn, process_id, &staged, &fields)?;
            staged.clear();
            fields.clear();
        }
    }
    bulk::stage_chunk(conn, process_id, &staged, &fields)
}

fn get(conn: &mut DbConnection, id: i64) -> Result<Process> {
    Ok(import_processes::table
        .find(id)
        .select(Process::as_select())
        .first(conn)?)
}

/// The account's process with that id, if it imports into list `list_number`.
pub fn find(
    conn: &mut DbConnection,
    account_id: i64,
    list_number: i64,
    process_id: i64,
) -> Result<Option<Process>> {
    Ok(import_processes::table
        .inner_join(lists_table::table)
        .filter(import_processes::id.eq(process_id))
        .filter(import_processes::account_id.eq(account_id))
        .filter(lists_table::account_id.eq(account_id))
        .filter(lists_table::number.eq(list_number))
        .select(Process::as_select())
        .first(conn)
        .optional()?)
}

/// The list's processes prepared and not yet started, oldest first.
pub fn prepared(conn: &mut DbConnection, account_id: i64, list_number: i64) -> Result<Vec<i64>> {
    Ok(import_processes::table
        .inner_join(lists_table::table)
        .filter(import_processes::account_id.eq(account_id))
        .filter(lists_table::account_id.eq(account_id))
        .filter(lists_table::number.eq(list_number))
        .filter(import_processes::state.eq(State::Prepared.as_str()))
        .order(import_processes::id)
        .select(import_processes::id)
        .load(conn)?)
}

/// What starting a process did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Started {
    /// Queued: a runner applies it as soon as no other import of its list runs.
    Queued,
    /// It was started before and is in this state now.
    AlreadyStarted(State),
}

/// Queues a prepared process, and wakes the runner once that is committed.
/// (Called inside a caller's transaction it would wake the runner before the
/// commit, and on PostgreSQL the runner would not see the process yet.)
pub fn start(
    conn: &mut DbConnection,
    account_id: i64,
    list_number: i64,
    process_id: i64,
) -> Result<Started> {
    let started = write_transaction(conn, |conn| {
        mark_queued(conn, account_id, list_number, process_id)
    })?;
    if started == Started::Queued {
        QUEUED.notify_one();
    }
    Ok(started)
}

fn mark_queued(
    conn: &mut DbConnection,
    account_id: i64,
    list_number: i64,
    process_id: i64,
) -> Result<Started> {
    let process =
        find(conn, account_id, list_number, process_id)?.ok_or(Error::NotFound("import"))?;
    let state = process.state()?;
    if state != State::Prepared {
        return Ok(Started::AlreadyStarted(state));
    }
    diesel::update(import_processes::table.find(process.id))
        .set(import_processes::state.eq(State::Queued.as_str()))
        .execute(conn)?;
    Ok(Started::Queued)
}

/// Wakes this process's import runner when a process is queued, so that an
/// import starts at once instead of at the runner's next poll. (A process
/// queued by another server process is found by the poll.)
static QUEUED: Notify = Notify::const_new();

/// Resolves when a process has been queued since the last call returned.
pub async fn queued() {
    QUEUED.notified().await
}

/// Prepares and queues an import unless the account already has one from the
/// same `source` (a file seen before). The check and the queueing commit
/// together, so a file is imported once even when two runners scan its folder
/// or a runner stopped before moving the file away.
pub fn queue_once(
    conn: &mut DbConnection,
    account_id: i64,
    new: NewImport,
) -> Result<Option<Process>> {
    let queued = write_transaction(conn, |conn| {
        backend::lock_account(conn, account_id)?;
        let seen: i64 = import_processes::table
            .filter(import_processes::account_id.eq(account_id))
            .filter(import_processes::source.eq(&new.source))
            .count()
            .get_result(conn)?;
        if seen > 0 {
            return Ok(None);
        }
        let list = new.list;
        let process = prepare(conn, account_id, new)?;
        mark_queued(conn, account_id, list, process.id)?;
        Ok(Some(get(conn, process.id)?))
    })?;
    if queued.is_some() {
        QUEUED.notify_one();
    }
    Ok(queued)
}

/// Applies one waiting process, if any, to the end, or until `stopping` says
/// so: then the process goes back to the queue to be resumed after its last
/// chunk. Returns whether there was one. `owner` names this runner in the lease.
pub fn run_next(db: &Db, owner: &str, stopping: &dyn Fn() -> bool) -> Result<bool> {
    let Some(process) = db.write_blocking(|conn| claim(conn, owner))? else {
        return Ok(false);
    };
    log::info!(
        "import {} started: {} rows into list {}",
        process.id,
        process.staged_rows,
        process.list_id
    );
    loop {
        if stopping() {
            db.write_blocking(|conn| release(conn, process.id, owner))?;
            log::info!("import {} handed back to the queue", process.id);
            return Ok(true);
        }
        match db.write_blocking(|conn| apply_next_chunk(conn, process.id, owner)) {
            Ok(Progress::More) => continue,
            Ok(Progress::Finished) => {
                log::info!("import {} done", process.id);
                return Ok(true);
            }
            Ok(Progress::LeaseLost) => {
                log::warn!("import {}: another runner took it over", process.id);
                return Ok(true);
            }
            Err(e) if e.is_internal() => {
                log::error!("import {} failed: {e}", process.id);
                db.write_blocking(|conn| fail(conn, process.id, &e.to_string()))?;
                return Ok(true);
            }
            Err(e) => return Err(e),
        }
    }
}

/// Takes the oldest queued process (or a running one whose runner stopped
/// renewing its lease) whose list has no other import running.
fn claim(conn: &mut DbConnection, owner: &str) -> Result<Option<Process>> {
    let stamp = now();
    let candidates: Vec<Process> = import_processes::table
        .filter(
            import_processes::state
                .eq(State::Queued.as_str())
                .or(import_processes::state
                    .eq(State::Running.as_str())
                    .and(import_processes::lease_until.lt(stamp))),
        )
        .order(import_processes::id)
        .limit(16)
        .select(Process::as_select())
        .load(conn)?;
    for candidate in candidates {
        // Serialises claims within the account (PostgreSQL), so two runners
        // never start two imports of one list.
        backend::lock_account(conn, candidate.account_id)?;
        let busy: i64 = import_processes::table
            .filter(import_processes::list_id.eq(candidate.list_id))
            .filter(import_processes::id.ne(candidate.id))
            .filter(import_processes::state.eq(State::Running.as_str()))
            .filter(import_processes::lease_until.ge(stamp))
            .count()
            .get_result(conn)?;
        if busy > 0 {
            continue;
        }
        let taken = diesel::update(
            import_processes::table
                .find(candidate.id)
                .filter(import_processes::state.eq(&candidate.state))
                .filter(
                    import_processes::lease_until
                        .is_null()
                        .or(import_processes::lease_until.lt(stamp)),
                ),
        )
        .set((
            import_processes::state.eq(State::Running.as_str()),
            import_processes::lease_owner.eq(Some(owner)),
            import_processes::lease_until.eq(Some(stamp + LEASE)),
            import_processes::started_at.eq(Some(candidate.started_at.unwrap_or(stamp))),
        ))
        .execute(conn)?;
        if taken == 1 {
            return Ok(Some(candidate));
        }
    }
    Ok(None)
}

enum Progress {
    More,
    Finished,
    LeaseLost,
}

fn apply_next_chunk(conn: &mut DbConnection, process_id: i64, owner: &str) -> Result<Progress> {
    let process = get(conn, process_id)?;
    if process.state()? != State::Running || process.lease_owner.as_deref() != Some(owner) {
        return Ok(Progress::LeaseLost);
    }
    let stamp = now();
    if process.rows_done >= process.staged_rows {
        bulk::clear_staging(conn, process.id)?;
        diesel::update(import_processes::table.find(process.id))
            .set((
                import_processes::state.eq(State::Done.as_str()),
                import_processes::ended_at.eq(Some(stamp)),
                import_processes::lease_owner.eq(None::<String>),
                import_processes::lease_until.eq(None::<NaiveDateTime>),
            ))
            .execute(conn)?;
        return Ok(Progress::Finished);
    }
    let last_row = bulk::load_chunk(conn, process.id, process.rows_done + 1)?;
    let chunk = Chunk {
        account_id: process.account_id,
        list_id: process.list_id,
        now: stamp,
    };
    bulk::match_recipients(conn, &chunk)?;
    bulk::create_recipients(conn, &chunk)?;
    bulk::complete_contacts(conn, &chunk)?;
    bulk::apply_fields(conn, &chunk)?;
    bulk::plan_subscriptions(conn, &chunk, &process.rules())?;
    bulk::apply_subscriptions(
        conn,
        &chunk,
        &Actor {
            source: &process.source,
            actor: &process.actor,
            channel: &process.channel,
        },
        UnsubscribeReason::Imported.code(),
    )?;
    apply_groups(conn, &process, &chunk)?;
    let tally = Tally::of(&bulk::chunk_outcome(conn)?);
    tally.apply_to_list(conn, process.list_id)?;
    bulk::clear_work(conn)?;
    diesel::update(import_processes::table.find(process.id))
        .set((
            import_processes::rows_done.eq(last_row),
            import_processes::new_email.eq(import_processes::new_email + tally.new_email),
            import_processes::new_mobile.eq(import_processes::new_mobile + tally.new_mobile),
            import_processes::existing_email
                .eq(import_processes::existing_email + tally.existing_email),
            import_processes::existing_mobile
                .eq(import_processes::existing_mobile + tally.existing_mobile),
            import_processes::optout_email.eq(import_processes::optout_email + tally.optout_email),
            import_processes::optout_mobile
                .eq(import_processes::optout_mobile + tally.optout_mobile),
            import_processes::lease_until.eq(Some(stamp + LEASE)),
        ))
        .execute(conn)?;
    Ok(Progress::More)
}

/// Adds the chunk's recipients to the process's groups and, with
/// `replace_groups`, takes them out of the list's other groups.
fn apply_groups(conn: &mut DbConnection, process: &Process, chunk: &Chunk) -> Result<()> {
    let wanted = process.group_numbers();
    if wanted.is_empty() && !process.replace_groups {
        return Ok(());
    }
    let list_groups: Vec<Group> = groups::of_list(conn, process.account_id, process.list_id)?;
    for group in &list_groups {
        let change = if wanted.contains(&group.number) {
            bulk::add_to_group(conn, chunk, group.id)? as i64
        } else if process.replace_groups {
            -(bulk::remove_from_group(conn, chunk, group.id)? as i64)
        } else {
            0
        };
        if change != 0 {
            groups::adjust_count(conn, group.id, change)?;
        }
    }
    Ok(())
}

/// What a chunk did, counted.
#[derive(Debug, Default, PartialEq, Eq)]
struct Tally {
    new_email: i64,
    new_mobile: i64,
    existing_email: i64,
    existing_mobile: i64,
    optout_email: i64,
    optout_mobile: i64,
    /// Change of the list's subscribed, pending and unsubscribed counts.
    subscribed: i64,
    pending: i64,
    unsubscribed: i64,
}

impl Tally {
    fn of(outcomes: &[bulk::OutcomeCount]) -> Tally {
        let mut tally = Tally::default();
        for outcome in outcomes {
            let n = outcome.rows;
            let (email, mobile) = if outcome.created {
                (&mut tally.new_email, &mut tally.new_mobile)
            } else {
                (&mut tally.existing_email, &mut tally.existing_mobile)
            };
            *email += n * i64::from(outcome.has_email);
            *mobile += n * i64::from(outcome.has_mobile);
            let target = outcome.target_status.as_deref();
            if target == Some(Status::Unsubscribed.as_str()) {
                tally.optout_email += n * i64::from(outcome.has_email);
                tally.optout_mobile += n * i64::from(outcome.has_mobile);
            }
            let previous = outcome.previous_status.as_deref();
            if previous != target {
                tally.count(previous, -n);
                tally.count(target, n);
            }
        }
        tally
    }

    fn count(&mut self, status: Option<&str>, n: i64) {
        match status {
            Some("subscribed") => self.subscribed += n,
            Some("pending") => self.pending += n,
            Some("unsubscribed") => self.unsubscribed += n,
            _ => {}
        }
    }

    fn apply_to_list(&self, conn: &mut DbConnection, list_id: i64) -> Result<()> {
        if (self.subscribed, self.pending, self.unsubscribed) == (0, 0, 0) {
            return Ok(());
        }
        diesel::update(lists_table::table.find(list_id))
            .set((
                lists_table::subscribed_count.eq(lists_table::subscribed_count + self.subscribed),
                lists_table::pending_count.eq(lists_table::pending_count + self.pending),
                lists_table::unsubscribed_count
                    .eq(lists_table::unsubscribed_count + self.unsubscribed),
            ))
            .execute(conn)?;
        Ok(())
    }
}

/// Puts a running process back in the queue (this runner is stopping).
fn release(conn: &mut DbConnection, process_id: i64, owner: &str) -> Result<()> {
    diesel::update(
        import_processes::table
            .find(process_id)
            .filter(import_processes::lease_owner.eq(owner)),
    )
    .set((
        import_processes::state.eq(State::Queued.as_str()),
        import_processes::lease_owner.eq(None::<String>),
        import_processes::lease_until.eq(None::<NaiveDateTime>),
    ))
    .execute(conn)?;
    Ok(())
}

fn fail(conn: &mut DbConnection, process_id: i64, reason: &str) -> Result<()> {
    diesel::update(import_processes::table.find(process_id))
        .set((
            import_processes::state.eq(State::Failed.as_str()),
            import_processes::ended_at.eq(Some(now())),
            import_processes::lease_owner.eq(None::<String>),
            import_processes::lease_until.eq(None::<NaiveDateTime>),
            import_processes::report.eq(reason),
        ))
        .execute(conn)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(email: &str, mobile: &str, fields: &[(i32, &str)]) -> Row {
        Row {
            email: Some(email.to_string()),
            mobile: Some(Mobile::new(mobile)),
            fields: fields.iter().map(|(n, v)| (*n, v.to_string())).collect(),
        }
    }

    #[test]
    fn merges_rows_naming_one_recipient_and_keeps_the_import_types_channels() {
        let rows = vec![
            row("A@x.it", "", &[(1, "Ann"), (2, "Old")]),
            row("a@X.it", "3331234567", &[(2, "New"), (3, "")]),
            row("", "+39 333 1234567", &[(4, " ")]),
            row("nobody", "", &[]),
        ];
        let mut report = Vec::new();
        let merged = normalise(rows.clone(), ImportType(3), "+39", &mut report);
        assert_eq!(merged.len(), 1);
        assert_eq!(merged[0].contact.email_key.as_deref(), Some("a@x.it"));
        assert_eq!(
            merged[0].contact.mobile_key.as_deref(),
            Some("+393331234567")
        );
        let mut fields = merged[0].fields.clone();
        fields.sort();
        assert_eq!(
            fields,
            vec![(1, "Ann".into()), (2, "New".into()), (4, String::new())]
        );
        assert_eq!(report.len(), 1, "{report:?}");
        assert!(report[0].starts_with("row 4:"), "{report:?}");

        let mut report = Vec::new();
        let email_only = normalise(rows.clone(), ImportType(1), "+39", &mut report);
        assert_eq!(email_only.len(), 1);
        assert_eq!(email_only[0].contact.mobile_key, None);
        assert_eq!(report.len(), 2, "row 3 has no e-mail: {report:?}");

        let mut report = Vec::new();
        let overwriting = normalise(rows, ImportType(6), "+39", &mut report);
        assert!(overwriting[0].fields.contains(&(3, String::new())));
    }
}
