//! CPU time of processes, from `/proc`, for the benchmarks' CPU-per-item figures
//! (steadier than rates on a shared machine).

// Each benchmark includes this file and uses part of it.
#![allow(dead_code)]

use std::process::Command;

/// User + system CPU seconds a process has used (`/proc/PID/stat` fields 14
/// and 15).
pub fn cpu_seconds(pid: u32) -> f64 {
    stat_seconds(&format!("/proc/{pid}/stat"), [11, 12])
}

/// User + system CPU seconds of this process's children that have been waited
/// for (`/proc/self/stat` fields 16 and 17): the difference around a
/// `Command::output` is that command's CPU.
pub fn children_cpu_seconds() -> f64 {
    stat_seconds("/proc/self/stat", [13, 14])
}

/// The sum of two clock-tick fields of a `stat` file (counted after the
/// command name, which is in parentheses and may hold spaces), in seconds.
fn stat_seconds(path: &str, fields: [usize; 2]) -> f64 {
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    let values: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks: f64 = fields
        .iter()
        .filter_map(|&i| values.get(i)?.parse::<f64>().ok())
        .sum();
    ticks / ticks_per_second()
}

fn ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse::<f64>().ok())
        .unwrap_or(100.0)
}

/// CPU seconds that the threads of process `pid` named `name` have run
/// (`/proc/PID/task/*/schedstat`, whose first field is nanoseconds on the
/// CPU). A serial stage such as the SQLite group writer bounds the rate by
/// its own CPU per request, whatever the process's total.
pub fn thread_cpu_seconds(pid: u32, name: &str) -> f64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0.0;
    };
    tasks
        .flatten()
        .filter(|task| {
            std::fs::read_to_string(task.path().join("comm")).is_ok_and(|comm| comm.trim() == name)
        })
        .filter_map(|task| {
            let schedstat = std::fs::read_to_string(task.path().join("schedstat")).ok()?;
            schedstat.split_whitespace().next()?.parse::<f64>().ok()
        })
        .sum::<f64>()
        / 1e9
}
