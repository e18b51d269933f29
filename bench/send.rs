//! `bench/send`: how fast espbridge sends a personalised campaign, against the
//! SMTP ceiling of this machine, measured in one run.
//!
//! (a) reference: Postfix `smtp-source -d -s 10` sends N messages of the same
//!     size into `smtp-sink`;
//! (b) espbridge (`espbridge worker`, release build) sends an N-recipient
//!     personalised campaign into the same `smtp-sink`, on SQLite and, when
//!     `ESPBRIDGE_BENCH_POSTGRES_URL` is set, on PostgreSQL; while it runs, a
//!     transactional message is enqueued every second and its time to leave is
//!     measured;
//! (c) peak RSS of a worker sending a 1,000,000-recipient campaign (SQLite).
//!
//! Run it with `bench/send/run`, which installs Postfix's tools, builds the
//! release binary and starts the servers. Environment: `ESPBRIDGE_BENCH_SINK`
//! (host:port of smtp-sink), `ESPBRIDGE_BENCH_N` (default 100000),
//! `ESPBRIDGE_BENCH_BIG` (default 1000000; 0 skips), `ESPBRIDGE_BENCH_BIN`.

#[path = "support/cpu.rs"]
mod cpu;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use espbridge::db::schema::deliveries;
use espbridge::db::{Db, DbConnection};
use espbridge::domain::accounts::{self, NewAccount};
use espbridge::domain::messages::{self, NewMessage};
use espbridge::domain::sends::{self, Audience, NewCampaign, NewSingle, SendKind, SendStatus, To};

/// Size of each message, as smtp-source's `-l` and roughly our rendered mail.
const MESSAGE_BYTES: usize = 2000;

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

fn main() {
    let sink = env_or("ESPBRIDGE_BENCH_SINK", "127.0.0.1:2525");
    let n: usize = env_or("ESPBRIDGE_BENCH_N", "100000").parse().unwrap();
    let big: usize = env_or("ESPBRIDGE_BENCH_BIG", "1000000").parse().unwrap();
    let bin = env_or(
        "ESPBRIDGE_BENCH_BIN",
        concat!(env!("CARGO_MANIFEST_DIR"), "/target/release/espbridge"),
    );

    println!("bench/send: N = {n}, message size ≈ {MESSAGE_BYTES} bytes, sink {sink}");
    let reference = smtp_source(&sink, n);
    println!(
        "(a) smtp-source -d -s 10 -> smtp-sink: {:>9.0} msg/s",
        reference
    );

    let dir = tempfile::tempdir().unwrap();
    let sqlite_url = format!("sqlite://{}/bench.db", dir.path().display());
    report(
        "SQLite",
        reference,
        &campaign_run(&bin, &sqlite_url, &sink, n, true, dir.path()),
    );
    if let Ok(admin) = std::env::var("ESPBRIDGE_BENCH_POSTGRES_URL") {
        let url = fresh_postgres(&admin, "espbridge_bench_send");
        let pg_dir = tempfile::tempdir().unwrap();
        report(
            "PostgreSQL",
            reference,
            &campaign_run(&bin, &url, &sink, n, true, pg_dir.path()),
        );
    }
    if big > 0 {
        let big_dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/big.db", big_dir.path().display());
        let run = campaign_run(&bin, &url, &sink, big, false, big_dir.path());
        println!(
            "(c) espbridge, SQLite, {big} recipients: {:>9.0} msg/s   worker CPU {:.0} µs/msg   peak RSS {:>5.1} MB",
            run.rate,
            run.cpu_us_per_message,
            run.peak_rss_kb as f64 / 1024.0
        );
    }
}

fn report(backend: &str, reference: f64, run: &Run) {
    println!(
        "(b) espbridge, {backend:<10}: {:>9.0} msg/s   ratio b/a {:.2}   worker CPU {:.0} µs/msg   peak RSS {:>5.1} MB   transactional: queued to sent p50 {:.0} ms, max {:.0} ms ({} samples); enqueue from another process max {:.0} ms",
        run.rate,
        run.rate / reference,
        run.cpu_us_per_message,
        run.peak_rss_kb as f64 / 1024.0,
        run.latency_p50_ms,
        run.latency_max_ms,
        run.latency_samples,
        run.enqueue_max_ms,
    );
}

