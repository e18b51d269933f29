//! Test support: a fresh, migrated database per test on each backend.
//!
//! SQLite always runs (a file in a temporary directory). PostgreSQL runs when
//! `ESPBRIDGE_TEST_POSTGRES_URL` points at a server where we may create databases
//! (`scripts/test` starts one); each test gets its own database, dropped after.
#![allow(dead_code)]

use std::io::Write;
use std::sync::Once;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use espbridge::db::{Backend, Db};

pub struct TestDb {
    pub db: Db,
    /// The URL `db` was opened with, for starting the real binary on it.
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    postgres: Option<(String, String)>,
}

impl TestDb {
    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("test.db").display());
        let db = Db::connect(&url, None).expect("open sqlite");
        db.migrate().expect("migrate sqlite");
        TestDb {
            db,
            url,
            _dir: Some(dir),
            postgres: None,
        }
    }

    /// `None` (with a notice) when no PostgreSQL server was given.
    pub fn postgres() -> Option<TestDb> {
        let Some(admin_url) = postgres_admin_url() else {
            announce_postgres_skipped();
            return None;
        };
        let name = format!("espbridge_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::establish(&admin_url).expect("connect to test PostgreSQL");
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create test database");
        let url = match admin_url.rsplit_once('/') {
            Some((server, _)) => format!("{server}/{name}"),
            None => panic!("ESPBRIDGE_TEST_POSTGRES_URL needs a database path"),
        };
        let db = Db::connect(&url, None).expect("open postgres");
        db.migrate().expect("migrate postgres");
        Some(TestDb {
            db,
            url,
            _dir: None,
            postgres: Some((admin_url, name)),
        })
    }

    pub fn backend(&self) -> Backend {
        self.db.backend()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin_url, name)) = &self.postgres
            && let Ok(mut admin) = PgConnection::establish(admin_url)
        {
            let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
    }
}

fn postgres_admin_url() -> Option<String> {
    match std::env::var("ESPBRIDGE_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            if std::env::var_os("ESPBRIDGE_TEST_REQUIRE_POSTGRES").is_some() {
                panic!(
                    "ESPBRIDGE_TEST_REQUIRE_POSTGRES is set but ESPBRIDGE_TEST_POSTGRES_URL is not"
                );
            }
            None
        }
    }
}

/// Written straight to stderr, past the test harness's output capture, so a plain
/// `cargo test` shows that half the suite did not run.
fn announce_postgres_skipped() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = writeln!(
            std::io::stderr(),
            "\nNOTE: PostgreSQL half of the suite SKIPPED (ESPBRIDGE_TEST_POSTGRES_URL not set); \
             run scripts/test for both backends.\n"
        );
    });
}

/// Declares one test per backend: `name::sqlite` and `name::postgres`, each
/// running the body with a fresh migrated database.
#[macro_export]
macro_rules! backend_tests {
    ($(fn $name:ident($db:ident) $body:block)*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;

                fn body($db: &$crate::common::TestDb) $body

                #[::core::prelude::v1::test]
                fn sqlite() {
                    body(&$crate::common::TestDb::sqlite());
                }

                #[::core::prelude::v1::test]
                fn postgres() {
                    if let Some(db) = $crate::common::TestDb::postgres() {
                        body(&db);
                    }
                }
            }
        )*
    };
}
