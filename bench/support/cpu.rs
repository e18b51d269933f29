//! CPU time of processes, for the HTTP load benchmarks: the two cores are
//! shared by wrk and the server, so CPU per request bounds the rate.

use std::process::Command;

/// CPU seconds (user + system) spent by a process, from `/proc/<pid>/stat`:
/// `pid` `None` reads this process's waited-for children (wrk).
pub fn cpu_seconds(pid: Option<u32>) -> f64 {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_string(),
    };
    let stat = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    // The fields after the command name (which may hold spaces), in brackets.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    // utime, stime are fields 14 and 15 of stat(5); cutime, cstime 16 and 17.
    let at = if pid.is_some() { 11 } else { 13 };
    let ticks: f64 = fields[at..at + 2]
        .iter()
        .map(|f| f.parse::<f64>().unwrap_or(0.0))
        .sum();
    ticks / clock_ticks_per_second()
}

fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8_lossy(&out.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}
