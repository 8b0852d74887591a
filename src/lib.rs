//! stratbox runs untrusted Python strategies in a sandbox and reports what happened.
//!
//! The flow is `source → validate → route → backend → Outcome`: the validator checks the
//! source against the [`Policy`] before anything runs, the router picks a backend from the
//! imports, and the backend runs the strategy in a fresh, isolated instance — CPython on
//! WASI in-process ([`backend::WasmBackend`]) or a hardened container
//! ([`backend::ContainerBackend`]). Both report the same [`Outcome`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use stratbox::{Policy, Request, Sandbox};
//!
//! let sandbox = Sandbox::new();
//! let policy = Policy::load("default")?;
//! let outcome = sandbox
//!     .run(&Request::new("print('hello')", "hello.py"), &policy)
//!     .await;
//! assert_eq!(outcome.stdout, "hello\n");
//! # Ok(()) }
//! ```

pub mod backend;
pub mod bench;
pub mod image;
pub mod outcome;
pub mod policy;
pub mod route;
mod sandbox;
pub mod validate;

pub use outcome::{Outcome, Reason, Status};
pub use policy::Policy;
pub use route::BackendKind;
pub use sandbox::{Request, Sandbox};
