//! The SQL that differs between PostgreSQL and SQLite: inserts that tolerate a
//! concurrent twin, upserts and row locks. Diesel's multi-backend DSL has no
//! ON CONFLICT, and SQLite has no FOR UPDATE (its writing transactions already
//! hold the database's write lock, taken by `BEGIN IMMEDIATE`).

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Integer, Nullable, Text, Timestamp};

use super::DbConnection;
use super::schema::{
    accounts, caller_ips, deliveries, delivery_events, group_members, lists, recipient_activity,
    recipient_field_values, recipients, subscription_history, subscriptions,
};
use super::stamp::SqliteStamp;
use crate::Result;
use crate::domain::events::NewDeliveryEvent;
use crate::domain::groups::NewGroupMember;
use crate::domain::history::NewEntry;
use crate::domain::recipients::{FieldValueRow, NewRecipient, RecipientFieldRow};
use crate::domain::sends::NewDelivery;
use crate::domain::subscriptions::NewSubscription;
use crate::domain::tracking::{ActivityIncrement, SendIncrement};

/// A delivery as tracking needs it: id, account, send, recipient, sent at.
pub type TrackingTarget = (i64, i64, i64, Option<i64>, Option<NaiveDateTime>);
use crate::sender::queue::Claimed;

/// Adds the group membership unless it exists.
pub fn insert_group_member_if_absent(
    conn: &mut DbConnection,
    row: &NewGroupMember,
) -> Result<bool> {
    let inserted = on_backend!(conn, |c| diesel::insert_into(group_members::table)
        .values(row)
        .on_conflict((group_members::group_id, group_members::recipient_id))
        .do_nothing()
        .execute(c))?;
    Ok(inserted == 1)
}

/// Registers a caller IP for a service unless it is registered. Returns whether
/// a row was inserted.
pub fn insert_caller_ip_if_absent(
    conn: &mut DbConnection,
    account_id: i64,
    service: &str,
    ip: &str,
    created_at: NaiveDateTime,
) -> Result<bool> {
    let inserted = on_backend!(conn, |c| diesel::insert_into(caller_ips::table)
        .values((
            caller_ips::account_id.eq(account_id),
            caller_ips::service.eq(service),
            caller_ips::ip.eq(ip),
            caller_ips::created_at.eq(created_at),
        ))
        .on_conflict((caller_ips::account_id, caller_ips::service, caller_ips::ip))
        .do_nothing()
        .execute(c))?;
    Ok(inserted == 1)
}

/// A SQLite statement of fixed text (`?` for each bind, in the order of the
/// fields) that diesel's statement cache keeps prepared, keyed by its type.
/// `sql_query` is never cached (diesel prepares it on every run), and a DSL
/// statement is looked up by SQL text that diesel builds anew on every run; on
/// the hot paths both cost more than the statement itself.
///
/// A statement that returns rows names their SQL types after the fields
/// (`-> (BigInt, Text)`); it is then loaded like any query (`get_result`) into
/// a tuple or a `Queryable` type whose fields follow the selected columns.
macro_rules! sqlite_statement {
    ($(#[$doc:meta])* $name:ident { $($field:ident: $rust:ty as $sql_type:ty),+ $(,)? } $(-> $row:ty)? = $sql:expr) => {
        $(#[$doc])*
        struct $name<'a> {
            $($field: &'a $rust),+
        }

        impl diesel::query_builder::QueryId for $name<'_> {
            type QueryId = $name<'static>;
            const HAS_STATIC_QUERY_ID: bool = true;
        }

        impl diesel::query_builder::QueryFragment<diesel::sqlite::Sqlite> for $name<'_> {
            fn walk_ast<'b>(
                &'b self,
                mut out: diesel::query_builder::AstPass<'_, 'b, diesel::sqlite::Sqlite>,
            ) -> QueryResult<()> {
                // Cut at its parameters once: diesel walks the statement on
                // every run to bind them, and cutting it each time was about
                // a thirtieth of a grouped subscribe's cost.
                static PIECES: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
                let mut pieces = PIECES.get_or_init(|| $sql.split('?').collect()).iter();
                out.push_sql(pieces.next().copied().unwrap_or_default());
                $(
                    out.push_bind_param::<$sql_type, $rust>(self.$field)?;
                    out.push_sql(pieces.next().copied().unwrap_or_default());
                )+
                Ok(())
            }
        }

        impl RunQueryDsl<diesel::SqliteConnection> for $name<'_> {}

        $(
            impl diesel::query_builder::Query for $name<'_> {
                type SqlType = $row;
            }
        )?
    };
}

// The statements of a subscribe (recipient, field values, subscription, list
// counters, history). On SQLite they have fixed text and stay prepared
// (decision 38); through diesel's DSL the upserts and updates among them would
// have their SQL built and looked up on every run.

sqlite_statement! {
    InsertRecipientSqlite {
        account_id: i64 as BigInt,
        email: Option<String> as Nullable<Text>,
        email_key: Option<String> as Nullable<Text>,
        mobile_prefix: Option<String> as Nullable<Text>,
        mobile_number: Option<String> as Nullable<Text>,
        mobile_key: Option<String> as Nullable<Text>,
        created_at: SqliteStamp as Timestamp,
        updated_at: SqliteStamp as Timestamp,
    } = "INSERT INTO recipients (account_id, email, email_key, mobile_prefix, \
         mobile_number, mobile_key, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT DO NOTHING"
}

