//! The container's configuration, derived from the policy: every confinement setting in one
//! place, each with its reason.
//!
//! [`ContainerSpec::create_body`] is what the backend sends to the engine;
//! [`ContainerSpec::docker_run_args`] is the same configuration as `docker run` flags, used
//! by the benchmark (and handy to reproduce a run by hand).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use bollard::models::{
    ContainerCreateBody, HostConfig, HostConfigCgroupnsModeEnum, Mount, MountBindOptions,
    MountBindOptionsPropagationEnum, MountType, ResourcesUlimits,
};

use super::ContainerError;
use super::seccomp::SeccompProfile;
use crate::image::recipe::{RUNNER_PATH, USER_ID};
use crate::policy::Policy;

/// The label every stratbox container carries, so that leftovers can be found.
pub const RUN_LABEL: &str = "org.stratbox.run";

/// Where the data directory appears inside the container.
pub const DATA_MOUNT: &str = "/data";

/// The container's only writable place.
pub const TMP_MOUNT: &str = "/tmp";

/// The init process (from the image) and the command it runs.
pub const ENTRYPOINT: [&str; 2] = ["/usr/bin/tini", "--"];

/// `-I`: isolated mode (no user site directory, no `PYTHON*` variables, script directory
/// not on `sys.path`); `-u`: unbuffered output, so that what a strategy printed before a
/// kill is not lost (the wasm guest's output is unbuffered too).
pub const PYTHON: [&str; 3] = ["/usr/bin/python3", "-I", "-u"];

/// The command of a deterministic run: `-I` without its `-E`, because `-E` would ignore
/// `PYTHONHASHSEED`, which fixes `hash()` of strings and bytes and can only be set before
/// the interpreter starts. `-P -s` keep the rest of isolated mode (script directory not
/// on `sys.path`, no user site). The `PYTHON*` variables then read are the image's
/// (`PYTHONDONTWRITEBYTECODE`) and [`ContainerSpec::env`]'s: none comes from the host.
pub const PYTHON_SEEDED: [&str; 4] = ["/usr/bin/python3", "-P", "-s", "-u"];
/// CPU seconds a warm container may spend starting (importing numpy and pandas) on top of
/// `limits.cpu-time`: its RLIMIT_CPU is raised by this much at creation, and the runner
/// lowers it to what it used plus `cpu-time` before it waits for a strategy (see
/// [`super::pool`]). A start that needs more is killed and the container discarded.
pub const WARM_UP_CPU_SECONDS: i64 = 60;

/// Everything the backend decided about one container.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerSpec {
    /// The image tag.
    pub image: String,
    /// The container's name (`stratbox-<random>`).
    pub name: String,
    /// Memory limit; swap is limited to the same value (that is, no swap).
    pub memory_bytes: i64,
    /// CPU quota in billionths of a CPU (`--cpus`).
    pub nano_cpus: i64,
    /// pids cgroup limit.
    pub max_pids: i64,
    /// Size of the `/tmp` tmpfs.
    pub tmp_bytes: u64,
    /// RLIMIT_NOFILE.
    pub max_open_files: i64,
    /// RLIMIT_FSIZE, bytes.
    pub max_file_bytes: i64,
    /// RLIMIT_CPU soft limit, whole seconds (SIGXCPU); the hard limit is one more (SIGKILL).
    pub cpu_seconds: i64,
    /// Threads numeric libraries may start (OpenBLAS, OpenMP): the CPU quota rounded up.
    pub compute_threads: u32,
    /// The host directory bind-mounted read-only at `/data`, canonicalised.
    pub data_dir: Option<PathBuf>,
    /// The seccomp profile: the engine's default, or a pinned JSON profile.
    pub seccomp: SeccompProfile,
    /// The policy's name (a label, for `docker ps`).
    pub policy_name: String,
    /// `PYTHONHASHSEED` of a deterministic run; `None` keeps hash randomisation.
    pub hash_seed: Option<u32>,
    /// `None` for a container started for one run; for a container of the warm pool, the
    /// modules its runner imports before it waits for a strategy (the runner's `--warm`).
    pub warm_modules: Option<Vec<String>>,
}

