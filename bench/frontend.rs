//! `bench/frontend`: MailUp's xmlSubscribe.aspx under load, beside the HTTP
//! ceiling of this machine, measured in one run.
//!
//! For each backend (SQLite; PostgreSQL when `ESPBRIDGE_BENCH_POSTGRES_URL` is
//! set) a release `espbridge serve` is started, then `wrk` with 64 connections
//! runs (a) against `/healthz` (the ceiling) and (b) against xmlSubscribe, each
//! request a new address (`Confirm=0`), every answer checked to be `0`.
//! Afterwards every address answered `0` must be subscribed.
//!
//! Run it with `bench/frontend/run`. Environment: `ESPBRIDGE_BENCH_SECONDS`
//! (default 10), `ESPBRIDGE_BENCH_BIN`.

use std::process::{Child, Command, Stdio};

use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use espbridge::db::Db;
use espbridge::domain::accounts;
use espbridge::domain::lists;

#[path = "support/wrk.rs"]
mod support;

use support::{CONNECTIONS, wrk};

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

fn main() {
    let seconds = env_or("ESPBRIDGE_BENCH_SECONDS", "10");
    let bin = env_or(
        "ESPBRIDGE_BENCH_BIN",
        concat!(env!("CARGO_MANIFEST_DIR"), "/target/release/espbridge"),
    );
    println!("bench/frontend: wrk -c {CONNECTIONS} -t 2 -d {seconds}s, loopback");
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}/bench.db", dir.path().display());
    run("SQLite", &bin, &sqlite, &seconds, dir.path());
    if let Ok(admin) = std::env::var("ESPBRIDGE_BENCH_POSTGRES_URL") {
        let url = fresh_postgres(&admin, "espbridge_bench_frontend");
        let pg_dir = tempfile::tempdir().unwrap();
        run("PostgreSQL", &bin, &url, &seconds, pg_dir.path());
    }
}

fn run(backend: &str, bin: &str, url: &str, seconds: &str, dir: &std::path::Path) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _server = Server(
        Command::new(bin)
            .env("ESPBRIDGE_DATABASE_URL", url)
            .env("ESPBRIDGE_DATA_DIR", dir)
            .env("RUST_LOG", "error")
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .spawn()
            .expect("the release binary (bench/frontend/run builds it)"),
    );
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(port);

    let ceiling = wrk(&base, "/healthz", seconds, None);
    let subscribe = wrk(
        &base,
        "/",
        seconds,
        Some(("bench/frontend/subscribe.lua", &["0"])),
    );
    let db = Db::connect(url, Some(1)).unwrap();
    let mut conn = db.conn().unwrap();
    let account = accounts::only_account(&mut conn).unwrap().unwrap();
    let list = lists::get(&mut conn, account.id, 1).unwrap();
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
    // Requests still in flight when wrk stopped may have subscribed too.
    assert!(
        bad == 0 && subscribe.errors == 0 && list.subscribed_count >= ok as i64,
        "lost or refused subscriptions"
    );
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_ready(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            use std::io::{Read, Write};
            let _ = write!(
                stream,
                "GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            );
            let mut answer = String::new();
            let _ = stream.read_to_string(&mut answer);
            if answer.starts_with("HTTP/1.1 200") {
                return;
            }
        }
        assert!(Instant::now() < deadline, "server not ready");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn fresh_postgres(admin_url: &str, name: &str) -> String {
    let mut admin = PgConnection::establish(admin_url).unwrap();
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .unwrap();
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .unwrap();
    let (server, _) = admin_url.rsplit_once('/').unwrap();
    format!("{server}/{name}")
}