/// `SELECT last_insert_rowid()`: the id of the row the connection inserted
/// last. SQLite answers `RETURNING` through a temporary table that it creates
/// and drops on every run, which cost more than the insert it followed.
struct LastInsertRowidSqlite;

impl diesel::query_builder::QueryId for LastInsertRowidSqlite {
    type QueryId = LastInsertRowidSqlite;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl diesel::query_builder::QueryFragment<diesel::sqlite::Sqlite> for LastInsertRowidSqlite {
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::sqlite::Sqlite>,
    ) -> QueryResult<()> {
        out.push_sql("SELECT last_insert_rowid()");
        Ok(())
    }
}

impl diesel::query_builder::Query for LastInsertRowidSqlite {
    type SqlType = BigInt;
}

impl RunQueryDsl<diesel::SqliteConnection> for LastInsertRowidSqlite {}

/// The id of a row a statement that changed `changed` rows inserted.
fn inserted_id(c: &mut diesel::SqliteConnection, changed: usize) -> Result<Option<i64>> {
    Ok(match changed {
        0 => None,
        _ => Some(LastInsertRowidSqlite.get_result(c)?),
    })
}

/// Inserts the recipient unless one with the same e-mail or mobile key exists
/// in the account; returns its id if it was inserted.
pub fn insert_recipient_if_absent(
    conn: &mut DbConnection,
    row: &NewRecipient,
) -> Result<Option<i64>> {
    Ok(match conn {
        DbConnection::Postgresql(c) => diesel::insert_into(recipients::table)
            .values(row)
            .on_conflict_do_nothing()
            .returning(recipients::id)
            .get_result(c)
            .optional()?,
        DbConnection::Sqlite(c) => {
            let changed = InsertRecipientSqlite {
                account_id: &row.account_id,
                email: &row.email,
                email_key: &row.email_key,
                mobile_prefix: &row.mobile_prefix,
                mobile_number: &row.mobile_number,
                mobile_key: &row.mobile_key,
                created_at: &SqliteStamp::new(row.created_at),
                updated_at: &SqliteStamp::new(row.updated_at),
            }
            .execute(c)?;
            inserted_id(c, changed)?
        }
    })
}

sqlite_statement! {
    TouchRecipientSqlite {
        updated_at: SqliteStamp as Timestamp,
        id: i64 as BigInt,
    } = "UPDATE recipients SET updated_at = ? WHERE id = ?"
}

/// Sets a recipient's `updated_at`.
pub fn touch_recipient(conn: &mut DbConnection, id: i64, at: NaiveDateTime) -> Result<()> {
    match conn {
        DbConnection::Postgresql(c) => {
            diesel::update(recipients::table.find(id))
                .set(recipients::updated_at.eq(at))
                .execute(c)?;
        }
        DbConnection::Sqlite(c) => {
            TouchRecipientSqlite {
                updated_at: &SqliteStamp::new(at),
                id: &id,
            }
            .execute(c)?;
        }
    }
    Ok(())
}

sqlite_statement! {
    UpsertFieldValueSqlite {
        account_id: i64 as BigInt,
        recipient_id: i64 as BigInt,
        field_number: i32 as Integer,
        value: String as Text,
    } = "INSERT INTO recipient_field_values (account_id, recipient_id, field_number, value) \
         VALUES (?, ?, ?, ?) ON CONFLICT (recipient_id, field_number) \
         DO UPDATE SET value = excluded.value"
}

/// Sets one field value of a recipient, inserting or replacing it.
pub fn upsert_field_value(conn: &mut DbConnection, row: &FieldValueRow) -> Result<()> {
    match conn {
        DbConnection::Postgresql(c) => {
            diesel::insert_into(recipient_field_values::table)
                .values(row)
                .on_conflict((
                    recipient_field_values::recipient_id,
                    recipient_field_values::field_number,
                ))
                .do_update()
                .set(recipient_field_values::value.eq(&row.value))
                .execute(c)?;
        }
        DbConnection::Sqlite(c) => {
            UpsertFieldValueSqlite {
                account_id: &row.account_id,
                recipient_id: &row.recipient_id,
                field_number: &row.field_number,
                value: &row.value,
            }
            .execute(c)?;
        }
    }
    Ok(())
}

sqlite_statement! {
    InsertSubscriptionSqlite {
        account_id: i64 as BigInt,
        list_id: i64 as BigInt,
        recipient_id: i64 as BigInt,
        status: str as Text,
        source: String as Text,
        confirmation_token_hash: Option<String> as Nullable<Text>,
        created_at: SqliteStamp as Timestamp,
        status_changed_at: SqliteStamp as Timestamp,
        confirmed_at: Option<SqliteStamp> as Nullable<Timestamp>,
    } = "INSERT INTO subscriptions (account_id, list_id, recipient_id, status, source, \
         confirmation_token_hash, created_at, status_changed_at, confirmed_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (list_id, recipient_id) DO NOTHING"
}