impl ContainerSpec {
    /// The configuration for one run of `policy`, in `image`, named `name`.
    pub fn new(
        policy: &Policy,
        image: &str,
        name: &str,
        data_dir: Option<&Path>,
    ) -> Result<Self, ContainerError> {
        let limits = &policy.limits;
        let container = &policy.container;
        let data_dir = data_dir
            .map(|dir| {
                let canonical =
                    std::fs::canonicalize(dir).map_err(|source| ContainerError::DataDir {
                        path: dir.to_owned(),
                        source,
                    })?;
                if canonical.is_dir() {
                    Ok(canonical)
                } else {
                    Err(ContainerError::DataDir {
                        path: dir.to_owned(),
                        source: std::io::Error::new(
                            std::io::ErrorKind::NotADirectory,
                            "not a directory",
                        ),
                    })
                }
            })
            .transpose()?;
        let seccomp = SeccompProfile::load(&container.seccomp_profile)?;
        let cpu_seconds = limits.cpu_time.as_secs() + u64::from(limits.cpu_time.subsec_nanos() > 0);
        Ok(Self {
            image: image.to_owned(),
            name: name.to_owned(),
            memory_bytes: to_i64(limits.memory_bytes),
            nano_cpus: (container.cpus * 1e9).round() as i64,
            max_pids: i64::from(container.max_pids),
            tmp_bytes: limits.tmp_bytes,
            max_open_files: i64::from(container.max_open_files),
            max_file_bytes: to_i64(container.max_file_bytes),
            cpu_seconds: to_i64(cpu_seconds.max(1)),
            compute_threads: container.cpus.ceil().max(1.0) as u32,
            data_dir,
            seccomp,
            policy_name: policy.name.clone(),
            hash_seed: policy.determinism().map(|d| d.python_hash_seed()),
            warm_modules: None,
        })
    }

    /// The command inside the container, after the init.
    pub fn command(&self) -> Vec<String> {
        let python: &[&str] = match self.hash_seed {
            Some(_) => &PYTHON_SEEDED,
            None => &PYTHON,
        };
        let mut command: Vec<String> = python
            .iter()
            .copied()
            .chain([RUNNER_PATH])
            .map(str::to_owned)
            .collect();
        if let Some(modules) = &self.warm_modules {
            command.push("--warm".to_owned());
            command.push(self.cpu_seconds.to_string());
            command.extend(modules.iter().cloned());
        }
        command
    }

    /// Environment variables: only what the runtime needs, nothing from the host.
    pub fn env(&self) -> Vec<String> {
        let threads = self.compute_threads;
        let mut env = vec![
            // Imported images carry the image's PATH, but say it here too: nothing is
            // inherited from the host.
            "PATH=/usr/sbin:/usr/bin:/sbin:/bin".to_owned(),
            "LANG=C.UTF-8".to_owned(),
            // Some libraries look for a home directory; the only writable place is /tmp.
            "HOME=/tmp".to_owned(),
            // Numeric libraries start one thread per host CPU unless told otherwise; the
            // quota is what the container really has (and threads count against max-pids).
            format!("OPENBLAS_NUM_THREADS={threads}"),
            format!("OMP_NUM_THREADS={threads}"),
            format!("MKL_NUM_THREADS={threads}"),
        ];
        if let Some(seed) = self.hash_seed {
            // A deterministic run: `hash()` of str and bytes fixed from the run's seed.
            env.push(format!("PYTHONHASHSEED={seed}"));
        }
        env
    }

