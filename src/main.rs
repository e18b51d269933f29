use std::process::ExitCode;

use clap::Parser;

/// The server allocates and frees small buffers per request on many threads,
/// often freeing on another thread than the one that allocated (a grouped
/// write's request and answer); glibc's allocator spent about a tenth of the
/// server's CPU there under `bench/frontend` (decision 75).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    espbridge::cli::run(espbridge::cli::Cli::parse())
}
