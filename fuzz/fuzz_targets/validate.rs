//! Feeds arbitrary bytes (as UTF-8 when valid) to the validator and the router: neither
//! may panic, overflow the stack or hang, whatever the input.
//!
//! Run from `fuzz/`, seeded with the fixtures:
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run validate corpus/validate ../tests/fixtures/attacks
//! ../tests/fixtures/honest -- -max_total_time=600 -max_len=8192`
#![no_main]

use std::collections::BTreeSet;

use libfuzzer_sys::fuzz_target;

#[path = "../../src/validate/mod.rs"]
#[allow(dead_code, unused_imports)]
mod validate;

/// `route.rs` names the validator as `crate::validate`: in this crate, the module above.
#[path = "../../src/route.rs"]
#[allow(dead_code)]
mod route;

use validate::{ImportRules, ValidatorConfig};

/// The wasm allowlist from `wasm/modules.txt` (the guest's own list), and the native
/// packages of the numeric profile.
fn rules() -> ImportRules {
    let wasm = include_str!("../../wasm/modules.txt")
        .lines()
        .map(|line| line.split('#').next().unwrap_or("").trim())
        .filter(|entry| !entry.is_empty() && !entry.starts_with(['-', '!']))
        .map(str::to_owned)
        .collect();
    let native: BTreeSet<String> = ["numpy", "pandas", "scipy"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    ImportRules { wasm, native }
}

fuzz_target!(|data: &[u8]| {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    let rules = rules();
    let report = validate::validate(source, &rules, &ValidatorConfig::default());
    let _ = validate::render_human(&report, source, "fuzz.py");
    for forced in [
        None,
        Some(route::BackendKind::Wasm),
        Some(route::BackendKind::Container),
    ] {
        let _ = route::route(&report, &rules, forced);
    }
});
