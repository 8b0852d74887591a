//! The `stratbox` command: parse, run, map errors to exit codes.

mod cli;

use std::process::ExitCode;

use clap::Parser;

/// Exit code for usage and configuration errors (DESIGN.md).
const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(code) => ExitCode::from(code),
        // The reader went away (`stratbox run x.py --json | head -c 1`): end quietly, as
        // ripgrep does. Rust ignores SIGPIPE, so the failed write comes back as an error.
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("stratbox: error: {err:#}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// Whether `err` comes from writing to a closed pipe.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || cause
                .downcast_ref::<serde_json::Error>()
                .and_then(serde_json::Error::io_error_kind)
                == Some(std::io::ErrorKind::BrokenPipe)
    })
}
