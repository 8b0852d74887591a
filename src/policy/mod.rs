//! The policy model: one TOML profile drives validation, routing and both backends.
//!
//! A profile is a TOML file with four tables, every key optional (a missing key takes the
//! default documented on its field) and every unknown key an error:
//!
//! ```toml
//! description = "what this profile is for"
//!
//! [limits]            # see `Limits`
//! wall-time = "10s"
//! memory = "512MiB"
//!
//! [imports]           # see `Imports`
//! wasm = ["*"]
//! [imports.native]
//! numpy = "array maths; a native extension, so it runs in the container"
//!
//! [validator]         # see `crate::validate::ValidatorConfig`
//! [container]         # see `ContainerConfig`
//! [run]               # see `RunConfig`: deterministic runs
//! ```
//!
//! Profiles shipped with stratbox (`profiles/*.toml`) are compiled into the binary and
//! selected by name; any other profile is selected by path.

mod ceiling;
mod container;
pub mod determinism;
mod modules;
mod tighten;
pub mod units;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use container::ContainerConfig;
pub use determinism::{Determinism, RunConfig};
pub use modules::{GUEST_MODULES, GuestModule, MODULES_TXT};
pub use tighten::{LooserLimit, RequestLimits};

use crate::validate::ValidatorConfig;

/// The profiles compiled into the binary, by name.
pub const BUILTIN_PROFILES: &[(&str, &str)] = &[
    ("default", include_str!("../../profiles/default.toml")),
    ("strict", include_str!("../../profiles/strict.toml")),
    ("numeric", include_str!("../../profiles/numeric.toml")),
];

/// The profile used when none is named.
pub const DEFAULT_PROFILE: &str = "default";

/// A profile could not be found or read.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// No built-in profile has this name (and it is not a path).
    #[error(
        "no built-in profile named `{name}` (built in: {known}); to load a file, give a path such as ./{name}.toml"
    )]
    UnknownProfile {
        /// The name asked for.
        name: String,
        /// The built-in names, comma-separated.
        known: String,
    },
    /// The profile file cannot be read.
    #[error("cannot read profile {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The profile is not valid TOML of the profile's shape.
    #[error("invalid profile {origin}: {message}")]
    Parse {
        /// `built-in` or the path.
        origin: String,
        /// The parser's message.
        message: String,
    },
    /// The profile parses but a value is out of bounds or inconsistent.
    #[error("invalid profile {origin}: {message}")]
    Invalid {
        /// `built-in` or the path, or `command line` for overrides.
        origin: String,
        /// What is wrong.
        message: String,
    },
}

/// How the run is stopped when a strategy prints more than the output cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum OutputOverflow {
    /// Keep the first bytes up to the cap, drop the rest, let the strategy go on.
    Truncate,
    /// Keep the first bytes up to the cap and stop the run (`killed`, reason `output`).
    Kill,
}

/// How the wasm backend meters computation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Metering {
    /// A deterministic instruction budget (`fuel`) plus the wall deadline. The same script
    /// stops at the same instruction on every machine.
    Fuel,
    /// The wall deadline alone (epoch interruption), which costs less per instruction;
    /// `fuel` is ignored and CPU-bound scripts end as `killed`/`deadline`.
    Epoch,
}

