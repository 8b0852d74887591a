//! One run: create, attach, start, feed stdin, stream output, enforce the deadline, read
//! the ending, remove.

use std::time::{Duration, Instant};

use bollard::container::LogOutput;
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, CreateContainerOptionsBuilder, KillContainerOptionsBuilder,
    WaitContainerOptionsBuilder,
};
use futures_util::StreamExt as _;
use tokio::io::AsyncWriteExt as _;

use super::ContainerError;
use super::capture::{Capped, RunnerResult, Stderr, text};
use super::config::ContainerSpec;
use super::engine::Engine;
use super::guard::ContainerGuard;
use crate::backend::{Execution, Job};
use crate::outcome::{Reason, Status, Truncated, Usage};
use crate::policy::{OutputOverflow, Policy};

/// How long the engine may take to stop a container after a kill.
const STOP_GRACE: Duration = Duration::from_secs(30);

/// Exit status of a process killed by signal `n`, as tini reports it.
const fn killed_by(signal: i64) -> i64 {
    128 + signal
}
const SIGKILL: i64 = 9;
const SIGXCPU: i64 = 24;
const SIGXFSZ: i64 = 25;

/// Why the run stopped, as the host saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// The container's output ended and it exited by itself.
    Exited,
    /// The wall deadline passed; the container was killed.
    Deadline,
    /// An output cap was passed under `output-overflow = "kill"`; the container was killed.
    Output,
}

/// The output and input of a started container, attached before it started so that
/// nothing it wrote is lost.
pub(super) struct Attached {
    /// stdout and stderr frames.
    pub output: std::pin::Pin<
        Box<dyn futures_util::Stream<Item = Result<LogOutput, bollard::errors::Error>> + Send>,
    >,
    /// The container's stdin.
    pub input: std::pin::Pin<Box<dyn tokio::io::AsyncWrite + Send>>,
}

/// Runs `job` in a new container and removes it.
pub(super) async fn run(
    engine: &Engine,
    spec: &ContainerSpec,
    job: &Job<'_>,
    policy: &Policy,
) -> Result<Execution, ContainerError> {
    let guard = create(engine, spec, &[]).await?;
    let result = async {
        let attached = attach_and_start(engine, &spec.name).await?;
        drive(engine, spec, job, policy, attached).await
    }
    .await;
    finish(guard, result).await
}