/// Inserts the subscription unless the recipient already has one on that
/// list; returns its id if it was inserted.
pub fn insert_subscription_if_absent(
    conn: &mut DbConnection,
    row: &NewSubscription,
) -> Result<Option<i64>> {
    Ok(match conn {
        DbConnection::Postgresql(c) => diesel::insert_into(subscriptions::table)
            .values(row)
            .on_conflict((subscriptions::list_id, subscriptions::recipient_id))
            .do_nothing()
            .returning(subscriptions::id)
            .get_result(c)
            .optional()?,
        DbConnection::Sqlite(c) => {
            let changed = InsertSubscriptionSqlite {
                account_id: &row.account_id,
                list_id: &row.list_id,
                recipient_id: &row.recipient_id,
                status: row.status,
                source: &row.source,
                confirmation_token_hash: &row.confirmation_token_hash,
                created_at: &SqliteStamp::new(row.created_at),
                status_changed_at: &SqliteStamp::new(row.status_changed_at),
                confirmed_at: &row.confirmed_at.map(SqliteStamp::new),
            }
            .execute(c)?;
            inserted_id(c, changed)?
        }
    })
}

sqlite_statement! {
    AdjustListCountsSqlite {
        subscribed: i64 as BigInt,
        pending: i64 as BigInt,
        unsubscribed: i64 as BigInt,
        list_id: i64 as BigInt,
    } = "UPDATE lists SET subscribed_count = subscribed_count + ?, \
         pending_count = pending_count + ?, unsubscribed_count = unsubscribed_count + ? \
         WHERE id = ?"
}

/// Adds to a list's per-status member counts: (subscribed, pending,
/// unsubscribed).
pub fn adjust_list_counts(
    conn: &mut DbConnection,
    list_id: i64,
    (subscribed, pending, unsubscribed): (i64, i64, i64),
) -> Result<()> {
    match conn {
        DbConnection::Postgresql(c) => {
            diesel::update(lists::table.find(list_id))
                .set((
                    lists::subscribed_count.eq(lists::subscribed_count + subscribed),
                    lists::pending_count.eq(lists::pending_count + pending),
                    lists::unsubscribed_count.eq(lists::unsubscribed_count + unsubscribed),
                ))
                .execute(c)?;
        }
        DbConnection::Sqlite(c) => {
            AdjustListCountsSqlite {
                subscribed: &subscribed,
                pending: &pending,
                unsubscribed: &unsubscribed,
                list_id: &list_id,
            }
            .execute(c)?;
        }
    }
    Ok(())
}

sqlite_statement! {
    InsertHistorySqlite {
        account_id: i64 as BigInt,
        subscription_id: i64 as BigInt,
        list_id: i64 as BigInt,
        recipient_id: i64 as BigInt,
        from_status: Option<&'static str> as Nullable<Text>,
        to_status: str as Text,
        reason: Option<i32> as Nullable<Integer>,
        actor: str as Text,
        channel: str as Text,
        note: str as Text,
        created_at: SqliteStamp as Timestamp,
    } = "INSERT INTO subscription_history (account_id, subscription_id, list_id, recipient_id, \
         from_status, to_status, reason, actor, channel, note, created_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
}

/// Appends a row to the subscription history.
pub fn insert_history(conn: &mut DbConnection, row: &NewEntry) -> Result<()> {
    match conn {
        DbConnection::Postgresql(c) => {
            diesel::insert_into(subscription_history::table)
                .values((
                    subscription_history::account_id.eq(row.account_id),
                    subscription_history::subscription_id.eq(row.subscription_id),
                    subscription_history::list_id.eq(row.list_id),
                    subscription_history::recipient_id.eq(row.recipient_id),
                    subscription_history::from_status.eq(row.from_status),
                    subscription_history::to_status.eq(row.to_status),
                    subscription_history::reason.eq(row.reason),
                    subscription_history::actor.eq(row.actor),
                    subscription_history::channel.eq(row.channel),
                    subscription_history::note.eq(row.note),
                    subscription_history::created_at.eq(row.created_at),
                ))
                .execute(c)?;
        }
        DbConnection::Sqlite(c) => {
            InsertHistorySqlite {
                account_id: &row.account_id,
                subscription_id: &row.subscription_id,
                list_id: &row.list_id,
                recipient_id: &row.recipient_id,
                from_status: &row.from_status,
                to_status: row.to_status,
                reason: &row.reason,
                actor: row.actor,
                channel: row.channel,
                note: row.note,
                created_at: &SqliteStamp::new(row.created_at),
            }
            .execute(c)?;
        }
    }
    Ok(())
}

// Batches of rows. On PostgreSQL every statement is a round trip, so a batch
// goes in few statements of many rows. On SQLite a statement of a new shape
// (a different number of rows or ids) must be parsed and planned again, so the
// tracking recorder's writes use statements of two fixed shapes, a full chunk
// of rows and a single row, each bound value by value and kept prepared
// (decisions 52 and 67). Lists of ids are passed as one JSON array to
// `json_each`, which keeps such statements at one shape too.

/// Rows per multi-row SQLite statement: enough that a statement's overhead is
/// spread thin, and at a dozen columns far below SQLite's limit of 32,766
/// parameters.
const ROWS_PER_STATEMENT: usize = 64;

/// A row of a statement that takes many rows as `VALUES` binds (decision 67).
trait SqliteRow {
    /// Stands for the row type in the statement's query id: the statement's
    /// text depends on the row type and the row count alone, so each stays
    /// prepared.
    type Id: 'static;
    /// The statement's text before its rows and after them.
    const HEAD: &'static str;
    const TAIL: &'static str;
    /// Binds the row's values, separated by commas.
    fn push_values<'b>(
        &'b self,
        out: &mut diesel::query_builder::AstPass<'_, 'b, diesel::sqlite::Sqlite>,
    ) -> QueryResult<()>;
}

