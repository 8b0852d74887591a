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
        Err(err) => {
            eprintln!("stratbox: error: {err:#}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}
