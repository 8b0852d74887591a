//! Embeds stratbox in a program: builds a sandbox with the builder (no environment variable
//! is read), then runs one strategy on each backend and prints the outcome as JSON.
//! Run it from the repository with `cargo run --release --example embed` after `make guest`
//! and `stratbox image build` (a backend that cannot run reports `unavailable` and why).

use stratbox::{BackendKind, Policy, Request, Sandbox};

const STRATEGY: &str = "\
import json, sys
prices = json.load(sys.stdin)['prices']
print('mean', sum(prices) / len(prices))
";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sandbox = Sandbox::builder()
        .guest_path(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/wasm/build/stratbox-guest.wasm"
        ))
        .docker_host("unix:///var/run/docker.sock")
        .pool_size(4)
        .build();
    let policy = Policy::load("default")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut all_ok = true;
    for backend in [BackendKind::Wasm, BackendKind::Container] {
        let request = Request {
            input: br#"{"prices": [1.0, 2.0, 4.5]}"#,
            backend: Some(backend),
            ..Request::new(STRATEGY, "mean.py")
        };
        let outcome = runtime.block_on(sandbox.run(&request, &policy));
        println!("{backend}: {}", serde_json::to_string(&outcome)?);
        all_ok &= outcome.status == stratbox::Status::Ok && outcome.stdout == "mean 2.5\n";
    }
    if all_ok {
        Ok(())
    } else {
        Err("a backend did not run the strategy; see its outcome above".into())
    }
}
