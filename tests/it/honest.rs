//! The honest corpus end to end: every strategy in `tests/fixtures/honest` passes `check`,
//! is routed where its imports say (numpy/pandas to the container, the rest to wasm), ends
//! `ok` on every backend that can run it (standard-library strategies on wasm *and* in the
//! container, which carries the whole standard library; numpy/pandas strategies in the
//! container), and prints the same stdout on each backend as native CPython 3.13 does.
//!
//! Input: a fixture reads `NAME.json` on stdin when that file exists, else the shared
//! `input.json`. Expected output: `expected/NAME.stdout`, what CPython 3.13 (with numpy 2.2
//! and pandas 2.2 for the native strategies) printed, written by
//! `tests/fixtures/honest/run_native.sh PYTHON --update`; the same script re-checks the
//! corpus natively.
//!
//! The test reports every failing fixture at once, each with its backend, status, reason,
//! violations and stderr, and then a count per cause. A refused run is re-run with the
//! validator off so that the report also says what the backend itself would have done.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use futures_util::stream::{self, StreamExt};
use stratbox::{BackendKind, Outcome, Policy, Request, Status};

use crate::common::{ensure_image, sandbox};

/// How many containers run at once: the engine runs eight comfortably.
const CONTAINER_JOBS: usize = 8;
/// How many wasm runs at once: they share the machine's cores with the containers.
const WASM_JOBS: usize = 2;
/// The corpus must stay at least this large, and hold at least this many numpy/pandas ones.
const MIN_FIXTURES: usize = 100;
const MIN_NATIVE: usize = 20;
/// The wall-clock deadline of each run (see [`default_policy`]).
const WALL_TIME: std::time::Duration = std::time::Duration::from_secs(60);

/// One honest strategy with its input and what native CPython printed.
struct Fixture {
    name: String,
    source: String,
    input: Vec<u8>,
    /// Imports numpy or pandas, so it runs only in the container.
    native: bool,
    expected: Option<String>,
}

impl Fixture {
    fn filename(&self) -> String {
        format!("{}.py", self.name)
    }

    /// The backend `check` must route it to.
    fn routed(&self) -> BackendKind {
        if self.native {
            BackendKind::Container
        } else {
            BackendKind::Wasm
        }
    }

    /// Every backend that can run it.
    fn backends(&self) -> &'static [BackendKind] {
        if self.native {
            &[BackendKind::Container]
        } else {
            &[BackendKind::Wasm, BackendKind::Container]
        }
    }
}

fn honest_dir() -> PathBuf {
    crate::common::root().join("tests/fixtures/honest")
}

/// A top-level `import numpy…`/`from pandas…` line: the same test as `run_native.sh`.
fn imports_native(source: &str) -> bool {
    source.lines().any(|line| {
        ["numpy", "pandas"].iter().any(|package| {
            line.strip_prefix("import ")
                .or_else(|| line.strip_prefix("from "))
                .and_then(|rest| rest.strip_prefix(package))
                .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '.', ',']))
        })
    })
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

fn fixtures() -> Vec<Fixture> {
    let dir = honest_dir();
    let shared_input = read(&dir.join("input.json"));
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("the honest fixture directory exists")
        .map(|entry| entry.expect("readable entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "py"))
        .filter(|path| {
            let file = path.file_name().and_then(|f| f.to_str()).unwrap_or("");
            !crate::common::KNOWN_REFUSALS
                .iter()
                .any(|(known, _)| *known == file)
        })
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let name = path
                .file_stem()
                .and_then(|stem| stem.to_str())
                .expect("UTF-8 fixture name")
                .to_owned();
            let source = String::from_utf8(read(&path)).expect("fixture is UTF-8");
            let own_input = dir.join(format!("{name}.json"));
            let input = if own_input.exists() {
                read(&own_input)
            } else {
                shared_input.clone()
            };
            let expected =
                std::fs::read_to_string(dir.join(format!("expected/{name}.stdout"))).ok();
            Fixture {
                native: imports_native(&source),
                name,
                source,
                input,
                expected,
            }
        })
        .collect()
}

/// The shipping default profile, as a user gets it, except for a longer wall-clock deadline:
/// the test runs many strategies at once on machines with few cores, where starting eight
/// pandas containers side by side can take longer than the default 10 s although each
/// fixture needs well under a second of CPU (`run_native.sh` prints the native times). The
/// CPU limits (`fuel`, `cpu-time`) stay the profile's.
fn default_policy() -> Policy {
    let mut policy = Policy::default_profile();
    policy.limits.wall_time = WALL_TIME;
    policy
}

/// The same with the validator off: what the backend alone does with the code.
fn unvalidated_policy() -> Policy {
    let mut policy = default_policy();
    policy.validator.enabled = false;
    policy
}

/// One run of one fixture on one backend, and (when it was refused) the same run with the
/// validator off.
struct Run {
    fixture: usize,
    backend: BackendKind,
    outcome: Outcome,
    unvalidated: Option<Outcome>,
}