/// `HEAD (row), (row), … TAIL` with `N` rows bound.
struct RowsSqlite<'a, R, const N: usize> {
    rows: &'a [R; N],
}

impl<R: SqliteRow, const N: usize> diesel::query_builder::QueryId for RowsSqlite<'_, R, N> {
    type QueryId = (R::Id, [(); N]);
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<R: SqliteRow, const N: usize> diesel::query_builder::QueryFragment<diesel::sqlite::Sqlite>
    for RowsSqlite<'_, R, N>
{
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::sqlite::Sqlite>,
    ) -> QueryResult<()> {
        out.push_sql(R::HEAD);
        for (i, row) in self.rows.iter().enumerate() {
            out.push_sql(if i == 0 { "(" } else { ", (" });
            row.push_values(&mut out)?;
            out.push_sql(")");
        }
        out.push_sql(R::TAIL);
        Ok(())
    }
}

impl<R: SqliteRow, const N: usize> RunQueryDsl<diesel::SqliteConnection> for RowsSqlite<'_, R, N> {}

/// Runs `R`'s statement over `rows`, in their order: statements of
/// [`ROWS_PER_STATEMENT`] rows and one-row statements for the rest.
fn execute_rows_sqlite<R: SqliteRow>(c: &mut diesel::SqliteConnection, rows: &[R]) -> Result<()> {
    let (chunks, rest) = rows.as_chunks::<ROWS_PER_STATEMENT>();
    for rows in chunks {
        RowsSqlite { rows }.execute(c)?;
    }
    for row in rest {
        RowsSqlite {
            rows: std::array::from_ref(row),
        }
        .execute(c)?;
    }
    Ok(())
}

/// Binds `value` and, unless it is the row's first, the comma before it.
fn push_value<'b, ST, U>(
    out: &mut diesel::query_builder::AstPass<'_, 'b, diesel::sqlite::Sqlite>,
    first: bool,
    value: &'b U,
) -> QueryResult<()>
where
    diesel::sqlite::Sqlite: diesel::sql_types::HasSqlType<ST>,
    U: diesel::serialize::ToSql<ST, diesel::sqlite::Sqlite> + ?Sized,
{
    if !first {
        out.push_sql(", ");
    }
    out.push_bind_param::<ST, U>(value)
}

/// An event with its time formatted for SQLite.
struct EventRow<'a> {
    event: &'a NewDeliveryEvent,
    created_at: SqliteStamp,
}

impl SqliteRow for EventRow<'_> {
    type Id = EventRow<'static>;
    const HEAD: &'static str = "INSERT INTO delivery_events (account_id, send_id, delivery_id, \
         recipient_id, kind, detail, created_at, ip, user_agent, url, machine) VALUES ";
    const TAIL: &'static str = "";
    fn push_values<'b>(
        &'b self,
        out: &mut diesel::query_builder::AstPass<'_, 'b, diesel::sqlite::Sqlite>,
    ) -> QueryResult<()> {
        let event = self.event;
        push_value::<BigInt, _>(out, true, &event.account_id)?;
        push_value::<BigInt, _>(out, false, &event.send_id)?;
        push_value::<BigInt, _>(out, false, &event.delivery_id)?;
        push_value::<Nullable<BigInt>, _>(out, false, &event.recipient_id)?;
        push_value::<Text, str>(out, false, event.kind)?;
        push_value::<Text, _>(out, false, &event.detail)?;
        push_value::<Timestamp, _>(out, false, &self.created_at)?;
        push_value::<Nullable<Text>, _>(out, false, &event.ip)?;
        push_value::<Nullable<Text>, _>(out, false, &event.user_agent)?;
        push_value::<Nullable<Text>, _>(out, false, &event.url)?;
        push_value::<diesel::sql_types::Bool, _>(out, false, &event.machine)
    }
}

/// Stores delivery events, in the order given (ids follow it).
pub fn insert_delivery_events(conn: &mut DbConnection, rows: &[NewDeliveryEvent]) -> Result<()> {
    match conn {
        DbConnection::Postgresql(c) => {
            for chunk in rows.chunks(500) {
                diesel::insert_into(delivery_events::table)
                    .values(chunk)
                    .execute(c)?;
            }
        }
        DbConnection::Sqlite(c) => {
            let rows: Vec<EventRow> = rows
                .iter()
                .map(|event| EventRow {
                    event,
                    created_at: SqliteStamp::new(event.created_at),
                })
                .collect();
            execute_rows_sqlite(c, &rows)?;
        }
    }
    Ok(())
}

/// A JSON array of ids, the parameter of SQLite's statements over a batch's
/// deliveries.
fn json_ids(ids: &[i64]) -> String {
    let ids: Vec<String> = ids.iter().map(i64::to_string).collect();
    format!("[{}]", ids.join(","))
}

sqlite_statement! {
    TrackingTargetsSqlite {
        ids: str as Text,
    } -> (BigInt, BigInt, BigInt, Nullable<BigInt>, Nullable<Timestamp>)
      = "SELECT d.id, d.account_id, d.send_id, d.recipient_id, d.sent_at \
         FROM json_each(?) j CROSS JOIN deliveries d ON d.id = j.value"
}

