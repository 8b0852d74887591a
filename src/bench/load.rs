//! A load test of `stratbox serve`: many clients at once against a real server with a
//! small run limit, for a fixed time. It checks what the server promises under overload:
//!
//! - every request is answered: `200` with an outcome, or `429` with `Retry-After`; a
//!   client that gets no answer within its timeout (a hung request), a refused connection
//!   or any other status is a failure;
//! - the server's resident memory (`VmRSS` of `/proc/PID/status`, sampled all along) is
//!   flat after the first third of the time: the maximum over the rest is at most
//!   [`RSS_GROWTH_TOLERANCE`] above the maximum over the first third;
//! - after SIGTERM the server exits 0 and no container of its profile is left, warm or
//!   running.
//!
//! The server runs a profile of its own (`serve-load-PID-N`, the default profile with a 60 s
//! deadline), so its containers carry a label no other process uses. Each client sends one
//! request at a time on a new connection; every `container_every`-th request imports numpy
//! (a container run, warm when the pool of one has a container ready), the others print
//! (a wasm run). After a `429` a client waits as `Retry-After` says, unless told to hammer.
//!
//! `cargo bench --bench serve_load` runs it (see `benches/serve_load.rs`);
//! `tests/it/serve.rs` runs a scaled-down one so that the tool cannot rot.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::http::{self, ServeProcess};
use crate::backend::container::RUN_LABEL;

/// How much the resident memory after the first third may exceed its maximum during the
/// first third and still count as flat.
pub const RSS_GROWTH_TOLERANCE: f64 = 0.10;

/// The wasm request's strategy.
const WASM_SOURCE: &str = "print(sum(range(1000)))";
/// The container request's strategy (numpy routes it to the container).
const CONTAINER_SOURCE: &str = "import numpy\nprint(int(numpy.arange(1000).sum()))";
/// What both print.
const EXPECTED_STDOUT: &str = "499500\n";

/// How the load test is run. [`LoadConfig::new`] gives the test: 200 clients for
/// 30 s against `--max-in-flight 8`.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// The `stratbox` executable to serve with.
    pub exe: PathBuf,
    /// Clients at once. Default [`LoadConfig::DEFAULT_CLIENTS`].
    pub clients: usize,
    /// How long clients keep sending. Default [`LoadConfig::DEFAULT_DURATION`].
    pub duration: Duration,
    /// The server's `--max-in-flight`. Default [`LoadConfig::DEFAULT_MAX_IN_FLIGHT`].
    pub max_in_flight: u32,
    /// The server's `--max-queue`. Default [`LoadConfig::DEFAULT_MAX_QUEUE`] (the server's
    /// own default).
    pub max_queue: u32,
    /// The server's `--pool`. Default 1.
    pub pool: usize,
    /// Every `container_every`-th request of a client is a container run; 0: none (no
    /// container is then started but the pool's). Default 10.
    pub container_every: u64,
    /// How long a client waits for an answer before the request counts as hung.
    /// Default [`LoadConfig::DEFAULT_CLIENT_TIMEOUT`].
    pub client_timeout: Duration,
    /// Whether a client waits as `Retry-After` says after a `429` (default) or sends its
    /// next request at once.
    pub honour_retry_after: bool,
    /// How often the server's resident memory is read. Default 250 ms.
    pub rss_interval: Duration,
}

impl LoadConfig {
    /// The clients.
    pub const DEFAULT_CLIENTS: usize = 200;
    /// The time.
    pub const DEFAULT_DURATION: Duration = Duration::from_secs(30);
    /// The run limit.
    pub const DEFAULT_MAX_IN_FLIGHT: u32 = 8;
    /// `stratbox serve`'s default queue.
    pub const DEFAULT_MAX_QUEUE: u32 = 64;
    /// A request unanswered this long is hung.
    pub const DEFAULT_CLIENT_TIMEOUT: Duration = Duration::from_secs(60);

    /// The defaults, serving with `exe`.
    pub fn new(exe: impl Into<PathBuf>) -> Self {
        Self {
            exe: exe.into(),
            clients: Self::DEFAULT_CLIENTS,
            duration: Self::DEFAULT_DURATION,
            max_in_flight: Self::DEFAULT_MAX_IN_FLIGHT,
            max_queue: Self::DEFAULT_MAX_QUEUE,
            pool: 1,
            container_every: 10,
            client_timeout: Self::DEFAULT_CLIENT_TIMEOUT,
            honour_retry_after: true,
            rss_interval: Duration::from_millis(250),
        }
    }
}

