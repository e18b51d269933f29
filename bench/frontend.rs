//! `bench/frontend`: MailUp's xmlSubscribe.aspx under load, beside the HTTP
//! ceiling of this machine, measured in one run.
//!
//! For each backend (SQLite; PostgreSQL when `ESPBRIDGE_TEST_POSTGRES_URL` is
//! set) a release `espbridge serve` is started, then `wrk` with 64 connections
//! runs (a) against `/healthz` (the ceiling) and (b) against xmlSubscribe, each
//! request a new address (`Confirm=0`), every answer checked to be `0`.
//! Afterwards every address answered `0` must be subscribed.
//!
//! Run it with `bench/frontend/run`. Environment: `ESPBRIDGE_BENCH_SECONDS`
//! (default 10).

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/cpu.rs"]
mod cpu;
#[path = "support/wrk.rs"]
mod support;

use cpu::{children_cpu_seconds, cpu_seconds, thread_cpu_seconds};
use espbridge::domain::accounts::{self, NewAccount};
use espbridge::domain::lists;
use support::{CONNECTIONS, wrk};

fn main() {
    let seconds = std::env::var("ESPBRIDGE_BENCH_SECONDS").unwrap_or_else(|_| "10".into());
    println!("bench/frontend: wrk -c {CONNECTIONS} -t 2 -d {seconds}s, loopback");
    run("SQLite", &common::TestDb::sqlite(), &seconds);
    // The PostgreSQL half runs where the test helper finds a server
    // (`ESPBRIDGE_TEST_POSTGRES_URL`, which bench/frontend/run sets).
    if let Some(postgres) = common::TestDb::postgres() {
        run("PostgreSQL", &postgres, &seconds);
    }
}

fn run(backend: &str, t: &common::TestDb, seconds: &str) {
    let account = accounts::create(
        &mut t.db.conn().unwrap(),
        &NewAccount {
            name: "Bench".into(),
            ..NewAccount::default()
        },
    )
    .unwrap()
    .account_id;
    let server = common::RunningServer::start(&t.url, &[("RUST_LOG", "error")]);
    let base = server.base();
    // CPU time of the server and of wrk over each run: the two cores are
    // shared by both, so CPU per request is what bounds the rate, and it
    // varies far less than requests/s on a machine others are using.
    // And the CPU time of the group writer (decisions 39, 73): one
    // thread that every subscribe passes through, so its CPU per subscribe
    // bounds the rate on its own.
    let cpu = || {
        (
            cpu_seconds(server.pid()),
            children_cpu_seconds(),
            thread_cpu_seconds(server.pid(), "group-writer"),
        )
    };
    let before = cpu();
    let ceiling = wrk(&base, "/healthz", seconds, None);
    let between = cpu();
    let subscribe = wrk(
        &base,
        "/",
        seconds,
        Some(("bench/frontend/subscribe.lua", &["0"])),
    );
    let after = cpu();
    drop(server);
    let list = lists::get(&mut t.db.conn().unwrap(), account, 1).unwrap();
    let (ok, bad) = subscribe.answers.unwrap();
    println!(
        "(a) {backend:<10} /healthz      {:>8.0} req/s   p50 {:>6.2} ms   p99 {:>6.2} ms",
        ceiling.rate, ceiling.p50_ms, ceiling.p99_ms
    );
    println!(
        "(b) {backend:<10} xmlSubscribe  {:>8.0} req/s   p50 {:>6.2} ms   p99 {:>6.2} ms   b/a {:.2}   answers 0: {ok}, other: {bad}, errors: {}   subscribed afterwards: {}",
        subscribe.rate,
        subscribe.p50_ms,
        subscribe.p99_ms,
        subscribe.rate / ceiling.rate,
        subscribe.errors,
        list.subscribed_count,
    );
    let ceiling_requests = ceiling.rate * seconds.parse::<f64>().unwrap_or(10.0);
    let answered = (ok + bad) as f64;
    let per_request = |seconds: f64, requests: f64| seconds * 1e6 / requests.max(1.0);
    println!(
        "    CPU per request (server + wrk): /healthz {:.1} + {:.1} µs, xmlSubscribe {:.1} + {:.1} µs",
        per_request(between.0 - before.0, ceiling_requests),
        per_request(between.1 - before.1, ceiling_requests),
        per_request(after.0 - between.0, answered),
        per_request(after.1 - between.1, answered),
    );
    if after.2 > between.2 {
        println!(
            "    of which the group writer thread: {:.1} µs per subscribe",
            per_request(after.2 - between.2, answered),
        );
    }
    // Requests still in flight when wrk stopped may have subscribed too.
    assert!(
        bad == 0 && subscribe.errors == 0 && list.subscribed_count >= ok as i64,
        "lost or refused subscriptions"
    );
}