/// (id, account, send, recipient, sent at) of those deliveries that exist. On
/// SQLite one statement driven by a JSON array of the ids: a statement per id
/// was prepared again on every run (SQLite re-plans a statement on `deliveries`,
/// which has partial indexes, whenever a bound value changes).
pub fn tracking_targets(conn: &mut DbConnection, ids: &[i64]) -> Result<Vec<TrackingTarget>> {
    match conn {
        DbConnection::Postgresql(c) => {
            let columns = (
                deliveries::id,
                deliveries::account_id,
                deliveries::send_id,
                deliveries::recipient_id,
                deliveries::sent_at,
            );
            let mut found = Vec::with_capacity(ids.len());
            for chunk in ids.chunks(500) {
                found.extend(
                    deliveries::table
                        .filter(deliveries::id.eq_any(chunk))
                        .select(columns)
                        .load::<TrackingTarget>(c)?,
                );
            }
            Ok(found)
        }
        DbConnection::Sqlite(c) => Ok(TrackingTargetsSqlite {
            ids: &json_ids(ids),
        }
        .load(c)?),
    }
}

sqlite_statement! {
    MarkFirstOpenedSqlite {
        at: SqliteStamp as Timestamp,
        ids: str as Text,
    } -> BigInt = "UPDATE deliveries SET first_opened_at = ? \
         WHERE id IN (SELECT value FROM json_each(?)) AND first_opened_at IS NULL \
         RETURNING id"
}

sqlite_statement! {
    MarkFirstClickedSqlite {
        at: SqliteStamp as Timestamp,
        ids: str as Text,
    } -> BigInt = "UPDATE deliveries SET first_clicked_at = ? \
         WHERE id IN (SELECT value FROM json_each(?)) AND first_clicked_at IS NULL \
         RETURNING id"
}

/// Sets a delivery timestamp column where it is not set yet and returns the
/// deliveries for which this was the first time. On SQLite one statement of
/// fixed text per batch (see [`tracking_targets`]).
macro_rules! mark_first {
    ($conn:expr, $column:expr, $sqlite:ident, $ids:expr, $at:expr) => {{
        let mut first = Vec::new();
        match $conn {
            DbConnection::Postgresql(c) => {
                for chunk in $ids.chunks(500) {
                    let marked: Vec<i64> = diesel::update(
                        deliveries::table
                            .filter(deliveries::id.eq_any(chunk))
                            .filter($column.is_null()),
                    )
                    .set($column.eq($at))
                    .returning(deliveries::id)
                    .get_results(c)?;
                    first.extend(marked);
                }
            }
            DbConnection::Sqlite(c) => {
                if !$ids.is_empty() {
                    first = $sqlite {
                        at: &SqliteStamp::new($at),
                        ids: &json_ids($ids),
                    }
                    .load(c)?;
                }
            }
        }
        Ok(first)
    }};
}

/// The deliveries among `ids` opened for the first time now.
pub fn mark_first_opened(
    conn: &mut DbConnection,
    ids: &[i64],
    at: NaiveDateTime,
) -> Result<Vec<i64>> {
    mark_first!(
        conn,
        deliveries::first_opened_at,
        MarkFirstOpenedSqlite,
        ids,
        at
    )
}

/// The deliveries among `ids` clicked for the first time now.
pub fn mark_first_clicked(
    conn: &mut DbConnection,
    ids: &[i64],
    at: NaiveDateTime,
) -> Result<Vec<i64>> {
    mark_first!(
        conn,
        deliveries::first_clicked_at,
        MarkFirstClickedSqlite,
        ids,
        at
    )
}

/// A send's increments, for one row of `UPDATE sends … FROM (VALUES …)`.
impl SqliteRow for (i64, SendIncrement) {
    type Id = Self;
    const HEAD: &'static str = "UPDATE sends SET opens = opens + v.column2, \
         unique_opens = unique_opens + v.column3, clicks = clicks + v.column4, \
         unique_clicks = unique_clicks + v.column5, \
         machine_opens = machine_opens + v.column6, \
         machine_clicks = machine_clicks + v.column7 FROM (VALUES ";
    const TAIL: &'static str = ") AS v WHERE sends.id = v.column1";
    fn push_values<'b>(
        &'b self,
        out: &mut diesel::query_builder::AstPass<'_, 'b, diesel::sqlite::Sqlite>,
    ) -> QueryResult<()> {
        let (send_id, add) = self;
        push_value::<BigInt, _>(out, true, send_id)?;
        push_value::<BigInt, _>(out, false, &add.opens)?;
        push_value::<BigInt, _>(out, false, &add.unique_opens)?;
        push_value::<BigInt, _>(out, false, &add.clicks)?;
        push_value::<BigInt, _>(out, false, &add.unique_clicks)?;
        push_value::<BigInt, _>(out, false, &add.machine_opens)?;
        push_value::<BigInt, _>(out, false, &add.machine_clicks)
    }
}

