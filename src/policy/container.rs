//! The `[container]` table: settings that only the container backend has. Every field has
//! a safe default; the shared limits (`[limits]`) apply to the container too.

use serde::{Deserialize, Serialize};

use super::units;

/// Container-only settings. Defaults are listed on each field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct ContainerConfig {
    /// CPUs the container may use (CPU quota). Default 1.0.
    pub cpus: f64,
    /// Most processes and threads at once (pids cgroup). Default 64.
    pub max_pids: u32,
    /// Where `tmp-size` was before it applied to both backends: accepted only to say
    /// that it is now `limits.tmp-size`.
    #[serde(rename = "tmp-size", skip_serializing)]
    pub moved_tmp_size: Option<serde::de::IgnoredAny>,
    /// Most open files (RLIMIT_NOFILE). Default 64.
    pub max_open_files: u32,
    /// Largest file the strategy may write (RLIMIT_FSIZE). Default 64MiB.
    #[serde(rename = "max-file-size", with = "units::serde_size")]
    pub max_file_bytes: u64,
    /// A pinned seccomp profile under `profiles/seccomp/`, by file name; empty means the
    /// engine's own default profile. Default empty.
    pub seccomp_profile: String,
    /// Warm containers `batch` and `serve` keep ready for this profile's runs
    /// ([`crate::SandboxBuilder::container_pool`]). Default 0: a cold container per run,
    /// since a warm container holds a process and its numpy/pandas imports in memory while
    /// it waits, and a one-shot `stratbox run` would only pay for starting it.
    pub pool: usize,
}

impl Default for ContainerConfig {
    fn default() -> Self {
        Self {
            cpus: 1.0,
            max_pids: 64,
            moved_tmp_size: None,
            max_open_files: 64,
            max_file_bytes: 64 << 20,
            seccomp_profile: String::new(),
            pool: 0,
        }
    }
}

impl ContainerConfig {
    pub(super) fn check(&self) -> Result<(), String> {
        if self.moved_tmp_size.is_some() {
            return Err(
                "container.tmp-size is now limits.tmp-size: it sizes /tmp on both backends".into(),
            );
        }
        if !(self.cpus > 0.0 && self.cpus <= 1024.0) {
            return Err(format!("container.cpus must be above 0, got {}", self.cpus));
        }
        if self.pool > crate::backend::container::pool::MAX_POOL_SIZE {
            return Err(format!(
                "container.pool must be at most {}, got {}",
                crate::backend::container::pool::MAX_POOL_SIZE,
                self.pool
            ));
        }
        if self.max_pids == 0 {
            return Err("container.max-pids must be greater than zero".into());
        }
        Ok(())
    }
}
