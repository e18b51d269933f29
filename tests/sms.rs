//! SMS through an HTTP provider (a real HTTP server process on loopback) and the
//! development log, and rate limits, on both backends.

mod common;

use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::TestDb;
use diesel::prelude::*;
use espbridge::config::{SenderSettings, Settings};
use espbridge::db::schema::deliveries;
use espbridge::domain::accounts::{self, NewAccount};
use espbridge::domain::messages::{self, MessageKind, NewMessage};
use espbridge::domain::providers::{self, Category, ProviderKind};
use espbridge::domain::sends::{self, NewSingle, SendKind, To};
use espbridge::render::Dialect;
use espbridge::sender::throttle;

struct HttpSink {
    port: u16,
    out: std::path::PathBuf,
    child: Child,
    _dir: tempfile::TempDir,
}

impl HttpSink {
    fn start(statuses: &[&str]) -> Option<HttpSink> {
        let python = common::test_python()?;
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("requests.jsonl");
        let port = common::free_port();
        let mut cmd = Command::new(python);
        cmd.arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/support/http_sink.py"
        ))
        .args(["--port", &port.to_string(), "--out"])
        .arg(&out)
        .stdout(Stdio::piped());
        for status in statuses {
            cmd.args(["--status", status]);
        }
        let mut child = cmd.spawn().unwrap();
        let mut ready = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut ready)
            .unwrap();
        assert_eq!(ready.trim(), "ready");
        Some(HttpSink {
            port,
            out,
            child,
            _dir: dir,
        })
    }

    fn requests(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for HttpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sms_message(t: &TestDb, account: i64) -> i64 {
    messages::create(
        &mut t.db.conn().unwrap(),
        account,
        &NewMessage {
            kind: MessageKind::Sms,
            dialect: Dialect::Jinja,
            text: Some("Your code is {{ params.code }}".into()),
            html: None,
            from_name: "ACME".into(),
            ..NewMessage::email("", "")
        },
    )
    .unwrap()
    .id
}

fn otp(t: &TestDb, account: i64, message: i64, to: &str) -> i64 {
    sends::enqueue_single(
        &mut t.db.conn().unwrap(),
        account,
        &NewSingle {
            kind: SendKind::Otp,
            message_id: message,
            to: To::Address(to.into()),
            params: serde_json::json!({"code": "4711"})
                .as_object()
                .unwrap()
                .clone(),
            idempotency_key: None,
        },
    )
    .unwrap()
    .delivery_id
}

fn settings(dir: &tempfile::TempDir) -> Settings {
    Settings {
        data_dir: dir.path().to_path_buf(),
        sender: SenderSettings {
            poll_milliseconds: 20,
            retry_base_seconds: 60,
            ..SenderSettings::default()
        },
        ..Settings::default()
    }
}

/// Waits until none of the deliveries is queued or sending.
fn wait_settled(t: &TestDb, ids: &[i64]) -> Vec<(String, Option<String>)> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let rows: Vec<(String, Option<String>)> = deliveries::table
            .filter(deliveries::id.eq_any(ids))
            .order(deliveries::id)
            .select((deliveries::state, deliveries::last_reply))
            .load(&mut *t.db.conn().unwrap())
            .unwrap();
        if rows
            .iter()
            .all(|(state, _)| state != "queued" && state != "sending")
        {
            return rows;
        }
        assert!(
            Instant::now() < deadline,
            "deliveries did not settle: {rows:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

backend_tests! {
    fn sms_goes_to_the_http_provider_with_its_outcomes(t) {
        let Some(sink) = HttpSink::start(&["+393330000002=503", "+393330000003=400"]) else { return };
        let a = accounts::create(&mut t.db.conn().unwrap(), &NewAccount { name: "A".into(), ..NewAccount::default() }).unwrap().account_id;
        let provider = providers::create(&mut t.db.conn().unwrap(), a, "gateway", ProviderKind::Http, &serde_json::json!({
            "url": format!("http://127.0.0.1:{}/send", sink.port),
            "token": "s3cret",
        })).unwrap();
        providers::set_default(&mut t.db.conn().unwrap(), a, Category::Otp, provider.id).unwrap();
        let m = sms_message(t, a);
        let ids = [otp(t, a, m, "3330000001"), otp(t, a, m, "+393330000002"), otp(t, a, m, "0039 333 0000003")];
        let dir = tempfile::tempdir().unwrap();
        let sender = espbridge::sender::spawn(t.db.clone(), &settings(&dir)).unwrap();
        let states = wait_settled(t, &ids);
        sender.stop();
        assert_eq!(states.iter().map(|(s, _)| s.as_str()).collect::<Vec<_>>(), vec!["sent", "deferred", "failed"]);
        assert!(states[2].1.as_deref().unwrap().starts_with("400"));
        let requests = sink.requests();
        assert_eq!(requests.len(), 3);
        let first = requests.iter().find(|r| r["body"]["to"] == "+393330000001").unwrap();
        assert_eq!(first["path"], "/send");
        assert_eq!(first["authorization"], "Bearer s3cret");
        assert_eq!(first["body"]["text"], "Your code is 4711");
        assert_eq!(first["body"]["from"], "ACME");
    }

    fn without_a_provider_sms_go_to_the_log(t) {
        let a = accounts::create(&mut t.db.conn().unwrap(), &NewAccount { name: "A".into(), ..NewAccount::default() }).unwrap().account_id;
        let m = sms_message(t, a);
        let id = otp(t, a, m, "+4915112345678");
        let dir = tempfile::tempdir().unwrap();
        let sender = espbridge::sender::spawn(t.db.clone(), &settings(&dir)).unwrap();
        assert_eq!(wait_settled(t, &[id])[0].0, "sent");
        sender.stop();
        let log = std::fs::read_to_string(dir.path().join("sms-outbox.jsonl")).unwrap();
        let line: serde_json::Value = serde_json::from_str(log.lines().next().unwrap()).unwrap();
        assert_eq!((line["to"].as_str(), line["text"].as_str()), (Some("+4915112345678"), Some("Your code is 4711")));
    }

    fn token_buckets_are_shared_and_persisted(t) {
        let mut conn = t.db.conn().unwrap();
        // A full bucket holds one second's worth.
        let (granted, _) = throttle::take(&mut conn, "domain:example.com", 2.0, 5).unwrap();
        assert_eq!(granted, 2);
        let (granted, wait) = throttle::take(&mut conn, "domain:example.com", 2.0, 5).unwrap();
        assert_eq!(granted, 0);
        assert!(wait > chrono::Duration::zero() && wait <= chrono::Duration::milliseconds(500), "{wait:?}");
        // Another handle on the same database (another process) sees the same bucket.
        drop(conn);
        let other = espbridge::db::Db::connect(&t.url, Some(1)).unwrap();
        let (granted, _) = throttle::take(&mut other.conn().unwrap(), "domain:example.com", 2.0, 5).unwrap();
        assert_eq!(granted, 0);
        std::thread::sleep(Duration::from_millis(600));
        let (granted, _) = throttle::take(&mut other.conn().unwrap(), "domain:example.com", 2.0, 5).unwrap();
        assert_eq!(granted, 1);
    }
}
