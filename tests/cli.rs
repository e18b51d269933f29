//! The real binary: `account create --json`, the eCircle API user's address
//! (`--ecircle-email`, `account ecircle-email`), `migrate`, and `serve`
//! answering `/readyz`, on both backends.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_espbridge");

/// A fresh database URL: an unmigrated SQLite file, or the test PostgreSQL database.
fn database(t: &common::TestDb, dir: &tempfile::TempDir) -> String {
    match t.backend() {
        espbridge::db::Backend::Sqlite => {
            format!("sqlite://{}/cli/espbridge.db", dir.path().display())
        }
        espbridge::db::Backend::Postgres => t.url.clone(),
    }
}

fn espbridge(url: &str, dir: &tempfile::TempDir) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env("ESPBRIDGE_DATABASE_URL", url)
        .env("ESPBRIDGE_DATA_DIR", dir.path())
        .env("RUST_LOG", "warn");
    cmd
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Status code of a plain HTTP/1.1 GET, or `None` if nothing answers.
fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.split_whitespace().nth(1)?.parse().ok()
}

/// Kills the server when the test ends, passed or not.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

backend_tests! {
    fn account_create_prints_credentials_as_json(t) {
        let dir = tempfile::tempdir().unwrap();
        let url = database(t, &dir);
        let out = espbridge(&url, &dir)
            .args(["account", "create", "--name", "Shop", "--console-id", "1234", "--console-host", "news.shop.example", "--json"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is one JSON object");
        assert_eq!(json["console_id"], 1234);
        assert_eq!(json["mailup"]["ws_user"], "a1234");
        assert_eq!(json["mailup"]["console_user"], "m1234");
        assert_eq!(json["default_list"]["id"], 1);
        for key in [
            "/account_id", "/mailup/ws_password", "/mailup/console_password", "/exacttarget/username",
            "/exacttarget/password", "/ecircle/realm", "/ecircle/user", "/ecircle/password", "/api_key",
            "/default_list/guid",
        ] {
            assert!(json.pointer(key).is_some_and(|v| !v.is_null() && v != ""), "{key} missing in {json}");
        }

        // The printed secrets are the ones that authenticate.
        let db = espbridge::db::Db::connect(&url, Some(1)).unwrap();
        let mut conn = db.conn().unwrap();
        let credential = espbridge::domain::credentials::authenticate(
            &mut conn,
            espbridge::domain::credentials::CredentialKind::MailupWs,
            "",
            "a1234",
            json["mailup"]["ws_password"].as_str().unwrap(),
        )
        .unwrap();
        assert_eq!(serde_json::json!(credential.account_id), json["account_id"]);

        // A taken console id is a clear error, not a panic, and exits non-zero.
        let again = espbridge(&url, &dir)
            .args(["account", "create", "--name", "Twin", "--console-id", "1234", "--json"])
            .output()
            .unwrap();
        assert!(!again.status.success());
        assert!(String::from_utf8_lossy(&again.stderr).contains("console id 1234 is taken"));
        assert!(again.stdout.is_empty());
    }

    fn the_ecircle_api_user_gets_an_address(t) {
        use espbridge::domain::credentials::{self, CredentialKind};
        let dir = tempfile::tempdir().unwrap();
        let url = database(t, &dir);
        let run = |args: &[&str]| espbridge(&url, &dir).args(args).output().unwrap();
        let out = run(&["account", "create", "--name", "Shop", "--console-id", "1300", "--ecircle-email", " ops@shop.example ", "--json"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(json["ecircle"]["email"], "ops@shop.example");
        let (realm, user) = (json["ecircle"]["realm"].as_str().unwrap(), json["ecircle"]["user"].as_str().unwrap());
        let db = espbridge::db::Db::connect(&url, Some(1)).unwrap();
        let email = |db: &espbridge::db::Db| credentials::find(&mut db.conn().unwrap(), CredentialKind::Ecircle, realm, user).unwrap().unwrap().email;
        assert_eq!(email(&db), "ops@shop.example");
        // A bad address refuses the whole account.
        let bad = run(&["account", "create", "--name", "Bad", "--console-id", "1301", "--ecircle-email", "not an address"]);
        assert!(!bad.status.success());
        assert!(espbridge::domain::accounts::find_by_console_id(&mut db.conn().unwrap(), 1301).unwrap().is_none());
        // Changed and removed later.
        let changed = run(&["account", "ecircle-email", "--console-id", "1300", "--email", "it@shop.example"]);
        assert!(changed.status.success(), "{}", String::from_utf8_lossy(&changed.stderr));
        assert_eq!(email(&db), "it@shop.example");
        assert!(run(&["account", "ecircle-email", "--console-id", "1300", "--email", ""]).status.success());
        assert_eq!(email(&db), "");
        assert!(!run(&["account", "ecircle-email", "--console-id", "999", "--email", "x@shop.example"]).status.success());
    }

    fn serve_migrates_creates_a_demo_account_and_gets_ready(t) {
        let dir = tempfile::tempdir().unwrap();
        let url = database(t, &dir);
        let port = free_port();
        let server = Server(
            espbridge(&url, &dir)
                .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            match http_status(port, "/readyz") {
                Some(status) => break status,
                None if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
                None => panic!("server did not answer within 30 s"),
            }
        };
        assert_eq!(status, 200);
        assert_eq!(http_status(port, "/healthz"), Some(200));
        drop(server);

        let db = espbridge::db::Db::connect(&url, Some(1)).unwrap();
        let mut conn = db.conn().unwrap();
        let demo = espbridge::domain::accounts::only_account(&mut conn).unwrap().expect("demo account");
        assert_eq!(demo.name, "Demo");
        assert_eq!(espbridge::domain::lists::get(&mut conn, demo.id, 1).unwrap().name, "News");
    }

    fn migrate_is_repeatable(t) {
        let dir = tempfile::tempdir().unwrap();
        let url = database(t, &dir);
        for _ in 0..2 {
            let out = espbridge(&url, &dir).arg("migrate").output().unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            assert!(String::from_utf8_lossy(&out.stdout).contains("up to date"));
        }
    }
}

#[test]
fn bad_database_url_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = espbridge("mysql://localhost/x", &dir)
        .arg("migrate")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected sqlite://PATH or postgres://"));
}
