//! `stratbox doctor --probe` and `stratbox doctor --seccomp`: evidence that every isolation
//! layer is in force on this machine, and what a seccomp profile allows.

use std::io::Write as _;

use serde::Serialize;

use stratbox::backend::container::probe::{self as container_probe, Finding};
use stratbox::backend::container::seccomp_report::{
    self, Host, LoadedProfile, MOBY_PACKAGE, Report, ReportError, upstream_version,
};
use stratbox::policy::Metering;
use stratbox::{BackendKind, Policy, Reason, Request, Sandbox, Status};

use super::DoctorArgs;

/// Exit code when a probe did not hold or could not run, or the engine's profile is
/// missing (the sandbox cannot be shown to do its job).
const EXIT_NOT_HELD: u8 = 5;
/// Exit code after Ctrl-C (128 + SIGINT).
const EXIT_INTERRUPTED: u8 = 130;

/// One probe's line in the report.
#[derive(Debug, Serialize)]
struct Row {
    backend: BackendKind,
    #[serde(flatten)]
    finding: Finding,
}

/// The `--probe` report.
#[derive(Debug, Serialize)]
struct ProbeReport {
    policy: String,
    image: String,
    seccomp_profile: String,
    held: bool,
    probes: Vec<Row>,
}

/// The `--json` document: the parts asked for.
#[derive(Debug, Serialize)]
struct Document {
    #[serde(skip_serializing_if = "Option::is_none")]
    seccomp: Option<SeccompDocument>,
    #[serde(skip_serializing_if = "Option::is_none")]
    probe: Option<ProbeReport>,
}

#[derive(Debug, Serialize)]
struct SeccompDocument {
    engine_version: Option<String>,
    #[serde(flatten)]
    report: Report,
}

pub fn run(args: DoctorArgs) -> anyhow::Result<u8> {
    let policy = Policy::load(&args.policy.profile)?;
    let sandbox = Sandbox::builder().from_env().build();
    let runtime = super::runtime()?;
    let mut document = Document {
        seccomp: None,
        probe: None,
    };
    let mut code = 0;
    if let Some(profile) = &args.seccomp {
        let name = if profile.is_empty() {
            policy.container.seccomp_profile.as_str()
        } else {
            profile.as_str()
        };
        let engine_version = runtime.block_on(engine_version(&sandbox));
        match seccomp(name) {
            Ok(report) => {
                document.seccomp = Some(SeccompDocument {
                    engine_version,
                    report,
                })
            }
            Err(err @ ReportError::EngineDefaultMissing) => {
                eprintln!("stratbox: {err}");
                return Ok(EXIT_NOT_HELD);
            }
            Err(err) => return Err(err.into()),
        }
    }
    if args.probe {
        let probed = runtime.block_on(async {
            tokio::select! {
                report = probe(&sandbox, &policy) => Some(report),
                // Dropping the probe removes its container (the guard's drop).
                _ = tokio::signal::ctrl_c() => None,
            }
        });
        let Some(report) = probed else {
            eprintln!("stratbox: interrupted");
            return Ok(EXIT_INTERRUPTED);
        };
        if !report.held {
            code = EXIT_NOT_HELD;
        }
        document.probe = Some(report);
    }
    let mut stdout = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut stdout, &document)?;
        writeln!(stdout)?;
        return Ok(code);
    }
    if let Some(seccomp) = &document.seccomp {
        human_seccomp(&mut stdout, seccomp)?;
    }
    if let Some(probe) = &document.probe {
        if document.seccomp.is_some() {
            writeln!(stdout)?;
        }
        human_probe(&mut stdout, probe)?;
    }
    Ok(code)
}

/// The engine's version, if it answers.
async fn engine_version(sandbox: &Sandbox) -> Option<String> {
    let engine = sandbox.container().engine().await.ok()?;
    engine.docker().version().await.ok()?.version
}

fn seccomp(name: &str) -> Result<Report, ReportError> {
    let subject = seccomp_report::load(name)?;
    let default = seccomp_report::engine_default()?;
    Ok(seccomp_report::report(&subject, &default, &Host::current()))
}

async fn probe(sandbox: &Sandbox, policy: &Policy) -> ProbeReport {
    let in_force = seccomp_report::load(&policy.container.seccomp_profile).ok();
    let mut probes = Vec::new();
    match container_probe::run(sandbox.container(), policy).await {
        Ok(findings) => {
            for mut finding in findings {
                if !finding.held {
                    explain(&mut finding, in_force.as_ref());
                }
                probes.push(Row {
                    backend: BackendKind::Container,
                    finding,
                });
            }
        }
        Err(err) => probes.push(Row {
            backend: BackendKind::Container,
            finding: Finding {
                name: "container".to_owned(),
                held: false,
                seen: format!("no container could be probed: {err}"),
            },
        }),
    }
    for finding in wasm_probes(sandbox, policy).await {
        probes.push(Row {
            backend: BackendKind::Wasm,
            finding,
        });
    }
    ProbeReport {
        policy: policy.name.clone(),
        image: sandbox.container().image(),
        seccomp_profile: match policy.container.seccomp_profile.as_str() {
            "" => "engine default".to_owned(),
            pinned => pinned.to_owned(),
        },
        held: probes.iter().all(|row| row.finding.held),
        probes,
    }
}

