//! Test support: a fresh, migrated database per test on each backend.
//!
//! SQLite always runs (a file in a temporary directory). PostgreSQL runs when
//! `ESPBRIDGE_TEST_POSTGRES_URL` points at a server where we may create databases
//! (`scripts/test` starts one); each test gets its own database, dropped after.
#![allow(dead_code)]

pub mod golden;

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

/// The Python interpreter with the test tools (`scripts/test` prepares it), or
/// `None` with a notice when it is not there.
pub fn test_python() -> Option<String> {
    match std::env::var("ESPBRIDGE_TEST_PYTHON") {
        Ok(python) if !python.is_empty() => Some(python),
        _ => {
            if std::env::var_os("ESPBRIDGE_TEST_REQUIRE_POSTGRES").is_some() {
                panic!("scripts/test sets ESPBRIDGE_TEST_PYTHON; it is missing");
            }
            static ONCE: Once = Once::new();
            ONCE.call_once(|| {
                let _ = writeln!(
                    std::io::stderr(),
                    "\nNOTE: tests needing the real SMTP server SKIPPED (ESPBRIDGE_TEST_PYTHON not set); \
                     run scripts/test.\n"
                );
            });
            None
        }
    }
}

/// `php` with the soap extension, or `None` with a notice when it is missing
/// (`scripts/test` installs it and then requires it).
pub fn test_php() -> Option<&'static str> {
    let found = std::process::Command::new("php")
        .arg("-m")
        .output()
        .is_ok_and(|out| {
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .any(|m| m == "soap")
        });
    if found {
        return Some("php");
    }
    if std::env::var_os("ESPBRIDGE_TEST_REQUIRE_POSTGRES").is_some() {
        panic!("scripts/test installs php with its soap extension; it is missing");
    }
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = writeln!(
            std::io::stderr(),
            "\nNOTE: tests with PHP's SoapClient SKIPPED (php with the soap extension not found); run scripts/test.\n"
        );
    });
    None
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// How the test SMTP server misbehaves.
#[derive(Debug, Default, Clone)]
pub struct SmtpBehaviour {
    /// 451 to the first attempt of one message in N.
    pub defer_every: u32,
    /// 550 at RCPT for recipients containing this.
    pub reject: Option<String>,
    /// Pause before accepting each message.
    pub delay_ms: u32,
}

/// A real SMTP server process (aiosmtpd) on loopback, killed when dropped.
pub struct SmtpServer {
    pub port: u16,
    out: std::path::PathBuf,
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

/// One message the server accepted.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Received {
    pub mail_from: String,
    pub rcpt_tos: Vec<String>,
    pub message_id: String,
    pub data: String,
}

impl SmtpServer {
    pub fn start(behaviour: SmtpBehaviour) -> Option<SmtpServer> {
        let python = test_python()?;
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("received.jsonl");
        let port = free_port();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/smtp_server.py");
        let mut cmd = std::process::Command::new(python);
        cmd.arg(script)
            .args(["--port", &port.to_string(), "--out"])
            .arg(&out)
            .args(["--defer-every", &behaviour.defer_every.to_string()])
            .args(["--delay-ms", &behaviour.delay_ms.to_string()])
            .args(["--lifetime", "900"])
            .stdout(std::process::Stdio::piped());
        if let Some(word) = &behaviour.reject {
            cmd.args(["--reject", word]);
        }
        let mut child = cmd.spawn().expect("start the test SMTP server");
        let mut ready = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut ready,
        )
        .unwrap();
        assert_eq!(ready.trim(), "ready", "SMTP server did not start");
        Some(SmtpServer {
            port,
            out,
            child,
            _dir: dir,
        })
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    pub fn received(&self) -> Vec<Received> {
        let text = std::fs::read_to_string(&self.out).unwrap_or_default();
        text.lines()
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect()
    }

