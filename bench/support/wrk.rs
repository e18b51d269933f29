//! Running `wrk` and reading its figures, for the HTTP load benchmarks.

use std::process::Command;

pub const CONNECTIONS: &str = "64";

pub struct Load {
    pub rate: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Socket errors and non-2xx answers.
    pub errors: u64,
    /// (answered as expected, answered otherwise), from a script that prints
    /// `ANSWERS ok=N bad=M`.
    pub answers: Option<(u64, u64)>,
}

/// `wrk` with 2 threads and 64 connections for `seconds` against `base` +
/// `path`, optionally with a Lua script (path under the repository) and its
/// arguments.
pub fn wrk(base: &str, path: &str, seconds: &str, script: Option<(&str, &[&str])>) -> Load {
    let mut cmd = Command::new("wrk");
    cmd.args([
        "-t",
        "2",
        "-c",
        CONNECTIONS,
        "-d",
        &format!("{seconds}s"),
        "--latency",
    ]);
    if let Some((script, _)) = script {
        cmd.args(["-s", &format!("{}/{script}", env!("CARGO_MANIFEST_DIR"))]);
    }
    cmd.arg(format!("{base}{path}"));
    if let Some((_, arguments)) = script {
        cmd.arg("--").args(arguments);
    }
    let out = cmd
        .output()
        .expect("wrk (the bench's run script installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let number_after = |label: &str| -> Option<f64> {
        let line = text.lines().find(|l| l.trim_start().starts_with(label))?;
        let value = line.trim_start()[label.len()..].split_whitespace().next()?;
        Some(value.parse().unwrap_or(0.0))
    };
    let latency = |label: &str| -> f64 {
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with(label))
            .unwrap_or_else(|| panic!("no {label} in wrk output:\n{text}"));
        milliseconds(line.split_whitespace().nth(1).unwrap())
    };
    let errors = text
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            if let Some(rest) = l.strip_prefix("Socket errors:") {
                Some(
                    rest.split(',')
                        .filter_map(|p| p.split_whitespace().last()?.parse::<u64>().ok())
                        .sum(),
                )
            } else {
                l.strip_prefix("Non-2xx or 3xx responses:")
                    .and_then(|n| n.trim().parse::<u64>().ok())
            }
        })
        .sum();
    let answers = text.lines().find_map(|l| {
        let rest = l.strip_prefix("ANSWERS ok=")?;
        let (ok, bad) = rest.split_once(" bad=")?;
        Some((ok.parse().ok()?, bad.trim().parse().ok()?))
    });
    Load {
        rate: number_after("Requests/sec:").unwrap_or_else(|| panic!("wrk output:\n{text}")),
        p50_ms: latency("50%"),
        p99_ms: latency("99%"),
        errors,
        answers,
    }
}

/// wrk's `1.23ms`, `456.00us`, `1.20s` in milliseconds.
fn milliseconds(text: &str) -> f64 {
    let (number, factor) = if let Some(n) = text.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1000.0)
    } else {
        (text, 1.0)
    };
    number.parse::<f64>().unwrap_or(0.0) * factor
}
