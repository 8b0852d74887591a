//! stratbox runs untrusted Python strategies in a sandbox and reports what happened.
//!
//! The flow is `source → validate → route → backend → Outcome`: the validator checks the
//! source against the [`Policy`] before anything runs, the router picks a backend from the
//! imports, and the backend runs the strategy in a fresh, isolated instance — CPython on
//! WASI in-process ([`backend::WasmBackend`]) or a hardened container
//! ([`backend::ContainerBackend`]). Both report the same [`Outcome`].
//!
//! A [`Sandbox`] is built with [`Sandbox::builder`], whose docs list every default; the
//! library reads no environment variable unless asked ([`SandboxBuilder::from_env`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use stratbox::{BackendKind, Policy, Request, Sandbox, Status};
//!
//! let sandbox = Sandbox::builder()
//!     .guest_path("wasm/build/stratbox-guest.wasm")
//!     .docker_host("unix:///var/run/docker.sock")
//!     .build();
//! let policy = Policy::load("default")?;
//! for backend in [BackendKind::Wasm, BackendKind::Container] {
//!     let request = Request {
//!         backend: Some(backend),
//!         ..Request::new("print('hello')", "hello.py")
//!     };
//!     let outcome = sandbox.run(&request, &policy).await;
//!     match (outcome.status, outcome.cause) {
//!         (Status::Ok, _) => assert_eq!(outcome.stdout, "hello\n"),
//!         (Status::Unavailable, Some(cause)) => eprintln!("{backend}: {cause}"),
//!         (status, _) => eprintln!("{backend}: {}", status.as_str()),
//!     }
//! }
//! # Ok(()) }
//! ```

#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod audit;
pub mod backend;
pub mod batch;
#[cfg(feature = "cli")]
pub mod bench;
pub mod image;
pub mod outcome;
pub mod policy;
pub mod request;
pub mod route;
mod sandbox;
#[cfg(feature = "serve")]
pub mod serve;
pub mod validate;

pub use outcome::{Cause, Outcome, Reason, Status, Unreproducible};
pub use policy::Policy;
pub use route::BackendKind;
pub use sandbox::{Request, Sandbox, SandboxBuilder};