/// The resource limits of one run. Field names carry their units.
///
/// Each limit applies to both backends or names its counterpart on the other one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Limits {
    /// Wall-clock deadline, both backends. Default [`Limits::DEFAULT_WALL_TIME`].
    /// wasm: epoch interruption plus a timer that also ends host calls (`time.sleep`,
    /// reading stdin); container: the container is killed at the deadline.
    #[serde(with = "units::serde_duration")]
    pub wall_time: Duration,
    /// wasm only: the instruction budget (wasmtime fuel). Default
    /// [`Limits::DEFAULT_FUEL`]. Counterpart on the container backend: `cpu-time`.
    pub fuel: u64,
    /// container only: CPU seconds (RLIMIT_CPU, rounded up to whole seconds). Default
    /// [`Limits::DEFAULT_CPU_TIME`]. Counterpart on the wasm backend: `fuel`.
    #[serde(with = "units::serde_duration")]
    pub cpu_time: Duration,
    /// Memory cap, both backends. Default [`Limits::DEFAULT_MEMORY_BYTES`].
    /// wasm: the guest's linear memory; container: the cgroup memory limit, swap equal to
    /// memory (no swap).
    #[serde(rename = "memory", with = "units::serde_size")]
    pub memory_bytes: u64,
    /// Bytes of stdout kept, both backends. Default [`Limits::DEFAULT_STDOUT_BYTES`].
    #[serde(rename = "stdout", with = "units::serde_size")]
    pub stdout_bytes: u64,
    /// Bytes of stderr kept, both backends. Default [`Limits::DEFAULT_STDERR_BYTES`].
    #[serde(rename = "stderr", with = "units::serde_size")]
    pub stderr_bytes: u64,
    /// Largest strategy source accepted, both backends; a larger one is rejected before
    /// parsing. Default [`Limits::DEFAULT_SOURCE_BYTES`].
    #[serde(rename = "source", with = "units::serde_size")]
    pub source_bytes: u64,
    /// Largest input document accepted, both backends. Default
    /// [`Limits::DEFAULT_INPUT_BYTES`].
    #[serde(rename = "input", with = "units::serde_size")]
    pub input_bytes: u64,
    /// Size of the strategy's scratch space `/tmp`, both backends; writing past it fails
    /// with `OSError` `ENOSPC`. Default [`Limits::DEFAULT_TMP_BYTES`].
    /// wasm: an in-memory file system private to the run, counting file contents plus
    /// 512 bytes per file or directory, at most 65536 of them; container: a tmpfs
    /// (noexec, nosuid, nodev). On both, what `/tmp` holds counts against `memory` too,
    /// and it is gone when the run ends.
    #[serde(rename = "tmp-size", with = "units::serde_size")]
    pub tmp_bytes: u64,
    /// What happens past an output cap, both backends. Default `truncate`.
    pub output_overflow: OutputOverflow,
    /// wasm only: how computation is metered. Default `fuel`. The container backend
    /// always meters with `cpu-time` and `wall-time`.
    pub metering: Metering,
}

impl Limits {
    /// Long enough for a pure-Python backtest over years of daily bars.
    pub const DEFAULT_WALL_TIME: Duration = Duration::from_secs(10);
    /// About ten seconds of CPython-on-wasm work on a 2020s x86-64 core.
    pub const DEFAULT_FUEL: u64 = 40_000_000_000;
    /// The container's counterpart of `DEFAULT_FUEL`.
    pub const DEFAULT_CPU_TIME: Duration = Duration::from_secs(10);
    /// Comfortably above the guest's own footprint (about 30 MiB after start-up).
    pub const DEFAULT_MEMORY_BYTES: u64 = 512 << 20;
    /// Enough for a strategy's report; more belongs in a file under `/tmp`.
    pub const DEFAULT_STDOUT_BYTES: u64 = 1 << 20;
    /// Enough for a long traceback.
    pub const DEFAULT_STDERR_BYTES: u64 = 256 << 10;
    /// A strategy is a script, not a data set: data belongs in the input or `/data`.
    pub const DEFAULT_SOURCE_BYTES: u64 = 1 << 20;
    /// A generous input document (a price history as JSON).
    pub const DEFAULT_INPUT_BYTES: u64 = 64 << 20;
    /// Room for intermediate files of a backtest, well inside the default memory.
    pub const DEFAULT_TMP_BYTES: u64 = 64 << 20;
    /// Below this the CPython guest cannot even start.
    pub const MIN_MEMORY_BYTES: u64 = 64 << 20;
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            wall_time: Self::DEFAULT_WALL_TIME,
            fuel: Self::DEFAULT_FUEL,
            cpu_time: Self::DEFAULT_CPU_TIME,
            memory_bytes: Self::DEFAULT_MEMORY_BYTES,
            stdout_bytes: Self::DEFAULT_STDOUT_BYTES,
            stderr_bytes: Self::DEFAULT_STDERR_BYTES,
            source_bytes: Self::DEFAULT_SOURCE_BYTES,
            input_bytes: Self::DEFAULT_INPUT_BYTES,
            tmp_bytes: Self::DEFAULT_TMP_BYTES,
            output_overflow: OutputOverflow::Truncate,
            metering: Metering::Fuel,
        }
    }
}

/// Which modules a strategy may import, and which backend provides them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Imports {
    /// Standard-library modules allowed on the wasm path: names from `wasm/modules.txt`
    /// (which gives the reason for each), or `"*"` for every module the guest carries.
    /// A profile can narrow the guest's list, never widen it. Default `["*"]`.
    pub wasm: Vec<String>,
    /// Native-extension packages (and their sub-modules) that route a strategy to the
    /// container backend, each with the reason it is allowed. Default: none.
    pub native: BTreeMap<String, String>,
}

impl Default for Imports {
    fn default() -> Self {
        Self {
            wasm: vec!["*".to_owned()],
            native: BTreeMap::new(),
        }
    }
}

