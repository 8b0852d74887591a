//! What a seccomp profile lets a container do: a summary of a Docker-format JSON profile,
//! and for a pinned profile its difference from the engine's default
//! (`stratbox doctor --seccomp`).
//!
//! A profile is read as the engine applies it to a stratbox container on this machine:
//! rules for other architectures or newer kernels do not apply, and rules that need a
//! capability never apply (stratbox drops every capability). Each syscall then falls in one
//! of four classes ([`Verdict`]). Profiles name syscalls, they do not list them all, so the
//! syscalls classified are every name the profile, the engine's default profile or the
//! list of well-known dangerous calls ([`RISKS`]) mentions; any other call gets the
//! profile's default action.
//!
//! The engine's default profile is not in this repository: it is the engine's own,
//! `profiles/seccomp/default.json` of the moby sources, as Debian ships it in
//! `golang-github-docker-docker-dev` (`make host-packages` puts it in place, see
//! [`ENGINE_DEFAULT_PATHS`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::seccomp::SeccompProfile;

/// Where the engine's default profile is looked for, in order, with the file that names
/// the Debian package version it came from (`None`: ask dpkg). The first is the path of
/// the installed Debian package; the second is where `make host-packages` extracts the
/// same file from the package without installing its 250 Go source dependencies.
pub const ENGINE_DEFAULT_PATHS: &[(&str, Option<&str>)] = &[
    (
        "/usr/local/share/stratbox/moby-seccomp/default.json",
        Some("/usr/local/share/stratbox/moby-seccomp/source"),
    ),
    (
        "/usr/share/gocode/src/github.com/docker/docker/profiles/seccomp/default.json",
        None,
    ),
];

/// The Debian package that carries the moby sources.
pub const MOBY_PACKAGE: &str = "golang-github-docker-docker-dev";

/// Well-known dangerous syscalls, each with a one-line note of what it risks.
pub const RISKS: &[(&str, &str)] = &[
    (
        "unshare",
        "new namespaces; user namespaces reopen kernel attack surface meant for root",
    ),
    (
        "setns",
        "joins another namespace, the way out of the container's own",
    ),
    ("clone", "with namespace flags, the same as unshare"),
    (
        "clone3",
        "namespace flags the filter cannot inspect (arguments behind a pointer)",
    ),
    (
        "mount",
        "changes the file system view; with a user namespace, mounts of its own",
    ),
    ("umount2", "removes mounts that hide host paths"),
    ("pivot_root", "changes the root file system"),
    (
        "chroot",
        "changes the root directory; a classic escape helper",
    ),
    ("fsopen", "new mount API: creates file system contexts"),
    ("fsmount", "new mount API: mounts a file system"),
    ("move_mount", "new mount API: moves mounts"),
    ("open_tree", "new mount API: clones mount trees"),
    (
        "bpf",
        "loads programs into the kernel; a frequent source of kernel exploits",
    ),
    (
        "perf_event_open",
        "kernel profiling; leaks addresses, frequent kernel bugs",
    ),
    ("kexec_load", "loads a new kernel"),
    ("kexec_file_load", "loads a new kernel"),
    ("init_module", "loads kernel modules"),
    ("finit_module", "loads kernel modules"),
    ("delete_module", "unloads kernel modules"),
    (
        "keyctl",
        "kernel keyrings are not namespaced: keys of other containers",
    ),
    ("add_key", "kernel keyrings are not namespaced"),
    ("request_key", "kernel keyrings are not namespaced"),
    (
        "ptrace",
        "reads and rewrites other processes of the same user",
    ),
    ("process_vm_readv", "reads another process's memory"),
    ("process_vm_writev", "writes another process's memory"),
    (
        "pidfd_getfd",
        "steals file descriptors from another process",
    ),
    (
        "kcmp",
        "compares kernel objects of other processes; leaks kernel layout",
    ),
    (
        "userfaultfd",
        "stalls kernel page faults at will; a staple of kernel race exploits",
    ),
    (
        "io_uring_setup",
        "asynchronous I/O that bypasses syscall filtering; many kernel bugs",
    ),
    (
        "io_uring_enter",
        "asynchronous I/O that bypasses syscall filtering",
    ),
    (
        "io_uring_register",
        "asynchronous I/O that bypasses syscall filtering",
    ),
    (
        "open_by_handle_at",
        "opens host files by handle (the 'shocker' escape)",
    ),
    (
        "name_to_handle_at",
        "file handles, the first half of open_by_handle_at",
    ),
    (
        "personality",
        "changes the execution domain; disables address randomisation",
    ),
    ("lookup_dcookie", "kernel profiling internals; leaks paths"),
    ("quotactl", "file system quotas of the host"),
    ("acct", "process accounting of the host"),
    ("swapon", "swap of the host"),
    ("swapoff", "swap of the host"),
    ("reboot", "reboots the host (or ends the pid namespace)"),
    ("syslog", "reads the kernel log; leaks kernel addresses"),
    (
        "settimeofday",
        "sets the host clock, which is not namespaced",
    ),
    (
        "clock_settime",
        "sets the host clock, which is not namespaced",
    ),
    ("iopl", "raw I/O port access"),
    ("ioperm", "raw I/O port access"),
    ("vm86", "legacy CPU mode with a history of kernel bugs"),
    ("uselib", "obsolete loader call"),
    ("nfsservctl", "kernel NFS server control"),
    ("mbind", "memory policy of the host's NUMA nodes"),
    ("set_mempolicy", "memory policy of the host's NUMA nodes"),
    (
        "move_pages",
        "moves pages between NUMA nodes; reveals memory layout",
    ),
    ("fanotify_init", "watches file system events of the host"),
];