/// Adds a batch's opens and clicks to its sends' counters (one entry per send).
pub fn add_send_activity(conn: &mut DbConnection, adds: &[(i64, SendIncrement)]) -> Result<()> {
    if adds.is_empty() {
        return Ok(());
    }
    match conn {
        // One statement per batch: a statement per send was a round trip
        // each, most of the applier's time when hits spread over many sends.
        DbConnection::Postgresql(c) => {
            let column = |value: fn(&SendIncrement) -> i64| -> Vec<i64> {
                adds.iter().map(|(_, add)| value(add)).collect()
            };
            let ids: Vec<i64> = adds.iter().map(|(send_id, _)| *send_id).collect();
            diesel::sql_query(
                "UPDATE sends SET opens = sends.opens + v.opens, \
                 unique_opens = sends.unique_opens + v.unique_opens, \
                 clicks = sends.clicks + v.clicks, \
                 unique_clicks = sends.unique_clicks + v.unique_clicks, \
                 machine_opens = sends.machine_opens + v.machine_opens, \
                 machine_clicks = sends.machine_clicks + v.machine_clicks \
                 FROM unnest($1, $2, $3, $4, $5, $6, $7) \
                 AS v(id, opens, unique_opens, clicks, unique_clicks, machine_opens, machine_clicks) \
                 WHERE sends.id = v.id",
            )
            .bind::<Array<BigInt>, _>(&ids)
            .bind::<Array<BigInt>, _>(column(|add| add.opens))
            .bind::<Array<BigInt>, _>(column(|add| add.unique_opens))
            .bind::<Array<BigInt>, _>(column(|add| add.clicks))
            .bind::<Array<BigInt>, _>(column(|add| add.unique_clicks))
            .bind::<Array<BigInt>, _>(column(|add| add.machine_opens))
            .bind::<Array<BigInt>, _>(column(|add| add.machine_clicks))
            .execute(c)?;
        }
        DbConnection::Sqlite(c) => execute_rows_sqlite(c, adds)?,
    }
    Ok(())
}

diesel::define_sql_function! {
    /// SQL's COALESCE of two timestamps (a typed function keeps the statement
    /// cacheable, which a raw SQL fragment does not).
    fn coalesce(
        first: diesel::sql_types::Nullable<Timestamp>,
        second: diesel::sql_types::Nullable<Timestamp>,
    ) -> diesel::sql_types::Nullable<Timestamp>;
}

/// A recipient's increments with their times formatted for SQLite.
struct RecipientActivityRow<'a> {
    add: &'a ActivityIncrement,
    last_opened_at: Option<SqliteStamp>,
    last_clicked_at: Option<SqliteStamp>,
}

impl SqliteRow for RecipientActivityRow<'_> {
    type Id = RecipientActivityRow<'static>;
    const HEAD: &'static str = "INSERT INTO recipient_activity (recipient_id, account_id, \
         opens, clicks, last_opened_at, last_clicked_at) VALUES ";
    const TAIL: &'static str = " ON CONFLICT (recipient_id) DO UPDATE SET \
         opens = opens + excluded.opens, clicks = clicks + excluded.clicks, \
         last_opened_at = coalesce(excluded.last_opened_at, last_opened_at), \
         last_clicked_at = coalesce(excluded.last_clicked_at, last_clicked_at)";
    fn push_values<'b>(
        &'b self,
        out: &mut diesel::query_builder::AstPass<'_, 'b, diesel::sqlite::Sqlite>,
    ) -> QueryResult<()> {
        push_value::<BigInt, _>(out, true, &self.add.recipient_id)?;
        push_value::<BigInt, _>(out, false, &self.add.account_id)?;
        push_value::<BigInt, _>(out, false, &self.add.opens)?;
        push_value::<BigInt, _>(out, false, &self.add.clicks)?;
        push_value::<Nullable<Timestamp>, _>(out, false, &self.last_opened_at)?;
        push_value::<Nullable<Timestamp>, _>(out, false, &self.last_clicked_at)
    }
}

/// Adds opens and clicks to recipients' activity rows, creating missing rows,
/// by upserts of many rows per statement: on PostgreSQL 500 (each statement
/// is a round trip), on SQLite statements of two fixed shapes (see
/// `execute_rows_sqlite`).
pub fn add_recipient_activity(conn: &mut DbConnection, rows: &[ActivityIncrement]) -> Result<()> {
    use recipient_activity::dsl as ra;
    match conn {
        DbConnection::Postgresql(c) => {
            use diesel::upsert::excluded;
            for chunk in rows.chunks(500) {
                diesel::insert_into(recipient_activity::table)
                    .values(chunk)
                    .on_conflict(ra::recipient_id)
                    .do_update()
                    .set((
                        ra::opens.eq(ra::opens + excluded(ra::opens)),
                        ra::clicks.eq(ra::clicks + excluded(ra::clicks)),
                        ra::last_opened_at
                            .eq(coalesce(excluded(ra::last_opened_at), ra::last_opened_at)),
                        ra::last_clicked_at
                            .eq(coalesce(excluded(ra::last_clicked_at), ra::last_clicked_at)),
                    ))
                    .execute(c)?;
            }
        }
        DbConnection::Sqlite(c) => {
            let rows: Vec<RecipientActivityRow> = rows
                .iter()
                .map(|add| RecipientActivityRow {
                    add,
                    last_opened_at: add.last_opened_at.map(SqliteStamp::new),
                    last_clicked_at: add.last_clicked_at.map(SqliteStamp::new),
                })
                .collect();
            execute_rows_sqlite(c, &rows)?;
        }
    }
    Ok(())
}

/// Inserts many deliveries in one statement (the multi-backend DSL has no
/// multi-row insert).
pub fn insert_deliveries(conn: &mut DbConnection, rows: &[NewDelivery]) -> Result<()> {
    // Chunks stay under SQLite's limit of bound parameters per statement.
    for chunk in rows.chunks(1000) {
        on_backend!(conn, |c| diesel::insert_into(deliveries::table)
            .values(chunk)
            .execute(c))?;
    }
    Ok(())
}

