//! The ceiling rule of `serve`: a request may name another profile only if that profile is
//! no looser than the server's own in any respect.

use super::{Metering, OutputOverflow, Policy};

impl Policy {
    /// Checks that this policy allows nothing that `ceiling` refuses: every limit at or
    /// below the ceiling's, no module, builtin or rule relaxation the ceiling lacks, the
    /// same container confinement or a tighter one. `Err` names the first looser setting.
    pub fn within(&self, ceiling: &Policy) -> Result<(), String> {
        let (mine, top) = (&self.limits, &ceiling.limits);
        let looser = |what: &str| {
            Err(format!(
                "profile `{}` allows more {what} than the server's profile `{}`",
                self.name, ceiling.name
            ))
        };
        let sizes = [
            ("memory", mine.memory_bytes, top.memory_bytes),
            ("fuel", mine.fuel, top.fuel),
            ("stdout", mine.stdout_bytes, top.stdout_bytes),
            ("stderr", mine.stderr_bytes, top.stderr_bytes),
            ("source", mine.source_bytes, top.source_bytes),
            ("input", mine.input_bytes, top.input_bytes),
            ("tmp-size", mine.tmp_bytes, top.tmp_bytes),
        ];
        for (what, value, limit) in sizes {
            if value > limit {
                return looser(what);
            }
        }
        if mine.wall_time > top.wall_time {
            return looser("wall-time");
        }
        if mine.cpu_time > top.cpu_time {
            return looser("cpu-time");
        }
        // `truncate` lets a flooding strategy go on; `kill` stops it.
        if mine.output_overflow == OutputOverflow::Truncate
            && top.output_overflow == OutputOverflow::Kill
        {
            return looser("output (output-overflow)");
        }
        // `epoch` drops the fuel budget.
        if mine.metering == Metering::Epoch && top.metering == Metering::Fuel {
            return looser("computation (metering)");
        }
        if !self.wasm_modules().is_subset(&ceiling.wasm_modules()) {
            return looser("standard-library modules");
        }
        if !self
            .imports
            .native
            .keys()
            .all(|k| ceiling.imports.native.contains_key(k))
        {
            return looser("native packages");
        }
        let (v, cv) = (&self.validator, &ceiling.validator);
        if (cv.enabled && !v.enabled)
            || !v.disabled_rules.is_subset(&cv.disabled_rules)
            || !v.allow_builtins.is_subset(&cv.allow_builtins)
            || !cv.forbid_builtins.is_subset(&v.forbid_builtins)
            || !cv.forbid_attributes.is_subset(&v.forbid_attributes)
        {
            return looser("code (validator settings)");
        }
        let (c, cc) = (&self.container, &ceiling.container);
        if c.cpus > cc.cpus
            || c.max_pids > cc.max_pids
            || c.max_open_files > cc.max_open_files
            || c.max_file_bytes > cc.max_file_bytes
            || c.seccomp_profile != cc.seccomp_profile
        {
            return looser("container resources (container settings)");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::Policy;

    fn load(name: &str) -> Policy {
        Policy::load(name).expect("a built-in profile")
    }

    #[test]
    fn strict_is_within_default_and_not_the_other_way() {
        assert_eq!(load("strict").within(&load("default")), Ok(()));
        assert_eq!(load("default").within(&load("default")), Ok(()));
        let err = load("default").within(&load("strict")).expect_err("looser");
        assert!(err.contains("than the server's profile `strict`"), "{err}");
    }

    #[test]
    fn numeric_is_looser_than_default() {
        // numeric has a longer deadline, more memory and the native packages.
        assert!(load("numeric").within(&load("default")).is_err());
    }

    #[test]
    fn a_switched_off_validator_is_looser() {
        let off = Policy::from_toml("off", "test", "[validator]\nenabled = false\n")
            .expect("valid profile");
        let err = off.within(&load("default")).expect_err("looser");
        assert!(err.contains("validator"), "{err}");
    }
}