/// Creates the container `spec` describes, with `labels` added to the spec's; the guard
/// removes it.
pub(super) async fn create(
    engine: &Engine,
    spec: &ContainerSpec,
    labels: &[(&str, &str)],
) -> Result<ContainerGuard, ContainerError> {
    let mut body = spec.create_body();
    if let Some(all) = body.labels.as_mut() {
        all.extend(
            labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
    }
    create_from(engine, spec, body).await
}

/// Creates the container `spec` names from `body` (the spec's, changed by the caller: the
/// probe runs its own program) and takes charge of it: from here on it is removed on
/// every path. A missing image is [`ContainerError::ImageMissing`], or
/// [`ContainerError::ImageStale`] when images of other stratbox versions are there.
pub(super) async fn create_from(
    engine: &Engine,
    spec: &ContainerSpec,
    body: bollard::models::ContainerCreateBody,
) -> Result<ContainerGuard, ContainerError> {
    let docker = engine.docker();
    // In charge before the request is sent: dropped mid-request, it still removes.
    let guard = ContainerGuard::creating(engine.clone(), spec.name.clone());
    let created = docker
        .create_container(
            Some(
                CreateContainerOptionsBuilder::new()
                    .name(&spec.name)
                    .build(),
            ),
            body,
        )
        .await;
    match created {
        Ok(_) => {
            tracing::debug!(
                container = spec.name.as_str(),
                image = spec.image.as_str(),
                "container created"
            );
            Ok(guard.created())
        }
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => {
            guard.disarm();
            // Other stratbox images mean this one is stale rather than never built.
            let found = crate::image::runtime_tags(docker).await.unwrap_or_default();
            let image = spec.image.clone();
            Err(if found.is_empty() {
                ContainerError::ImageMissing { image }
            } else {
                ContainerError::ImageStale { image, found }
            })
        }
        Err(source @ bollard::errors::Error::DockerResponseServerError { .. }) => {
            guard.disarm();
            Err(api_error("creating", &spec.name, source))
        }
        Err(source) => {
            // No answer: perhaps created after all; the guard's drop removes it if it is.
            drop(guard);
            Err(api_error("creating", &spec.name, source))
        }
    }
}

/// Removes the container, then classifies the run's ending.
pub(super) async fn finish(
    guard: ContainerGuard,
    result: Result<Raw, ContainerError>,
) -> Result<Execution, ContainerError> {
    let name = guard.name().to_owned();
    let removed = guard.remove().await;
    tracing::debug!(
        container = name.as_str(),
        removed = removed.is_ok(),
        "container removed"
    );
    let execution = result?;
    removed.map_err(|source| api_error("removing", &name, source))?;
    execution.into_execution()
}

pub(super) fn api_error(
    action: &str,
    name: &str,
    source: bollard::errors::Error,
) -> ContainerError {
    ContainerError::Api {
        action: format!("{action} container {name}"),
        source,
    }
}

/// Attaches to the created container `name` and starts it.
pub(super) async fn attach_and_start(
    engine: &Engine,
    name: &str,
) -> Result<Attached, ContainerError> {
    let docker = engine.docker();
    let attach_options = AttachContainerOptionsBuilder::new()
        .stdin(true)
        .stdout(true)
        .stderr(true)
        .stream(true)
        .logs(false)
        .build();
    let attached = docker
        .attach_container(name, Some(attach_options))
        .await
        .map_err(|source| api_error("attaching to", name, source))?;
    docker
        .start_container(
            name,
            None::<bollard::query_parameters::StartContainerOptions>,
        )
        .await
        .map_err(|source| api_error("starting", name, source))?;
    Ok(Attached {
        output: attached.output,
        input: attached.input,
    })
}

/// What a run produced, before it is classified.
pub(super) struct Raw {
    stop: Stop,
    stdout: Capped,
    stderr: Stderr,
    nonce: String,
    exit_code: Option<i64>,
    oom_killed: bool,
    wall: Duration,
    cpu_seconds: i64,
    cpus: f64,
    kill_on_overflow: bool,
}

/// Feeds `job` to the started container and follows it to its end. The run's clock (wall
/// time, deadline) starts here, whether the container started just now or waited in the
/// pool.
pub(super) async fn drive(
    engine: &Engine,
    spec: &ContainerSpec,
    job: &Job<'_>,
    policy: &Policy,
    attached: Attached,
) -> Result<Raw, ContainerError> {
    let docker = engine.docker();
    let name = spec.name.as_str();
    let api = |action: &str| {
        let action = format!("{action} container {name}");
        move |source| ContainerError::Api { action, source }
    };
    let Attached { output, mut input } = attached;
    let started = Instant::now();
    let deadline = tokio::time::Instant::from_std(started + policy.limits.wall_time);

    let nonce = super::random_hex();
    let mut header = serde_json::json!({
        "nonce": nonce,
        "source_len": job.source.len(),
        "filename": job.filename,
    });
    if let Some(inventory) = job.inventory {
        header["inventory"] = serde_json::json!(inventory);
    }
    if let Some(determinism) = policy.determinism() {
        header["seed"] = serde_json::json!(determinism.seed);
    }
    let feed = async move {
        let mut frame = header.to_string().into_bytes();
        frame.push(b'\n');
        // Errors mean the container stopped reading (it exited, or never reads its
        // input): not a failure of the run.
        let _ = async {
            input.write_all(&frame).await?;
            input.write_all(job.source.as_bytes()).await?;
            input.write_all(job.input).await?;
            input.shutdown().await
        }
        .await;
    };

    let kill_on_overflow = policy.limits.output_overflow == OutputOverflow::Kill;
    let mut stdout = Capped::new(cap(policy.limits.stdout_bytes));
    let mut stderr = Stderr::new(cap(policy.limits.stderr_bytes));
    let drain = async {
        // The stream is moved in, so that it is closed as soon as reading stops: an engine
        // cannot finish a kill while it is blocked writing output nobody reads.
        let mut output = output;
        while let Some(frame) = output.next().await {
            let over = match frame {
                Ok(LogOutput::StdOut { message }) => stdout.push(&message),
                Ok(LogOutput::StdErr { message }) => stderr.push(&message),
                Ok(LogOutput::StdIn { .. } | LogOutput::Console { .. }) => false,
                // The attach connection broke: the container is gone or the engine
                // failed; `wait` below tells which.
                Err(_) => break,
            };
            if over && kill_on_overflow {
                return Stop::Output;
            }
        }
        Stop::Exited
    };

    let wait_exit = || async {
        let options = WaitContainerOptionsBuilder::new()
            .condition("not-running")
            .build();
        let mut waits = docker.wait_container(name, Some(options));
        match waits.next().await {
            None
            | Some(Ok(_))
            | Some(Err(bollard::errors::Error::DockerContainerWaitError { .. })) => Ok(()),
            Some(Err(source)) => Err(api("waiting for")(source)),
        }
    };

    let stop = {
        tokio::pin!(feed);
        tokio::pin!(drain);
        let mut fed = false;
        let within_deadline = async {
            loop {
                tokio::select! {
                    stop = &mut drain => break stop,
                    () = &mut feed, if !fed => fed = true,
                }
            }
        };
        tokio::time::timeout_at(deadline, within_deadline)
            .await
            .unwrap_or(Stop::Deadline)
    };
    // The runner's result line says how the strategy ended: then the container's own end
    // (the engine's exit processing, tens of milliseconds) is not waited for, and the
    // container is removed, killed if need be, after the run. Without that line (the
    // process was killed, or the strategy closed its output early), the exit code and the
    // engine's OOM flag tell.
    let reported = stop == Stop::Exited && stderr.reported(&nonce);
    let stop = match stop {
        Stop::Exited if !reported => match tokio::time::timeout_at(deadline, wait_exit()).await {
            Ok(waited) => waited.map(|()| Stop::Exited)?,
            Err(_elapsed) => Stop::Deadline,
        },
        stop => stop,
    };
    let wall = started.elapsed();

    if stop != Stop::Exited {
        let kill = KillContainerOptionsBuilder::new().signal("KILL").build();
        match docker.kill_container(name, Some(kill)).await {
            // 409: it exited by itself meanwhile.
            Ok(())
            | Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 409, ..
            }) => {}
            Err(source) => return Err(api("killing")(source)),
        }
        tokio::time::timeout(STOP_GRACE, wait_exit())
            .await
            .map_err(|_elapsed| ContainerError::Api {
                action: format!("waiting for killed container {name}"),
                source: bollard::errors::Error::RequestTimeoutError,
            })??;
    }

    let state = if reported {
        bollard::models::ContainerState::default()
    } else {
        docker
            .inspect_container(
                name,
                None::<bollard::query_parameters::InspectContainerOptions>,
            )
            .await
            .map_err(api("inspecting"))?
            .state
            .unwrap_or_default()
    };
    Ok(Raw {
        stop,
        stdout,
        stderr,
        nonce,
        exit_code: state.exit_code,
        oom_killed: state.oom_killed.unwrap_or(false),
        wall,
        cpu_seconds: spec.cpu_seconds,
        cpus: spec.nano_cpus as f64 / 1e9,
        kill_on_overflow,
    })
}

