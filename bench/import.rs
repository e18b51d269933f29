//! `bench/import`: one WSMailUpImport StartImportProcesses call carrying
//! 100,000 recipients, timed from the request to GetProcessDetails reporting
//! the process done, beside a reference load of the same rows in the same run:
//! the `sqlite3` shell's `.import` into a table with a unique e-mail key, and
//! PostgreSQL's `COPY` (through `psql`).
//!
//! On SQLite it also prints (c), the floor of the server's own schema: the
//! same rows written by five plain `INSERT … SELECT` statements into a fresh
//! espbridge database (recipients, their two field values, subscriptions and
//! their history, in one transaction) by the `sqlite3` shell, with the ids
//! given and nothing read or checked first. No import can write its rows
//! faster than that.
//!
//! Besides the rates it prints the CPU time the server spent on the import
//! (and how much of it before answering), and the `sqlite3` shell's: on a
//! machine shared with other work these compare more steadily than times.
//!
//! Run it with `bench/import/run`. Environment: `ESPBRIDGE_BENCH_ROWS`
//! (default 100000).

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/cpu.rs"]
mod cpu;

use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

use espbridge::db::Backend;
use espbridge::domain::accounts::{self, CreatedAccount, NewAccount};
use espbridge::domain::lists;

const NAMESPACE: &str = "http://ws.mailupnet.it/";
const SERVICE: &str = "/Services/WSMailUpImport.asmx";