/// The risk note of a syscall, if it is a well-known dangerous one.
pub fn risk(name: &str) -> Option<&'static str> {
    RISKS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, note)| *note)
}

/// A seccomp profile could not be read or summarised.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// The engine's default profile is not installed.
    #[error(
        "the engine's default seccomp profile is not installed (looked in {}); run `make host-packages` (it takes `profiles/seccomp/default.json` from Debian's {MOBY_PACKAGE})",
        ENGINE_DEFAULT_PATHS.iter().map(|(p, _)| *p).collect::<Vec<_>>().join(", ")
    )]
    EngineDefaultMissing,
    /// A profile file cannot be read.
    #[error("cannot read the seccomp profile {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A profile is not a Docker-format seccomp profile.
    #[error("seccomp profile `{name}`: {message}")]
    Format {
        /// The profile's name or path.
        name: String,
        /// What is wrong.
        message: String,
    },
}

/// How a syscall fares under a profile, in a stratbox container on this machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "verdict")]
pub enum Verdict {
    /// Allowed whatever its arguments.
    Allowed,
    /// Allowed for some arguments only (or, in a profile that allows by default, refused
    /// for some).
    AllowedWithArgs,
    /// Allowed only to a process holding a capability, so never in a stratbox container.
    CapabilityOnly {
        /// The capabilities that would allow it.
        caps: Vec<String>,
    },
    /// Refused.
    Denied,
}

impl Verdict {
    /// Whether a stratbox container may make the call (for some arguments at least).
    pub fn reachable(&self) -> bool {
        match self {
            Verdict::Allowed | Verdict::AllowedWithArgs => true,
            Verdict::CapabilityOnly { .. } | Verdict::Denied => false,
        }
    }
}