/// Why the load test could not run (not a failed check: those are in the report).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The profile file could not be written.
    #[error("cannot write the load test's profile")]
    Profile(#[source] std::io::Error),
    /// The server did not start.
    #[error("stratbox serve did not start: {0}")]
    Server(String),
    /// A request before the load did not end `ok`: the server cannot run what the
    /// clients will send (no guest, no engine, no image).
    #[error("the server cannot run the load's requests: {0}")]
    Preflight(String),
    /// The engine could not be asked which containers are left.
    #[error("cannot list the containers left: {0}")]
    Engine(String),
}

/// One resident-memory sample of the server.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct RssSample {
    /// Seconds since the clients started.
    pub seconds: f64,
    /// `VmRSS`, KiB.
    pub kib: u64,
}

/// What the load test saw.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    /// Clients at once.
    pub clients: usize,
    /// Seconds the clients kept sending.
    pub seconds: f64,
    /// The server's `--max-in-flight` and `--max-queue`.
    pub max_in_flight: u32,
    /// See `max_in_flight`.
    pub max_queue: u32,
    /// What the clients sent and got.
    #[serde(flatten)]
    pub answers: Answers,
    /// Latency of the `200`s (request to whole response), ms: p50, p95, max.
    pub latency_ms: [f64; 3],
    /// The server's resident memory over time.
    pub rss: Vec<RssSample>,
    /// Where the first third ends, seconds.
    pub rss_split_seconds: f64,
    /// The maximum `VmRSS` (KiB) in the first third and after it.
    pub rss_first_max_kib: Option<u64>,
    /// See `rss_first_max_kib`.
    pub rss_rest_max_kib: Option<u64>,
    /// The server's exit code after SIGTERM, or why it did not exit cleanly.
    pub exit: Result<i32, String>,
    /// Containers of the server's profile found after it exited.
    pub containers_left: Vec<String>,
}

/// What the clients sent and what came back.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Answers {
    /// Requests sent.
    pub sent: u64,
    /// `200` responses.
    pub ok: u64,
    /// `429` responses with a `Retry-After` header.
    pub busy: u64,
    /// `429` responses without one.
    pub busy_without_retry_after: u64,
    /// Any other status, with how many.
    pub unexpected: BTreeMap<u16, u64>,
    /// Requests with no answer: timeouts (hung), refused or cut connections.
    pub failures: u64,
    /// The first few failures' messages.
    pub failure_examples: Vec<String>,
    /// The outcomes of the `200`s, as `status/backend` (`ok/wasm`, `ok/container`).
    pub outcomes: BTreeMap<String, u64>,
    /// `200`s whose outcome was not `ok` with the expected stdout, first few.
    pub bad_outcome_examples: Vec<String>,
    /// Container runs that ended `ok` during the load.
    pub container_runs: u64,
}

impl Answers {
    fn merge(&mut self, other: Answers) {
        self.sent += other.sent;
        self.ok += other.ok;
        self.busy += other.busy;
        self.busy_without_retry_after += other.busy_without_retry_after;
        for (status, count) in other.unexpected {
            *self.unexpected.entry(status).or_default() += count;
        }
        self.failures += other.failures;
        keep_some(&mut self.failure_examples, other.failure_examples);
        for (key, count) in other.outcomes {
            *self.outcomes.entry(key).or_default() += count;
        }
        keep_some(&mut self.bad_outcome_examples, other.bad_outcome_examples);
        self.container_runs += other.container_runs;
    }
}

impl LoadReport {
    /// Every request got `200` or `429` with `Retry-After`; none hung or failed.
    pub fn every_request_answered(&self) -> bool {
        let a = &self.answers;
        a.failures == 0
            && a.unexpected.is_empty()
            && a.busy_without_retry_after == 0
            && a.ok + a.busy == a.sent
    }

    /// Every `200` carried an `ok` outcome with the expected output.
    pub fn every_outcome_ok(&self) -> bool {
        self.answers.bad_outcome_examples.is_empty()
    }