/// Locks the account row until the transaction ends (PostgreSQL), serialising
/// the allocation of per-account numbers. `FOR NO KEY UPDATE`, not `FOR
/// UPDATE`: the latter also waits for every transaction that has inserted a
/// row referring to the account (its foreign-key check holds a key-share lock
/// on the account), and a subscribe that held a list's row while waiting here
/// deadlocked with one that had inserted a recipient and waited for that list.
pub fn lock_account(conn: &mut DbConnection, account_id: i64) -> Result<()> {
    if let DbConnection::Postgresql(c) = conn {
        accounts::table
            .find(account_id)
            .select(accounts::id)
            .for_no_key_update()
            .first::<i64>(c)?;
    }
    Ok(())
}

/// Locks one subscription row until the transaction ends (PostgreSQL), so two
/// concurrent status changes of the same subscription apply one after the other.
pub fn lock_subscription(conn: &mut DbConnection, subscription_id: i64) -> Result<()> {
    if let DbConnection::Postgresql(c) = conn {
        subscriptions::table
            .find(subscription_id)
            .select(subscriptions::id)
            .for_update()
            .first::<i64>(c)?;
    }
    Ok(())
}

/// Reserves up to `limit` due deliveries of a lane whose send is sending (and
/// not queued behind another of its account's sends that is sending, see
/// `domain::send_queue`): marks
/// them `sending`, leased to `owner` until `lease_until`, and returns them with
/// the state they had. Must run in a writing transaction. PostgreSQL skips rows
/// other workers hold (`FOR UPDATE SKIP LOCKED`); on SQLite the transaction's
/// write lock (`BEGIN IMMEDIATE`) already keeps claims apart.
pub fn claim_deliveries(
    conn: &mut DbConnection,
    lane: i32,
    owner: &str,
    limit: i64,
    now: NaiveDateTime,
    lease_until: NaiveDateTime,
) -> Result<Vec<Claimed>> {
    match conn {
        DbConnection::Postgresql(c) => Ok(diesel::sql_query(
            "WITH picked AS ( \
                 SELECT d.id, d.state FROM deliveries d JOIN sends s ON s.id = d.send_id \
                 WHERE d.state IN ('queued', 'deferred', 'unknown') AND d.lane = $1 \
                   AND d.next_attempt_at <= $2 AND s.status = 'sending' AND NOT EXISTS ( \
                     SELECT 1 FROM send_queue_positions mine \
                     JOIN send_queue_positions ahead ON ahead.account_id = mine.account_id \
                         AND ahead.position < mine.position \
                     JOIN sends a ON a.id = ahead.send_id AND a.status = 'sending' \
                     WHERE mine.send_id = d.send_id) \
                 ORDER BY d.next_attempt_at, d.id LIMIT $3 \
                 FOR UPDATE OF d SKIP LOCKED) \
             UPDATE deliveries d SET state = 'sending', lease_owner = $4, lease_until = $5, \
                 attempts = d.attempts + 1 \
             FROM picked WHERE d.id = picked.id \
             RETURNING d.id, d.account_id, d.send_id, d.recipient_id, d.channel, d.address, \
                 d.message_id, d.params, d.attempts, picked.state AS previous_state",
        )
        .bind::<Integer, _>(lane)
        .bind::<Timestamp, _>(now)
        .bind::<BigInt, _>(limit)
        .bind::<Text, _>(owner)
        .bind::<Timestamp, _>(lease_until)
        .load(c)?),
        DbConnection::Sqlite(c) => {
            // Read first (the write lock is held: nothing changes under us), then
            // mark the rows claimed. The states are literals, not parameters, so
            // SQLite can use the partial index `deliveries_claim`.
            let picked: Vec<Claimed> = diesel::sql_query(
                "SELECT d.id, d.account_id, d.send_id, d.recipient_id, d.channel, d.address, \
                     d.message_id, d.params, d.attempts + 1 AS attempts, d.state AS previous_state \
                 FROM deliveries d JOIN sends s ON s.id = d.send_id \
                 WHERE d.state IN ('queued', 'deferred', 'unknown') AND d.lane = ? \
                   AND d.next_attempt_at <= ? AND s.status = 'sending' AND NOT EXISTS ( \
                     SELECT 1 FROM send_queue_positions mine \
                     JOIN send_queue_positions ahead ON ahead.account_id = mine.account_id \
                         AND ahead.position < mine.position \
                     JOIN sends a ON a.id = ahead.send_id AND a.status = 'sending' \
                     WHERE mine.send_id = d.send_id) \
                 ORDER BY d.next_attempt_at, d.id LIMIT ?",
            )
            .bind::<Integer, _>(lane)
            .bind::<Timestamp, _>(now)
            .bind::<BigInt, _>(limit)
            .load(c)?;
            if !picked.is_empty() {
                let ids: Vec<i64> = picked.iter().map(|row| row.id).collect();
                diesel::update(deliveries::table.filter(deliveries::id.eq_any(&ids)))
                    .set((
                        deliveries::state.eq("sending"),
                        deliveries::lease_owner.eq(owner),
                        deliveries::lease_until.eq(lease_until),
                        deliveries::attempts.eq(deliveries::attempts + 1),
                    ))
                    .execute(c)?;
            }
            Ok(picked)
        }
    }
}