fn main() {
    let rows: usize = std::env::var("ESPBRIDGE_BENCH_ROWS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000);
    println!("bench/import: StartImportProcesses with {rows} recipients (e-mail and two fields)");
    run(&common::TestDb::sqlite(), rows);
    // The PostgreSQL half runs where the test helper finds a server
    // (`ESPBRIDGE_TEST_POSTGRES_URL`, which bench/import/run sets).
    if let Some(postgres) = common::TestDb::postgres() {
        run(&postgres, rows);
    }
}

fn run(t: &common::TestDb, rows: usize) {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("rows.csv");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&csv).unwrap());
    let mut document = String::with_capacity(rows * 120);
    document.push_str("<subscribers>");
    for i in 0..rows {
        writeln!(file, "user{i}@example.com,First{i},Last{i}").unwrap();
        document.push_str(&format!(
            "<subscriber email=\"user{i}@example.com\" Prefix=\"\" Number=\"\">\
             <campo1>First{i}</campo1><campo2>Last{i}</campo2></subscriber>"
        ));
    }
    document.push_str("</subscribers>");
    file.flush().unwrap();
    drop(file);

    let children_before = cpu::children_cpu_seconds();
    let (backend, reference) = match t.backend() {
        Backend::Sqlite => ("SQLite", sqlite_reference(dir.path(), &csv)),
        Backend::Postgres => ("PostgreSQL", postgres_reference(&t.url, &csv)),
    };
    // The `sqlite3` shell does all of its load itself, so its CPU time compares
    // with the server's; `psql` only sends the rows to the PostgreSQL server.
    let reference_cpu = match t.backend() {
        Backend::Sqlite => format!(
            "   (CPU {:.2} s)",
            cpu::children_cpu_seconds() - children_before
        ),
        Backend::Postgres => String::new(),
    };

    let created = new_account(t, "Bench");
    let server = common::RunningServer::start(&t.url, &[("RUST_LOG", "error")]);
    let auth = format!(
        "<Authentication xmlns=\"{NAMESPACE}\"><User>{}</User><Password>{}</Password></Authentication>",
        created.mailup.ws_user, created.mailup.ws_password
    );
    let call = |operation: &str, params: &str| -> String {
        let envelope = format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\">\
             <soap:Header>{auth}</soap:Header><soap:Body><{operation} xmlns=\"{NAMESPACE}\">{params}</{operation}></soap:Body></soap:Envelope>"
        );
        let answer = common::http(
            server.port,
            "POST",
            SERVICE,
            &[("Content-Type", "text/xml; charset=utf-8")],
            envelope.into_bytes(),
            Duration::from_secs(300),
        )
        .expect("the server answered");
        assert_eq!(answer.status, 200, "{operation}: {}", answer.body);
        answer
            .body
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&amp;", "&")
    };
    let list = format!(
        "<idList>1</idList><listGUID>{}</listGUID>",
        created.default_list.guid
    );
    let flags = "<importType>3</importType><mobileInputType>1</mobileInputType>\
                 <asPending>false</asPending><ConfirmEmail>false</ConfirmEmail><asOptOut>false</asOptOut>\
                 <forceOptIn>false</forceOptIn><replaceGroups>false</replaceGroups>";

    let cpu_before = cpu::cpu_seconds(server.pid());
    let started = Instant::now();
    let answer = call(
        "StartImportProcesses",
        &format!(
            "<listsIDs>1</listsIDs><listsGUIDs>{}</listsGUIDs><xmlDoc>{}</xmlDoc><groupsIDs></groupsIDs>{flags}",
            created.default_list.guid,
            espbridge::xml::writer::escape(&document)
        ),
    );
    let answered = started.elapsed();
    let answered_cpu = cpu::cpu_seconds(server.pid()) - cpu_before;
    let process = between(&answer, "<processID>", "</processID>");
    let details = loop {
        let details = call(
            "GetProcessDetails",
            &format!("{list}<idProcess>{process}</idProcess>"),
        );
        if details.contains("<StatusCode>3</StatusCode>")
            || details.contains("<StatusCode>4</StatusCode>")
        {
            break details;
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "import did not finish"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let elapsed = started.elapsed();
    // The server's CPU time over the import (reading, answering, the runner's
    // chunks, and the client's polls): steadier than the elapsed time on a
    // shared machine, and what bounds it on two cores.
    let server_cpu = cpu::cpu_seconds(server.pid()) - cpu_before;
    drop(server);
    assert!(details.contains("<StatusCode>3</StatusCode>"), "{details}");
    let subscribed = lists::get(&mut t.db.conn().unwrap(), created.account_id, 1)
        .unwrap()
        .subscribed_count;
    assert_eq!(subscribed, rows as i64, "every row imported");

    let ours = rows as f64 / elapsed.as_secs_f64();
    let theirs = rows as f64 / reference.1.as_secs_f64();
    println!(
        "(a) {backend:<10} {:<34} {:>9.0} rows/s   {:>7.2} s{reference_cpu}",
        reference.0,
        theirs,
        reference.1.as_secs_f64()
    );
    if t.backend() == Backend::Sqlite {
        let floor = sqlite_schema_floor(&csv);
        let floor_rate = rows as f64 / floor.as_secs_f64();
        println!(
            "(c) {backend:<10} {:<34} {:>9.0} rows/s   {:>7.2} s   c/a {:.2}",
            "INSERT … SELECT into our tables",
            floor_rate,
            floor.as_secs_f64(),
            floor_rate / theirs,
        );
    }
    println!(
        "(b) {backend:<10} {:<34} {:>9.0} rows/s   {:>7.2} s   b/a {:.2}   (answered after {:.2} s; server CPU {:.2} s, {:.2} s of it to answer; {subscribed} subscribed)",
        "StartImportProcesses to done",
        ours,
        elapsed.as_secs_f64(),
        ours / theirs,
        answered.as_secs_f64(),
        server_cpu,
        answered_cpu,
    );
}

fn new_account(t: &common::TestDb, name: &str) -> CreatedAccount {
    accounts::create(
        &mut t.db.conn().unwrap(),
        &NewAccount {
            name: name.into(),
            ..NewAccount::default()
        },
    )
    .unwrap()
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let from = text
        .find(start)
        .unwrap_or_else(|| panic!("{start} in {text}"))
        + start.len();
    let to = from + text[from..].find(end).unwrap();
    &text[from..to]
}

/// `sqlite3`'s `.import` of the CSV into a table keyed by e-mail.
fn sqlite_reference(dir: &std::path::Path, csv: &std::path::Path) -> (&'static str, Duration) {
    let database = dir.join("reference.db");
    let script = format!(
        "PRAGMA journal_mode = WAL;\n\
         CREATE TABLE recipients (email TEXT NOT NULL UNIQUE, first TEXT, last TEXT);\n\
         .mode csv\n.import {} recipients\n",
        csv.display()
    );
    let started = Instant::now();
    sqlite_shell(&database, &script);
    ("sqlite3 .import (unique e-mail)", started.elapsed())
}

/// Runs a script in the `sqlite3` shell on `database`; returns what it printed.
fn sqlite_shell(database: &std::path::Path, script: &str) -> String {
    let mut child = Command::new("sqlite3")
        .arg(database)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("the sqlite3 shell (bench/import/run installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "sqlite3 failed");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The time the `sqlite3` shell takes to write the CSV's rows into a fresh
/// espbridge database as an import would leave them, the rows read into a
/// temporary table beforehand and not timed. The shell's settings are the
/// server's writer's.
fn sqlite_schema_floor(csv: &std::path::Path) -> Duration {
    let t = common::TestDb::sqlite();
    let created = new_account(&t, "Floor");
    let database = std::path::PathBuf::from(t.url.trim_start_matches("sqlite://"));
    let account = created.account_id;
    let list = lists::get(&mut t.db.conn().unwrap(), account, created.default_list.id)
        .unwrap()
        .id;
    let now = "strftime('%Y-%m-%d %H:%M:%f', 'now')";
    let script = format!(
        "PRAGMA journal_mode = WAL;\n\
         PRAGMA synchronous = NORMAL;\n\
         PRAGMA foreign_keys = ON;\n\
         PRAGMA cache_size = -{cache_kib};\n\
         CREATE TEMP TABLE given (email TEXT, first TEXT, last TEXT);\n\
         .mode csv\n.import {csv} given\n\
         CREATE TEMP TABLE ids AS SELECT (SELECT COALESCE(MAX(id), 0) FROM recipients) AS recipient, \
             (SELECT COALESCE(MAX(id), 0) FROM subscriptions) AS subscription;\n\
         .timer on\n\
         BEGIN;\n\
         INSERT INTO recipients (id, account_id, email, email_key, created_at, updated_at) \
             SELECT ids.recipient + g.rowid, {account}, g.email, g.email, {now}, {now} FROM given g, ids;\n\
         INSERT INTO recipient_field_values (account_id, recipient_id, field_number, value) \
             SELECT {account}, ids.recipient + g.rowid, 1, g.first FROM given g, ids;\n\
         INSERT INTO recipient_field_values (account_id, recipient_id, field_number, value) \
             SELECT {account}, ids.recipient + g.rowid, 2, g.last FROM given g, ids;\n\
         INSERT INTO subscriptions (id, account_id, list_id, recipient_id, status, source, \
                 created_at, status_changed_at, confirmed_at) \
             SELECT ids.subscription + g.rowid, {account}, {list}, ids.recipient + g.rowid, \
                 'subscribed', 'WSMailUpImport', {now}, {now}, {now} FROM given g, ids;\n\
         INSERT INTO subscription_history (account_id, subscription_id, list_id, recipient_id, \
                 from_status, to_status, actor, channel, note, created_at) \
             SELECT {account}, ids.subscription + g.rowid, {list}, ids.recipient + g.rowid, \
                 NULL, 'subscribed', 'a1', 'soap', 'WSMailUpImport', {now} FROM given g, ids;\n\
         COMMIT;\n",
        csv = csv.display(),
        cache_kib = espbridge::db::WRITER_CACHE_KIB,
    );
    // `.timer on` prints a line per statement: "Run Time: real 0.191 user … sys …".
    let seconds: f64 = sqlite_shell(&database, &script)
        .lines()
        .filter_map(|line| line.strip_prefix("Run Time: real "))
        .filter_map(|rest| rest.split_whitespace().next()?.parse::<f64>().ok())
        .sum();
    assert!(seconds > 0.0, "the sqlite3 shell printed no timings");
    Duration::from_secs_f64(seconds)
}

/// `COPY` of the CSV through `psql` into a table keyed by e-mail.
fn postgres_reference(url: &str, csv: &std::path::Path) -> (&'static str, Duration) {
    let started = Instant::now();
    let status = Command::new("psql")
        .args([
            url,
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            "CREATE TABLE reference_recipients (email TEXT NOT NULL UNIQUE, first TEXT, last TEXT)",
            "-c",
            &format!(
                "\\copy reference_recipients FROM '{}' WITH (FORMAT csv)",
                csv.display()
            ),
        ])
        .status()
        .expect("psql");
    assert!(status.success());
    ("psql COPY (unique e-mail)", started.elapsed())
}
