//! Set-based statements for bulk imports. An import's rows are staged as one
//! JSON document per chunk (`import_chunks`); applying a chunk unpacks it into
//! two temporary work tables of the connection (in memory on SQLite, unlogged
//! on PostgreSQL) and changes the recipients with a fixed handful of statements
//! over them, instead of a dozen statements per row: that is what lets an
//! import approach the speed of a plain table load. The SQL is the same on
//! both backends (SQLite ≥ 3.38 has `->>`, `UPDATE … FROM` and upserts) except
//! for unpacking the JSON; the placeholders are written `$n` here.

use std::borrow::Cow;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::query_builder::{BoxedSqlQuery, SqlQuery};
use diesel::sql_types::{BigInt, Bool, Integer, Nullable, Text, Timestamp};

use super::schema::import_chunks;
use super::{DbConnection, MultiBackend};
use crate::domain::imports::{StagedField, StagedRow, StatusRules};
use crate::{Error, Result};

/// What the chunk in the work tables is applied to.
#[derive(Debug, Clone, Copy)]
pub struct Chunk {
    pub account_id: i64,
    /// Row id of the list.
    pub list_id: i64,
    pub now: NaiveDateTime,
}

/// Stages the rows `first_row..=last_row` of a process and their field values.
pub fn stage_chunk(
    conn: &mut DbConnection,
    process_id: i64,
    rows: &[StagedRow],
    fields: &[StagedField],
) -> Result<()> {
    let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
        return Ok(());
    };
    let rows_json: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                r.row_no,
                &r.email,
                &r.email_key,
                &r.mobile_prefix,
                &r.mobile_number,
                &r.mobile_key,
            )
        })
        .collect();
    let fields_json: Vec<_> = fields
        .iter()
        .map(|f| (f.row_no, f.field_number, &f.value))
        .collect();
    diesel::insert_into(import_chunks::table)
        .values((
            import_chunks::process_id.eq(process_id),
            import_chunks::first_row.eq(first.row_no),
            import_chunks::last_row.eq(last.row_no),
            import_chunks::rows.eq(to_json(&rows_json)?),
            import_chunks::fields.eq(to_json(&fields_json)?),
        ))
        .execute(conn)?;
    Ok(())
}

fn to_json(values: &impl serde::Serialize) -> Result<String> {
    serde_json::to_string(values).map_err(|e| Error::Internal(e.to_string()))
}