async fn run(fixtures: &[Fixture], fixture: usize, backend: BackendKind) -> Run {
    let f = &fixtures[fixture];
    let filename = f.filename();
    let request = Request {
        input: &f.input,
        // The routed backend is reached through the router; the other one is forced.
        backend: (backend != f.routed()).then_some(backend),
        ..Request::new(&f.source, &filename)
    };
    let outcome = sandbox().run(&request, &default_policy()).await;
    let unvalidated = if outcome.status == Status::Rejected {
        let forced = Request {
            backend: Some(backend),
            ..request
        };
        Some(sandbox().run(&forced, &unvalidated_policy()).await)
    } else {
        None
    };
    Run {
        fixture,
        backend,
        outcome,
        unvalidated,
    }
}

/// The last non-empty line of a stream: for a traceback, the exception.
fn last_line(text: &str) -> &str {
    text.lines()
        .rev()
        .find(|line| !line.trim().is_empty())
        .unwrap_or("")
}

fn indent(text: &str) -> String {
    let trimmed = text.trim_end();
    if trimmed.is_empty() {
        return "      (empty)".to_owned();
    }
    trimmed
        .lines()
        .map(|line| format!("      {line}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The first line where two outputs differ, for people.
fn first_difference(expected: &str, actual: &str) -> String {
    let (mut e, mut a) = (expected.lines(), actual.lines());
    for number in 1.. {
        match (e.next(), a.next()) {
            (Some(x), Some(y)) if x == y => {}
            (None, None) => return "only in line endings".to_owned(),
            (x, y) => {
                return format!(
                    "line {number}: expected {:?}, got {:?}",
                    x.unwrap_or("<end>"),
                    y.unwrap_or("<end>")
                );
            }
        }
    }
    unreachable!("the loop returns")
}

/// A run's ending for people: status, reason, exit code, message and violations.
fn describe(outcome: &Outcome) -> String {
    let mut text = outcome.summary();
    if let Some(message) = &outcome.message {
        text.push_str(&format!("; message: {message}"));
    }
    for v in &outcome.violations {
        text.push_str(&format!(
            "\n      {} {}:{} {}",
            v.rule, v.line, v.col, v.message
        ));
    }
    text
}

/// What made a failure, short enough to count: the violations' rule and message, or the
/// exception the strategy died with.
fn cause(outcome: &Outcome) -> Vec<String> {
    match outcome.status {
        Status::Rejected => outcome
            .violations
            .iter()
            .map(|v| format!("rejected: {}: {}", v.rule, v.message))
            .collect(),
        Status::Error => vec![format!("error: {}", last_line(&outcome.stderr))],
        Status::Killed => vec![format!(
            "killed ({})",
            outcome.reason.map_or("no reason", |r| r.as_str())
        )],
        Status::Unavailable => vec![format!(
            "unavailable: {}",
            outcome.message.as_deref().unwrap_or("")
        )],
        Status::Ok => vec!["ok".to_owned()],
        other => vec![format!("{other:?}")],
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_honest_fixture_ends_ok_on_every_backend_it_routes_to() {
    ensure_image().await;
    let fixtures = fixtures();
    let native = fixtures.iter().filter(|f| f.native).count();
    assert!(
        fixtures.len() >= MIN_FIXTURES && native >= MIN_NATIVE,
        "the honest corpus shrank: {} fixtures ({native} numpy/pandas), want {MIN_FIXTURES} ({MIN_NATIVE})",
        fixtures.len()
    );

    // failures[fixture] = lines describing what went wrong with it; causes[cause] = fixtures.
    let mut failures: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    let mut causes: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    let mut note = |fixture: usize, line: String, why: Vec<String>| {
        failures.entry(fixture).or_default().push(line);
        for why in why {
            causes
                .entry(why)
                .or_default()
                .insert(fixtures[fixture].name.as_str());
        }
    };

    // 1. `check`: no violation, and routed where the imports say.
    for (i, f) in fixtures.iter().enumerate() {
        let filename = f.filename();
        let request = Request::new(&f.source, &filename);
        match sandbox().check(&request, &default_policy()) {
            Ok(route) if route.backend == f.routed() => {}
            Ok(route) => note(
                i,
                format!(
                    "  check: routed to {} ({}), expected {}",
                    route.backend,
                    route.why,
                    f.routed()
                ),
                vec![format!(
                    "routed to {} instead of {}",
                    route.backend,
                    f.routed()
                )],
            ),
            Err(violations) => note(
                i,
                format!(
                    "  check: refused\n{}",
                    violations
                        .iter()
                        .map(|v| format!("      {} {}:{} {}", v.rule, v.line, v.col, v.message))
                        .collect::<Vec<_>>()
                        .join("\n")
                ),
                Vec::new(), // counted once, under the runs below
            ),
        }
        if f.expected.is_none() {
            note(
                i,
                format!(
                    "  no expected/{}.stdout: run tests/fixtures/honest/run_native.sh --update",
                    f.name
                ),
                vec!["no expected stdout".to_owned()],
            );
        }
    }

    // 2. Every backend it can run on, the containers and the wasm runs side by side.
    let jobs = |kind: BackendKind| -> Vec<(usize, BackendKind)> {
        (0..fixtures.len())
            .filter(|&i| fixtures[i].backends().contains(&kind))
            .map(|i| (i, kind))
            .collect()
    };
    let fixtures_ref = &fixtures;
    let wasm = stream::iter(jobs(BackendKind::Wasm))
        .map(|(i, kind)| run(fixtures_ref, i, kind))
        .buffer_unordered(WASM_JOBS)
        .collect::<Vec<Run>>();
    let container = stream::iter(jobs(BackendKind::Container))
        .map(|(i, kind)| run(fixtures_ref, i, kind))
        .buffer_unordered(CONTAINER_JOBS)
        .collect::<Vec<Run>>();
    let (wasm, container) = tokio::join!(wasm, container);

    // stdout of the runs that ended ok, per fixture and backend.
    let mut stdout: BTreeMap<(usize, &'static str), String> = BTreeMap::new();
    for r in wasm.into_iter().chain(container) {
        let f = &fixtures[r.fixture];
        let backend = r.backend;
        let o = &r.outcome;
        if o.status == Status::Ok && o.backend == Some(backend) {
            if let Some(expected) = &f.expected
                && &o.stdout != expected
            {
                note(
                    r.fixture,
                    format!(
                        "  {backend}: ok, but stdout differs from expected/{}.stdout ({})\n    stdout:\n{}",
                        f.name,
                        first_difference(expected, &o.stdout),
                        indent(&o.stdout)
                    ),
                    vec![format!("{backend}: stdout differs from native CPython")],
                );
            }
            stdout.insert((r.fixture, backend.as_str()), o.stdout.clone());
            continue;
        }
        let mut line = if o.status == Status::Rejected {
            // The violations are the ones `check` printed above.
            format!("  {backend}: rejected")
        } else {
            format!(
                "  {backend} (ran on {}): {}\n    stderr:\n{}",
                o.backend.map_or("nothing", BackendKind::as_str),
                describe(o),
                indent(&o.stderr)
            )
        };
        if let Some(off) = &r.unvalidated {
            let matches = match (&f.expected, off.status) {
                (Some(expected), Status::Ok) if &off.stdout == expected => "; stdout as native",
                (Some(_), Status::Ok) => "; stdout differs from native",
                _ => "",
            };
            line.push_str(&format!(
                "; with the validator off: {}{matches}{}",
                describe(off),
                match last_line(&off.stderr) {
                    "" => String::new(),
                    last => format!("; stderr: {last}"),
                }
            ));
        }
        // A refusal is the validator's, whatever the backend; anything else is the backend's.
        let mut why: Vec<String> = match o.status {
            Status::Rejected => cause(o),
            Status::Ok => vec![format!("{backend}: ran on {:?}", o.backend)],
            _ => cause(o)
                .into_iter()
                .map(|c| format!("{backend}: {c}"))
                .collect(),
        };
        if let Some(off) = r
            .unvalidated
            .as_ref()
            .filter(|off| off.status != Status::Ok)
        {
            why.extend(
                cause(off)
                    .into_iter()
                    .map(|c| format!("{backend} (validator off): {c}")),
            );
        }
        note(r.fixture, line, why);
    }

    // 3. The same stdout on both backends where both ran it.
    for i in 0..fixtures.len() {
        if let (Some(w), Some(c)) = (
            stdout.get(&(i, BackendKind::Wasm.as_str())),
            stdout.get(&(i, BackendKind::Container.as_str())),
        ) && w != c
        {
            note(
                i,
                format!(
                    "  stdout differs between wasm and container ({}; \"expected\" is wasm)",
                    first_difference(w, c)
                ),
                vec!["stdout differs between wasm and container".to_owned()],
            );
        }
    }

    if failures.is_empty() {
        return;
    }
    let mut report = format!(
        "{} of {} honest fixtures do not end ok everywhere:\n",
        failures.len(),
        fixtures.len()
    );
    for (i, lines) in &failures {
        report.push_str(&format!(
            "\n{}:\n{}\n",
            fixtures[*i].filename(),
            lines.join("\n")
        ));
    }
    report.push_str("\nby cause (fixtures):\n");
    let mut by_count: Vec<_> = causes.into_iter().collect();
    by_count.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then_with(|| a.0.cmp(&b.0)));
    for (why, names) in by_count {
        let names: Vec<&str> = names.into_iter().collect();
        report.push_str(&format!("  {:3} {why}: {}\n", names.len(), names.join(" ")));
    }
    panic!("{report}");
}
