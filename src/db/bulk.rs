//! Set-based statements for bulk imports. Staged rows are applied a chunk at a
//! time with a fixed handful of statements, instead of a dozen statements per
//! row: that is what lets an import approach the speed of a plain table load.
//! The SQL is the same on both backends (SQLite ≥ 3.33 has `UPDATE … FROM` and
//! upserts); only the placeholders differ, written `$n` here.

use std::borrow::Cow;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::query_builder::{BoxedSqlQuery, SqlQuery};
use diesel::sql_types::{BigInt, Bool, Integer, Nullable, Text, Timestamp};

use super::schema::{import_row_fields, import_rows};
use super::{DbConnection, MultiBackend};
use crate::Result;
use crate::domain::imports::StatusRules;

/// The rows of one process a chunk covers, and what they are applied to.
#[derive(Debug, Clone, Copy)]
pub struct Chunk {
    pub account_id: i64,
    /// Row id of the list.
    pub list_id: i64,
    pub process_id: i64,
    pub first_row: i64,
    pub last_row: i64,
    pub now: NaiveDateTime,
}

/// `$n` placeholders as the connection's backend spells them (SQLite: `?n`).
fn sql<'a>(conn: &DbConnection, text: &'a str) -> Cow<'a, str> {
    match conn {
        DbConnection::Postgresql(_) => Cow::Borrowed(text),
        DbConnection::Sqlite(_) => Cow::Owned(text.replace('$', "?")),
    }
}

type ChunkQuery = BoxedSqlQuery<'static, MultiBackend, SqlQuery>;