/// Unpacks the staged chunk of a process starting at `first_row` into the
/// connection's work tables, replacing what they held. Returns the chunk's
/// last row. The work tables are created on first use; their content is the
/// transaction's like any table's, so a chunk that fails leaves nothing behind.
pub fn load_chunk(conn: &mut DbConnection, process_id: i64, first_row: i64) -> Result<i64> {
    let last_row: i64 = import_chunks::table
        .find((process_id, first_row))
        .select(import_chunks::last_row)
        .first(conn)
        .optional()?
        .ok_or_else(|| {
            Error::Internal(format!(
                "import {process_id}: no rows staged from row {first_row}"
            ))
        })?;
    let (row_no_type, unpack_rows, unpack_fields) = match conn {
        // SQLite: an `INTEGER PRIMARY KEY` is the table's rowid, the cheapest key.
        DbConnection::Sqlite(_) => (
            "INTEGER",
            "INSERT INTO import_work_rows (row_no, email, email_key, mobile_prefix, \
                 mobile_number, mobile_key) \
             SELECT r.value->>0, r.value->>1, r.value->>2, r.value->>3, r.value->>4, r.value->>5 \
             FROM import_chunks c, jsonb_each(jsonb(c.rows)) r \
             WHERE c.process_id = ?1 AND c.first_row = ?2",
            "INSERT INTO import_work_fields (row_no, field_number, value) \
             SELECT f.value->>0, f.value->>1, f.value->>2 \
             FROM import_chunks c, jsonb_each(jsonb(c.fields)) f \
             WHERE c.process_id = ?1 AND c.first_row = ?2",
        ),
        DbConnection::Postgresql(_) => (
            "BIGINT",
            "INSERT INTO import_work_rows (row_no, email, email_key, mobile_prefix, \
                 mobile_number, mobile_key) \
             SELECT (r->>0)::bigint, r->>1, r->>2, r->>3, r->>4, r->>5 \
             FROM import_chunks c, jsonb_array_elements(c.rows::jsonb) r \
             WHERE c.process_id = $1 AND c.first_row = $2",
            "INSERT INTO import_work_fields (row_no, field_number, value) \
             SELECT (f->>0)::bigint, (f->>1)::integer, f->>2 \
             FROM import_chunks c, jsonb_array_elements(c.fields::jsonb) f \
             WHERE c.process_id = $1 AND c.first_row = $2",
        ),
    };
    let mut create = vec![format!(
        "CREATE TEMP TABLE IF NOT EXISTS import_work_rows (row_no {row_no_type} PRIMARY KEY, \
             email TEXT, email_key TEXT, mobile_prefix TEXT, mobile_number TEXT, \
             mobile_key TEXT, recipient_id BIGINT, created BOOLEAN NOT NULL DEFAULT FALSE, \
             blocked BOOLEAN DEFAULT FALSE, subscription_id BIGINT, \
             previous_status TEXT, previous_reason INTEGER, target_status TEXT)"
    )];
    if let DbConnection::Postgresql(_) = conn {
        // Every statement below is led by the chunk's rows; should PostgreSQL's
        // planner still lead a join with a large table (whose statistics say it
        // is small), this index spares it a scan of the chunk per row. SQLite
        // needs no such insurance, and with the index its planner would lead
        // with a list's subscriptions and probe the chunk for each.
        create.push(
            "CREATE INDEX IF NOT EXISTS import_work_rows_recipient \
                 ON import_work_rows (recipient_id)"
                .to_string(),
        );
    }
    create.push(
        "CREATE TEMP TABLE IF NOT EXISTS import_work_fields (row_no BIGINT NOT NULL, \
             field_number INTEGER NOT NULL, value TEXT NOT NULL)"
            .to_string(),
    );
    for statement in create {
        diesel::sql_query(statement).execute(conn)?;
    }
    clear_work(conn)?;
    for statement in [unpack_rows, unpack_fields] {
        diesel::sql_query(statement)
            .bind::<BigInt, _>(process_id)
            .bind::<BigInt, _>(first_row)
            .execute(conn)?;
    }
    if let DbConnection::Postgresql(_) = conn {
        // Gives the planner the work tables' sizes: without statistics it
        // guesses and may scan a large table once per row.
        diesel::sql_query("ANALYZE import_work_rows, import_work_fields").execute(conn)?;
        // A chunk's statements are estimated costly enough for PostgreSQL to
        // compile them to machine code (JIT) each time, which took longer
        // than running them over a few thousand rows. For this transaction only.
        diesel::sql_query("SET LOCAL jit = off").execute(conn)?;
    }
    Ok(last_row)
}

/// Empties the work tables.
pub fn clear_work(conn: &mut DbConnection) -> Result<()> {
    match conn {
        DbConnection::Sqlite(_) => {
            diesel::sql_query("DELETE FROM import_work_fields").execute(conn)?;
            diesel::sql_query("DELETE FROM import_work_rows").execute(conn)?;
        }
        // PostgreSQL's DELETE leaves every row version behind, and nothing
        // vacuums a temporary table: each chunk's statements scanned all the
        // chunks before, and the planner, seeing a large work table, led with
        // a scan of the recipients instead. TRUNCATE starts the tables afresh
        // (and rolls back with the chunk like the rest).
        DbConnection::Postgresql(_) => {
            diesel::sql_query("TRUNCATE import_work_fields, import_work_rows").execute(conn)?;
        }
    }
    Ok(())
}

/// `$n` placeholders as the connection's backend spells them (SQLite: `?n`).
fn sql<'a>(conn: &DbConnection, text: &'a str) -> Cow<'a, str> {
    match conn {
        DbConnection::Postgresql(_) => Cow::Borrowed(text),
        DbConnection::Sqlite(_) => Cow::Owned(text.replace('$', "?")),
    }
}

type ChunkQuery = BoxedSqlQuery<'static, MultiBackend, SqlQuery>;

/// A statement over the work tables with `$1` the account bound; each
/// statement binds its own `$2…` after.
fn chunk_query(conn: &DbConnection, chunk: &Chunk, text: &str) -> ChunkQuery {
    diesel::sql_query(sql(conn, text).into_owned())
        .into_boxed()
        .bind::<BigInt, _>(chunk.account_id)
}