    /// `nofile`, `fsize`, `core` and `cpu`, soft and hard.
    pub fn ulimits(&self) -> Vec<(&'static str, i64, i64)> {
        // A warm container's runner lowers this to `cpu_seconds` past its start-up.
        let cpu_seconds = match self.warm_modules {
            Some(_) => self.cpu_seconds + WARM_UP_CPU_SECONDS,
            None => self.cpu_seconds,
        };
        vec![
            ("nofile", self.max_open_files, self.max_open_files),
            ("fsize", self.max_file_bytes, self.max_file_bytes),
            ("core", 0, 0),
            // SIGXCPU at the soft limit (Python does not catch it), SIGKILL one second later
            // for a strategy that ignores SIGXCPU.
            ("cpu", cpu_seconds, cpu_seconds + 1),
        ]
    }

    /// Options of the `/tmp` tmpfs.
    pub fn tmp_options(&self) -> String {
        format!("rw,noexec,nosuid,nodev,size={},mode=1777", self.tmp_bytes)
    }

    /// `security_opt` entries.
    pub fn security_opt(&self) -> Vec<String> {
        let mut opts = vec!["no-new-privileges:true".to_owned()];
        match &self.seccomp {
            // No `seccomp=` option means the engine's default profile; `unconfined` is
            // never written (SeccompProfile cannot hold it).
            SeccompProfile::EngineDefault => {}
            SeccompProfile::Pinned { json, .. } => opts.push(format!("seccomp={json}")),
        }
        opts
    }

    /// The labels.
    pub fn labels(&self) -> HashMap<String, String> {
        HashMap::from([
            (RUN_LABEL.to_owned(), "1".to_owned()),
            ("org.stratbox.policy".to_owned(), self.policy_name.clone()),
            (
                super::leftovers::OWNER_LABEL.to_owned(),
                super::leftovers::owner().to_owned(),
            ),
        ])
    }

    /// The body of `POST /containers/create`.
    pub fn create_body(&self) -> ContainerCreateBody {
        let mounts = self.data_dir.as_ref().map(|dir| {
            vec![Mount {
                target: Some(DATA_MOUNT.to_owned()),
                source: Some(dir.display().to_string()),
                typ: Some(MountType::BIND),
                read_only: Some(true),
                bind_options: Some(MountBindOptions {
                    propagation: Some(MountBindOptionsPropagationEnum::RPRIVATE),
                    // Mounts below the directory are not carried in: a read-only recursive
                    // bind would leave them writable on engines before 25.0.
                    non_recursive: Some(true),
                    ..Default::default()
                }),
                ..Default::default()
            }]
        });
        let host_config = HostConfig {
            network_mode: Some("none".to_owned()),
            readonly_rootfs: Some(true),
            tmpfs: Some(HashMap::from([(TMP_MOUNT.to_owned(), self.tmp_options())])),
            mounts,
            memory: Some(self.memory_bytes),
            memory_swap: Some(self.memory_bytes),
            nano_cpus: Some(self.nano_cpus),
            pids_limit: Some(self.max_pids),
            ulimits: Some(
                self.ulimits()
                    .into_iter()
                    .map(|(name, soft, hard)| ResourcesUlimits {
                        name: Some(name.to_owned()),
                        soft: Some(soft),
                        hard: Some(hard),
                    })
                    .collect(),
            ),
            cap_drop: Some(vec!["ALL".to_owned()]),
            security_opt: Some(self.security_opt()),
            // No /dev/shm at all: a strategy has no use for System V or POSIX shared memory.
            ipc_mode: Some("none".to_owned()),
            cgroupns_mode: Some(HostConfigCgroupnsModeEnum::PRIVATE),
            // Under host memory pressure the sandbox goes first.
            oom_score_adj: Some(1000),
            // The output streams through attach; no copy is written to the host's disk.
            log_config: Some(bollard::models::HostConfigLogConfig {
                typ: Some("none".to_owned()),
                config: None,
            }),
            // tini from the image is the init; the engine's is not needed.
            init: Some(false),
            privileged: Some(false),
            ..Default::default()
        };
        ContainerCreateBody {
            image: Some(self.image.clone()),
            user: Some(format!("{USER_ID}:{USER_ID}")),
            hostname: Some("sandbox".to_owned()),
            entrypoint: Some(ENTRYPOINT.iter().map(|s| (*s).to_owned()).collect()),
            cmd: Some(self.command()),
            env: Some(self.env()),
            working_dir: Some(TMP_MOUNT.to_owned()),
            attach_stdin: Some(true),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            open_stdin: Some(true),
            stdin_once: Some(true),
            tty: Some(false),
            network_disabled: Some(true),
            labels: Some(self.labels()),
            host_config: Some(host_config),
            ..Default::default()
        }
    }