/// A statement over the chunk's rows with `$1` account, `$2` process and
/// `$3`/`$4` the row range bound; each statement binds its own `$5…` after.
fn chunk_query(conn: &DbConnection, chunk: &Chunk, text: &str) -> ChunkQuery {
    diesel::sql_query(sql(conn, text).into_owned())
        .into_boxed()
        .bind::<BigInt, _>(chunk.account_id)
        .bind::<BigInt, _>(chunk.process_id)
        .bind::<BigInt, _>(chunk.first_row)
        .bind::<BigInt, _>(chunk.last_row)
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
        "UPDATE import_rows SET created = {created}, recipient_id = COALESCE( \
             (SELECT r.id FROM recipients r \
              WHERE r.account_id = $1 AND r.email_key = import_rows.email_key), \
             (SELECT r.id FROM recipients r \
              WHERE r.account_id = $1 AND r.mobile_key = import_rows.mobile_key)) \
         WHERE process_id = $2 AND row_no BETWEEN $3 AND $4 AND recipient_id IS NULL"
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
         SELECT $1, email, email_key, mobile_prefix, mobile_number, mobile_key, $5, $5 \
         FROM import_rows \
         WHERE process_id = $2 AND row_no BETWEEN $3 AND $4 AND recipient_id IS NULL \
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
/// another recipient of the account already has it.
pub fn complete_contacts(conn: &mut DbConnection, chunk: &Chunk) -> Result<()> {
    chunk_query(
        conn,
        chunk,
        "UPDATE recipients SET email = i.email, email_key = i.email_key, updated_at = $5 \
         FROM import_rows i \
         WHERE i.process_id = $2 AND i.row_no BETWEEN $3 AND $4 AND NOT i.created \
           AND i.email_key IS NOT NULL AND recipients.id = i.recipient_id \
           AND recipients.email_key IS NULL AND recipients.account_id = $1 \
           AND NOT EXISTS (SELECT 1 FROM recipients o \
                           WHERE o.account_id = $1 AND o.email_key = i.email_key)",
    )
    .bind::<Timestamp, _>(chunk.now)
    .execute(conn)?;
    chunk_query(
        conn,
        chunk,
        "UPDATE recipients SET mobile_prefix = i.mobile_prefix, mobile_number = i.mobile_number, \
             mobile_key = i.mobile_key, updated_at = $5 \
         FROM import_rows i \
         WHERE i.process_id = $2 AND i.row_no BETWEEN $3 AND $4 AND NOT i.created \
           AND i.mobile_key IS NOT NULL AND recipients.id = i.recipient_id \
           AND (recipients.mobile_key IS NULL OR recipients.mobile_key <> i.mobile_key) \
           AND recipients.account_id = $1 \
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
         FROM import_row_fields f \
         JOIN import_rows i ON i.process_id = f.process_id AND i.row_no = f.row_no \
         WHERE f.process_id = $2 AND f.row_no BETWEEN $3 AND $4 AND i.recipient_id IS NOT NULL \
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
    chunk_query(
        conn,
        chunk,
        "UPDATE import_rows SET previous_status = s.status, \
             previous_reason = s.unsubscribe_reason \
         FROM subscriptions s \
         WHERE import_rows.process_id = $2 AND import_rows.row_no BETWEEN $3 AND $4 \
           AND s.list_id = $5 AND s.recipient_id = import_rows.recipient_id \
           AND s.account_id = $1",
    )
    .bind::<BigInt, _>(chunk.list_id)
    .execute(conn)?;
    chunk_query(
        conn,
        chunk,
        "UPDATE import_rows SET blocked = TRUE \
         FROM recipients r \
         WHERE import_rows.process_id = $2 AND import_rows.row_no BETWEEN $3 AND $4 \
           AND r.id = import_rows.recipient_id AND r.account_id = $1 \
           AND (r.erased_at IS NOT NULL \
                OR (import_rows.email_key IS NOT NULL AND (r.email_blocklisted OR r.bounced)) \
                OR (import_rows.email_key IS NULL AND r.sms_blocklisted))",
    )
    .execute(conn)?;
    chunk_query(
        conn,
        chunk,
        "UPDATE import_rows SET target_status = CASE \
             WHEN blocked THEN previous_status \
             WHEN $5 THEN 'unsubscribed' \
             WHEN previous_status = 'unsubscribed' THEN CASE \
                 WHEN $6 AND COALESCE(previous_reason, 0) NOT IN (8, 16) \
                     THEN CASE WHEN $7 THEN 'pending' ELSE 'subscribed' END \
                 ELSE 'unsubscribed' END \
             WHEN $7 THEN 'pending' \
             WHEN previous_status = 'pending' \
                 THEN CASE WHEN $8 THEN 'subscribed' ELSE 'pending' END \
             ELSE 'subscribed' END \
         WHERE process_id = $2 AND row_no BETWEEN $3 AND $4 AND recipient_id IS NOT NULL",
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
         SELECT $1, $5, recipient_id, target_status, $7, \
             CASE WHEN target_status = 'unsubscribed' THEN $8 END, $6, $6, \
             CASE WHEN target_status = 'subscribed' THEN $6 END, \
             CASE WHEN target_status = 'unsubscribed' THEN $6 END \
         FROM import_rows \
         WHERE process_id = $2 AND row_no BETWEEN $3 AND $4 \
           AND previous_status IS NULL AND target_status IS NOT NULL \
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
        "UPDATE subscriptions SET status = i.target_status, status_changed_at = $6, \
             confirmed_at = CASE WHEN i.target_status = 'subscribed' THEN $6 \
                            ELSE subscriptions.confirmed_at END, \
             unsubscribed_at = CASE WHEN i.target_status = 'unsubscribed' THEN $6 \
                               ELSE subscriptions.unsubscribed_at END, \
             unsubscribe_reason = CASE WHEN i.target_status = 'unsubscribed' THEN $7 END, \
             confirmation_token_hash = NULL \
         FROM import_rows i \
         WHERE i.process_id = $2 AND i.row_no BETWEEN $3 AND $4 \
           AND subscriptions.list_id = $5 AND subscriptions.recipient_id = i.recipient_id \
           AND subscriptions.account_id = $1 \
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
         SELECT $1, s.id, $5, i.recipient_id, i.previous_status, i.target_status, \
             CASE WHEN i.target_status = 'unsubscribed' THEN $7 END, $8, $9, $10, $6 \
         FROM import_rows i \
         JOIN subscriptions s ON s.list_id = $5 AND s.recipient_id = i.recipient_id \
         WHERE i.process_id = $2 AND i.row_no BETWEEN $3 AND $4 \
           AND i.target_status IS NOT NULL \
           AND (i.previous_status IS NULL OR i.previous_status <> i.target_status)",
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

pub fn chunk_outcome(conn: &mut DbConnection, chunk: &Chunk) -> Result<Vec<OutcomeCount>> {
    Ok(chunk_query(
        conn,
        chunk,
        "SELECT created, email_key IS NOT NULL AS has_email, \
             mobile_key IS NOT NULL AS has_mobile, previous_status, target_status, \
             COUNT(*) AS rows \
         FROM import_rows \
         WHERE process_id = $2 AND row_no BETWEEN $3 AND $4 AND recipient_id IS NOT NULL \
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
         SELECT $1, $5, recipient_id, $6 FROM import_rows \
         WHERE process_id = $2 AND row_no BETWEEN $3 AND $4 AND target_status IS NOT NULL \
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
         WHERE account_id = $1 AND group_id = $5 AND recipient_id IN ( \
             SELECT recipient_id FROM import_rows \
             WHERE process_id = $2 AND row_no BETWEEN $3 AND $4 AND target_status IS NOT NULL)",
    )
    .bind::<BigInt, _>(group_id)
    .execute(conn)?)
}

/// Drops a finished process's staged rows.
pub fn clear_staging(conn: &mut DbConnection, process_id: i64) -> Result<()> {
    diesel::delete(import_row_fields::table.filter(import_row_fields::process_id.eq(process_id)))
        .execute(conn)?;
    diesel::delete(import_rows::table.filter(import_rows::process_id.eq(process_id)))
        .execute(conn)?;
    Ok(())
}