/// Finds the recipient of each row: by e-mail key, else by mobile key.
pub fn match_recipients(conn: &mut DbConnection, chunk: &Chunk) -> Result<()> {
    chunk_query(conn, chunk, &resolve_recipients("FALSE")).execute(conn)?;
    Ok(())
}

/// The UPDATE that points rows without a recipient at theirs, setting
/// `created` to the given SQL value.
fn resolve_recipients(created: &str) -> String {
    format!(
        "UPDATE import_work_rows SET created = {created}, recipient_id = COALESCE( \
             (SELECT r.id FROM recipients r \
              WHERE r.account_id = $1 AND r.email_key = import_work_rows.email_key), \
             (SELECT r.id FROM recipients r \
              WHERE r.account_id = $1 AND r.mobile_key = import_work_rows.mobile_key)) \
         WHERE recipient_id IS NULL"
    )
}

/// Creates the recipients no row matched and marks those rows `created`. A
/// recipient another writer created meanwhile is matched, not duplicated.
pub fn create_recipients(conn: &mut DbConnection, chunk: &Chunk) -> Result<()> {
    chunk_query(
        conn,
        chunk,
        "INSERT INTO recipients (account_id, email, email_key, mobile_prefix, mobile_number, \
             mobile_key, created_at, updated_at) \
         SELECT $1, email, email_key, mobile_prefix, mobile_number, mobile_key, $2, $2 \
         FROM import_work_rows \
         WHERE recipient_id IS NULL \
         ORDER BY row_no \
         ON CONFLICT DO NOTHING",
    )
    .bind::<Timestamp, _>(chunk.now)
    .execute(conn)?;
    chunk_query(conn, chunk, &resolve_recipients("TRUE")).execute(conn)?;
    Ok(())
}

/// Gives matched recipients the contact details the file adds: an e-mail
/// address they lack, a mobile number they lack or that changed, unless
/// another recipient of the account already has it. (`account_id + 0` keeps
/// SQLite from walking the account's recipients by its key index and scanning
/// the chunk for each: the chunk's rows lead, each finding its recipient.)
pub fn complete_contacts(conn: &mut DbConnection, chunk: &Chunk) -> Result<()> {
    chunk_query(
        conn,
        chunk,
        "UPDATE recipients SET email = i.email, email_key = i.email_key, updated_at = $2 \
         FROM import_work_rows i \
         WHERE NOT i.created \
           AND i.email_key IS NOT NULL AND recipients.id = i.recipient_id \
           AND recipients.email_key IS NULL AND recipients.account_id + 0 = $1 \
           AND NOT EXISTS (SELECT 1 FROM recipients o \
                           WHERE o.account_id = $1 AND o.email_key = i.email_key)",
    )
    .bind::<Timestamp, _>(chunk.now)
    .execute(conn)?;
    chunk_query(
        conn,
        chunk,
        "UPDATE recipients SET mobile_prefix = i.mobile_prefix, mobile_number = i.mobile_number, \
             mobile_key = i.mobile_key, updated_at = $2 \
         FROM import_work_rows i \
         WHERE NOT i.created \
           AND i.mobile_key IS NOT NULL AND recipients.id = i.recipient_id \
           AND (recipients.mobile_key IS NULL OR recipients.mobile_key <> i.mobile_key) \
           AND recipients.account_id + 0 = $1 \
           AND NOT EXISTS (SELECT 1 FROM recipients o \
                           WHERE o.account_id = $1 AND o.mobile_key = i.mobile_key)",
    )
    .bind::<Timestamp, _>(chunk.now)
    .execute(conn)?;
    Ok(())
}

/// Writes the staged field values (the staging already dropped the values that
/// must leave a field unchanged).
pub fn apply_fields(conn: &mut DbConnection, chunk: &Chunk) -> Result<()> {
    chunk_query(
        conn,
        chunk,
        "INSERT INTO recipient_field_values (account_id, recipient_id, field_number, value) \
         SELECT $1, i.recipient_id, f.field_number, f.value \
         FROM import_work_fields f \
         JOIN import_work_rows i ON i.row_no = f.row_no \
         WHERE i.recipient_id IS NOT NULL \
         ON CONFLICT (recipient_id, field_number) DO UPDATE SET value = excluded.value",
    )
    .execute(conn)?;
    Ok(())
}