/// Names the profile in force when it lets through a syscall whose probe did not hold.
fn explain(finding: &mut Finding, in_force: Option<&LoadedProfile>) {
    let (Some(syscall), Some(loaded)) = (finding.name.strip_prefix("syscall-"), in_force) else {
        return;
    };
    if loaded
        .profile
        .verdict(syscall, &Host::current())
        .reachable()
    {
        let origin = &loaded.origin;
        let version = origin
            .moby_version
            .as_deref()
            .map(|v| format!(", moby {}", upstream_version(v)))
            .unwrap_or_default();
        finding.seen = format!(
            "{}; the seccomp profile in force ({}{version}) allows {syscall}",
            finding.seen, origin.name
        );
    }
}

/// The wasm guest's probes: each a small program run through the sandbox with the
/// validator off, so that the guest alone is tested.
async fn wasm_probes(sandbox: &Sandbox, policy: &Policy) -> Vec<Finding> {
    let mut open = policy.clone();
    open.validator.enabled = false;
    let data = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(err) => {
            return vec![Finding {
                name: "wasm".to_owned(),
                held: false,
                seen: format!("cannot make a data directory to grant: {err}"),
            }];
        }
    };
    let marker = data.path().join("granted.txt");
    let _ = std::fs::write(&marker, "granted");
    let run = |source: &'static str, policy: Policy| {
        let data = data.path().to_owned();
        async move {
            let request = Request {
                data_dir: Some(&data),
                backend: Some(BackendKind::Wasm),
                ..Request::new(source, "probe.py")
            };
            sandbox.run(&request, &policy).await
        }
    };
    let mut findings = Vec::new();
    let mut push = |name: &str, held: bool, seen: String| {
        findings.push(Finding {
            name: name.to_owned(),
            held,
            seen,
        })
    };
    let failed = |outcome: &stratbox::Outcome| {
        format!(
            "the probe ended {}: {}",
            outcome.summary(),
            outcome.stderr.lines().last().unwrap_or_default()
        )
    };

    let files = run(
        r#"
import os
print(sorted(os.listdir("/")))
print(open("/data/granted.txt").read())
for path in ("/etc/passwd", "/proc/self/environ", "../etc/passwd", "/data/../etc/passwd"):
    try:
        open(path).read()
        print("read", path)
    except OSError:
        pass
try:
    open("/data/new", "w")
    print("wrote /data/new")
except OSError:
    pass
"#,
        open.clone(),
    )
    .await;
    let lines: Vec<&str> = files.stdout.lines().collect();
    if files.status == Status::Ok {
        let held = lines == ["['data', 'tmp']", "granted"];
        push(
            "wasm-preopens",
            held,
            format!(
                "the root holds {} (/data granted read-only, /tmp the run's own, in memory); {}",
                lines.first().unwrap_or(&"nothing"),
                if lines.len() > 2 {
                    lines[2..].join(", ")
                } else {
                    "host paths not found, /data not writable".to_owned()
                }
            ),
        );
    } else {
        push("wasm-preopens", false, failed(&files));
    }

    let sockets = run(
        r#"
try:
    import socket
except ImportError as e:
    print("no socket module:", e.name)
else:
    try:
        socket.create_connection(("127.0.0.1", 22), 1)
        print("connected")
    except OSError as e:
        print("connect failed:", type(e).__name__)
"#,
        open.clone(),
    )
    .await;
    let seen = sockets.stdout.trim().to_owned();
    push(
        "wasm-sockets",
        sockets.status == Status::Ok && !seen.contains("connected") && !seen.is_empty(),
        if sockets.status == Status::Ok {
            seen
        } else {
            failed(&sockets)
        },
    );

    let environment = run(
        "import os\nprint(len(os.environ), sorted(os.environ)[:5])\n",
        open.clone(),
    )
    .await;
    let seen = environment.stdout.trim().to_owned();
    push(
        "wasm-environment",
        environment.status == Status::Ok && seen == "0 []",
        if environment.status == Status::Ok {
            format!("{seen} (variables, first names)")
        } else {
            failed(&environment)
        },
    );

    let mut fuel = open.clone();
    fuel.limits.metering = Metering::Fuel;
    fuel.limits.fuel = 20_000_000;
    fuel.limits.wall_time = std::time::Duration::from_secs(60);
    let busy = run("while True:\n    pass\n", fuel).await;
    push(
        "wasm-fuel",
        busy.status == Status::Killed && busy.reason == Some(Reason::Fuel),
        format!(
            "a busy loop under a budget of 20000000: {} after {} units",
            ending(&busy),
            busy.usage.fuel
        ),
    );

    let mut deadline = open;
    deadline.limits.wall_time = std::time::Duration::from_millis(500);
    let asleep = run("import time\ntime.sleep(60)\n", deadline).await;
    push(
        "wasm-deadline",
        asleep.status == Status::Killed
            && asleep.reason == Some(Reason::Deadline)
            && asleep.usage.wall_ms < 5_000.0,
        format!(
            "a 60 s sleep under a 500 ms deadline: {} after {:.0} ms",
            ending(&asleep),
            asleep.usage.wall_ms
        ),
    );
    findings
}