/// Messages per second of Postfix's load generator (the SMTP ceiling).
fn smtp_source(sink: &str, n: usize) -> f64 {
    let started = Instant::now();
    let status = Command::new("smtp-source")
        .args([
            "-d",
            "-s",
            "10",
            "-m",
            &n.to_string(),
            "-l",
            &MESSAGE_BYTES.to_string(),
        ])
        .args(["-f", "bench@example.com", "-t", "sink@example.com", sink])
        .status()
        .expect("smtp-source (Postfix) is needed: bench/send/run installs it");
    assert!(status.success());
    n as f64 / started.elapsed().as_secs_f64()
}

fn fresh_postgres(admin_url: &str, name: &str) -> String {
    let mut admin = PgConnection::establish(admin_url).unwrap();
    // One statement each: PostgreSQL runs a multi-statement string in one
    // transaction, where DROP and CREATE DATABASE are not allowed.
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .unwrap();
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .unwrap();
    let (server, _) = admin_url.rsplit_once('/').unwrap();
    format!("{server}/{name}")
}

struct Run {
    rate: f64,
    /// The worker's user + system time per message: unlike the rate, it does
    /// not move when other work shares the machine.
    cpu_us_per_message: f64,
    peak_rss_kb: u64,
    latency_p50_ms: f64,
    latency_max_ms: f64,
    latency_samples: usize,
    enqueue_max_ms: f64,
}

