//! Limits a batch or serve request sets over its profile (the request's `limits` object):
//! the keys of a profile's `[limits]` table, written the same way, each optional.

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Limits, Metering, OutputOverflow, Policy, PolicyError, units};

/// A size as a profile writes it: `"64MiB"`, or a whole number of bytes.
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code, reason = "only its schema is used")]
enum SizeText {
    /// Bytes.
    Bytes(u64),
    /// A whole number and a unit: B, KiB, MiB, GiB, KB, MB, GB (`"64MiB"`).
    Text(String),
}

/// A duration as a profile writes it: a whole number and a unit, `ms`, `s` or `m`
/// (`"250ms"`, `"2s"`).
#[derive(JsonSchema)]
#[allow(dead_code, reason = "only its schema is used")]
struct DurationText(String);

/// Limits set over a profile's own (a batch or serve request's `limits`): each key is a key
/// of the profile's `[limits]` table (see [`Limits`]), written as there; a key not given
/// keeps the profile's value. Unknown keys are refused.
///
/// `stratbox serve` accepts only values no looser than its own profile's
/// ([`RequestLimits::within`]); `stratbox batch`, whose requests may name any profile,
/// applies them as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct RequestLimits {
    /// `wall-time`: the wall-clock deadline, both backends.
    #[serde(
        with = "units::serde_duration_opt",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<DurationText>")]
    pub wall_time: Option<Duration>,
    /// `fuel`: the wasm instruction budget.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fuel: Option<u64>,
    /// `cpu-time`: the container's CPU seconds.
    #[serde(
        with = "units::serde_duration_opt",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<DurationText>")]
    pub cpu_time: Option<Duration>,
    /// `memory`: the memory cap, both backends.
    #[serde(
        rename = "memory",
        with = "units::serde_size_opt",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<SizeText>")]
    pub memory_bytes: Option<u64>,
    /// `stdout`: bytes of stdout kept.
    #[serde(
        rename = "stdout",
        with = "units::serde_size_opt",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<SizeText>")]
    pub stdout_bytes: Option<u64>,
    /// `stderr`: bytes of stderr kept.
    #[serde(
        rename = "stderr",
        with = "units::serde_size_opt",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<SizeText>")]
    pub stderr_bytes: Option<u64>,
    /// `source`: the largest source accepted.
    #[serde(
        rename = "source",
        with = "units::serde_size_opt",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<SizeText>")]
    pub source_bytes: Option<u64>,
    /// `input`: the largest input document accepted.
    #[serde(
        rename = "input",
        with = "units::serde_size_opt",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<SizeText>")]
    pub input_bytes: Option<u64>,
    /// `tmp-size`: the size of `/tmp`.
    #[serde(
        rename = "tmp-size",
        with = "units::serde_size_opt",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<SizeText>")]
    pub tmp_bytes: Option<u64>,
    /// `output-overflow`: `truncate` or `kill` past an output cap.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_overflow: Option<OutputOverflow>,
    /// `metering`: `fuel` or `epoch` (wasm).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metering: Option<Metering>,
}

/// One key of a request's `limits` whose value is looser than the ceiling's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`limits.{key}` = {value} is looser than the server's profile `{profile}` allows ({ceiling}): \
     a request may only tighten the server's limits"
)]
pub struct LooserLimit {
    /// The key, as the profile's `[limits]` table names it.
    pub key: &'static str,
    /// The value the request asked for, as a profile writes it.
    pub value: String,
    /// The ceiling's value.
    pub ceiling: String,
    /// The ceiling's profile name.
    pub profile: String,
}

/// How strict each kind of value is: a larger number is looser.
fn overflow_rank(overflow: OutputOverflow) -> u8 {
    match overflow {
        OutputOverflow::Kill => 0,
        OutputOverflow::Truncate => 1,
    }
}

/// `fuel` bounds instructions; `epoch` drops that bound.
fn metering_rank(metering: Metering) -> u8 {
    match metering {
        Metering::Fuel => 0,
        Metering::Epoch => 1,
    }
}

fn overflow_name(overflow: OutputOverflow) -> &'static str {
    match overflow {
        OutputOverflow::Truncate => "truncate",
        OutputOverflow::Kill => "kill",
    }
}

fn metering_name(metering: Metering) -> &'static str {
    match metering {
        Metering::Fuel => "fuel",
        Metering::Epoch => "epoch",
    }
}

