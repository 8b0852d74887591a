//! Isolation probes: one real container, started with a policy's hardening, in which a
//! fixed program tries what a strategy must not be able to do (`stratbox doctor --probe`).
//!
//! The program (`probe.py`, compiled into the binary) is stratbox's own, not a strategy:
//! it does not go through the validator. It seals itself with the runner's own code
//! first, as the runner does before every strategy, so what it sees is what a strategy
//! would see. The container is created from [`ContainerSpec::create_body`], the very
//! configuration of a run, with only the command replaced, and it is removed on every
//! path ([`super::guard::ContainerGuard`]), including when the future is dropped.

use std::time::Duration;

use bollard::container::LogOutput;
use bollard::query_parameters::{AttachContainerOptionsBuilder, WaitContainerOptionsBuilder};
use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};

use super::config::{ContainerSpec, PYTHON};
use super::{ContainerBackend, ContainerError};
use crate::policy::Policy;

/// The probe program.
pub const PROGRAM: &str = include_str!("probe.py");

/// Every probe the program reports, in its order. A name missing from its output is
/// reported as not held.
pub const PROBES: &[&str] = &[
    "runner-preflight",
    "seccomp",
    "syscall-unshare",
    "syscall-setns",
    "syscall-mount",
    "syscall-keyctl",
    "syscall-bpf",
    "syscall-userfaultfd",
    "syscall-io_uring_setup",
    "syscall-kexec_load",
    "syscall-ptrace",
    "capabilities",
    "no-new-privileges",
    "non-root",
    "read-only-root",
    "tmp-noexec-capped",
    "network",
    "pids-limit",
    "memory-limit",
    "file-size-limit",
    "no-programs",
    "proc-self-mem",
];

/// How long the probe container may take (it walks the image's file system once).
pub const PROBE_DEADLINE: Duration = Duration::from_secs(60);

/// Output kept from the probe program, per stream.
const OUTPUT_BYTES: usize = 1 << 20;

/// What one probe found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// The probe (`syscall-unshare`, `network`, …).
    pub name: String,
    /// Whether the layer held.
    pub held: bool,
    /// What was seen.
    pub seen: String,
}

/// Runs every probe in one container with `policy`'s hardening, and removes it.
///
/// `Err` means the container could not be run at all (engine, image, profile); a probe
/// that did not hold, or a probe program that stopped early, is a [`Finding`] with
/// `held: false`.
pub async fn run(
    backend: &ContainerBackend,
    policy: &Policy,
) -> Result<Vec<Finding>, ContainerError> {
    let image = backend.image();
    let name = format!("stratbox-probe-{}", super::random_hex());
    let spec = ContainerSpec::new(policy, &image, &name, None)?;
    let engine = backend.engine().await?;
    let expect = serde_json::json!({
        "tmp_bytes": spec.tmp_bytes,
        "memory_bytes": spec.memory_bytes,
        "max_pids": spec.max_pids,
        "max_file_bytes": spec.max_file_bytes,
    });
    let mut body = spec.create_body();
    body.cmd = Some(
        PYTHON
            .iter()
            .copied()
            .chain(["-c", PROGRAM])
            .map(str::to_owned)
            .chain([expect.to_string()])
            .collect(),
    );
    body.attach_stdin = Some(false);
    body.open_stdin = Some(false);
    body.stdin_once = Some(false);
    let guard = super::run::create_from(&engine, &spec, body).await?;
    let docker = engine.docker();
    let api = |action: &'static str| {
        let name = name.clone();
        move |source| ContainerError::Api {
            action: format!("{action} container {name}"),
            source,
        }
    };
    let probed = async {
        let options = AttachContainerOptionsBuilder::new()
            .stdout(true)
            .stderr(true)
            .stream(true)
            .logs(false)
            .build();
        let mut output = docker
            .attach_container(&name, Some(options))
            .await
            .map_err(api("attaching to"))?
            .output;
        docker
            .start_container(
                &name,
                None::<bollard::query_parameters::StartContainerOptions>,
            )
            .await
            .map_err(api("starting"))?;
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        while let Some(Ok(frame)) = output.next().await {
            let (buffer, message) = match frame {
                LogOutput::StdOut { message } => (&mut stdout, message),
                LogOutput::StdErr { message } => (&mut stderr, message),
                LogOutput::StdIn { .. } | LogOutput::Console { .. } => continue,
            };
            let room = OUTPUT_BYTES.saturating_sub(buffer.len());
            buffer.extend_from_slice(&message[..message.len().min(room)]);
        }
        let wait = WaitContainerOptionsBuilder::new()
            .condition("not-running")
            .build();
        let code = match docker.wait_container(&name, Some(wait)).next().await {
            Some(Ok(response)) => Some(response.status_code),
            Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => Some(code),
            None => None,
            Some(Err(source)) => return Err(api("waiting for")(source)),
        };
        Ok((stdout, stderr, code))
    };
    let result = tokio::time::timeout(PROBE_DEADLINE, probed).await;
    guard.remove().await.map_err(api("removing"))?;
    let (stdout, stderr, code) = match result {
        Ok(done) => done?,
        Err(_elapsed) => {
            return Ok(findings(
                b"",
                format!(
                    "the probe program did not finish within {} s",
                    PROBE_DEADLINE.as_secs()
                )
                .as_bytes(),
                None,
            ));
        }
    };
    Ok(findings(&stdout, &stderr, code))
}

/// The findings in the program's output; every probe of [`PROBES`] it did not report is
/// a finding that did not hold, naming how the program ended.
fn findings(stdout: &[u8], stderr: &[u8], code: Option<i64>) -> Vec<Finding> {
    let mut found: Vec<Finding> = String::from_utf8_lossy(stdout)
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .filter(|finding: &Finding| PROBES.contains(&finding.name.as_str()))
        .collect();
    let stderr = String::from_utf8_lossy(stderr);
    let last = stderr.lines().rev().find(|l| !l.trim().is_empty());
    let ended = match (code, last) {
        (Some(0), _) => "the probe program ended before reporting it".to_owned(),
        (Some(code), Some(line)) => format!("the probe program exited with {code}: {line}"),
        (Some(code), None) => format!("the probe program exited with {code}"),
        (None, Some(line)) => line.to_owned(),
        (None, None) => "the probe program gave no answer".to_owned(),
    };
    for name in PROBES {
        if !found.iter().any(|f| f.name == *name) {
            found.push(Finding {
                name: (*name).to_owned(),
                held: false,
                seen: ended.clone(),
            });
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_program_reports_every_probe() {
        for name in PROBES {
            let call = format!("@probe(\"{name}\")");
            assert!(PROGRAM.contains(&call), "{name} is not in probe.py");
        }
        assert_eq!(PROGRAM.matches("@probe(").count(), PROBES.len());
    }

    #[test]
    fn missing_and_garbled_findings_do_not_hold() {
        let stdout = b"{\"name\": \"seccomp\", \"held\": true, \"seen\": \"Seccomp: 2\"}\n\
                       {\"name\": \"made-up\", \"held\": true, \"seen\": \"\"}\n\
                       not json\n";
        let found = findings(stdout, b"Traceback\nMemoryError\n", Some(1));
        assert_eq!(found.len(), PROBES.len());
        assert!(found.iter().any(|f| f.name == "seccomp" && f.held));
        let rest: Vec<&Finding> = found.iter().filter(|f| f.name != "seccomp").collect();
        assert!(rest.iter().all(|f| !f.held), "{rest:?}");
        assert!(
            rest[0].seen.contains("exited with 1: MemoryError"),
            "{rest:?}"
        );
    }
}
