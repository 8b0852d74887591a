//! Containers left behind by a stratbox process that ended before it could remove them.
//!
//! Every container's guard removes it when its run ends, also on a panic or Ctrl-C
//! ([`guard`](super::guard)). Two cases escape it: the process is killed outright
//! (`SIGKILL`, the machine's OOM killer), or the engine is down when the guard asks (its
//! containers are then `Exited`, still there, when the engine comes back). So every
//! container also carries [`OWNER_LABEL`]: this machine's boot id, this process's PID
//! namespace and its PID. On its first connection to the engine, a backend removes the
//! containers whose owner is a process of this very boot and PID namespace that no longer
//! exists. A container of another machine, another boot, another PID namespace (a
//! stratbox in a container sharing the engine) or of a live process is never touched: a
//! PID reused by a live process keeps the container until that process is gone too.

use std::sync::OnceLock;

use bollard::Docker;

use super::RUN_LABEL;
use super::guard::remove_now;

/// The label naming the process that owns a container: `<boot id>/<pid namespace>/<pid>`.
pub const OWNER_LABEL: &str = "org.stratbox.owner";

/// This process as [`OWNER_LABEL`] names it; `unknown/unknown/<pid>` where `/proc` does
/// not tell the boot id or the namespace (such containers are never swept).
pub fn owner() -> &'static str {
    static OWNER: OnceLock<String> = OnceLock::new();
    OWNER.get_or_init(|| {
        let (boot, namespace) = this_boot().unwrap_or(("unknown", "unknown"));
        format!("{boot}/{namespace}/{}", std::process::id())
    })
}

/// This machine's boot id and this process's PID namespace, read once.
fn this_boot() -> Option<(&'static str, &'static str)> {
    static BOOT: OnceLock<Option<(String, String)>> = OnceLock::new();
    let read = || {
        let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
        let namespace = std::fs::read_link("/proc/self/ns/pid").ok()?;
        let namespace = namespace.to_string_lossy();
        let inode = namespace.strip_prefix("pid:[")?.strip_suffix(']')?;
        Some((boot.trim().to_owned(), inode.to_owned()))
    };
    BOOT.get_or_init(read)
        .as_ref()
        .map(|(boot, namespace)| (boot.as_str(), namespace.as_str()))
}

/// The process an owner label names, if it is a process of this boot and PID namespace
/// other than this one that no longer exists.
fn dead_owner(label: &str) -> Option<u32> {
    let (boot, namespace) = this_boot()?;
    let mut parts = label.splitn(3, '/');
    let (label_boot, label_namespace, pid) = (parts.next()?, parts.next()?, parts.next()?);
    let pid: u32 = pid.parse().ok()?;
    let ours = label_boot == boot && label_namespace == namespace;
    let gone = !std::path::Path::new(&format!("/proc/{pid}")).exists();
    (ours && pid != std::process::id() && gone).then_some(pid)
}

/// Removes the containers of dead owners (see the module's docs). Best effort: a failure
/// is logged and changes nothing else.
pub async fn sweep(docker: &Docker) {
    let filters = std::collections::HashMap::from([(
        "label".to_owned(),
        vec![format!("{RUN_LABEL}=1"), OWNER_LABEL.to_owned()],
    )]);
    let options = bollard::query_parameters::ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&filters)
        .build();
    let containers = match docker.list_containers(Some(options)).await {
        Ok(containers) => containers,
        Err(err) => {
            tracing::debug!(%err, "cannot list containers to sweep leftovers");
            return;
        }
    };
    for container in containers {
        let owner = container
            .labels
            .as_ref()
            .and_then(|labels| labels.get(OWNER_LABEL))
            .and_then(|label| dead_owner(label));
        let name = container
            .names
            .and_then(|names| names.into_iter().next())
            .map(|name| name.trim_start_matches('/').to_owned());
        if let (Some(pid), Some(name)) = (owner, name) {
            match remove_now(docker, &name).await {
                Ok(()) => {
                    tracing::info!(container = %name, pid, "removed a container its process left behind")
                }
                Err(err) => {
                    tracing::warn!(container = %name, %err, "cannot remove a container its process left behind")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_dead_processes_of_this_boot_and_namespace_are_owners_to_sweep() {
        let (boot, namespace) = this_boot().expect("Linux with /proc");
        assert!(owner().starts_with(&format!("{boot}/{namespace}/")));
        // This process: alive.
        assert_eq!(dead_owner(owner()), None);
        // A PID above the kernel's maximum never exists.
        let dead = format!("{boot}/{namespace}/999999999");
        assert_eq!(dead_owner(&dead), Some(999_999_999));
        // The same dead PID on another boot or in another namespace: not ours to judge.
        assert_eq!(
            dead_owner(&format!("other-boot/{namespace}/999999999")),
            None
        );
        assert_eq!(dead_owner(&format!("{boot}/4026531999/999999999")), None);
        // PID 1 lives.
        assert_eq!(dead_owner(&format!("{boot}/{namespace}/1")), None);
        // Garbage is nobody's.
        assert_eq!(dead_owner("not a label"), None);
        assert_eq!(dead_owner(&format!("{boot}/{namespace}/x")), None);
    }
}
