//! The command line's log: tracing events of the library and the binary, to stderr.
//!
//! The library emits events and never installs a subscriber; the command line installs
//! this one. stdout carries only what the command prints (the outcome, the report), so a
//! log never mixes into `--json`.

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

/// The environment variable whose filter replaces the level `-v`/`-q` choose.
pub const RUST_LOG: &str = "RUST_LOG";

/// The filter the flags choose: warnings by default, only errors with `-q`; `-v` shows
/// stratbox's own steps (`info`), `-vv` their details (`debug`), `-vvv` everything
/// (`trace` for stratbox, `debug` for the libraries under it). Libraries other than
/// stratbox stay at `warn` up to `-vv`.
pub fn directives(verbose: u8, quiet: bool) -> &'static str {
    match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "warn,stratbox=info",
        (false, 2) => "warn,stratbox=debug",
        (false, _) => "debug,stratbox=trace",
    }
}

/// Installs the subscriber: `RUST_LOG` when it is set and not empty (an invalid filter is
/// a usage error naming it), else the level the flags choose.
pub fn init(verbose: u8, quiet: bool) -> anyhow::Result<()> {
    let filter = match std::env::var(RUST_LOG) {
        // The parse error's own source repeats its message: only the outer one is kept.
        Ok(spec) if !spec.trim().is_empty() => EnvFilter::try_new(&spec).map_err(|err| {
            anyhow::anyhow!("{RUST_LOG}={spec:?} is not a valid log filter: {err}")
        })?,
        _ => EnvFilter::new(directives(verbose, quiet)),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_timer(tracing_subscriber::fmt::time::uptime())
        .try_init()
        .map_err(|err| anyhow::anyhow!("cannot install the log subscriber: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_flag_combination_is_a_valid_filter() {
        for quiet in [false, true] {
            for verbose in 0..5 {
                let spec = directives(verbose, quiet);
                assert!(EnvFilter::try_new(spec).is_ok(), "{spec}");
            }
        }
        assert_eq!(directives(3, true), "error");
    }
}
