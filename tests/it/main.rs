//! stratbox's integration tests: one binary, one module per area. They run the real wasm
//! guest and (with the `test-docker` feature, which CI turns on) the real Docker engine.

mod common;

/// The audit log: whole lines under concurrency, the facts of each run, `audit verify`.
mod audit;
/// `stratbox batch`: one outcome per request line, bad lines `invalid`, exit codes.
mod batch;
/// What the build makes: the guest without its debug names, the binary position-independent
/// with packed relocations.
mod built;
/// The command line: arguments, exit codes, bad input, output formats.
mod cli;
/// The container backend: confinement, limits, outcomes and cleanup against the real engine.
#[cfg(feature = "test-docker")]
mod container;
/// Deterministic runs: seeded randomness and fuel-driven clocks, byte-identical outcomes.
mod determinism;
/// Generated data against the interpreters; the host's inventory against CPython's.
mod generated;
/// Every honest fixture passes `check` and ends `ok`, with the same stdout, on every backend
/// it routes to.
#[cfg(feature = "test-docker")]
mod honest;
/// The same limits on both backends end with the same status and reason.
#[cfg(feature = "test-docker")]
mod parity;
/// The warm container pool: pooled runs end as cold ones, one run per container, dead
/// containers passed over, limits, cleanup.
#[cfg(feature = "test-docker")]
mod pool;
/// `doctor --probe` and `doctor --seccomp`: every layer proven in force, a weakened profile
/// caught, nothing left behind.
#[cfg(feature = "test-docker")]
mod probe;
/// Ready wasm instances: runs end as with instances of their own, and nothing carries
/// from one strategy to the next.
mod ready;
/// The JSON Schemas `stratbox schema` prints match real outcomes and requests.
mod schema;
/// The wasm guest's file system: its own in-memory /tmp, a read-only /data, nothing else.
mod scratch;
/// `stratbox serve` over real HTTP: endpoints, refusals, overload, tokens, shutdown; and
/// the Python client's tests against it.
mod serve;
/// The AST validator and the router: fixtures, rules, NFKC, routing, diagnostics.
mod validator;
/// The wasm backend: limits, capabilities and isolation of the CPython guest.
mod wasm;