/// A profile as the engine reads it (the fields the report needs; others are ignored).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    default_action: String,
    #[serde(default)]
    architectures: Vec<String>,
    #[serde(default)]
    arch_map: Vec<ArchMap>,
    #[serde(default)]
    syscalls: Vec<Rule>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArchMap {
    architecture: String,
    #[serde(default)]
    sub_architectures: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct Rule {
    #[serde(default)]
    names: Vec<String>,
    /// The old single-name format.
    #[serde(default)]
    name: Option<String>,
    action: String,
    #[serde(default)]
    args: Option<Vec<serde_json::Value>>,
    #[serde(default)]
    includes: Filter,
    #[serde(default)]
    excludes: Filter,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Filter {
    #[serde(default)]
    arches: Vec<String>,
    #[serde(default)]
    caps: Vec<String>,
    #[serde(default)]
    min_kernel: Option<String>,
}

/// The machine a profile is read for: the engine's name of the architecture and the
/// kernel's version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// The architecture as profiles name it (`amd64`, `arm64`, …).
    pub arch: String,
    /// The kernel's major and minor version.
    pub kernel: (u32, u32),
}

impl Host {
    /// This machine.
    pub fn current() -> Self {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "x86",
            "powerpc64" => "ppc64le",
            other => other,
        };
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        Self {
            arch: arch.to_owned(),
            kernel: parse_kernel(&release).unwrap_or((0, 0)),
        }
    }
}

fn parse_kernel(text: &str) -> Option<(u32, u32)> {
    let mut parts = text.trim().split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

impl Profile {
    /// Parses a profile's JSON text; `name` is for messages.
    pub fn parse(name: &str, text: &str) -> Result<Self, ReportError> {
        let profile: Self = serde_json::from_str(text).map_err(|err| ReportError::Format {
            name: name.to_owned(),
            message: format!("not a Docker-format profile: {err}"),
        })?;
        if !profile.default_action.starts_with("SCMP_ACT_") {
            return Err(ReportError::Format {
                name: name.to_owned(),
                message: format!("`defaultAction` is `{}`", profile.default_action),
            });
        }
        Ok(profile)
    }

    fn allows_by_default(&self) -> bool {
        is_allow(&self.default_action)
    }

    /// Every syscall name the profile mentions.
    pub fn names(&self) -> BTreeSet<String> {
        self.syscalls.iter().flat_map(Rule::names).collect()
    }

    /// The architectures the profile covers (native and their sub-architectures).
    pub fn architectures(&self) -> Vec<String> {
        let mut arches = self.architectures.clone();
        for map in &self.arch_map {
            arches.push(map.architecture.clone());
            arches.extend(map.sub_architectures.iter().cloned());
        }
        let mut seen = BTreeSet::new();
        arches.retain(|arch| seen.insert(arch.clone()));
        arches
    }

    /// How `syscall` fares under this profile on `host`, without capabilities.
    pub fn verdict(&self, syscall: &str, host: &Host) -> Verdict {
        let mut allow = (false, false); // (without arguments, with arguments)
        let mut deny = (false, false);
        let mut caps = Vec::new();
        for rule in self
            .syscalls
            .iter()
            .filter(|r| r.names().any(|n| n == syscall))
        {
            if !rule.applies_to(host) {
                continue;
            }
            if !rule.includes.caps.is_empty() {
                if is_allow(&rule.action) {
                    caps.extend(rule.includes.caps.iter().cloned());
                }
                continue;
            }
            let filtered = rule.args.as_ref().is_some_and(|args| !args.is_empty());
            let slot = if is_allow(&rule.action) {
                &mut allow
            } else {
                &mut deny
            };
            if filtered {
                slot.1 = true;
            } else {
                slot.0 = true;
            }
        }
        if allow.0 {
            Verdict::Allowed
        } else if deny.0 {
            Verdict::Denied
        } else if self.allows_by_default() {
            if deny.1 {
                Verdict::AllowedWithArgs
            } else {
                Verdict::Allowed
            }
        } else if allow.1 {
            Verdict::AllowedWithArgs
        } else if !caps.is_empty() {
            caps.sort();
            caps.dedup();
            Verdict::CapabilityOnly { caps }
        } else {
            Verdict::Denied
        }
    }
}

fn is_allow(action: &str) -> bool {
    // SCMP_ACT_LOG lets the call through too (and logs it).
    matches!(action, "SCMP_ACT_ALLOW" | "SCMP_ACT_LOG")
}

impl Rule {
    fn names(&self) -> impl Iterator<Item = String> + '_ {
        self.names.iter().chain(self.name.iter()).cloned()
    }

    fn applies_to(&self, host: &Host) -> bool {
        let arch = host.arch.as_str();
        if !self.includes.arches.is_empty() && !self.includes.arches.iter().any(|a| a == arch) {
            return false;
        }
        if self.excludes.arches.iter().any(|a| a == arch) {
            return false;
        }
        // `excludes.caps` never triggers: a stratbox container holds no capability.
        match self.includes.min_kernel.as_deref().and_then(parse_kernel) {
            Some(min) => host.kernel >= min,
            None => true,
        }
    }
}