/// A profile file as written.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
struct ProfileFile {
    description: String,
    limits: Limits,
    imports: Imports,
    validator: ValidatorConfig,
    container: ContainerConfig,
    run: RunConfig,
}

/// A loaded, checked policy.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The profile's name: a built-in name, or the file stem of a profile given by path.
    pub name: String,
    /// Where it came from (`built-in` or the path), for messages.
    pub origin: String,
    /// What the profile is for, for people.
    pub description: String,
    /// Resource limits.
    pub limits: Limits,
    /// Which modules a strategy may import, and on which backend.
    pub imports: Imports,
    /// The validator's settings.
    pub validator: ValidatorConfig,
    /// The container backend's settings.
    pub container: ContainerConfig,
    /// Deterministic runs: the seed and the starting clock.
    pub run: RunConfig,
}

impl Policy {
    /// Loads a profile by built-in name (`default`, `strict`, `numeric`) or by path (any
    /// argument that contains a `/` or ends in `.toml`).
    pub fn load(name_or_path: &str) -> Result<Self, PolicyError> {
        if name_or_path.contains('/') || name_or_path.ends_with(".toml") {
            return Self::from_file(Path::new(name_or_path));
        }
        let (name, text) = BUILTIN_PROFILES
            .iter()
            .find(|(name, _)| *name == name_or_path)
            .ok_or_else(|| PolicyError::UnknownProfile {
                name: name_or_path.to_owned(),
                known: BUILTIN_PROFILES
                    .iter()
                    .map(|(name, _)| *name)
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
        Self::from_toml(name, &format!("`{name}` (built in)"), text)
    }

    /// The built-in `default` profile.
    pub fn default_profile() -> Self {
        // The built-in profiles are checked by the unit tests below; a failure here is a
        // build defect, not an input error.
        Self::load(DEFAULT_PROFILE).expect("the built-in default profile is valid")
    }

    /// Loads a profile file.
    pub fn from_file(path: &Path) -> Result<Self, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
            path: path.to_owned(),
            source,
        })?;
        let name = path
            .file_stem()
            .map(|stem| stem.to_string_lossy().into_owned())
            .unwrap_or_else(|| "custom".to_owned());
        Self::from_toml(&name, &path.display().to_string(), &text)
    }

    /// Parses and checks profile text. `origin` names it in error messages.
    pub fn from_toml(name: &str, origin: &str, text: &str) -> Result<Self, PolicyError> {
        let file: ProfileFile = toml::from_str(text).map_err(|err| PolicyError::Parse {
            origin: origin.to_owned(),
            message: err.to_string().trim_end().to_owned(),
        })?;
        let policy = Self {
            name: name.to_owned(),
            origin: origin.to_owned(),
            description: file.description,
            limits: file.limits,
            imports: file.imports,
            validator: file.validator,
            container: file.container,
            run: file.run,
        };
        policy.check().map_err(|message| PolicyError::Invalid {
            origin: origin.to_owned(),
            message,
        })?;
        Ok(policy)
    }

    /// The policy as profile text: loading it again (under the same name) gives the same
    /// resolved policy, the same [`Policy::sha256`]. For a child process that must run
    /// under a policy built in code (`stratbox bench` starting `stratbox serve`).
    pub fn to_toml(&self) -> Result<String, PolicyError> {
        let file = ProfileFile {
            description: self.description.clone(),
            limits: self.limits.clone(),
            imports: self.imports.clone(),
            validator: self.validator.clone(),
            container: self.container.clone(),
            run: self.run.clone(),
        };
        toml::to_string(&file).map_err(|err| PolicyError::Invalid {
            origin: self.origin.clone(),
            message: format!("cannot be written as TOML: {err}"),
        })
    }

    /// Applies command-line overrides and checks the result again.
    pub fn with_overrides(mut self, overrides: &Overrides) -> Result<Self, PolicyError> {
        if let Some(wall_time) = overrides.wall_time {
            self.limits.wall_time = wall_time;
        }
        if let Some(memory) = overrides.memory_bytes {
            self.limits.memory_bytes = memory;
        }
        if let Some(fuel) = overrides.fuel {
            self.limits.fuel = fuel;
        }
        if let Some(output) = overrides.output_bytes {
            self.limits.stdout_bytes = output;
            self.limits.stderr_bytes = output;
        }
        if let Some(seed) = overrides.seed {
            self.run.deterministic = true;
            self.run.seed = Some(seed);
        }
        if let Some(clock) = overrides.clock {
            self.run.clock = Some(clock);
        }
        self.check().map_err(|message| PolicyError::Invalid {
            origin: format!("{} with command-line overrides", self.origin),
            message,
        })?;
        Ok(self)
    }

    fn check(&self) -> Result<(), String> {
        let limits = &self.limits;
        if limits.wall_time.is_zero() {
            return Err("limits.wall-time must be greater than zero".into());
        }
        if limits.fuel == 0 {
            return Err("limits.fuel must be greater than zero".into());
        }
        if limits.cpu_time.is_zero() {
            return Err("limits.cpu-time must be greater than zero".into());
        }
        if limits.tmp_bytes == 0 {
            // A tmpfs of size 0 has no limit at all.
            return Err("limits.tmp-size must be greater than zero".into());
        }
        if limits.memory_bytes < Limits::MIN_MEMORY_BYTES {
            return Err(format!(
                "limits.memory is {}, below the {} the Python guest needs to start",
                units::format_size(limits.memory_bytes),
                units::format_size(Limits::MIN_MEMORY_BYTES)
            ));
        }
        for module in &self.imports.wasm {
            if module != "*"
                && !GUEST_MODULES
                    .iter()
                    .any(|m| m.importable && m.name == module)
            {
                return Err(format!(
                    "imports.wasm names `{module}`, which the wasm guest does not carry (see wasm/modules.txt)"
                ));
            }
        }
        for (package, reason) in &self.imports.native {
            if package.is_empty() || package.split('.').any(|part| part.is_empty()) {
                return Err(format!(
                    "imports.native has an invalid module name `{package}`"
                ));
            }
            if reason.trim().is_empty() {
                return Err(format!(
                    "imports.native.{package} needs a reason: every allowance says why it is there"
                ));
            }
        }
        self.run.check()?;
        if self.run.deterministic && limits.metering != Metering::Fuel {
            return Err(
                "a deterministic run needs limits.metering = \"fuel\": its clocks advance with \
                 the fuel the guest consumes"
                    .into(),
            );
        }
        self.container.check()
    }

    /// The resolved determinism of this policy's runs: `None` unless `run.deterministic`.
    pub fn determinism(&self) -> Option<Determinism> {
        self.run.determinism()
    }

    /// SHA-256 (hex) of the policy's resolved form: its canonical JSON, after the profile
    /// was read and command-line overrides applied. Two runs under the same resolved
    /// policy give the same hash, whatever file or flags it came from.
    pub fn sha256(&self) -> String {
        use sha2::{Digest, Sha256};
        // Serialising plain data to a Vec cannot fail; an empty hash input would still
        // identify nothing, so the name stands in.
        let canonical = serde_json::to_vec(&self.resolved_value()).unwrap_or_default();
        Sha256::digest(&canonical)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The resolved form, without where it came from (`origin`) or what it is for
    /// (`description`): those do not change what a run may do.
    fn resolved_value(&self) -> serde_json::Value {
        serde_json::json!({
            "name": self.name,
            "limits": self.limits,
            "imports": self.imports,
            "validator": self.validator,
            "container": self.container,
            "run": self.run,
        })
    }

    /// The standard-library modules a strategy may import under this policy.
    pub fn wasm_modules(&self) -> std::collections::BTreeSet<String> {
        let all = self.imports.wasm.iter().any(|m| m == "*");
        GUEST_MODULES
            .iter()
            .filter(|m| m.importable && (all || self.imports.wasm.iter().any(|w| w == m.name)))
            .map(|m| m.name.to_owned())
            .collect()
    }

    /// The import rules the validator and router apply.
    pub fn import_rules(&self) -> crate::validate::ImportRules {
        crate::validate::ImportRules {
            wasm: self.wasm_modules(),
            native: self.imports.native.keys().cloned().collect(),
        }
    }
}