/// Reads each row's current subscription and blocklisting, then decides its
/// target status by the rules documented on [`StatusRules`].
pub fn plan_subscriptions(
    conn: &mut DbConnection,
    chunk: &Chunk,
    rules: &StatusRules,
) -> Result<()> {
    // A recipient this chunk created has no subscription and no block. On
    // SQLite `created` says exactly that: the chunk's transaction holds the
    // write lock from its start. On PostgreSQL a row marked `created` may have
    // found a recipient another transaction committed after the match, so
    // every row is read.
    let existing = match conn {
        DbConnection::Sqlite(_) => "AND NOT created",
        DbConnection::Postgresql(_) => "",
    };
    chunk_query(
        conn,
        chunk,
        &format!(
            "UPDATE import_work_rows \
             SET (subscription_id, previous_status, previous_reason, blocked) = ( \
                 SELECT s.id, s.status, s.unsubscribe_reason, \
                     r.erased_at IS NOT NULL \
                     OR (import_work_rows.email_key IS NOT NULL \
                         AND (r.email_blocklisted OR r.bounced)) \
                     OR (import_work_rows.email_key IS NULL AND r.sms_blocklisted) \
                 FROM recipients r \
                 LEFT JOIN subscriptions s ON s.list_id = $2 AND s.recipient_id = r.id \
                     AND s.account_id = $1 \
                 WHERE r.id = import_work_rows.recipient_id AND r.account_id = $1) \
             WHERE recipient_id IS NOT NULL {existing}"
        ),
    )
    .bind::<BigInt, _>(chunk.list_id)
    .execute(conn)?;
    chunk_query(
        conn,
        chunk,
        "UPDATE import_work_rows SET target_status = CASE \
             WHEN blocked THEN previous_status \
             WHEN $2 THEN 'unsubscribed' \
             WHEN previous_status = 'unsubscribed' THEN CASE \
                 WHEN $3 AND COALESCE(previous_reason, 0) NOT IN (8, 16) \
                     THEN CASE WHEN $4 THEN 'pending' ELSE 'subscribed' END \
                 ELSE 'unsubscribed' END \
             WHEN $4 THEN 'pending' \
             WHEN previous_status = 'pending' \
                 THEN CASE WHEN $5 THEN 'subscribed' ELSE 'pending' END \
             ELSE 'subscribed' END \
         WHERE recipient_id IS NOT NULL",
    )
    .bind::<Bool, _>(rules.as_opt_out)
    .bind::<Bool, _>(rules.force_opt_in)
    .bind::<Bool, _>(rules.confirm_email)
    .bind::<Bool, _>(rules.as_pending)
    .execute(conn)?;
    Ok(())
}

/// Who made the changes, as the subscriptions and their history record it.
pub struct Actor<'a> {
    pub source: &'a str,
    pub actor: &'a str,
    pub channel: &'a str,
}

/// Creates and moves subscriptions to their planned status and writes the
/// history of every change. An unsubscribe by import carries `reason`.
pub fn apply_subscriptions(
    conn: &mut DbConnection,
    chunk: &Chunk,
    actor: &Actor,
    reason: i32,
) -> Result<()> {
    chunk_query(
        conn,
        chunk,
        "INSERT INTO subscriptions (account_id, list_id, recipient_id, status, source, \
             unsubscribe_reason, created_at, status_changed_at, confirmed_at, unsubscribed_at) \
         SELECT $1, $2, recipient_id, target_status, $4, \
             CASE WHEN target_status = 'unsubscribed' THEN $5 END, $3, $3, \
             CASE WHEN target_status = 'subscribed' THEN $3 END, \
             CASE WHEN target_status = 'unsubscribed' THEN $3 END \
         FROM import_work_rows \
         WHERE previous_status IS NULL AND target_status IS NOT NULL \
         ON CONFLICT (list_id, recipient_id) DO NOTHING",
    )
    .bind::<BigInt, _>(chunk.list_id)
    .bind::<Timestamp, _>(chunk.now)
    .bind::<Text, _>(actor.source.to_string())
    .bind::<Integer, _>(reason)
    .execute(conn)?;
    chunk_query(
        conn,
        chunk,
        "UPDATE subscriptions SET status = i.target_status, status_changed_at = $3, \
             confirmed_at = CASE WHEN i.target_status = 'subscribed' THEN $3 \
                            ELSE subscriptions.confirmed_at END, \
             unsubscribed_at = CASE WHEN i.target_status = 'unsubscribed' THEN $3 \
                               ELSE subscriptions.unsubscribed_at END, \
             unsubscribe_reason = CASE WHEN i.target_status = 'unsubscribed' THEN $4 END, \
             confirmation_token_hash = NULL \
         FROM import_work_rows i \
         WHERE subscriptions.id = i.subscription_id \
           AND subscriptions.list_id = $2 AND subscriptions.account_id = $1 \
           AND i.previous_status IS NOT NULL AND i.target_status <> i.previous_status",
    )
    .bind::<BigInt, _>(chunk.list_id)
    .bind::<Timestamp, _>(chunk.now)
    .bind::<Integer, _>(reason)
    .execute(conn)?;
    chunk_query(
        conn,
        chunk,
        "INSERT INTO subscription_history (account_id, subscription_id, list_id, recipient_id, \
             from_status, to_status, reason, actor, channel, note, created_at) \
         SELECT $1, COALESCE(subscription_id, ( \
                 SELECT s.id FROM subscriptions s \
                 WHERE s.list_id = $2 AND s.recipient_id = import_work_rows.recipient_id \
                   AND s.account_id = $1)), \
             $2, recipient_id, previous_status, target_status, \
             CASE WHEN target_status = 'unsubscribed' THEN $4 END, $5, $6, $7, $3 \
         FROM import_work_rows \
         WHERE target_status IS NOT NULL \
           AND (previous_status IS NULL OR previous_status <> target_status)",
    )
    .bind::<BigInt, _>(chunk.list_id)
    .bind::<Timestamp, _>(chunk.now)
    .bind::<Integer, _>(reason)
    .bind::<Text, _>(actor.actor.to_string())
    .bind::<Text, _>(actor.channel.to_string())
    .bind::<Text, _>(actor.source.to_string())
    .execute(conn)?;
    Ok(())
}