/// Where a profile came from.
#[derive(Debug, Clone, Serialize)]
pub struct Origin {
    /// The policy's name for it (`deny-uname.json`, a path), or `engine default`.
    pub name: String,
    /// The file read, when it was one.
    pub path: Option<PathBuf>,
    /// For the engine's default: the version of the moby sources it came from (the Debian
    /// package version), when known.
    pub moby_version: Option<String>,
}

/// A profile with its origin.
#[derive(Debug, Clone)]
pub struct LoadedProfile {
    /// Where it came from.
    pub origin: Origin,
    /// The profile.
    pub profile: Profile,
}

/// Reads the engine's default profile from the first of [`ENGINE_DEFAULT_PATHS`] present.
pub fn engine_default() -> Result<LoadedProfile, ReportError> {
    let (path, version_file) = ENGINE_DEFAULT_PATHS
        .iter()
        .find(|(path, _)| Path::new(path).is_file())
        .ok_or(ReportError::EngineDefaultMissing)?;
    let text = std::fs::read_to_string(path).map_err(|source| ReportError::Read {
        path: PathBuf::from(path),
        source,
    })?;
    let moby_version = match version_file {
        Some(file) => std::fs::read_to_string(file)
            .ok()
            .and_then(|text| text.split_whitespace().nth(1).map(str::to_owned)),
        None => dpkg_version(MOBY_PACKAGE),
    };
    Ok(LoadedProfile {
        origin: Origin {
            name: "engine default".to_owned(),
            path: Some(PathBuf::from(path)),
            moby_version,
        },
        profile: Profile::parse(path, &text)?,
    })
}

fn dpkg_version(package: &str) -> Option<String> {
    let output = std::process::Command::new("dpkg-query")
        .args(["-W", "-f=${Version}", package])
        .output()
        .ok()?;
    let version = String::from_utf8(output.stdout).ok()?;
    (output.status.success() && !version.is_empty()).then_some(version)
}

/// Reads the profile a policy names (`""` is the engine's default).
pub fn load(name: &str) -> Result<LoadedProfile, ReportError> {
    match SeccompProfile::load(name) {
        Ok(SeccompProfile::EngineDefault) => engine_default(),
        Ok(SeccompProfile::Pinned { name, json }) => Ok(LoadedProfile {
            profile: Profile::parse(&name, &json)?,
            origin: Origin {
                path: name.contains('/').then(|| PathBuf::from(&name)),
                name,
                moby_version: None,
            },
        }),
        Err(super::ContainerError::Seccomp { name, message }) => {
            Err(ReportError::Format { name, message })
        }
        Err(err) => Err(ReportError::Format {
            name: name.to_owned(),
            message: err.to_string(),
        }),
    }
}

/// The upstream part of a moby/Docker version (`20.10.24` of `20.10.24+dfsg1-1+deb12u1`).
pub fn upstream_version(version: &str) -> &str {
    let end = version.find(['+', '-', '~']).unwrap_or(version.len());
    &version[..end]
}

/// A syscall in a report, with its risk note when it is a well-known dangerous one.
#[derive(Debug, Clone, Serialize)]
pub struct Syscall {
    /// The syscall.
    pub name: String,
    /// What allowing it risks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub risk: Option<&'static str>,
}