    pub fn count(&self) -> usize {
        std::fs::read_to_string(&self.out)
            .map(|t| t.lines().count())
            .unwrap_or(0)
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Adds `n` subscribed recipients `user{i}@example.com` (i from `first`) to a
/// list, with field 1 set to `Name{i}`, in bulk (a fixture, not the domain path,
/// so large lists are quick to build), keeping the list's counter right.
pub fn seed_subscribers(
    db: &Db,
    account_id: i64,
    list_number: i64,
    first: usize,
    n: usize,
    domain: &str,
) {
    use espbridge::db::schema::{lists, recipient_field_values, recipients, subscriptions};
    let mut conn = db.conn().unwrap();
    let list_id: i64 = lists::table
        .filter(lists::account_id.eq(account_id))
        .filter(lists::number.eq(list_number))
        .select(lists::id)
        .first(&mut *conn)
        .unwrap();
    let stamp = chrono::Utc::now().naive_utc();
    espbridge::db::write_transaction(&mut conn, |c| {
        for start in (first..first + n).step_by(500) {
            let end = (start + 500).min(first + n);
            for i in start..end {
                let email = format!("user{i}@{domain}");
                let id: i64 = diesel::insert_into(recipients::table)
                    .values((
                        recipients::account_id.eq(account_id),
                        recipients::email.eq(&email),
                        recipients::email_key.eq(email.to_lowercase()),
                        recipients::created_at.eq(stamp),
                        recipients::updated_at.eq(stamp),
                    ))
                    .returning(recipients::id)
                    .get_result(c)?;
                diesel::insert_into(recipient_field_values::table)
                    .values((
                        recipient_field_values::account_id.eq(account_id),
                        recipient_field_values::recipient_id.eq(id),
                        recipient_field_values::field_number.eq(1),
                        recipient_field_values::value.eq(format!("Name{i}")),
                    ))
                    .execute(c)?;
                diesel::insert_into(subscriptions::table)
                    .values((
                        subscriptions::account_id.eq(account_id),
                        subscriptions::list_id.eq(list_id),
                        subscriptions::recipient_id.eq(id),
                        subscriptions::status.eq("subscribed"),
                        subscriptions::source.eq("fixture"),
                        subscriptions::created_at.eq(stamp),
                        subscriptions::status_changed_at.eq(stamp),
                    ))
                    .execute(c)?;
            }
        }
        diesel::update(lists::table.find(list_id))
            .set(lists::subscribed_count.eq(lists::subscribed_count + n as i64))
            .execute(c)?;
        Ok(())
    })
    .unwrap();
}

/// Creates and starts a campaign of `message_id` to list 1; returns its id.
pub fn start_list_campaign(db: &Db, account_id: i64, message_id: i64) -> i64 {
    use espbridge::domain::sends::{self, Audience, NewCampaign};
    let mut conn = db.conn().unwrap();
    let campaign = NewCampaign {
        message_id,
        audience: Audience::List {
            list: 1,
            groups: vec![],
            filter: vec![],
        },
        params: serde_json::Map::new(),
        scheduled_at: None,
        idempotency_key: None,
    };
    let send = sends::create_campaign(&mut conn, account_id, &campaign).unwrap();
    sends::start(&mut conn, account_id, send.id).unwrap().id
}

/// An HTTP answer as read off the socket.
#[derive(Debug, Clone)]
pub struct HttpAnswer {
    pub status: u16,
    pub head: String,
    pub body: String,
}

/// One HTTP/1.1 request on a new connection (`Connection: close`), written by
/// a thread of its own so a server that answers before reading the whole body
/// (as it should for an oversized one) is heard. `None` if nothing answered
/// within `timeout`.
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
    timeout: std::time::Duration,
) -> Option<HttpAnswer> {
    use std::io::Read;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(timeout)).ok()?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut writer = stream.try_clone().ok()?;
    let sending = std::thread::spawn(move || {
        // The server may close early; a failed write is expected then.
        let _ = writer.write_all(head.as_bytes());
        for chunk in body.chunks(64 * 1024) {
            if writer.write_all(chunk).is_err() {
                break;
            }
        }
    });
    // Read until the answer is complete (by its Content-Length), not until the
    // server closes: a server that answers an oversized upload early may keep
    // the connection open a while to drain it.
    let mut raw = Vec::new();
    let mut buffer = [0u8; 16 * 1024];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => raw.extend_from_slice(&buffer[..n]),
        }
        if answer_complete(&raw) {
            break;
        }
    }
    let _ = stream.shutdown(std::net::Shutdown::Both);
    let _ = sending.join();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    Some(HttpAnswer {
        status,
        head: head.to_string(),
        body: if chunked {
            dechunk(body)
        } else {
            body.to_string()
        },
    })
}