/// One combination of what happened to rows of a chunk, and how many rows.
#[derive(Debug, Clone, QueryableByName)]
pub struct OutcomeCount {
    #[diesel(sql_type = Bool)]
    pub created: bool,
    #[diesel(sql_type = Bool)]
    pub has_email: bool,
    #[diesel(sql_type = Bool)]
    pub has_mobile: bool,
    #[diesel(sql_type = Nullable<Text>)]
    pub previous_status: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub target_status: Option<String>,
    #[diesel(sql_type = BigInt)]
    pub rows: i64,
}

pub fn chunk_outcome(conn: &mut DbConnection) -> Result<Vec<OutcomeCount>> {
    Ok(diesel::sql_query(
        "SELECT created, email_key IS NOT NULL AS has_email, \
             mobile_key IS NOT NULL AS has_mobile, previous_status, target_status, \
             COUNT(*) AS rows \
         FROM import_work_rows \
         WHERE recipient_id IS NOT NULL \
         GROUP BY created, email_key IS NOT NULL, mobile_key IS NOT NULL, \
             previous_status, target_status",
    )
    .load(conn)?)
}

/// Adds the chunk's rows that have a subscription to a group (row id); returns
/// how many memberships are new.
pub fn add_to_group(conn: &mut DbConnection, chunk: &Chunk, group_id: i64) -> Result<usize> {
    Ok(chunk_query(
        conn,
        chunk,
        "INSERT INTO group_members (account_id, group_id, recipient_id, created_at) \
         SELECT $1, $2, recipient_id, $3 FROM import_work_rows \
         WHERE target_status IS NOT NULL \
         ON CONFLICT (group_id, recipient_id) DO NOTHING",
    )
    .bind::<BigInt, _>(group_id)
    .bind::<Timestamp, _>(chunk.now)
    .execute(conn)?)
}

/// Takes the chunk's recipients out of a group (row id); returns how many left.
pub fn remove_from_group(conn: &mut DbConnection, chunk: &Chunk, group_id: i64) -> Result<usize> {
    Ok(chunk_query(
        conn,
        chunk,
        "DELETE FROM group_members \
         WHERE account_id = $1 AND group_id = $2 AND recipient_id IN ( \
             SELECT recipient_id FROM import_work_rows \
         WHERE target_status IS NOT NULL)",
    )
    .bind::<BigInt, _>(group_id)
    .execute(conn)?)
}

/// Drops a finished process's staged rows.
pub fn clear_staging(conn: &mut DbConnection, process_id: i64) -> Result<()> {
    diesel::delete(import_chunks::table.filter(import_chunks::process_id.eq(process_id)))
        .execute(conn)?;
    Ok(())
}