/// Limits given on the command line, applied over the profile.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// Replaces `limits.wall-time`.
    pub wall_time: Option<Duration>,
    /// Replaces `limits.memory`.
    pub memory_bytes: Option<u64>,
    /// Replaces `limits.fuel`.
    pub fuel: Option<u64>,
    /// Applies to stdout and stderr alike.
    pub output_bytes: Option<u64>,
    /// Makes the run deterministic with this seed (`run.deterministic`, `run.seed`).
    pub seed: Option<u64>,
    /// Replaces `run.clock` (since the Unix epoch).
    pub clock: Option<Duration>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_profiles_load() {
        for (name, _) in BUILTIN_PROFILES {
            let policy = Policy::load(name).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(policy.name, *name);
            assert!(!policy.description.is_empty(), "{name} has no description");
        }
    }

    #[test]
    fn unknown_key_names_key_and_file() {
        let err = Policy::from_toml("x", "x.toml", "[limits]\nwall-tme = \"1s\"\n").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("wall-tme"), "{text}");
        assert!(text.contains("x.toml"), "{text}");
    }

    #[test]
    fn bad_values_are_errors() {
        for (toml, needle) in [
            ("[limits]\nmemory = \"1MiB\"\n", "below"),
            ("[limits]\nwall-time = \"0s\"\n", "wall-time"),
            ("[limits]\nwall-time = \"soon\"\n", "soon"),
            ("[imports]\nwasm = [\"socket\"]\n", "socket"),
            ("[imports.native]\nnumpy = \"\"\n", "reason"),
            ("[limits]\noutput-overflow = \"explode\"\n", "explode"),
            ("[limits]\ntmp-size = \"0B\"\n", "tmp-size"),
            ("[container]\ntmp-size = \"8MiB\"\n", "limits.tmp-size"),
        ] {
            let err = Policy::from_toml("x", "x.toml", toml)
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "{toml}: {err}");
        }
    }

    #[test]
    fn unknown_builtin_lists_known() {
        let err = Policy::load("nope").unwrap_err().to_string();
        assert!(err.contains("default") && err.contains("strict"), "{err}");
    }

    #[test]
    fn overrides_apply() {
        let policy = Policy::default_profile()
            .with_overrides(&Overrides {
                wall_time: Some(Duration::from_millis(250)),
                memory_bytes: Some(128 << 20),
                fuel: Some(7),
                output_bytes: Some(10),
                seed: Some(9),
                clock: None,
            })
            .unwrap();
        assert_eq!(policy.limits.wall_time, Duration::from_millis(250));
        assert_eq!(policy.limits.memory_bytes, 128 << 20);
        assert_eq!(policy.limits.fuel, 7);
        assert_eq!(policy.limits.stderr_bytes, 10);
        assert_eq!(policy.determinism().map(|d| d.seed), Some(9));
    }

    #[test]
    fn determinism_is_checked_and_hashed() {
        for (toml, needle) in [
            ("[run]\ndeterministic = true\n", "run.seed"),
            ("[run]\nseed = 7\n", "run.deterministic"),
            ("[run]\nclock = \"2024-01-02T00:00:00Z\"\n", "run.clock"),
            (
                "[run]\ndeterministic = true\nseed = 7\nclock = \"yesterday\"\n",
                "yesterday",
            ),
            (
                "[run]\ndeterministic = true\nseed = 7\n[limits]\nmetering = \"epoch\"\n",
                "fuel",
            ),
            ("[run]\nsed = 7\n", "sed"),
        ] {
            let err = Policy::from_toml("x", "x.toml", toml)
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "{toml}: {err}");
        }
        let seeded = Policy::from_toml(
            "x",
            "x.toml",
            "[run]\ndeterministic = true\nseed = 7\nclock = \"2024-01-02T00:00:00Z\"\n",
        )
        .unwrap();
        let determinism = seeded.determinism().expect("deterministic");
        assert_eq!(determinism.seed, 7);
        assert_eq!(
            determinism.clock_start,
            Determinism::DEFAULT_CLOCK + Duration::from_secs(86_400)
        );
        let plain = Policy::from_toml("x", "elsewhere.toml", "").unwrap();
        assert_ne!(seeded.sha256(), plain.sha256());
        assert_eq!(
            plain.sha256(),
            Policy::from_toml("x", "x.toml", "description = \"other words\"")
                .unwrap()
                .sha256(),
            "where a policy came from and its description do not change its hash"
        );
        assert_eq!(plain.sha256().len(), 64);
    }

    #[test]
    fn a_policy_written_as_toml_loads_as_the_same_policy() {
        let mut changed = Policy::default_profile();
        changed.limits.wall_time = Duration::from_millis(1500);
        changed.limits.fuel = 200_000_000_000;
        changed.run.deterministic = true;
        changed.run.seed = Some(9);
        for (name, _) in BUILTIN_PROFILES {
            let policy = Policy::load(name).expect("built in");
            for policy in [policy, changed.clone()] {
                let text = policy.to_toml().expect("writes");
                let again = Policy::from_toml(&policy.name, "written", &text)
                    .unwrap_or_else(|e| panic!("{e}\n{text}"));
                assert_eq!(again.sha256(), policy.sha256(), "{text}");
                assert_eq!(again.description, policy.description);
            }
        }
    }

    #[test]
    fn strict_narrows_the_guest_list() {
        let strict = Policy::load("strict").unwrap().wasm_modules();
        let default = Policy::default_profile().wasm_modules();
        assert!(strict.is_subset(&default));
        assert!(strict.len() < default.len());
        assert!(
            !default.contains("traceback"),
            "internal modules are not importable"
        );
    }
}
