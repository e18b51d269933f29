//! Both backends' migrations produce the same tables and columns.

mod common;

use std::collections::BTreeMap;

use common::TestDb;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Text};
use espbridge::db::DbConnection;

#[derive(QueryableByName, Debug)]
struct Column {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    column_name: String,
    #[diesel(sql_type = Bool)]
    nullable: bool,
}

/// table → [(column, nullable)], sorted, without diesel's bookkeeping table.
fn columns(db: &TestDb) -> BTreeMap<String, Vec<(String, bool)>> {
    let mut conn = db.db.conn().unwrap();
    let sql = match &*conn {
        DbConnection::Sqlite(_) => {
            "SELECT m.name AS table_name, p.name AS column_name, \
                    (p.\"notnull\" = 0 AND p.pk = 0) AS nullable \
             FROM sqlite_master m JOIN pragma_table_info(m.name) p \
             WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'"
        }
        DbConnection::Postgresql(_) => {
            "SELECT table_name::text AS table_name, column_name::text AS column_name, \
                    (is_nullable = 'YES') AS nullable \
             FROM information_schema.columns WHERE table_schema = current_schema()"
        }
    };
    let rows: Vec<Column> = diesel::sql_query(sql).load(&mut *conn).unwrap();
    let mut tables: BTreeMap<String, Vec<(String, bool)>> = BTreeMap::new();
    for row in rows {
        if row.table_name == "__diesel_schema_migrations" {
            continue;
        }
        tables
            .entry(row.table_name)
            .or_default()
            .push((row.column_name, row.nullable));
    }
    for cols in tables.values_mut() {
        cols.sort();
    }
    tables
}

#[test]
fn sqlite_and_postgres_have_the_same_tables_and_columns() {
    let sqlite = columns(&TestDb::sqlite());
    assert!(sqlite.contains_key("subscriptions"), "{sqlite:?}");
    assert!(sqlite.len() >= 13, "{:?}", sqlite.keys());
    let Some(pg) = TestDb::postgres() else {
        return;
    };
    let postgres = columns(&pg);
    assert_eq!(
        sqlite.keys().collect::<Vec<_>>(),
        postgres.keys().collect::<Vec<_>>(),
        "table sets differ"
    );
    for (table, cols) in &sqlite {
        assert_eq!(cols, &postgres[table], "columns of {table} differ");
    }
}

backend_tests! {
    fn history_is_append_only(t) {
        let mut conn = t.db.conn().unwrap();
        diesel::sql_query(
            "INSERT INTO subscription_history (account_id, subscription_id, list_id, recipient_id, \
             to_status, actor, channel, note, created_at) \
             VALUES (1, 1, 1, 1, 'subscribed', 'test', 'cli', '', CURRENT_TIMESTAMP)",
        )
        .execute(&mut *conn)
        .unwrap();
        assert!(diesel::sql_query("UPDATE subscription_history SET note = 'x'").execute(&mut *conn).is_err());
        assert!(diesel::sql_query("DELETE FROM subscription_history").execute(&mut *conn).is_err());
    }

    fn a_subscription_takes_only_the_three_statuses(t) {
        let mut conn = t.db.conn().unwrap();
        let account = espbridge::domain::accounts::create(
            &mut conn,
            &espbridge::domain::accounts::NewAccount { name: "Statuses".into(), ..Default::default() },
        )
        .unwrap()
        .account_id;
        common::subscribe(&mut conn, account, "status@example.com");
        for status in ["pending", "unsubscribed", "subscribed"] {
            diesel::sql_query(format!("UPDATE subscriptions SET status = '{status}'"))
                .execute(&mut *conn)
                .unwrap();
        }
        for status in ["bogus", "Subscribed", ""] {
            assert!(
                diesel::sql_query(format!("UPDATE subscriptions SET status = '{status}'"))
                    .execute(&mut *conn)
                    .is_err(),
                "status {status:?} was taken"
            );
        }
    }
}