fn cap(bytes: u64) -> usize {
    usize::try_from(bytes).unwrap_or(usize::MAX)
}

impl Raw {
    /// Classifies the ending (see the module docs of `container` for the table).
    pub(super) fn into_execution(self) -> Result<Execution, ContainerError> {
        let (stdout, stdout_truncated) = self.stdout.finish();
        let (stderr, stderr_truncated, result) = self.stderr.finish(&self.nonce);
        if let Some(RunnerResult { ending, detail, .. }) = &result
            && ending == "preflight"
        {
            let detail = detail.clone().unwrap_or_default();
            // The runner names each failed /proc/self/status line (`Seccomp is '0', …`).
            return Err(if detail.contains("Seccomp is ") {
                ContainerError::SeccompUnsupported { detail }
            } else {
                ContainerError::Preflight { detail }
            });
        }
        let overflowed = stdout_truncated || stderr_truncated;
        let mut mismatch = None;
        let killed = |reason| (Status::Killed, Some(reason), None, None);
        let (status, reason, exit_code, message) = match (self.stop, &result) {
            (Stop::Deadline, _) => killed(Reason::Deadline),
            (Stop::Output, _) => killed(Reason::Output),
            (Stop::Exited, _) if overflowed && self.kill_on_overflow => killed(Reason::Output),
            (Stop::Exited, _) if self.oom_killed => killed(Reason::Memory),
            (Stop::Exited, Some(r)) => match r.ending.as_str() {
                "ok" => (Status::Ok, None, Some(r.exit_code), None),
                "memory" => killed(Reason::Memory),
                "mismatch" => {
                    mismatch = Some(super::super::mismatch_violation(r.detail.as_deref()));
                    (Status::Error, None, Some(r.exit_code), None)
                }
                // "exception", "exit", and anything a newer runner may add.
                _ => (Status::Error, None, Some(r.exit_code), None),
            },
            (Stop::Exited, None) => match self.exit_code {
                Some(code) if code == killed_by(SIGXCPU) => killed(Reason::Cpu),
                Some(code) if code == killed_by(SIGXFSZ) => killed(Reason::Disk),
                // SIGKILL without an OOM kill: the hard RLIMIT_CPU (a strategy that ignored
                // SIGXCPU) if it can have used that much CPU, else someone else's kill.
                Some(code)
                    if code == killed_by(SIGKILL)
                        && self.wall.as_secs_f64() * self.cpus.max(1.0)
                            >= self.cpu_seconds as f64 * 0.9 =>
                {
                    killed(Reason::Cpu)
                }
                Some(code) => (
                    Status::Error,
                    None,
                    Some(i32::try_from(code).unwrap_or(i32::MAX)),
                    Some(match code {
                        129..=159 => format!(
                            "the strategy's process ended on signal {} without reporting",
                            code - 128
                        ),
                        _ => format!("the strategy's process exited with {code} without reporting"),
                    }),
                ),
                None => (
                    Status::Error,
                    None,
                    None,
                    Some("the container ended without an exit code".to_owned()),
                ),
            },
        };
        Ok(Execution {
            status,
            reason,
            message,
            // Filled in by the backend, from the image's labels.
            python: None,
            exit_code,
            stdout: text(stdout),
            stderr: text(stderr),
            truncated: Truncated {
                stdout: stdout_truncated,
                stderr: stderr_truncated,
            },
            usage: Usage {
                wall_ms: self.wall.as_secs_f64() * 1e3,
                fuel: 0,
                memory_peak_bytes: 0,
            },
            mismatch,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(stop: Stop, exit_code: Option<i64>, stderr: &str) -> Raw {
        let mut err = Stderr::new(1024);
        err.push(stderr.as_bytes());
        Raw {
            stop,
            stdout: Capped::new(1024),
            stderr: err,
            nonce: "n".to_owned(),
            exit_code,
            oom_killed: false,
            wall: Duration::from_secs(2),
            cpu_seconds: 2,
            cpus: 1.0,
            kill_on_overflow: false,
        }
    }

    fn result(ending: &str, code: i32) -> String {
        format!("\n@stratbox-result n {{\"ending\": \"{ending}\", \"exit_code\": {code}}}\n")
    }

    fn classify(raw: Raw) -> (Status, Option<Reason>, Option<i32>) {
        let e = raw.into_execution().expect("execution");
        (e.status, e.reason, e.exit_code)
    }

    #[test]
    fn runner_endings() {
        assert_eq!(
            classify(raw(Stop::Exited, Some(0), &result("ok", 0))),
            (Status::Ok, None, Some(0))
        );
        assert_eq!(
            classify(raw(Stop::Exited, Some(3), &result("exit", 3))),
            (Status::Error, None, Some(3))
        );
        assert_eq!(
            classify(raw(Stop::Exited, Some(1), &result("memory", 1))),
            (Status::Killed, Some(Reason::Memory), None)
        );
    }

    #[test]
    fn preflight_failure_is_an_error_not_an_outcome() {
        let line = "\n@stratbox-result n {\"ending\": \"preflight\", \"exit_code\": 125, \"detail\": \"Seccomp is '0'\"}\n";
        let err = raw(Stop::Exited, Some(125), line)
            .into_execution()
            .expect_err("refused");
        assert!(err.to_string().contains("Seccomp is '0'"), "{err}");
    }

    #[test]
    fn host_side_stops() {
        assert_eq!(
            classify(raw(Stop::Deadline, Some(137), "")),
            (Status::Killed, Some(Reason::Deadline), None)
        );
        assert_eq!(
            classify(raw(Stop::Output, Some(137), "")),
            (Status::Killed, Some(Reason::Output), None)
        );
        let mut oom = raw(Stop::Exited, Some(137), "");
        oom.oom_killed = true;
        assert_eq!(classify(oom), (Status::Killed, Some(Reason::Memory), None));
    }

    #[test]
    fn signals_without_a_result() {
        assert_eq!(
            classify(raw(Stop::Exited, Some(killed_by(SIGXCPU)), "")),
            (Status::Killed, Some(Reason::Cpu), None)
        );
        assert_eq!(
            classify(raw(Stop::Exited, Some(killed_by(SIGXFSZ)), "")),
            (Status::Killed, Some(Reason::Disk), None)
        );
        // SIGKILL long before the CPU limit could be reached: not the CPU limit.
        let mut early = raw(Stop::Exited, Some(137), "");
        early.wall = Duration::from_millis(100);
        assert_eq!(classify(early), (Status::Error, None, Some(137)));
        // os._exit(5) skips the runner's report.
        assert_eq!(
            classify(raw(Stop::Exited, Some(5), "")),
            (Status::Error, None, Some(5))
        );
    }
}