    /// Whether the resident memory after the first third stayed within
    /// [`RSS_GROWTH_TOLERANCE`] of the first third's maximum; `None` without samples on
    /// both sides.
    pub fn memory_flat(&self) -> Option<bool> {
        let (first, rest) = (self.rss_first_max_kib?, self.rss_rest_max_kib?);
        Some(rest as f64 <= first as f64 * (1.0 + RSS_GROWTH_TOLERANCE))
    }

    /// The server exited 0 after SIGTERM and left no container.
    pub fn clean_exit(&self) -> bool {
        self.exit == Ok(0) && self.containers_left.is_empty()
    }

    /// Every check held.
    pub fn passed(&self) -> bool {
        self.every_request_answered()
            && self.every_outcome_ok()
            && self.memory_flat() == Some(true)
            && self.clean_exit()
    }

    /// The report for people, one check per line.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let a = &self.answers;
        let mark = |held: bool| if held { "ok  " } else { "FAIL" };
        let _ = writeln!(
            out,
            "stratbox serve load test: {} clients for {:.0} s, --max-in-flight {} --max-queue {}",
            self.clients, self.seconds, self.max_in_flight, self.max_queue
        );
        let unexpected = listed(&a.unexpected, |status, count| format!("{count} × {status}"));
        let _ = writeln!(
            out,
            "{} answered: {} requests, {} × 200, {} × 429 with Retry-After, {} × 429 without, \
             {} other{}, {} unanswered (timeout or connection error)",
            mark(self.every_request_answered()),
            a.sent,
            a.ok,
            a.busy,
            a.busy_without_retry_after,
            a.unexpected.values().sum::<u64>(),
            if unexpected.is_empty() {
                String::new()
            } else {
                format!(" ({unexpected})")
            },
            a.failures
        );
        for example in &a.failure_examples {
            let _ = writeln!(out, "       {example}");
        }
        let outcomes = listed(&a.outcomes, |key, count| format!("{count} {key}"));
        let _ = writeln!(
            out,
            "{} outcomes: {} · latency of 200s p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms",
            mark(self.every_outcome_ok()),
            if outcomes.is_empty() {
                "none"
            } else {
                &outcomes
            },
            self.latency_ms[0],
            self.latency_ms[1],
            self.latency_ms[2]
        );
        for example in &a.bad_outcome_examples {
            let _ = writeln!(out, "       {example}");
        }
        let mib = |kib: Option<u64>| {
            kib.map_or_else(
                || "–".to_owned(),
                |k| format!("{:.1} MiB", k as f64 / 1024.0),
            )
        };
        let _ = writeln!(
            out,
            "{} resident memory: max {} in the first {:.0} s, max {} after ({} samples; flat = at most +{:.0} %)",
            mark(self.memory_flat() == Some(true)),
            mib(self.rss_first_max_kib),
            self.rss_split_seconds,
            mib(self.rss_rest_max_kib),
            self.rss.len(),
            RSS_GROWTH_TOLERANCE * 100.0
        );
        let _ = writeln!(
            out,
            "{} after SIGTERM: {}, {} container{} left ({} container runs sent)",
            mark(self.clean_exit()),
            match &self.exit {
                Ok(code) => format!("exit code {code}"),
                Err(reason) => reason.clone(),
            },
            self.containers_left.len(),
            if self.containers_left.len() == 1 {
                ""
            } else {
                "s"
            },
            a.container_runs
        );
        for name in &self.containers_left {
            let _ = writeln!(out, "       {name}");
        }
        let _ = writeln!(out, "{}", if self.passed() { "PASSED" } else { "FAILED" });
        out
    }
}

/// What one client saw.
#[derive(Debug, Default)]
struct Tally {
    answers: Answers,
    latencies_ms: Vec<f64>,
}

/// Examples kept of each kind of failure.
const EXAMPLES: usize = 5;

/// `map`'s entries as `item(key, count)`, comma-separated.
fn listed<K>(map: &BTreeMap<K, u64>, item: impl Fn(&K, u64) -> String) -> String {
    map.iter()
        .map(|(key, count)| item(key, *count))
        .collect::<Vec<_>>()
        .join(", ")
}

fn keep_some(into: &mut Vec<String>, from: Vec<String>) {
    let room = EXAMPLES.saturating_sub(into.len());
    into.extend(from.into_iter().take(room));
}

