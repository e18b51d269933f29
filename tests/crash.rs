//! Crash safety with real processes: `espbridge worker` killed with SIGKILL in the
//! middle of a campaign, and two workers sharing one PostgreSQL database.

mod common;

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{SmtpBehaviour, SmtpServer, TestDb};
use diesel::prelude::*;
use espbridge::db::schema::deliveries;
use espbridge::domain::accounts::{self, NewAccount};
use espbridge::domain::messages::{self, NewMessage};
use espbridge::domain::sends::{self, SendStatus};

const BIN: &str = env!("CARGO_BIN_EXE_espbridge");

struct Worker(Child);

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_worker(t: &TestDb, dir: &tempfile::TempDir, smtp: &SmtpServer) -> Worker {
    let config = dir.path().join("espbridge.toml");
    std::fs::write(
        &config,
        format!(
            "smtp_url = \"{}\"\npublic_url = \"https://esp.example\"\n\n[sender]\nlease_seconds = 2\n\
             poll_milliseconds = 20\nretry_base_seconds = 1\nbulk_concurrency = 8\n",
            smtp.url()
        ),
    )
    .unwrap();
    Worker(
        Command::new(BIN)
            .arg("worker")
            .arg("--config")
            .arg(&config)
            .env("ESPBRIDGE_DATABASE_URL", &t.url)
            .env("ESPBRIDGE_DATA_DIR", dir.path())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// An account with `n` subscribers and a started campaign to them.
fn campaign(t: &TestDb, n: usize) -> (i64, i64) {
    let mut conn = t.db.conn().unwrap();
    let a = accounts::create(
        &mut conn,
        &NewAccount {
            name: "Shop".into(),
            ..NewAccount::default()
        },
    )
    .unwrap()
    .account_id;
    common::seed_subscribers(&t.db, a, 1, 0, n, "example.com");
    let mut new = NewMessage::email("Hi {{ fields.nome }}", "<p>Hi {{ fields.nome }}</p>");
    new.from_email = "news@shop.example".into();
    let m = messages::create(&mut conn, a, &new).unwrap().id;
    (a, common::start_list_campaign(&t.db, a, m))
}

fn wait_until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn completed(t: &TestDb, a: i64, send_id: i64) -> bool {
    sends::get(&mut t.db.conn().unwrap(), a, send_id)
        .unwrap()
        .status()
        .unwrap()
        == SendStatus::Completed
}

/// Message-ID → how many times the server got it, and the set of addresses.
fn tally(smtp: &SmtpServer) -> (HashMap<String, usize>, HashMap<String, usize>) {
    let mut ids = HashMap::new();
    let mut addresses = HashMap::new();
    for r in smtp.received() {
        *ids.entry(r.message_id).or_default() += 1;
        *addresses.entry(r.rcpt_tos[0].clone()).or_default() += 1;
    }
    (ids, addresses)
}

backend_tests! {
    fn killed_three_times_nothing_is_lost(t) {
        let Some(smtp) = SmtpServer::start(SmtpBehaviour { delay_ms: 5, ..SmtpBehaviour::default() }) else { return };
        const N: usize = 3000;
        let (a, send_id) = campaign(t, N);
        let dir = tempfile::tempdir().unwrap();
        let mut in_flight_at_kills = 0;
        for kill in 1..=3 {
            let mut worker = start_worker(t, &dir, &smtp);
            wait_until(Duration::from_secs(120), "progress before the kill", || smtp.count() >= kill * N / 4);
            worker.0.kill().unwrap(); // SIGKILL
            worker.0.wait().unwrap();
            let in_flight: i64 = deliveries::table
                .filter(deliveries::send_id.eq(send_id))
                .filter(deliveries::state.eq("sending"))
                .count()
                .get_result(&mut *t.db.conn().unwrap())
                .unwrap();
            in_flight_at_kills += in_flight as usize;
        }
        let _worker = start_worker(t, &dir, &smtp);
        wait_until(Duration::from_secs(180), "the campaign to complete", || completed(t, a, send_id));

        let (ids, addresses) = tally(&smtp);
        let received: usize = ids.values().sum();
        let duplicates = received - ids.len();
        eprintln!("received {received}, unique {}, duplicates {duplicates}, in flight at the kills {in_flight_at_kills}", ids.len());
        assert_eq!(addresses.len(), N, "every recipient got the message");
        assert_eq!(ids.len(), N, "one Message-ID per recipient: duplicates are recognisable");
        assert!(duplicates <= in_flight_at_kills, "{duplicates} duplicates > {in_flight_at_kills} in flight");
        let send = sends::get(&mut t.db.conn().unwrap(), a, send_id).unwrap();
        assert_eq!((send.to_send, send.sent, send.failed), (N as i64, N as i64, 0));
    }
}

/// Two live workers never send a delivery twice. The 2 s lease is renewed every
/// half second and a worker that works through its claimed batches for far
/// longer than that keeps them; what this does not cover is a worker frozen for
/// more than half a lease mid-send (decision 56).
#[test]
fn two_workers_on_postgres_never_send_twice() {
    let Some(t) = TestDb::postgres() else { return };
    let Some(smtp) = SmtpServer::start(SmtpBehaviour {
        delay_ms: 2,
        ..SmtpBehaviour::default()
    }) else {
        return;
    };
    const N: usize = 3000;
    let (a, send_id) = campaign(&t, N);
    let dir_one = tempfile::tempdir().unwrap();
    let dir_two = tempfile::tempdir().unwrap();
    let _one = start_worker(&t, &dir_one, &smtp);
    let _two = start_worker(&t, &dir_two, &smtp);
    wait_until(Duration::from_secs(180), "the campaign to complete", || {
        completed(&t, a, send_id)
    });
    let (ids, addresses) = tally(&smtp);
    assert_eq!(ids.len(), N);
    assert!(ids.values().all(|&n| n == 1), "a delivery was sent twice");
    assert!(addresses.values().all(|&n| n == 1));
}
