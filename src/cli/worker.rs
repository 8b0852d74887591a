//! `stratbox wasm-worker` (hidden): serves wasm runs for a parent `stratbox` (`batch`,
//! `serve`) over stdin and stdout; see `stratbox::backend::wasm::workers`.

use anyhow::Context as _;

use stratbox::Sandbox;
use stratbox::backend::wasm::SlotReset;
use stratbox::backend::wasm::workers::{self, WorkerCommand};

/// The hidden sub-command's name.
const SUBCOMMAND: &str = "wasm-worker";

/// How a parent starts a worker: this very executable with the hidden sub-command.
pub fn command() -> anyhow::Result<WorkerCommand> {
    Ok(WorkerCommand {
        program: std::env::current_exe().context("cannot find the stratbox executable")?,
        args: vec![SUBCOMMAND.to_owned()],
    })
}

pub fn run() -> anyhow::Result<u8> {
    // The worker runs one strategy at a time: two slots leave room for the one being
    // reset while the next starts.
    let sandbox = Sandbox::builder()
        .from_env()
        .pool_size(2)
        .slot_reset(SlotReset::Written)
        .build();
    let backend = sandbox.wasm()?;
    let mut input = std::io::stdin().lock();
    let mut output = std::io::stdout().lock();
    workers::serve(backend, &mut input, &mut output).context("the wasm worker's pipes failed")?;
    Ok(0)
}