/// Runs the load test: starts the server, checks that it runs both kinds of request,
/// drives it with `clients` clients for `duration`, stops it with SIGTERM, and lists the
/// containers left. Call it on a multi-threaded runtime.
pub async fn run(config: &LoadConfig) -> Result<LoadReport, LoadError> {
    static SERIAL: AtomicU64 = AtomicU64::new(0);
    let dir = tempfile::Builder::new()
        .prefix("stratbox-load-")
        .tempdir()
        .map_err(LoadError::Profile)?;
    let name = format!(
        "serve-load-{}-{}",
        std::process::id(),
        SERIAL.fetch_add(1, Ordering::Relaxed)
    );
    let profile = dir.path().join(format!("{name}.toml"));
    std::fs::write(
        &profile,
        "description = \"stratbox serve load test\"\n\
         [limits]\nwall-time = \"60s\"\ncpu-time = \"60s\"\n\
         [imports.native]\nnumpy = \"the load test's container runs\"\n",
    )
    .map_err(LoadError::Profile)?;
    let profile_arg = profile.to_string_lossy().into_owned();
    let (in_flight, queue, pool) = (
        config.max_in_flight.to_string(),
        config.max_queue.to_string(),
        config.pool.to_string(),
    );
    let server = ServeProcess::start(
        &config.exe,
        &[
            "--profile",
            &profile_arg,
            "--max-in-flight",
            &in_flight,
            "--max-queue",
            &queue,
            "--pool",
            &pool,
        ],
    )
    .await
    .map_err(LoadError::Server)?;
    let addr = server.addr();

    // Both kinds of request must work before the load: a failure there is the machine's.
    let kinds: &[&str] = if config.container_every > 0 {
        &[WASM_SOURCE, CONTAINER_SOURCE]
    } else {
        &[WASM_SOURCE]
    };
    for source in kinds {
        let body = serde_json::json!({ "id": "preflight", "source": source }).to_string();
        let reply = http::request(
            addr,
            "POST",
            "/v1/run",
            body.as_bytes(),
            config.client_timeout,
        )
        .await
        .map_err(LoadError::Preflight)?;
        let outcome = reply.json().map_err(LoadError::Preflight)?;
        if reply.status != 200 || outcome["status"] != "ok" {
            return Err(LoadError::Preflight(format!(
                "{} {}: {}",
                reply.status,
                outcome["status"],
                outcome["message"]
                    .as_str()
                    .unwrap_or(outcome["stderr"].as_str().unwrap_or(""))
            )));
        }
    }

    let started = Instant::now();
    let deadline = started + config.duration;
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (sampling, pid, interval) = (Arc::clone(&sampling), server.pid(), config.rss_interval);
        tokio::spawn(async move {
            let mut samples = Vec::new();
            while sampling.load(Ordering::SeqCst) {
                if let Some(kib) = pid.and_then(resident_kib) {
                    samples.push(RssSample {
                        seconds: started.elapsed().as_secs_f64(),
                        kib,
                    });
                }
                tokio::time::sleep(interval).await;
            }
            samples
        })
    };
    let clients: Vec<_> = (0..config.clients)
        .map(|client| {
            let config = config.clone();
            tokio::spawn(async move { drive(client as u64, addr, deadline, &config).await })
        })
        .collect();
    let mut tally = Tally::default();
    for client in clients {
        let seen = client
            .await
            .unwrap_or_else(|err| std::panic::resume_unwind(err.into_panic()));
        tally.answers.merge(seen.answers);
        tally.latencies_ms.extend(seen.latencies_ms);
    }
    sampling.store(false, Ordering::SeqCst);
    let rss = sampler
        .await
        .unwrap_or_else(|err| std::panic::resume_unwind(err.into_panic()));

    let exit = match server.stop().await {
        Ok(Some(code)) => Ok(code),
        Ok(None) => Err("ended by a signal".to_owned()),
        Err(reason) => Err(reason),
    };
    // Without a pool or container runs no container was ever started (and there may be
    // no engine to ask).
    let containers_left = if config.pool == 0 && config.container_every == 0 {
        Vec::new()
    } else {
        containers_of(&name).await?
    };

    let split = config.duration.as_secs_f64() / 3.0;
    let max_where = |keep: &dyn Fn(f64) -> bool| {
        rss.iter()
            .filter(|sample| keep(sample.seconds))
            .map(|sample| sample.kib)
            .max()
    };
    let mut latencies = std::mem::take(&mut tally.latencies_ms);
    latencies.sort_by(f64::total_cmp);
    let rank = |q: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * q).round().max(0.0) as usize)
            .copied()
            .unwrap_or(0.0)
    };
    Ok(LoadReport {
        clients: config.clients,
        seconds: config.duration.as_secs_f64(),
        max_in_flight: config.max_in_flight,
        max_queue: config.max_queue,
        answers: tally.answers,
        latency_ms: [rank(0.5), rank(0.95), rank(1.0)],
        rss_split_seconds: split,
        rss_first_max_kib: max_where(&|t: f64| t < split),
        rss_rest_max_kib: max_where(&|t: f64| t >= split),
        rss,
        exit,
        containers_left,
    })
}

