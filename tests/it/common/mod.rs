//! Shared helpers: one sandbox per test process, policies built from TOML, run shortcuts.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use stratbox::backend::WasmBackend;
use stratbox::{BackendKind, Outcome, Policy, Request, Sandbox};

/// The process-wide sandbox: the guest is compiled (or loaded from the cache) once.
pub fn sandbox() -> &'static Sandbox {
    static SANDBOX: OnceLock<Sandbox> = OnceLock::new();
    SANDBOX.get_or_init(|| {
        let wasm = WasmBackend::new()
            .expect("the wasm guest must be built before the tests run: `make guest`");
        Sandbox::with_wasm(wasm)
    })
}

/// A policy from the default profile with extra TOML appended (tables may repeat keys of
/// the default profile only by replacing whole tables, so `extra` names its own tables).
pub fn policy(extra: &str) -> Policy {
    Policy::from_toml("test", "test profile", extra).unwrap_or_else(|e| panic!("{e}\n{extra}"))
}

/// A policy with the validator switched off: proves the backend holds on its own.
pub fn unvalidated(limits: &str) -> Policy {
    policy(&format!(
        "[validator]\nenabled = false\n[imports.native]\nnumpy = \"test\"\npandas = \"test\"\n{limits}"
    ))
}

/// Runs `source` with `input` on `backend` under `policy`.
pub async fn run_on(
    backend: BackendKind,
    source: &str,
    input: &[u8],
    data: Option<&Path>,
    policy: &Policy,
) -> Outcome {
    let request = Request {
        input,
        data_dir: data,
        backend: Some(backend),
        ..Request::new(source, "strategy.py")
    };
    sandbox().run(&request, policy).await
}

/// Runs `source` on the wasm backend with the validator off.
pub async fn wasm(source: &str, limits: &str) -> Outcome {
    run_on(BackendKind::Wasm, source, b"", None, &unvalidated(limits)).await
}

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Asserts a status and reason, printing the whole outcome when they differ.
#[track_caller]
pub fn assert_ended(outcome: &Outcome, status: stratbox::Status, reason: Option<stratbox::Reason>) {
    assert_eq!(
        (outcome.status, outcome.reason),
        (status, reason),
        "unexpected ending:\n{}",
        serde_json::to_string_pretty(outcome).unwrap_or_default()
    );
}

/// What the machine's own `python3` prints for `source` with `input` on stdin.
pub fn native_python(source: &str, input: &[u8]) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new("python3")
        .args(["-I", "-c", source])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("input written");
    let output = child.wait_with_output().expect("python3 exits");
    assert!(output.status.success(), "native python3 failed");
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

/// Fails loudly (never skips) when the Docker engine or the runtime image is missing.
#[cfg(feature = "test-docker")]
pub async fn ensure_image() {
    use stratbox::backend::container::ContainerBackend;
    use stratbox::image::{ImageSpec, ImageStatus};
    let engine = ContainerBackend::new()
        .engine()
        .await
        .unwrap_or_else(|err| panic!("the container tests need a Docker engine: {err}"));
    let spec = ImageSpec::current();
    match stratbox::image::status(engine.docker(), &spec).await {
        Ok(ImageStatus::Current { .. }) => {}
        other => panic!(
            "the container tests need the runtime image {} (run `stratbox image build`): {other:?}",
            spec.tag()
        ),
    }
}

/// Names of the stratbox containers (running or not) whose `org.stratbox.policy` label is
/// `policy`: each test names its policy uniquely, so it can prove none of its containers is
/// left while other tests run.
#[cfg(feature = "test-docker")]
pub async fn containers_of(policy: &str) -> Vec<String> {
    stratbox::bench::load::containers_of(policy)
        .await
        .unwrap_or_else(|err| panic!("{err}"))
}

/// Sends SIGINT (what Ctrl-C sends) to `child` and returns its exit code.
pub fn interrupt(child: &mut std::process::Child) -> Option<i32> {
    let killed = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill -INT");
    assert!(killed.success());
    child.wait().expect("wait").code()
}

/// Honest fixtures the validator still refuses, with the one rule that refuses each. Every
/// entry is a known false alarm listed in the README ("What the validator refuses, and
/// why"); `validator::known_refusals_are_exactly_these` asserts each is refused by exactly
/// this rule, so a fix fails that test and shortens this list. The end-to-end honest test
/// runs every other fixture.
pub const KNOWN_REFUSALS: &[(&str, &str)] = &[];

/// A command's stdout as the one JSON object it must be; the panic shows both streams.
pub fn json(output: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON object ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// Runs the `stratbox` binary with `args` from the repository root, stdin empty.
pub fn stratbox(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_stratbox"))
        .args(args)
        .current_dir(root())
        .stdin(std::process::Stdio::null())
        .output()
        .expect("stratbox runs")
}

/// Runs `stratbox` with `args` in the repository root, feeding `stdin` from a thread (so a
/// large input cannot dead-lock against the child's output); a child that stops reading
/// early is not a failure.
pub fn stratbox_fed(args: &[&str], stdin: Vec<u8>) -> std::process::Output {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_stratbox"))
        .args(args)
        .current_dir(root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("stratbox starts");
    let mut pipe = child.stdin.take().expect("stdin");
    let feeder = std::thread::spawn(move || {
        let _ = pipe.write_all(&stdin);
    });
    let output = child.wait_with_output().expect("stratbox exits");
    feeder.join().expect("the feeder thread");
    output
}