impl RequestLimits {
    /// Whether no key is given.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Checks every given key against `ceiling`'s limits: equal or tighter passes; the
    /// first looser one is the error, named as the profile's `[limits]` table names it.
    pub fn within(&self, ceiling: &Policy) -> Result<(), LooserLimit> {
        let top = &ceiling.limits;
        let looser = |key, value: String, limit: String| LooserLimit {
            key,
            value,
            ceiling: limit,
            profile: ceiling.name.clone(),
        };
        let durations = [
            ("wall-time", self.wall_time, top.wall_time),
            ("cpu-time", self.cpu_time, top.cpu_time),
        ];
        for (key, value, limit) in durations {
            if let Some(value) = value
                && value > limit
            {
                return Err(looser(
                    key,
                    units::format_duration(value),
                    units::format_duration(limit),
                ));
            }
        }
        if let Some(fuel) = self.fuel
            && fuel > top.fuel
        {
            return Err(looser("fuel", fuel.to_string(), top.fuel.to_string()));
        }
        let sizes = [
            ("memory", self.memory_bytes, top.memory_bytes),
            ("stdout", self.stdout_bytes, top.stdout_bytes),
            ("stderr", self.stderr_bytes, top.stderr_bytes),
            ("source", self.source_bytes, top.source_bytes),
            ("input", self.input_bytes, top.input_bytes),
            ("tmp-size", self.tmp_bytes, top.tmp_bytes),
        ];
        for (key, value, limit) in sizes {
            if let Some(value) = value
                && value > limit
            {
                return Err(looser(
                    key,
                    units::format_size(value),
                    units::format_size(limit),
                ));
            }
        }
        if let Some(overflow) = self.output_overflow
            && overflow_rank(overflow) > overflow_rank(top.output_overflow)
        {
            return Err(looser(
                "output-overflow",
                overflow_name(overflow).to_owned(),
                overflow_name(top.output_overflow).to_owned(),
            ));
        }
        if let Some(metering) = self.metering
            && metering_rank(metering) > metering_rank(top.metering)
        {
            return Err(looser(
                "metering",
                metering_name(metering).to_owned(),
                metering_name(top.metering).to_owned(),
            ));
        }
        Ok(())
    }

    /// `limits` with every given key set.
    fn apply(&self, limits: &mut Limits) {
        let Self {
            wall_time,
            fuel,
            cpu_time,
            memory_bytes,
            stdout_bytes,
            stderr_bytes,
            source_bytes,
            input_bytes,
            tmp_bytes,
            output_overflow,
            metering,
        } = self.clone();
        limits.wall_time = wall_time.unwrap_or(limits.wall_time);
        limits.fuel = fuel.unwrap_or(limits.fuel);
        limits.cpu_time = cpu_time.unwrap_or(limits.cpu_time);
        limits.memory_bytes = memory_bytes.unwrap_or(limits.memory_bytes);
        limits.stdout_bytes = stdout_bytes.unwrap_or(limits.stdout_bytes);
        limits.stderr_bytes = stderr_bytes.unwrap_or(limits.stderr_bytes);
        limits.source_bytes = source_bytes.unwrap_or(limits.source_bytes);
        limits.input_bytes = input_bytes.unwrap_or(limits.input_bytes);
        limits.tmp_bytes = tmp_bytes.unwrap_or(limits.tmp_bytes);
        limits.output_overflow = output_overflow.unwrap_or(limits.output_overflow);
        limits.metering = metering.unwrap_or(limits.metering);
    }
}