    /// The same configuration as `docker run` arguments (after `docker run`), for the
    /// benchmark and for reproducing a run by hand.
    pub fn docker_run_args(&self) -> Vec<String> {
        let mut args: Vec<String> = vec![
            "--rm".into(),
            "-i".into(),
            format!("--name={}", self.name),
            format!("--user={USER_ID}:{USER_ID}"),
            "--hostname=sandbox".into(),
            "--workdir=/tmp".into(),
            "--network=none".into(),
            "--read-only".into(),
            format!("--tmpfs={TMP_MOUNT}:{}", self.tmp_options()),
            format!("--memory={}", self.memory_bytes),
            format!("--memory-swap={}", self.memory_bytes),
            format!("--cpus={}", self.nano_cpus as f64 / 1e9),
            format!("--pids-limit={}", self.max_pids),
            "--cap-drop=ALL".into(),
            "--ipc=none".into(),
            "--cgroupns=private".into(),
            "--oom-score-adj=1000".into(),
            "--log-driver=none".into(),
            format!("--entrypoint={}", ENTRYPOINT[0]),
        ];
        for (name, soft, hard) in self.ulimits() {
            args.push(format!("--ulimit={name}={soft}:{hard}"));
        }
        for opt in self.security_opt() {
            args.push(format!("--security-opt={opt}"));
        }
        for (k, v) in self.labels() {
            args.push(format!("--label={k}={v}"));
        }
        for e in self.env() {
            args.push(format!("--env={e}"));
        }
        if let Some(dir) = &self.data_dir {
            args.push(format!(
                "--mount=type=bind,source={},target={DATA_MOUNT},readonly,bind-propagation=rprivate,bind-nonrecursive",
                dir.display()
            ));
        }
        args.push(self.image.clone());
        args.extend(ENTRYPOINT[1..].iter().map(|s| (*s).to_owned()));
        args.extend(self.command());
        args
    }
}

fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(policy: &Policy) -> ContainerSpec {
        ContainerSpec::new(policy, "stratbox-runtime:test", "stratbox-test", None).expect("spec")
    }

    #[test]
    fn default_policy_is_confined() {
        let policy = Policy::default_profile();
        let body = spec(&policy).create_body();
        let host = body.host_config.expect("host config");
        assert_eq!(host.network_mode.as_deref(), Some("none"));
        assert_eq!(host.readonly_rootfs, Some(true));
        assert_eq!(host.cap_drop, Some(vec!["ALL".to_owned()]));
        assert_eq!(host.privileged, Some(false));
        assert_eq!(host.memory, host.memory_swap, "swap equals memory");
        assert_eq!(host.memory, Some(policy.limits.memory_bytes as i64));
        assert_eq!(host.pids_limit, Some(i64::from(policy.container.max_pids)));
        let security = host.security_opt.expect("security opts");
        assert!(security.contains(&"no-new-privileges:true".to_owned()));
        assert!(!security.iter().any(|o| o.contains("unconfined")));
        assert!(
            host.binds.is_none() && host.mounts.is_none(),
            "nothing from the host"
        );
        let tmp = &host.tmpfs.expect("tmpfs")[TMP_MOUNT];
        for flag in ["noexec", "nosuid", "nodev", "size="] {
            assert!(tmp.contains(flag), "{tmp}");
        }
        let ulimits = host.ulimits.expect("ulimits");
        let get = |n: &str| {
            ulimits
                .iter()
                .find(|u| u.name.as_deref() == Some(n))
                .map(|u| (u.soft, u.hard))
                .expect(n)
        };
        assert_eq!(get("core"), (Some(0), Some(0)));
        let cpu = policy.limits.cpu_time.as_secs() as i64;
        assert_eq!(get("cpu"), (Some(cpu), Some(cpu + 1)));
        assert!(get("nofile").0.is_some() && get("fsize").0.is_some());
        assert_eq!(body.user.as_deref(), Some("10001:10001"));
        assert_eq!(body.network_disabled, Some(true));
        assert_eq!(body.labels.expect("labels")[RUN_LABEL], "1");
        assert_eq!(body.entrypoint.expect("entrypoint")[0], "/usr/bin/tini");
    }

    #[test]
    fn only_a_deterministic_run_reads_a_hash_seed() {
        let plain = spec(&Policy::default_profile());
        assert_eq!(plain.command()[..2], ["/usr/bin/python3", "-I"]);
        assert!(!plain.env().iter().any(|e| e.starts_with("PYTHON")));
        let seeded_policy = Policy::default_profile()
            .with_overrides(&crate::policy::Overrides {
                seed: Some((1 << 32) + 7),
                ..Default::default()
            })
            .expect("valid");
        let seeded = spec(&seeded_policy);
        let command = seeded.command();
        assert!(
            !command.iter().any(|a| a == "-I" || a == "-E"),
            "{command:?}"
        );
        assert!(command.iter().any(|a| a == "-P") && command.iter().any(|a| a == "-s"));
        let python_vars: Vec<_> = seeded
            .env()
            .into_iter()
            .filter(|e| e.starts_with("PYTHON"))
            .collect();
        assert_eq!(python_vars, ["PYTHONHASHSEED=7"]);
    }

    #[test]
    fn cpu_time_rounds_up() {
        let mut policy = Policy::default_profile();
        policy.limits.cpu_time = std::time::Duration::from_millis(1500);
        assert_eq!(spec(&policy).cpu_seconds, 2);
        policy.limits.cpu_time = std::time::Duration::from_millis(1);
        assert_eq!(spec(&policy).cpu_seconds, 1);
    }

    #[test]
    fn data_dir_is_read_only_and_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let policy = Policy::default_profile();
        let spec = ContainerSpec::new(&policy, "img", "n", Some(dir.path())).expect("spec");
        let mounts = spec
            .create_body()
            .host_config
            .and_then(|h| h.mounts)
            .expect("mounts");
        assert_eq!(mounts.len(), 1);
        assert_eq!(mounts[0].target.as_deref(), Some(DATA_MOUNT));
        assert_eq!(mounts[0].read_only, Some(true));
        assert!(
            spec.docker_run_args()
                .iter()
                .any(|a| a.contains("readonly"))
        );
    }

    #[test]
    fn missing_data_dir_is_an_error() {
        let policy = Policy::default_profile();
        let err = ContainerSpec::new(&policy, "img", "n", Some(Path::new("/nonexistent/dir")))
            .expect_err("missing");
        assert!(err.to_string().contains("/nonexistent/dir"), "{err}");
    }

    #[test]
    fn cli_args_match_the_body() {
        let policy = Policy::default_profile();
        let args = spec(&policy).docker_run_args();
        for needle in [
            "--network=none",
            "--read-only",
            "--cap-drop=ALL",
            "--security-opt=no-new-privileges:true",
            "--ulimit=core=0:0",
            "--label=org.stratbox.run=1",
        ] {
            assert!(args.iter().any(|a| a == needle), "{needle} in {args:?}");
        }
        assert_eq!(args.last().map(String::as_str), Some(RUNNER_PATH));
    }
}
