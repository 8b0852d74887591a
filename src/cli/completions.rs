//! `stratbox completions SHELL`: a completion script for bash, zsh, fish, elvish or
//! PowerShell, generated from the command line's own definition.

use std::io::Write as _;

use clap::CommandFactory as _;

use super::{Cli, CompletionsArgs};

pub fn run(args: CompletionsArgs) -> anyhow::Result<u8> {
    // Generated into memory first: clap_complete panics when its writer fails, and a
    // closed stdout must end the process quietly instead.
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "stratbox", &mut script);
    std::io::stdout().lock().write_all(&script)?;
    Ok(0)
}
