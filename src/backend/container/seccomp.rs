//! Which seccomp filter the container gets.
//!
//! By default none is named, so the engine applies its own default profile (the one the
//! engine's maintainers keep up to date: it blocks `mount`, `unshare` of user namespaces,
//! `keyctl`, `bpf`, `ptrace` on older kernels and about 50 other calls). A policy may name a
//! pinned JSON profile instead: a file name from `profiles/seccomp/` (compiled into the
//! binary) or a path to a JSON file. `unconfined` is refused whatever it is spelled as:
//! there is no way to run a container without a seccomp filter through stratbox, and the
//! runner checks inside the container that a filter is active before the strategy starts.

use std::path::PathBuf;

use super::ContainerError;

/// The pinned profiles shipped in `profiles/seccomp/`, by file name.
pub const BUILTIN_SECCOMP_PROFILES: &[(&str, &str)] = &[(
    "deny-uname.json",
    include_str!("../../../profiles/seccomp/deny-uname.json"),
)];

/// The seccomp filter of a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeccompProfile {
    /// The engine's default profile (no `seccomp=` security option is sent).
    EngineDefault,
    /// A pinned profile, sent as `seccomp=<json>`.
    Pinned {
        /// The name the policy used.
        name: String,
        /// The profile, re-serialised compactly.
        json: String,
    },
}

impl SeccompProfile {
    /// Resolves a policy's `seccomp-profile`: empty for the engine default, a built-in file
    /// name, or a path (anything containing `/`).
    pub fn load(name: &str) -> Result<Self, ContainerError> {
        let name = name.trim();
        if name.is_empty() {
            return Ok(Self::EngineDefault);
        }
        let invalid = |message: String| ContainerError::Seccomp {
            name: name.to_owned(),
            message,
        };
        if name.eq_ignore_ascii_case("unconfined") {
            return Err(invalid(
                "running without a seccomp filter is not allowed".to_owned(),
            ));
        }
        let text = if name.contains('/') {
            std::fs::read_to_string(PathBuf::from(name))
                .map_err(|err| invalid(format!("cannot read it: {err}")))?
        } else {
            BUILTIN_SECCOMP_PROFILES
                .iter()
                .find(|(file, _)| *file == name)
                .map(|(_, text)| (*text).to_owned())
                .ok_or_else(|| {
                    invalid(format!(
                        "no such profile in profiles/seccomp/ (built in: {}); give a path to use another file",
                        BUILTIN_SECCOMP_PROFILES
                            .iter()
                            .map(|(file, _)| *file)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })?
        };
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|err| invalid(format!("not valid JSON: {err}")))?;
        let default_action = value
            .get("defaultAction")
            .and_then(|v| v.as_str())
            .ok_or_else(|| invalid("it has no `defaultAction`".to_owned()))?;
        if !default_action.starts_with("SCMP_ACT_") {
            return Err(invalid(format!(
                "`defaultAction` is `{default_action}`, not a seccomp action"
            )));
        }
        Ok(Self::Pinned {
            name: name.to_owned(),
            json: value.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_is_the_engine_default() {
        assert_eq!(
            SeccompProfile::load("").expect("ok"),
            SeccompProfile::EngineDefault
        );
    }

    #[test]
    fn unconfined_is_refused() {
        for name in ["unconfined", "UNCONFINED", " unconfined "] {
            assert!(SeccompProfile::load(name).is_err(), "{name}");
        }
    }

    #[test]
    fn builtin_profiles_parse() {
        for (file, _) in BUILTIN_SECCOMP_PROFILES {
            match SeccompProfile::load(file).expect(file) {
                SeccompProfile::Pinned { json, .. } => assert!(!json.contains('\n')),
                SeccompProfile::EngineDefault => panic!("{file} loaded as the default"),
            }
        }
    }

    #[test]
    fn unknown_name_lists_builtins() {
        let err = SeccompProfile::load("nope.json")
            .expect_err("unknown")
            .to_string();
        assert!(err.contains("deny-uname.json"), "{err}");
    }
}
