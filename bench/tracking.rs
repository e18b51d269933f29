//! `bench/tracking`: open pixels and click redirects under load, beside the
//! HTTP ceiling of this machine, measured in one run.
//!
//! For each backend (SQLite; PostgreSQL when `ESPBRIDGE_TEST_POSTGRES_URL` is
//! set) a database gets 5,000 deliveries sent an hour ago, a release `espbridge
//! serve` is started on it, and `wrk` with 64 connections runs (a) against
//! `/healthz` and (b) against the deliveries' pixel and click URLs (half each,
//! a browser user agent). Afterwards the events in the store are counted:
//! every answered hit must be there. Hits are applied to the store shortly
//! after they are answered (decision 57), so (b)'s rate is the answered hits
//! over wrk's run plus the time the last of them took to be applied. Target: (b) at least 50% of (a) on SQLite.
//! Beside the rates it prints the CPU per request of the server process and of
//! wrk, which share the machine: steadier than rates while other work runs;
//! and, of the server's, the CPU of the thread applying the hits to the store.
//!
//! Run it with `bench/tracking/run`. Environment: `ESPBRIDGE_BENCH_SECONDS`
//! (default 10).

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/cpu.rs"]
mod cpu;
#[path = "support/wrk.rs"]
mod support;

use std::io::Write;

use diesel::prelude::*;
use espbridge::db::schema::{deliveries, delivery_events};
use espbridge::domain::accounts::{self, NewAccount};
use espbridge::domain::links::LinkSigner;
use espbridge::domain::messages::{self, NewMessage};
use espbridge::domain::sends::{self, NewSingle, SendKind, To};
use espbridge::domain::tracking;
use support::{CONNECTIONS, wrk};

const DELIVERIES: usize = 5_000;

fn main() {
    let seconds = std::env::var("ESPBRIDGE_BENCH_SECONDS").unwrap_or_else(|_| "10".into());
    println!(
        "bench/tracking: wrk -c {CONNECTIONS} -t 2 -d {seconds}s, loopback, {DELIVERIES} deliveries"
    );
    let sqlite = common::TestDb::sqlite();
    run("SQLite", &sqlite, &seconds);
    // The PostgreSQL half runs where the test helper finds a server
    // (`ESPBRIDGE_TEST_POSTGRES_URL`, which bench/tracking/run sets).
    if let Some(postgres) = common::TestDb::postgres() {
        run("PostgreSQL", &postgres, &seconds);
    }
}

fn run(backend: &str, t: &common::TestDb, seconds: &str) {
    let paths = seed(t);
    let file = tempfile::NamedTempFile::new().unwrap();
    writeln!(file.as_file(), "{}", paths.join("\n")).unwrap();
    let server = common::RunningServer::start(&t.url, &[("RUST_LOG", "error")]);
    let base = server.base();
    let cpu_start = cpu::cpu_seconds(server.pid());
    let ceiling = wrk(&base, "/healthz", seconds, None);
    let cpu_ceiling = cpu::cpu_seconds(server.pid());
    let path_file = file.path().to_string_lossy().into_owned();
    let hits = wrk(
        &base,
        "/",
        seconds,
        Some(("bench/tracking/hits.lua", &[path_file.as_str()])),
    );
    // Answered hits are applied to the database shortly after (decision 57):
    // the CPU of applying them is counted once they all are. Hits still in
    // flight when wrk stopped count too: they are in `requests` of neither
    // phase, so this slightly overstates the CPU per hit.
    let settling = std::time::Instant::now();
    server.hits_applied();
    let settled = settling.elapsed().as_secs_f64();
    // The rate that counts is the one at which hits end up in the store: the
    // answered hits over wrk's run and the time they took to be applied after.
    let duration = hits.requests as f64 / hits.rate;
    let applied_rate = hits.requests as f64 / (duration + settled);
    let cpu_hits = cpu::cpu_seconds(server.pid());
    // The thread that applies the journal to the store, on its own.
    let cpu_applier = cpu::thread_cpu_seconds(server.pid(), "hit-journal");
    drop(server);
    // CPU microseconds per answered request, of the server and of wrk.
    let per_request = |seconds: f64, load: &support::Load| seconds * 1e6 / load.requests as f64;
    let ok = hits.requests - hits.errors.min(hits.requests);
    let stored: i64 = delivery_events::table
        .filter(delivery_events::kind.eq_any(["opened", "clicked"]))
        .count()
        .get_result(&mut t.db.conn().unwrap())
        .unwrap();
    println!(
        "(a) {backend:<10} /healthz         {:>8.0} req/s   p50 {:>6.2} ms   p99 {:>6.2} ms   CPU/request: server {:.1} us, wrk {:.1} us",
        ceiling.rate,
        ceiling.p50_ms,
        ceiling.p99_ms,
        per_request(cpu_ceiling - cpu_start, &ceiling),
        per_request(ceiling.wrk_cpu_seconds, &ceiling),
    );
    println!(
        "(b) {backend:<10} pixel and click  {:>8.0} req/s   p50 {:>6.2} ms   p99 {:>6.2} ms   CPU/request: server {:.1} us (applier {:.1} us), wrk {:.1} us   b/a {:.2}   answered {ok} ({:.0}/s), errors {}   events stored {stored}, the last {:.0} ms after wrk stopped",
        applied_rate,
        hits.p50_ms,
        hits.p99_ms,
        per_request(cpu_hits - cpu_ceiling, &hits),
        per_request(cpu_applier, &hits),
        per_request(hits.wrk_cpu_seconds, &hits),
        applied_rate / ceiling.rate,
        hits.rate,
        hits.errors,
        settled * 1000.0,
    );
    // Hits still in flight when wrk stopped may have been stored too.
    assert!(
        hits.errors == 0 && stored >= ok as i64,
        "lost or refused hits"
    );
}

/// Deliveries sent an hour ago, and a pixel or click path for each.
fn seed(t: &common::TestDb) -> Vec<String> {
    let mut conn = t.db.conn().unwrap();
    let account = accounts::create(
        &mut conn,
        &NewAccount {
            name: "Bench".into(),
            ..NewAccount::default()
        },
    )
    .unwrap()
    .account_id;
    common::seed_subscribers(&t.db, account, 1, 0, DELIVERIES, "bench.example");
    let message =
        messages::create(&mut conn, account, &NewMessage::email("Hi", "<p>x</p>")).unwrap();
    let signer = LinkSigner::load(&mut conn).unwrap();
    let mut paths = Vec::with_capacity(DELIVERIES);
    t.db.write_blocking(|conn| {
        for i in 0..DELIVERIES {
            let enqueued = sends::enqueue_single(
                conn,
                account,
                &NewSingle {
                    kind: SendKind::Single,
                    message_id: message.id,
                    to: To::Address(format!("user{i}@bench.example")),
                    params: serde_json::Map::new(),
                    idempotency_key: None,
                },
            )?;
            paths.push(if i % 2 == 0 {
                format!(
                    "/t/o/{}",
                    tracking::open_token(&signer, enqueued.delivery_id)
                )
            } else {
                let url = format!("https://shop.example/product/{i}");
                format!(
                    "/t/c/{}",
                    tracking::click_token(&signer, enqueued.delivery_id, &url)
                )
            });
        }
        diesel::update(deliveries::table)
            .set((
                deliveries::state.eq("sent"),
                deliveries::sent_at.eq(Some(espbridge::domain::now() - chrono::Duration::hours(1))),
            ))
            .execute(conn)?;
        Ok(())
    })
    .unwrap();
    paths
}