impl Syscall {
    fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            risk: risk(name),
        }
    }
}

/// The summary of one profile.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Where the profile came from.
    pub origin: Origin,
    /// The action for a syscall no rule names.
    pub default_action: String,
    /// The architectures the profile covers.
    pub architectures: Vec<String>,
    /// The architecture and kernel the verdicts are for.
    pub host: String,
    /// Allowed whatever the arguments.
    pub allowed: Vec<String>,
    /// Allowed for some arguments only.
    pub allowed_with_args: Vec<String>,
    /// Allowed only with a capability (so never in a stratbox container), by syscall.
    pub capability_only: BTreeMap<String, Vec<String>>,
    /// Refused.
    pub denied: Vec<Syscall>,
}

/// A pinned profile against the engine's default.
#[derive(Debug, Clone, Serialize)]
pub struct Difference {
    /// The engine's default profile compared against.
    pub engine_default: Origin,
    /// Syscalls this profile lets a container make that the default refuses.
    pub adds: Vec<Syscall>,
    /// Syscalls the default lets a container make that this profile refuses.
    pub removes: Vec<Syscall>,
}

/// The report `stratbox doctor --seccomp` prints.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The profile summarised.
    pub summary: Summary,
    /// For a pinned profile, its difference from the engine's default (`None` for the
    /// default itself).
    pub against_default: Option<Difference>,
}