impl Policy {
    /// This policy with a request's `limits` set over its own, checked again as a profile
    /// is (a `memory` below what the guest needs, a zero `wall-time`, `epoch` metering of a
    /// deterministic profile are errors). No ceiling is checked here: see
    /// [`RequestLimits::within`].
    pub fn with_request_limits(mut self, limits: &RequestLimits) -> Result<Self, PolicyError> {
        limits.apply(&mut self.limits);
        self.check().map_err(|message| PolicyError::Invalid {
            origin: format!("{} with the request's limits", self.origin),
            message,
        })?;
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strict() -> Policy {
        Policy::load("strict").expect("built in")
    }

    fn limits(json: &str) -> RequestLimits {
        serde_json::from_str(json).unwrap_or_else(|e| panic!("{json}: {e}"))
    }

    #[test]
    fn every_key_looser_than_the_ceiling_is_refused_by_name() {
        // strict: 2s, 4e9 fuel, 2s, 128MiB, 64KiB, 64KiB, 256KiB, 8MiB, 64MiB, kill, fuel.
        for (json, key) in [
            (r#"{"wall-time": "3s"}"#, "wall-time"),
            (r#"{"fuel": 4000000001}"#, "fuel"),
            (r#"{"cpu-time": "2001ms"}"#, "cpu-time"),
            (r#"{"memory": "256MiB"}"#, "memory"),
            (r#"{"stdout": 65537}"#, "stdout"),
            (r#"{"stderr": "128KiB"}"#, "stderr"),
            (r#"{"source": "512KiB"}"#, "source"),
            (r#"{"input": "16MiB"}"#, "input"),
            (r#"{"tmp-size": "128MiB"}"#, "tmp-size"),
            (r#"{"output-overflow": "truncate"}"#, "output-overflow"),
            (r#"{"metering": "epoch"}"#, "metering"),
        ] {
            let err = limits(json).within(&strict()).expect_err(json);
            assert_eq!(err.key, key, "{json}");
            let text = err.to_string();
            assert!(
                text.starts_with(&format!("`limits.{key}` = ")) && text.contains("`strict`"),
                "{text}"
            );
        }
    }

    #[test]
    fn equal_and_tighter_values_pass_and_apply() {
        let asked = limits(
            r#"{"wall-time": "2s", "fuel": 1000, "cpu-time": "1s", "memory": "64MiB",
                "stdout": "1KiB", "stderr": 10, "source": "1KiB", "input": "1MiB",
                "tmp-size": "1MiB", "output-overflow": "kill", "metering": "fuel"}"#,
        );
        assert_eq!(asked.within(&strict()), Ok(()));
        let policy = strict().with_request_limits(&asked).expect("valid");
        let l = &policy.limits;
        assert_eq!(
            (l.wall_time, l.fuel, l.cpu_time, l.memory_bytes),
            (
                Duration::from_secs(2),
                1000,
                Duration::from_secs(1),
                64 << 20
            )
        );
        assert_eq!(
            (
                l.stdout_bytes,
                l.stderr_bytes,
                l.source_bytes,
                l.input_bytes
            ),
            (1 << 10, 10, 1 << 10, 1 << 20)
        );
        assert_eq!(l.tmp_bytes, 1 << 20);
        assert!(RequestLimits::default().is_empty());
        assert!(!asked.is_empty());
        // Keys not given keep the profile's values.
        let only_fuel = strict()
            .with_request_limits(&limits(r#"{"fuel": 7}"#))
            .expect("valid");
        assert_eq!(
            (only_fuel.limits.fuel, only_fuel.limits.memory_bytes),
            (7, 128 << 20)
        );
    }

    #[test]
    fn values_a_profile_refuses_are_refused_here_too() {
        for (json, needle) in [
            (r#"{"memory": "1MiB"}"#, "below"),
            (r#"{"wall-time": "0s"}"#, "wall-time"),
            (r#"{"fuel": 0}"#, "fuel"),
        ] {
            let err = strict()
                .with_request_limits(&limits(json))
                .expect_err(json)
                .to_string();
            assert!(
                err.contains(needle) && err.contains("with the request's limits"),
                "{json}: {err}"
            );
        }
        for (json, needle) in [
            (r#"{"walltime": "1s"}"#, "unknown field `walltime`"),
            (r#"{"wall-time": "soon"}"#, "soon"),
            (r#"{"wall-time": 5}"#, "string"),
            (r#"{"memory": "12 parsecs"}"#, "parsecs"),
            (r#"{"metering": "never"}"#, "never"),
        ] {
            let err = serde_json::from_str::<RequestLimits>(json)
                .expect_err(json)
                .to_string();
            assert!(err.contains(needle), "{json}: {err}");
        }
    }

    #[test]
    fn limits_serialise_as_they_are_written() {
        let asked = limits(r#"{"wall-time": "1500ms", "memory": "64MiB", "metering": "fuel"}"#);
        assert_eq!(
            serde_json::to_value(&asked).expect("serialises"),
            serde_json::json!({"wall-time": "1500ms", "memory": "64MiB", "metering": "fuel"})
        );
    }
}
