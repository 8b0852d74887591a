//! `stratbox doctor`: what works on this machine.

use serde::Serialize;

use stratbox::backend::WasmBackend;
use stratbox::backend::wasm::{WASMTIME_VERSION, default_cache_dir, default_guest_path};
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
    let mut checks = Vec::new();
    wasm_checks(&mut checks);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&checks)?);
    } else {
        for check in &checks {
            let mark = if check.ok { "ok  " } else { "FAIL" };
            println!("{mark} {:<10} {}", check.name, check.detail);
        }
    }
    let all_ok = checks.iter().all(|check| check.ok);
    Ok(if all_ok { 0 } else { 5 })
}

fn wasm_checks(checks: &mut Vec<Check>) {
    let guest_path = default_guest_path();
    let backend = match WasmBackend::new() {
        Ok(backend) => {
            checks.push(Check {
                name: "guest",
                ok: true,
                detail: format!(
                    "{} ({:.1} MiB, hash {})",
                    guest_path.display(),
                    std::fs::metadata(&guest_path).map_or(0, |m| m.len()) as f64
                        / f64::from(1u32 << 20),
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
    let cache = default_cache_dir();
    let started = std::time::Instant::now();
    checks.push(match backend.prepare(Metering::Fuel) {
        Ok(cache_use) => Check {
            name: "wasmtime",
            ok: true,
            detail: format!(
                "wasmtime {WASMTIME_VERSION}; compiled guest {} in {} ({:.0} ms)",
                match cache_use {
                    stratbox::backend::wasm::CacheUse::Hit => "loaded from the cache",
                    stratbox::backend::wasm::CacheUse::Compiled => "compiled and cached",
                    stratbox::backend::wasm::CacheUse::CompiledUncached =>
                        "compiled but NOT cached (cache folder not writable)",
                },
                cache.display(),
                started.elapsed().as_secs_f64() * 1e3
            ),
        },
        Err(err) => Check {
            name: "wasmtime",
            ok: false,
            detail: format!("{err}"),
        },
    });
}