/// Summarises `subject` on `host`; a pinned profile is also compared with `default`. The
/// syscalls classified are those either profile or [`RISKS`] names.
pub fn report(subject: &LoadedProfile, default: &LoadedProfile, host: &Host) -> Report {
    let mut universe = subject.profile.names();
    universe.extend(default.profile.names());
    universe.extend(RISKS.iter().map(|(name, _)| (*name).to_owned()));
    let mut summary = Summary {
        origin: subject.origin.clone(),
        default_action: subject.profile.default_action.clone(),
        architectures: subject.profile.architectures(),
        host: format!("{} kernel {}.{}", host.arch, host.kernel.0, host.kernel.1),
        allowed: Vec::new(),
        allowed_with_args: Vec::new(),
        capability_only: BTreeMap::new(),
        denied: Vec::new(),
    };
    let mut adds = Vec::new();
    let mut removes = Vec::new();
    for name in &universe {
        let verdict = subject.profile.verdict(name, host);
        let reachable = verdict.reachable();
        match verdict {
            Verdict::Allowed => summary.allowed.push(name.clone()),
            Verdict::AllowedWithArgs => summary.allowed_with_args.push(name.clone()),
            Verdict::CapabilityOnly { caps } => {
                summary.capability_only.insert(name.clone(), caps);
            }
            Verdict::Denied => summary.denied.push(Syscall::new(name)),
        }
        let by_default = default.profile.verdict(name, host).reachable();
        if reachable && !by_default {
            adds.push(Syscall::new(name));
        } else if by_default && !reachable {
            removes.push(Syscall::new(name));
        }
    }
    let pinned = subject.origin.path.as_deref() != default.origin.path.as_deref()
        || subject.origin.name != default.origin.name;
    Report {
        summary,
        against_default: pinned.then(|| Difference {
            engine_default: default.origin.clone(),
            adds,
            removes,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: fn() -> Host = || Host {
        arch: "amd64".to_owned(),
        kernel: (6, 1),
    };

    fn loaded(name: &str, json: &str) -> LoadedProfile {
        LoadedProfile {
            origin: Origin {
                name: name.to_owned(),
                path: None,
                moby_version: None,
            },
            profile: Profile::parse(name, json).expect("profile"),
        }
    }

    /// A small profile in the engine default's shape.
    const DEFAULTISH: &str = r#"{
        "defaultAction": "SCMP_ACT_ERRNO",
        "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]}],
        "syscalls": [
            {"names": ["read", "write", "uname"], "action": "SCMP_ACT_ALLOW", "args": []},
            {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "args": null, "includes": {"minKernel": "4.8"}},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]},
            {"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64"]}},
            {"names": ["breakpoint"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["arm64"]}},
            {"names": ["mount", "unshare"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
            {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38, "excludes": {"caps": ["CAP_SYS_ADMIN"]}}
        ]
    }"#;

    #[test]
    fn verdicts_follow_arch_kernel_args_and_caps() {
        let profile = Profile::parse("d", DEFAULTISH).expect("parses");
        let host = HOST();
        assert_eq!(profile.verdict("read", &host), Verdict::Allowed);
        assert_eq!(profile.verdict("ptrace", &host), Verdict::Allowed);
        let old = Host {
            kernel: (4, 4),
            ..HOST()
        };
        assert_eq!(profile.verdict("ptrace", &old), Verdict::Denied);
        assert_eq!(
            profile.verdict("personality", &host),
            Verdict::AllowedWithArgs
        );
        assert_eq!(profile.verdict("arch_prctl", &host), Verdict::Allowed);
        assert_eq!(profile.verdict("breakpoint", &host), Verdict::Denied);
        assert_eq!(
            profile.verdict("mount", &host),
            Verdict::CapabilityOnly {
                caps: vec!["CAP_SYS_ADMIN".to_owned()]
            }
        );
        assert_eq!(profile.verdict("clone3", &host), Verdict::Denied);
        assert_eq!(profile.verdict("bpf", &host), Verdict::Denied, "not named");
    }

    #[test]
    fn allow_by_default_profile_against_the_default() {
        let pinned = loaded(
            "allow-unshare.json",
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["mount", "bpf"], "action": "SCMP_ACT_ERRNO"},
                {"names": ["uname"], "action": "SCMP_ACT_ERRNO"}
            ]}"#,
        );
        let default = loaded("engine default", DEFAULTISH);
        let report = report(&pinned, &default, &HOST());
        let diff = report
            .against_default
            .expect("a pinned profile is compared");
        let adds: Vec<&str> = diff.adds.iter().map(|s| s.name.as_str()).collect();
        assert!(adds.contains(&"unshare"), "{adds:?}");
        assert!(
            adds.contains(&"clone3") && adds.contains(&"breakpoint"),
            "{adds:?}"
        );
        assert!(
            !adds.contains(&"mount") && !adds.contains(&"bpf"),
            "{adds:?}"
        );
        let unshare = diff
            .adds
            .iter()
            .find(|s| s.name == "unshare")
            .expect("unshare");
        assert!(unshare.risk.is_some_and(|r| r.contains("namespace")));
        let removes: Vec<&str> = diff.removes.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(removes, ["uname"]);
        assert!(report.summary.denied.iter().any(|s| s.name == "mount"));
    }

    #[test]
    fn the_default_is_not_compared_with_itself() {
        let default = loaded("engine default", DEFAULTISH);
        let report = report(&default, &default, &HOST());
        assert!(report.against_default.is_none());
        assert!(report.summary.capability_only.contains_key("unshare"));
        assert_eq!(report.summary.allowed_with_args, ["personality"]);
    }

    #[test]
    fn versions_and_kernels_parse() {
        assert_eq!(upstream_version("20.10.24+dfsg1-1+deb12u1"), "20.10.24");
        assert_eq!(upstream_version("28.2.2"), "28.2.2");
        assert_eq!(parse_kernel("6.18.44-fc-v782\n"), Some((6, 18)));
        assert_eq!(parse_kernel("garbage"), None);
    }

    #[test]
    fn bad_profiles_are_refused_with_their_name() {
        let err = Profile::parse("x.json", "{}").expect_err("no defaultAction");
        assert!(err.to_string().contains("x.json"), "{err}");
        let err = Profile::parse("y.json", r#"{"defaultAction": "ALLOW"}"#).expect_err("bad");
        assert!(err.to_string().contains("ALLOW"), "{err}");
    }
}