/// Seeds `n` subscribers, starts a campaign, runs a worker until it completes.
fn campaign_run(
    bin: &str,
    url: &str,
    sink: &str,
    n: usize,
    measure_latency: bool,
    dir: &std::path::Path,
) -> Run {
    let db = Db::connect(url, Some(4)).unwrap();
    db.migrate().unwrap();
    let mut conn = db.conn().unwrap();
    let account = accounts::create(
        &mut conn,
        &NewAccount {
            name: "Bench".into(),
            ..NewAccount::default()
        },
    )
    .unwrap()
    .account_id;
    seed(&mut conn, account, n);
    // A body of about MESSAGE_BYTES once personalised.
    let filler =
        "Lorem ipsum dolor sit amet, consectetur adipiscing elit. ".repeat(MESSAGE_BYTES / 70);
    let mut new = NewMessage::email(
        "News for {{ fields.nome }}",
        format!("<p>Dear {{{{ fields.nome }}}},</p><p>{filler}</p>"),
    );
    new.from_email = "news@bench.example".into();
    new.text = Some(format!("Dear {{{{ fields.nome }}}},\n{filler}"));
    let message = messages::create(&mut conn, account, &new).unwrap().id;
    let mut reset = NewMessage::email("Your code", "<p>Code {{ params.code }}</p>");
    reset.from_email = "security@bench.example".into();
    let reset = messages::create(&mut conn, account, &reset).unwrap().id;
    let send = sends::create_campaign(
        &mut conn,
        account,
        &NewCampaign {
            message_id: message,
            audience: Audience::List {
                list: 1,
                groups: vec![],
                filter: vec![],
            },
            params: serde_json::Map::new(),
            scheduled_at: None,
            idempotency_key: None,
        },
    )
    .unwrap();

    let config = dir.join("bench.toml");
    std::fs::write(
        &config,
        format!("smtp_url = \"smtp://{sink}\"\n[sender]\npoll_milliseconds = 50\n"),
    )
    .unwrap();
    let mut worker = spawn_worker(bin, url, dir, &config);
    let started = Instant::now();
    sends::start(&mut conn, account, send.id).unwrap();
    let mut peak_rss_kb = 0;
    let mut latencies = vec![];
    let mut enqueue_max_ms: f64 = 0.0;
    let mut next_probe = Instant::now() + Duration::from_secs(1);
    loop {
        peak_rss_kb = peak_rss_kb.max(rss_kb(worker.id()));
        let state = sends::get(&mut conn, account, send.id).unwrap();
        if state.status().unwrap() == SendStatus::Completed {
            assert_eq!(
                (state.sent, state.failed),
                (n as i64, 0),
                "every message sent"
            );
            break;
        }
        if measure_latency && Instant::now() >= next_probe && state.sent < n as i64 * 9 / 10 {
            let (enqueue_ms, latency_ms) = transactional_latency(&mut conn, account, reset);
            enqueue_max_ms = enqueue_max_ms.max(enqueue_ms);
            latencies.push(latency_ms);
            next_probe = Instant::now() + Duration::from_secs(1);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let elapsed = started.elapsed().as_secs_f64();
    peak_rss_kb = peak_rss_kb.max(peak_rss(worker.id()));
    let cpu_us_per_message = cpu::cpu_seconds(worker.id()) * 1e6 / n as f64;
    let _ = worker.kill();
    let _ = worker.wait();
    latencies.sort_by(f64::total_cmp);
    Run {
        rate: n as f64 / elapsed,
        cpu_us_per_message,
        peak_rss_kb,
        latency_p50_ms: latencies
            .get(latencies.len() / 2)
            .copied()
            .unwrap_or(f64::NAN),
        latency_max_ms: latencies.last().copied().unwrap_or(f64::NAN),
        latency_samples: latencies.len(),
        enqueue_max_ms,
    }
}

fn spawn_worker(bin: &str, url: &str, dir: &std::path::Path, config: &std::path::Path) -> Child {
    Command::new(bin)
        .arg("worker")
        .arg("--config")
        .arg(config)
        .env("ESPBRIDGE_DATABASE_URL", url)
        .env("ESPBRIDGE_DATA_DIR", dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("the release binary: cargo build --release")
}

/// Milliseconds (to commit the enqueue, from then until it is sent) of a
/// transactional message. The enqueue runs in this process, not the worker's: on
/// SQLite it waits in SQLite's busy handler while the worker writes, which a
/// server enqueueing in its own process does not (it queues for its writer).
fn transactional_latency(conn: &mut DbConnection, account: i64, message_id: i64) -> (f64, f64) {
    let started = Instant::now();
    let single = sends::enqueue_single(
        conn,
        account,
        &NewSingle {
            kind: SendKind::Single,
            message_id,
            to: To::Address("customer@example.org".into()),
            params: serde_json::json!({"code": "123456"})
                .as_object()
                .unwrap()
                .clone(),
            idempotency_key: None,
        },
    )
    .unwrap();
    let enqueue_ms = started.elapsed().as_secs_f64() * 1000.0;
    let enqueued = Instant::now();
    loop {
        let state: String = deliveries::table
            .find(single.delivery_id)
            .select(deliveries::state)
            .first(conn)
            .unwrap();
        if state == "sent" {
            return (enqueue_ms, enqueued.elapsed().as_secs_f64() * 1000.0);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Bulk-inserts `n` subscribed recipients with field 1 set, in SQL.
fn seed(conn: &mut DbConnection, account: i64, n: usize) {
    let started = Instant::now();
    let sql = match conn {
        DbConnection::Sqlite(_) => format!(
            "WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < {n})
             INSERT INTO recipients (account_id, email, email_key, created_at, updated_at)
             SELECT {account}, 'user' || i || '@example.com', 'user' || i || '@example.com',
                    CURRENT_TIMESTAMP, CURRENT_TIMESTAMP FROM seq;"
        ),
        DbConnection::Postgresql(_) => format!(
            "INSERT INTO recipients (account_id, email, email_key, created_at, updated_at)
             SELECT {account}, 'user' || i || '@example.com', 'user' || i || '@example.com',
                    now(), now() FROM generate_series(1, {n}) AS i;"
        ),
    };
    conn.batch_execute(&sql).unwrap();
    conn.batch_execute(&format!(
        "INSERT INTO recipient_field_values (account_id, recipient_id, field_number, value)
         SELECT {account}, id, 1, 'Name' || id FROM recipients WHERE account_id = {account};
         INSERT INTO subscriptions (account_id, list_id, recipient_id, status, source, created_at, status_changed_at)
         SELECT {account}, l.id, r.id, 'subscribed', 'bench', r.created_at, r.created_at
         FROM recipients r JOIN lists l ON l.account_id = {account} AND l.number = 1
         WHERE r.account_id = {account};
         UPDATE lists SET subscribed_count = {n} WHERE account_id = {account} AND number = 1;"
    ))
    .unwrap();
    eprintln!(
        "seeded {n} recipients in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

fn status_kb(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn rss_kb(pid: u32) -> u64 {
    status_kb(pid, "VmRSS:")
}

/// The kernel's high-water mark of the process's resident set.
fn peak_rss(pid: u32) -> u64 {
    status_kb(pid, "VmHWM:")
}
