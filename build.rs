//! Links the `stratbox` binary with packed relative relocations (`DT_RELR`) where the
//! toolchain and the C library support them.
//!
//! The binary is position-independent, so that its own code is loaded at a random address.
//! The dynamic loader then fixes up some 46,000 pointers at every start. As `RELA` entries
//! they fill 1.1 MB, which the loader reads and walks one by one: about 0.3 ms and 70 page
//! faults of a whole `stratbox run` (docs/BENCHMARKS.md). Packed, they fill 12 KB. The
//! binary stays position-independent, with the same read-only relocations afterwards.
//!
//! Packing needs a linker that knows `-z pack-relative-relocs` (GNU ld 2.38, lld 15) and a
//! C library whose loader applies it (glibc 2.36). Both are probed here by building and
//! running a small C program; where either is missing the binary is linked as before.

use std::env;
use std::path::PathBuf;
use std::process::Command;

const FLAG: &str = "-Wl,-z,pack-relative-relocs";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CC");
    match probe() {
        Ok(()) => {
            println!("cargo:rustc-link-arg-bins={FLAG}");
            // For the test that checks the binary (tests/it/built.rs).
            println!("cargo:rustc-env=STRATBOX_PACKED_RELOCATIONS=1");
        }
        Err(why) => println!("cargo:warning=linking without packed relocations: {why}"),
    }
}

/// `Ok` when a program linked with [`FLAG`] builds without a warning and runs here.
fn probe() -> Result<(), String> {
    let var = |name: &str| env::var(name).unwrap_or_default();
    if var("CARGO_CFG_TARGET_OS") != "linux" || var("CARGO_CFG_TARGET_ENV") != "gnu" {
        return Err("not a Linux glibc target".into());
    }
    // A program built for another machine cannot be run here to check its loader.
    if var("TARGET") != var("HOST") {
        return Err("cross-compiling".into());
    }
    let out = PathBuf::from(var("OUT_DIR"));
    let source = out.join("relr_probe.c");
    let program = out.join("relr_probe");
    // A pointer in writable data: the loader must relocate it for the program to exit 0.
    std::fs::write(
        &source,
        "static int x = 7;\nint *p = &x;\nint main(void) { return *p == 7 ? 0 : 1; }\n",
    )
    .map_err(|err| format!("cannot write {}: {err}", source.display()))?;
    let cc = env::var("CC").unwrap_or_else(|_| "cc".into());
    let built = Command::new(&cc)
        .args(["-fPIE", "-pie", FLAG, "-o"])
        .arg(&program)
        .arg(&source)
        .output()
        .map_err(|err| format!("cannot run {cc}: {err}"))?;
    let stderr = String::from_utf8_lossy(&built.stderr);
    if !built.status.success() || stderr.contains("warning") {
        return Err(format!("{cc} does not take {FLAG}: {}", stderr.trim()));
    }
    let ran = Command::new(&program)
        .status()
        .map_err(|err| format!("the probe does not start: {err}"))?;
    match ran.success() {
        true => Ok(()),
        false => Err(format!("the probe linked with {FLAG} fails: {ran}")),
    }
}