/// One client: a request at a time until `deadline`.
async fn drive(
    client: u64,
    addr: std::net::SocketAddr,
    deadline: Instant,
    config: &LoadConfig,
) -> Tally {
    let mut tally = Tally::default();
    let a = &mut tally.answers;
    let mut index = 0u64;
    while Instant::now() < deadline {
        let container =
            config.container_every > 0 && (client + index).is_multiple_of(config.container_every);
        let body = serde_json::json!({
            "id": format!("c{client}-{index}"),
            "source": if container { CONTAINER_SOURCE } else { WASM_SOURCE },
        })
        .to_string();
        index += 1;
        a.sent += 1;
        let sent = Instant::now();
        let reply = match http::request(
            addr,
            "POST",
            "/v1/run",
            body.as_bytes(),
            config.client_timeout,
        )
        .await
        {
            Ok(reply) => reply,
            Err(reason) => {
                a.failures += 1;
                if a.failure_examples.len() < EXAMPLES {
                    a.failure_examples.push(reason);
                }
                continue;
            }
        };
        match reply.status {
            200 => {
                a.ok += 1;
                tally.latencies_ms.push(sent.elapsed().as_secs_f64() * 1e3);
                let outcome = reply.json().unwrap_or_default();
                let key = format!(
                    "{}/{}",
                    outcome["status"].as_str().unwrap_or("?"),
                    outcome["backend"].as_str().unwrap_or("-")
                );
                let expected = if container { "ok/container" } else { "ok/wasm" };
                if key == "ok/container" {
                    a.container_runs += 1;
                }
                if (key != expected || outcome["stdout"] != EXPECTED_STDOUT)
                    && a.bad_outcome_examples.len() < EXAMPLES
                {
                    a.bad_outcome_examples.push(format!(
                        "{key} (expected {expected}): {}",
                        outcome["message"]
                            .as_str()
                            .or(outcome["stderr"].as_str())
                            .unwrap_or_default()
                    ));
                }
                *a.outcomes.entry(key).or_default() += 1;
            }
            429 => match reply.header("retry-after").map(str::parse::<u64>) {
                Some(Ok(seconds)) => {
                    a.busy += 1;
                    if config.honour_retry_after {
                        let left = deadline.saturating_duration_since(Instant::now());
                        tokio::time::sleep(Duration::from_secs(seconds).min(left)).await;
                    }
                }
                Some(Err(_)) | None => a.busy_without_retry_after += 1,
            },
            other => *a.unexpected.entry(other).or_default() += 1,
        }
    }
    tally
}

/// `VmRSS` of a process, KiB.
fn resident_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The containers (running or not) of stratbox runs under the profile `policy` (their
/// `org.stratbox.policy` label), on the engine `DOCKER_HOST` names (else the default
/// socket).
pub async fn containers_of(policy: &str) -> Result<Vec<String>, LoadError> {
    let sandbox = crate::Sandbox::builder().from_env().build();
    let engine = sandbox
        .container()
        .engine()
        .await
        .map_err(|err| LoadError::Engine(crate::sandbox::chain(&err)))?;
    let filters = std::collections::HashMap::from([(
        "label".to_owned(),
        vec![
            format!("{RUN_LABEL}=1"),
            format!("org.stratbox.policy={policy}"),
        ],
    )]);
    let options = bollard::query_parameters::ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&filters)
        .build();
    let found = engine
        .docker()
        .list_containers(Some(options))
        .await
        .map_err(|err| LoadError::Engine(err.to_string()))?;
    Ok(found
        .into_iter()
        .flat_map(|container| container.names.unwrap_or_default())
        .collect())
}
