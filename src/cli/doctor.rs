//! `stratbox doctor`: what works on this machine.

use serde::Serialize;

use std::io::Write as _;
use std::path::Path;

use stratbox::Sandbox;
use stratbox::backend::wasm::{CacheUse, WASMTIME_VERSION};
use stratbox::image::{self, ImageSpec, ImageStatus};
use stratbox::policy::Metering;

use super::DoctorArgs;

/// One line of the report.
#[derive(Debug, Serialize)]
struct Check {
    name: &'static str,
    ok: bool,
    detail: String,
}

pub fn run(args: DoctorArgs) -> anyhow::Result<u8> {
    if args.probe || args.seccomp.is_some() {
        return super::probe::run(args);
    }
    let mut checks = Vec::new();
    let sandbox = Sandbox::builder().from_env().build();
    wasm_checks(&sandbox, &mut checks);
    super::runtime()?.block_on(container_checks(&sandbox, &mut checks));
    let mut stdout = std::io::stdout().lock();
    if args.json {
        writeln!(stdout, "{}", serde_json::to_string_pretty(&checks)?)?;
    } else {
        for check in &checks {
            let mark = if check.ok { "ok  " } else { "FAIL" };
            writeln!(stdout, "{mark} {:<10} {}", check.name, check.detail)?;
        }
    }
    let all_ok = checks.iter().all(|check| check.ok);
    Ok(if all_ok { 0 } else { 5 })
}

fn wasm_checks(sandbox: &Sandbox, checks: &mut Vec<Check>) {
    let backend = match sandbox.wasm() {
        Ok(backend) => {
            let path = backend.guest_path().map(Path::to_owned).unwrap_or_default();
            checks.push(Check {
                name: "guest",
                ok: true,
                detail: format!(
                    "wasm runs CPython {}: {} ({:.1} MiB, hash {})",
                    backend.python().unwrap_or("(unknown version)"),
                    path.display(),
                    std::fs::metadata(&path).map_or(0, |m| m.len()) as f64 / f64::from(1u32 << 20),
                    &backend.guest_hash()[..16]
                ),
            });
            backend
        }
        Err(err) => {
            checks.push(Check {
                name: "guest",
                ok: false,
                detail: err.to_string(),
            });
            return;
        }
    };
    let started = std::time::Instant::now();
    let prepared = backend.prepare(Metering::Fuel);
    let elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
    match prepared {
        Ok(cache_use) => {
            let (how, cache) = match &cache_use {
                CacheUse::Hit => ("loaded from the cache", None),
                CacheUse::Compiled { replaced: None } => ("compiled and cached", None),
                CacheUse::Compiled {
                    replaced: Some(refusal),
                } => (
                    "compiled and cached",
                    Some((true, format!("replaced a refused entry: {refusal}"))),
                ),
                CacheUse::Uncached(refusal) => (
                    "compiled in memory",
                    Some((
                        false,
                        format!("not used, every start compiles in memory: {refusal}"),
                    )),
                ),
                // A future way of obtaining the guest: say so rather than guess.
                other => ("obtained", Some((true, format!("{other:?}")))),
            };
            checks.push(Check {
                name: "wasmtime",
                ok: true,
                detail: format!(
                    "wasmtime {WASMTIME_VERSION}; compiled guest {how} ({elapsed_ms:.0} ms); \
                     {} runs at once",
                    backend.pool_size()
                ),
            });
            let (ok, detail) = cache.unwrap_or_else(|| (true, "in use".to_owned()));
            checks.push(Check {
                name: "cache",
                ok,
                detail,
            });
        }
        Err(err) => checks.push(Check {
            name: "wasmtime",
            ok: false,
            detail: format!("{err}"),
        }),
    }
}

async fn container_checks(sandbox: &Sandbox, checks: &mut Vec<Check>) {
    let backend = sandbox.container();
    let engine = match backend.engine().await {
        Ok(engine) => engine,
        Err(err) => {
            checks.push(Check {
                name: "engine",
                ok: false,
                detail: format!("{err}"),
            });
            return;
        }
    };
    let docker = engine.docker();
    match docker.info().await {
        Ok(info) => {
            let security = info.security_options.unwrap_or_default();
            let seccomp = security.iter().any(|opt| opt.contains("seccomp"));
            checks.push(Check {
                name: "engine",
                ok: true,
                detail: format!(
                    "Docker {} at {} (API {}); cgroup {}",
                    info.server_version.as_deref().unwrap_or("?"),
                    engine.host(),
                    engine.api_version(),
                    info.cgroup_version
                        .map(|v| v.to_string())
                        .unwrap_or_else(|| "?".to_owned()),
                ),
            });
            checks.push(Check {
                name: "seccomp",
                ok: seccomp,
                detail: if seccomp {
                    format!(
                        "the engine applies seccomp profiles ({})",
                        security.join(", ")
                    )
                } else {
                    "the engine reports no seccomp support: container runs would be refused \
                     by the runner's preflight check"
                        .to_owned()
                },
            });
        }
        Err(err) => checks.push(Check {
            name: "engine",
            ok: false,
            detail: format!("{} answered, but `info` failed: {err}", engine.host()),
        }),
    }
    let spec = ImageSpec::current();
    checks.push(match image::status(docker, &spec).await {
        Ok(ImageStatus::Current { id }) => Check {
            name: "image",
            ok: true,
            detail: format!(
                "container runs {}: {} is present and current ({})",
                match image::facts(docker, &spec.tag()).await {
                    Ok(Some(facts)) => format!(
                        "CPython {} with numpy {} and pandas {} (Debian {})",
                        facts.python, facts.numpy, facts.pandas, facts.suite
                    ),
                    Ok(None) => "an interpreter of unknown version (the image has no \
                                 version labels)"
                        .to_owned(),
                    Err(err) => format!("an interpreter of unknown version ({err})"),
                },
                spec.tag(),
                short(&id)
            ),
        },
        Ok(ImageStatus::Stale { found }) => Check {
            name: "image",
            ok: false,
            detail: format!(
                "{} is missing (found older images: {}); run `stratbox image build`",
                spec.tag(),
                found.join(", ")
            ),
        },
        Ok(ImageStatus::Missing) => Check {
            name: "image",
            ok: false,
            detail: format!("{} is missing; run `stratbox image build`", spec.tag()),
        },
        Err(err) => Check {
            name: "image",
            ok: false,
            detail: format!("{err}"),
        },
    });
}

fn short(id: &str) -> &str {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    &id[..id.len().min(12)]
}