/// `killed/fuel`, `ok`, …
fn ending(outcome: &stratbox::Outcome) -> String {
    match outcome.reason {
        Some(reason) => format!("{}/{}", outcome.status.as_str(), reason.as_str()),
        None => outcome.status.as_str().to_owned(),
    }
}

fn human_probe(out: &mut impl std::io::Write, report: &ProbeReport) -> std::io::Result<()> {
    writeln!(
        out,
        "isolation probes for policy `{}` (container: {}, seccomp {}):",
        report.policy, report.image, report.seccomp_profile
    )?;
    let width = report
        .probes
        .iter()
        .map(|row| row.finding.name.len())
        .max()
        .unwrap_or(0);
    for row in &report.probes {
        let mark = if row.finding.held {
            "held    "
        } else {
            "NOT HELD"
        };
        writeln!(
            out,
            "{mark} {:<9} {:<width$}  {}",
            row.backend.as_str(),
            row.finding.name,
            row.finding.seen
        )?;
    }
    let held = report.probes.iter().filter(|row| row.finding.held).count();
    writeln!(
        out,
        "{held} of {} probes held{}",
        report.probes.len(),
        if report.held {
            ""
        } else {
            ": the isolation is NOT fully in force on this machine"
        }
    )
}

fn human_seccomp(out: &mut impl std::io::Write, doc: &SeccompDocument) -> std::io::Result<()> {
    let summary = &doc.report.summary;
    let origin = &summary.origin;
    write!(out, "seccomp profile: {}", origin.name)?;
    if let Some(path) = origin
        .path
        .as_ref()
        .filter(|p| p.as_os_str() != origin.name.as_str())
    {
        write!(out, " ({})", path.display())?;
    }
    writeln!(out)?;
    if let Some(version) = &origin.moby_version {
        writeln!(
            out,
            "  from moby {} (Debian's {MOBY_PACKAGE} {version}); {}",
            upstream_version(version),
            engine_distance(version, doc.engine_version.as_deref())
        )?;
    }
    writeln!(out, "  default action   {}", summary.default_action)?;
    writeln!(
        out,
        "  architectures    {}",
        summary.architectures.join(" ")
    )?;
    writeln!(
        out,
        "  read for         {}, no capabilities (stratbox drops them all)",
        summary.host
    )?;
    writeln!(
        out,
        "  allowed          {} syscalls, whatever the arguments",
        summary.allowed.len()
    )?;
    writeln!(
        out,
        "  with arguments   {}: {}",
        summary.allowed_with_args.len(),
        or_none(summary.allowed_with_args.join(" "))
    )?;
    writeln!(
        out,
        "  capability only  {}: {}",
        summary.capability_only.len(),
        or_none(
            summary
                .capability_only
                .iter()
                .map(|(name, caps)| format!("{name} ({})", caps.join("|")))
                .collect::<Vec<_>>()
                .join(" ")
        )
    )?;
    writeln!(
        out,
        "  denied           {}: {}",
        summary.denied.len(),
        summary
            .denied
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    )?;
    if let Some(diff) = &doc.report.against_default {
        writeln!(
            out,
            "against the engine's default profile{}:",
            diff.engine_default
                .moby_version
                .as_deref()
                .map(|v| format!(" (moby {})", upstream_version(v)))
                .unwrap_or_default()
        )?;
        for (label, list) in [("adds", &diff.adds), ("removes", &diff.removes)] {
            writeln!(out, "  {label} {} syscalls", list.len())?;
            for syscall in list.iter().filter(|s| s.risk.is_some()) {
                writeln!(
                    out,
                    "    {:<18} {}",
                    syscall.name,
                    syscall.risk.unwrap_or_default()
                )?;
            }
            let plain: Vec<&str> = list
                .iter()
                .filter(|s| s.risk.is_none())
                .map(|s| s.name.as_str())
                .collect();
            if !plain.is_empty() {
                writeln!(out, "    and: {}", plain.join(" "))?;
            }
        }
    }
    Ok(())
}

/// `none` for an empty list.
fn or_none(list: String) -> String {
    if list.is_empty() {
        "none".to_owned()
    } else {
        list
    }
}

/// How far the profile's moby release is from the engine's.
fn engine_distance(profile: &str, engine: Option<&str>) -> String {
    let Some(engine) = engine else {
        return "the engine did not answer, so its version is unknown".to_owned();
    };
    let (ours, theirs) = (upstream_version(profile), upstream_version(engine));
    if ours == theirs {
        format!("the engine runs {engine}: the same release")
    } else {
        format!(
            "the engine runs {engine}: a different release ({ours} vs {theirs}), so its \
             built-in default may differ from this file"
        )
    }
}
