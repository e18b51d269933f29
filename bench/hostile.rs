//! `bench/hostile`: how fast a real server (release build, SQLite) answers
//! hostile documents with an error, on the SOAP endpoint (WSMailUpImport) and
//! on a frontend page, beside the time of a plain `/healthz` request in the
//! same run. Target: every error within 100 ms. The documents are the ones
//! `tests/hostile.rs` sends (tests/common).
//!
//! Run it with `bench/hostile/run`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{RunningServer, hostile_documents, http};
use espbridge::domain::accounts::{self, NewAccount};

const WAIT: Duration = Duration::from_secs(30);
const ROUNDS: usize = 5;

fn main() {
    let t = common::TestDb::sqlite();
    accounts::create(
        &mut t.db.conn().unwrap(),
        &NewAccount {
            name: "Target".into(),
            ..NewAccount::default()
        },
    )
    .unwrap();
    let server = RunningServer::start(&t.url, &[]);
    let port = server.port;
    let timed = |method: &str, path: &str, content_type: &str, body: &[u8]| {
        let mut times: Vec<f64> = (0..ROUNDS)
            .map(|_| {
                let started = Instant::now();
                let answer = http(
                    port,
                    method,
                    path,
                    &[("Content-Type", content_type)],
                    body.to_vec(),
                    WAIT,
                )
                .expect("an answer");
                assert!(
                    answer.status == 500 || answer.status == 200,
                    "{}",
                    answer.status
                );
                started.elapsed().as_secs_f64() * 1000.0
            })
            .collect();
        times.sort_by(f64::total_cmp);
        (times[ROUNDS / 2], times[ROUNDS - 1])
    };
    let (p50, max) = timed("GET", "/healthz", "text/plain", b"");
    println!("bench/hostile: median and max of {ROUNDS} requests each, new connection per request");
    println!("reference /healthz                       {p50:>8.1} ms   max {max:>8.1} ms");
    let mut worst: f64 = 0.0;
    for (name, document) in hostile_documents() {
        let (soap, soap_max) = timed(
            "POST",
            "/Services/WSMailUpImport.asmx",
            "text/xml",
            &document,
        );
        let (page, page_max) = timed(
            "POST",
            "/frontend/xmlSubscribe.aspx",
            "application/x-www-form-urlencoded",
            &document,
        );
        worst = worst.max(soap_max).max(page_max);
        println!(
            "{name:<22} SOAP Fault {soap:>8.1} ms   max {soap_max:>8.1} ms   frontend code {page:>8.1} ms   max {page_max:>8.1} ms"
        );
    }
    println!(
        "slowest error answer: {worst:.1} ms (target: under 100 ms) -> {}",
        if worst < 100.0 { "met" } else { "NOT met" }
    );
}