/// Whether `raw` holds a whole answer with a Content-Length.
fn answer_complete(raw: &[u8]) -> bool {
    let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
    head.lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|n| n.trim().parse::<usize>().ok())
        .is_some_and(|length| raw.len() >= end + 4 + length)
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// `espbridge serve` on a free port against `url`, killed when dropped.
pub struct RunningServer {
    pub port: u16,
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl RunningServer {
    /// Starts the server with extra environment and waits until it is ready.
    pub fn start(url: &str, env: &[(&str, &str)]) -> RunningServer {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_espbridge"));
        cmd.env("ESPBRIDGE_DATABASE_URL", url)
            .env("ESPBRIDGE_DATA_DIR", dir.path())
            .env("RUST_LOG", "warn")
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .stdout(std::process::Stdio::null());
        for (key, value) in env {
            cmd.env(key, value);
        }
        let server = RunningServer {
            port,
            child: cmd.spawn().unwrap(),
            _dir: dir,
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let ready = http(
                port,
                "GET",
                "/readyz",
                &[],
                Vec::new(),
                std::time::Duration::from_secs(2),
            );
            if ready.is_some_and(|a| a.status == 200) {
                return server;
            }
            assert!(std::time::Instant::now() < deadline, "server not ready");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Waits until the opens and clicks the server has answered are applied
    /// to the database (its hit journal's backlog on `/metrics` is zero; a
    /// server without the journal, as before decision 57, applied them
    /// before answering).
    pub fn hits_applied(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let metrics = http(
                self.port,
                "GET",
                "/metrics",
                &[],
                Vec::new(),
                std::time::Duration::from_secs(5),
            )
            .expect("metrics answered");
            let backlog = metrics
                .body
                .lines()
                .find_map(|line| line.strip_prefix("espbridge_hit_journal_backlog "))
                .map(|n| n.trim().parse::<u64>().expect("a count"));
            if backlog.unwrap_or(0) == 0 {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "hits not applied: backlog {backlog:?}"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// The server's process id (benchmarks read its CPU time).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The hostile documents, by name.
pub fn hostile_documents() -> Vec<(&'static str, Vec<u8>)> {
    let envelope = |body: &str| {
        format!(
            "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body>{body}</s:Body></s:Envelope>"
        )
    };
    let laughs = {
        let mut doc = String::from("<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">");
        for i in 1..10 {
            let previous = if i == 1 {
                "lol".to_string()
            } else {
                format!("lol{}", i - 1)
            };
            doc.push_str(&format!(
                "<!ENTITY lol{i} \"{}\">",
                format!("&{previous};").repeat(10)
            ));
        }
        doc.push_str("]>");
        doc + &envelope("<GetNlLists xmlns=\"http://ws.mailupnet.it/\">&lol9;</GetNlLists>")
    };
    let external = String::from(
        "<?xml version=\"1.0\"?><!DOCTYPE s [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>",
    ) + &envelope("<GetNlLists xmlns=\"http://ws.mailupnet.it/\">&x;</GetNlLists>");
    let deep = envelope(&("<a>".repeat(100_000) + &"</a>".repeat(100_000)));
    let mut huge = envelope("<GetNlLists xmlns=\"http://ws.mailupnet.it/\"><pad>").into_bytes();
    huge.resize(50 * 1024 * 1024, b'x');
    let truncated = envelope("<GetNlLists xmlns=\"http://ws.mailupnet.it/\"/>");
    let truncated = truncated[..truncated.len() / 2].to_string();
    let mut invalid_utf8 = envelope("<CreateGroup xmlns=\"http://ws.mailupnet.it/\"><newGroupName>X</newGroupName></CreateGroup>").into_bytes();
    let at = invalid_utf8.iter().position(|b| *b == b'X').unwrap();
    invalid_utf8[at] = 0xff;
    vec![
        ("billion laughs", laughs.into_bytes()),
        ("external entity", external.into_bytes()),
        ("100,000-deep nesting", deep.into_bytes()),
        ("50 MB body", huge),
        ("truncated XML", truncated.into_bytes()),
        ("invalid UTF-8", invalid_utf8),
    ]
}

/// A real IMAP server (Dovecot) on loopback serving one Maildir account,
/// killed when dropped. `None` (with a notice) when Dovecot is not installed
/// or we are not root (Dovecot switches to the mail user); `scripts/test`
/// installs it and then requires it to be there.
pub struct ImapServer {
    pub port: u16,
    pub user: String,
    pub password: String,
    /// The account's Maildir, where a test places messages (`new/`).
    pub maildir: std::path::PathBuf,
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl ImapServer {
    pub fn start() -> Option<ImapServer> {
        let installed = std::process::Command::new("dovecot")
            .arg("--version")
            .output()
            .is_ok();
        let root_user = std::process::Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout == b"0\n");
        if !installed && std::env::var_os("ESPBRIDGE_TEST_REQUIRE_POSTGRES").is_some() {
            panic!("scripts/test installs Dovecot; it is missing");
        }
        if !installed || !root_user {
            static ONCE: Once = Once::new();
            ONCE.call_once(|| {
                let _ = writeln!(
                    std::io::stderr(),
                    "\nNOTE: IMAP tests SKIPPED (Dovecot missing, or not running as root); run scripts/test as root.\n"
                );
            });
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let port = free_port();
        let mail = root.join("mail");
        let maildir = mail.join("bounces");
        for sub in ["new", "cur", "tmp"] {
            std::fs::create_dir_all(maildir.join(sub)).unwrap();
        }
        std::fs::write(root.join("passwd"), "bounces:{PLAIN}imap-secret\n").unwrap();
        let config = format!(
            "base_dir = {r}/run\nstate_dir = {r}/state\nlog_path = {r}/dovecot.log\nprotocols = imap\n\
             listen = 127.0.0.1\nssl = no\ndisable_plaintext_auth = no\nauth_mechanisms = plain login\n\
             mail_location = maildir:{r}/mail/%u\nfirst_valid_uid = 1\n\
             passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN username_format=%u {r}/passwd\n}}\n\
             userdb {{\n  driver = static\n  args = uid=nobody gid=nogroup home={r}/mail/%u\n}}\n\
             service imap-login {{\n  inet_listener imap {{\n    port = {port}\n  }}\n  inet_listener imaps {{\n    port = 0\n  }}\n}}\n\
             service pop3-login {{\n  inet_listener pop3 {{\n    port = 0\n  }}\n}}\n",
            r = root.display()
        );
        std::fs::write(root.join("dovecot.conf"), config).unwrap();
        // The mail user must be able to move messages between new/ and cur/.
        let chown = std::process::Command::new("chown")
            .args(["-R", "nobody:nogroup"])
            .arg(&mail)
            .status()
            .unwrap();
        assert!(chown.success());
        let child = std::process::Command::new("dovecot")
            .args(["-F", "-c"])
            .arg(root.join("dovecot.conf"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start dovecot");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "Dovecot did not start; see {}/dovecot.log",
                root.display()
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Some(ImapServer {
            port,
            user: "bounces".into(),
            password: "imap-secret".into(),
            maildir,
            child,
            _dir: dir,
        })
    }

    pub fn url(&self) -> String {
        format!(
            "imap://{}:{}@127.0.0.1:{}/INBOX",
            self.user, self.password, self.port
        )
    }

    /// Places a message in the Maildir as an MTA would deliver it.
    pub fn deliver(&self, name: &str, text: &str) {
        let tmp = self.maildir.join("tmp").join(name);
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, self.maildir.join("new").join(name)).unwrap();
    }
}

impl Drop for ImapServer {
    fn drop(&mut self) {
        // SIGTERM lets Dovecot take its child processes down with it.
        let _ = std::process::Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

/// Subscribes `email` to list 1 directly (no confirmation).
pub fn subscribe(conn: &mut espbridge::db::DbConnection, account_id: i64, email: &str) {
    use espbridge::domain::recipients::Contact;
    use espbridge::domain::subscriptions::{self, Subscribe};
    use espbridge::domain::{Channel, Origin};
    subscriptions::subscribe(
        conn,
        account_id,
        &Subscribe {
            list: 1,
            contact: Contact::email(email),
            fields: vec![],
            groups: vec![],
            double_opt_in: Some(false),
            source: "test".into(),
            origin: Origin::new(Channel::Cli, "test"),
        },
    )
    .unwrap();
}

/// Subscribes `email` to list 1 and puts a single message to it in the outbox.
pub fn subscribe_and_send(
    conn: &mut espbridge::db::DbConnection,
    account_id: i64,
    message_id: i64,
    email: &str,
) -> espbridge::domain::sends::Enqueued {
    use espbridge::domain::recipients::RecipientKey;
    use espbridge::domain::sends::{self, NewSingle, SendKind, To};
    subscribe(conn, account_id, email);
    sends::enqueue_single(
        conn,
        account_id,
        &NewSingle {
            kind: SendKind::Single,
            message_id,
            to: To::Recipient(RecipientKey::Email(email.into())),
            params: serde_json::Map::new(),
            idempotency_key: None,
        },
    )
    .unwrap()
}
