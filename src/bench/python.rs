//! The native interpreters the bench compares with, always called by their real path.
//!
//! A launcher such as pyenv's `python3` shim is a shell script that costs about 100 ms per
//! start: timing through it would measure the launcher. Each interpreter is therefore asked
//! once for `sys.executable`, and every sample calls that file.

use std::path::{Path, PathBuf};
use std::process::Stdio;

/// What an interpreter says about itself: its real path, its name, its version.
const SELF_REPORT: &str =
    "import sys; print(sys.executable); print(sys.implementation.name, *sys.version_info[:3])";

/// A native Python interpreter, by its real path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interpreter {
    /// `sys.executable`: the interpreter's own file, not a launcher.
    pub path: PathBuf,
    /// `sys.implementation.name` (`cpython`).
    pub implementation: String,
    /// `sys.version_info[:3]`.
    pub version: (u32, u32, u32),
}

impl Interpreter {
    /// Asks `command` (a name found on `PATH`, or a path) who it is.
    pub fn resolve(command: &Path) -> Result<Self, String> {
        let printed = probe(command, &["-c", SELF_REPORT])?;
        let mut lines = printed.lines();
        let path = lines.next().map(str::trim).unwrap_or_default();
        if path.is_empty() {
            return Err(format!(
                "{} does not report its executable",
                command.display()
            ));
        }
        let mut words = lines.next().unwrap_or_default().split_whitespace();
        let implementation = words.next().unwrap_or_default().to_owned();
        let mut number = || words.next().and_then(|word| word.parse::<u32>().ok());
        let (Some(major), Some(minor), Some(micro)) = (number(), number(), number()) else {
            return Err(format!("{} does not report its version", command.display()));
        };
        Ok(Self {
            path: PathBuf::from(path),
            implementation,
            version: (major, minor, micro),
        })
    }

    /// `/path/to/python3 (CPython 3.13.0)`.
    pub fn describe(&self) -> String {
        let (major, minor, micro) = self.version;
        let name = match self.implementation.as_str() {
            "cpython" => "CPython",
            other => other,
        };
        format!("{} ({name} {major}.{minor}.{micro})", self.path.display())
    }

    /// Whether this interpreter can import `modules` when started with `flags`; why not
    /// otherwise.
    pub fn can_import(&self, flags: &[&str], modules: &str) -> Result<(), String> {
        let code = format!("import {modules}");
        let args: Vec<&str> = flags.iter().copied().chain(["-c", &code]).collect();
        probe(&self.path, &args).map(|_| ())
    }
}

/// A CPython whose version is at most `guest` (`(3, 14)`), and the nearest to it: the
/// highest such `pythonX.Y` on `PATH` or pyenv version (`$PYENV_ROOT/versions`, by default
/// `~/.pyenv/versions`), or `python3` itself. Candidates are tried from the highest version down; the first
/// that runs and reports itself CPython of a version not above `guest` is taken.
pub fn nearest_cpython(guest: (u32, u32)) -> Result<Interpreter, String> {
    let mut candidates = candidates(guest);
    // `python3` itself, at the version it reports.
    if let Ok(python3) = Interpreter::resolve(Path::new("python3"))
        && python3.version.0 == guest.0
        && python3.version.1 <= guest.1
    {
        candidates.push(((python3.version.0, python3.version.1), python3.path));
    }
    // Highest version first; for one version, PATH before pyenv (the order found).
    candidates.sort_by_key(|candidate| std::cmp::Reverse(candidate.0));
    let mut tried = Vec::new();
    for (_, command) in candidates {
        match Interpreter::resolve(&command) {
            Ok(found)
                if found.implementation == "cpython"
                    && (found.version.0, found.version.1) <= guest =>
            {
                return Ok(found);
            }
            Ok(found) => tried.push(format!(
                "{} is not a CPython ≤ {}.{}",
                found.describe(),
                guest.0,
                guest.1
            )),
            Err(reason) => tried.push(reason),
        }
    }
    let mut reason = format!(
        "no CPython {}.x of a version up to the guest's {}.{} on PATH or under pyenv's versions",
        guest.0, guest.0, guest.1
    );
    if !tried.is_empty() {
        reason.push_str(&format!(" ({})", tried.join("; ")));
    }
    Err(reason)
}

/// `(version, command)` of every `pythonX.Y` on `PATH` and every pyenv version's
/// `bin/python3` whose version (from its name) is at most `guest`.
fn candidates(guest: (u32, u32)) -> Vec<((u32, u32), PathBuf)> {
    let (major, top) = guest;
    let mut found = Vec::new();
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            for minor in (0..=top).rev() {
                let file = dir.join(format!("python{major}.{minor}"));
                if file.is_file() {
                    found.push(((major, minor), file));
                }
            }
        }
    }
    let pyenv = std::env::var_os("PYENV_ROOT")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".pyenv")));
    if let Some(versions) = pyenv.map(|root| root.join("versions"))
        && let Ok(entries) = std::fs::read_dir(versions)
    {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let mut parts = name.split('.');
            let (Some(Ok(maj)), Some(Ok(minor))) = (
                parts.next().map(str::parse::<u32>),
                parts.next().map(str::parse::<u32>),
            ) else {
                continue;
            };
            let file = entry.path().join("bin/python3");
            if maj == major && minor <= top && file.is_file() {
                found.push(((maj, minor), file));
            }
        }
    }
    found
}

/// Runs `program args` to completion; its stdout, or why it failed (its last stderr line).
pub(super) fn probe(program: &Path, args: &[&str]) -> Result<String, String> {
    let output = std::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|err| format!("cannot run {}: {err}", program.display()))?;
    if output.status.success() {
        return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let last = stderr.lines().last().unwrap_or("no error message");
    Err(format!(
        "`{} {}` failed: {last}",
        program.display(),
        args.join(" ")
    ))
}

/// `"3.14"` as `(3, 14)`.
pub fn parse_level(level: &str) -> Option<(u32, u32)> {
    let (major, minor) = level.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_parse() {
        assert_eq!(parse_level("3.14"), Some((3, 14)));
        assert_eq!(parse_level("3"), None);
        assert_eq!(parse_level("3.x"), None);
    }

    #[test]
    fn python3_is_resolved_to_its_real_file() {
        let python = Interpreter::resolve(Path::new("python3")).expect("python3 runs here");
        assert!(python.path.is_absolute(), "{python:?}");
        // The real interpreter answers the same question with its own path.
        assert_eq!(Interpreter::resolve(&python.path), Ok(python.clone()));
        assert_eq!(python.implementation, "cpython");
    }

    #[test]
    fn the_nearest_cpython_is_not_above_the_guest() {
        let python = Interpreter::resolve(Path::new("python3")).expect("python3 runs here");
        let (major, minor, _) = python.version;
        // python3 itself is a candidate at its own level, so one is always found.
        let nearest = nearest_cpython((major, minor)).expect("at least python3");
        assert_eq!((nearest.version.0, nearest.version.1), (major, minor));
        assert!(nearest.path.is_absolute());
        let err = nearest_cpython((2, 0)).expect_err("no Python 2.0 here");
        assert!(err.contains("no CPython 2.x"), "{err}");
    }
}