/// The account's recipients among `ids`, one row per field value (one with no
/// field when the recipient has none). One statement of fixed shape whatever the
/// number of ids: SQLite reads the ids from a JSON array, PostgreSQL from an
/// array parameter. On SQLite the ids drive the join (`CROSS JOIN` keeps
/// `json_each` outermost): with an `IN` list of 50 or more ids, SQLite's planner
/// preferred walking the account's whole recipient index.
pub fn recipients_with_fields(
    conn: &mut DbConnection,
    account_id: i64,
    ids: &[i64],
) -> Result<Vec<RecipientFieldRow>> {
    match conn {
        DbConnection::Postgresql(c) => Ok(diesel::sql_query(
            "SELECT r.id, r.email, r.mobile_key, v.field_number, v.value \
             FROM recipients r \
             LEFT JOIN recipient_field_values v ON v.recipient_id = r.id \
             WHERE r.id = ANY($1) AND r.account_id = $2",
        )
        .bind::<Array<BigInt>, _>(ids)
        .bind::<BigInt, _>(account_id)
        .load(c)?),
        DbConnection::Sqlite(c) => {
            let ids = json_ids(ids);
            Ok(diesel::sql_query(
                "SELECT r.id, r.email, r.mobile_key, v.field_number, v.value \
                 FROM json_each(?) j CROSS JOIN recipients r ON r.id = j.value \
                 LEFT JOIN recipient_field_values v ON v.recipient_id = r.id \
                 WHERE r.account_id = ?",
            )
            .bind::<Text, _>(ids)
            .bind::<BigInt, _>(account_id)
            .load(c)?)
        }
    }
}

/// Deliveries whose lease ran out become `unknown` and due now. Returns how many.
/// (A literal state, so the partial index `deliveries_lease` serves it.) On
/// PostgreSQL rows locked by a transaction recording their outcome are skipped
/// (the next pass sees them if that transaction fails): a reap that waited
/// for those locks, taken in another order, deadlocked with the recorder.
pub fn expire_leases(conn: &mut DbConnection, now: NaiveDateTime) -> Result<usize> {
    let sql = match conn {
        DbConnection::Postgresql(_) => {
            "UPDATE deliveries SET state = 'unknown', lease_owner = NULL, lease_until = NULL, \
             next_attempt_at = $1 WHERE id IN ( \
                 SELECT id FROM deliveries WHERE state = 'sending' AND lease_until < $1 \
                 FOR UPDATE SKIP LOCKED)"
        }
        DbConnection::Sqlite(_) => {
            "UPDATE deliveries SET state = 'unknown', lease_owner = NULL, lease_until = NULL, \
             next_attempt_at = ?1 WHERE state = 'sending' AND lease_until < ?1"
        }
    };
    Ok(diesel::sql_query(sql)
        .bind::<Timestamp, _>(now)
        .execute(conn)?)
}

/// Moves the lease of `owner`'s deliveries among `ids` that it still holds to
/// `until`; returns the ids renewed. On PostgreSQL rows locked by the outcome
/// recorder are skipped rather than waited for: they are being settled, and
/// waiting could deadlock with it.
pub fn renew_leases(
    conn: &mut DbConnection,
    owner: &str,
    ids: &[i64],
    until: NaiveDateTime,
) -> Result<Vec<i64>> {
    match conn {
        DbConnection::Postgresql(c) => {
            #[derive(QueryableByName)]
            struct Renewed {
                #[diesel(sql_type = BigInt)]
                id: i64,
            }
            let renewed: Vec<Renewed> = diesel::sql_query(
                "UPDATE deliveries SET lease_until = $1 WHERE id IN ( \
                     SELECT id FROM deliveries WHERE id = ANY($2) AND state = 'sending' \
                         AND lease_owner = $3 \
                     FOR UPDATE SKIP LOCKED) \
                 RETURNING id",
            )
            .bind::<Timestamp, _>(until)
            .bind::<Array<BigInt>, _>(ids)
            .bind::<Text, _>(owner)
            .load(c)?;
            Ok(renewed.into_iter().map(|r| r.id).collect())
        }
        DbConnection::Sqlite(c) => Ok(diesel::update(
            deliveries::table
                .filter(deliveries::id.eq_any(ids))
                .filter(deliveries::state.eq("sending"))
                .filter(deliveries::lease_owner.eq(owner)),
        )
        .set(deliveries::lease_until.eq(until))
        .returning(deliveries::id)
        .get_results(c)?),
    }
}

/// Creates a token bucket row (full) unless it exists, then locks it until the
/// transaction ends (PostgreSQL).
pub fn lock_throttle(
    conn: &mut DbConnection,
    bucket: &str,
    full: f64,
    now: NaiveDateTime,
) -> Result<()> {
    use super::schema::throttles;
    on_backend!(conn, |c| diesel::insert_into(throttles::table)
        .values((
            throttles::bucket.eq(bucket),
            throttles::tokens.eq(full),
            throttles::updated_at.eq(now)
        ))
        .on_conflict_do_nothing()
        .execute(c))?;
    if let DbConnection::Postgresql(c) = conn {
        throttles::table
            .find(bucket)
            .select(throttles::bucket)
            .for_update()
            .first::<String>(c)?;
    }
    Ok(())
}
