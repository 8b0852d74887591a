//! Human-written sizes (`256MiB`) and durations (`250ms`, `5s`) as they appear in profiles
//! and on the command line.

use std::time::Duration;

/// A size or duration that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not a valid {what}: {why}")]
pub struct UnitError {
    /// The text that was given.
    pub input: String,
    /// "size" or "duration".
    pub what: &'static str,
    /// What is wrong with it.
    pub why: &'static str,
}

const SIZE_UNITS: &[(&str, u64)] = &[
    ("B", 1),
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
    ("KB", 1_000),
    ("MB", 1_000_000),
    ("GB", 1_000_000_000),
];

const DURATION_UNITS: &[(&str, Duration)] = &[
    ("ms", Duration::from_millis(1)),
    ("s", Duration::from_secs(1)),
    ("m", Duration::from_secs(60)),
];

/// Splits `"256MiB"` into `(256, "MiB")`, allowing `_` separators and one space.
fn split_number(input: &str) -> Option<(u64, &str)> {
    let trimmed = input.trim();
    let end = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '_'))
        .unwrap_or(trimmed.len());
    let digits: String = trimmed[..end].chars().filter(|c| *c != '_').collect();
    if digits.is_empty() {
        return None;
    }
    let value = digits.parse::<u64>().ok()?;
    Some((value, trimmed[end..].trim_start()))
}

/// Parses a size: a whole number followed by `B`, `KiB`, `MiB`, `GiB`, `KB`, `MB` or `GB`.
/// A bare number is bytes.
pub fn parse_size(input: &str) -> Result<u64, UnitError> {
    let err = |why| UnitError {
        input: input.to_owned(),
        what: "size",
        why,
    };
    let (value, unit) = split_number(input).ok_or(err("expected a number such as 256MiB"))?;
    let scale = if unit.is_empty() {
        1
    } else {
        SIZE_UNITS
            .iter()
            .find(|(name, _)| *name == unit)
            .map(|(_, scale)| *scale)
            .ok_or(err("the unit must be one of B, KiB, MiB, GiB, KB, MB, GB"))?
    };
    value.checked_mul(scale).ok_or(err("too large"))
}

/// Parses a duration: a whole number followed by `ms`, `s` or `m`.
pub fn parse_duration(input: &str) -> Result<Duration, UnitError> {
    let err = |why| UnitError {
        input: input.to_owned(),
        what: "duration",
        why,
    };
    let (value, unit) = split_number(input).ok_or(err("expected a number such as 5s or 250ms"))?;
    let scale = DURATION_UNITS
        .iter()
        .find(|(name, _)| *name == unit)
        .map(|(_, scale)| *scale)
        .ok_or(err("the unit must be one of ms, s, m"))?;
    let value = u32::try_from(value).map_err(|_| err("too large"))?;
    scale.checked_mul(value).ok_or(err("too large"))
}

/// Formats a byte count the way profiles write it (`256MiB`), exact when possible.
pub fn format_size(bytes: u64) -> String {
    for (name, scale) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if bytes >= scale && bytes.is_multiple_of(scale) {
            return format!("{}{name}", bytes / scale);
        }
    }
    format!("{bytes}B")
}

/// Formats a duration the way profiles write it (`5s`, `250ms`).
pub fn format_duration(duration: Duration) -> String {
    let ms = duration.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// Serde adapters so profile fields can be written as strings (`"256MiB"`) or plain integers.
pub(crate) mod serde_size {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Int(u64),
        Text(String),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        match Raw::deserialize(d)? {
            Raw::Int(n) => Ok(n),
            Raw::Text(text) => super::parse_size(&text).map_err(D::Error::custom),
        }
    }

    pub fn serialize<S: Serializer>(value: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_size(*value))
    }
}

pub(crate) mod serde_duration {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        super::parse_duration(&text).map_err(D::Error::custom)
    }

    pub fn serialize<S: Serializer>(value: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_duration(*value))
    }
}

/// [`serde_size`] for an optional field: a missing or `null` value is `None`.
pub(crate) mod serde_size_opt {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        #[derive(Deserialize)]
        struct Size(#[serde(with = "super::serde_size")] u64);
        Ok(Option::<Size>::deserialize(d)?.map(|Size(bytes)| bytes))
    }

    pub fn serialize<S: Serializer>(value: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(bytes) => super::serde_size::serialize(bytes, s),
            None => s.serialize_none(),
        }
    }
}

/// [`serde_duration`] for an optional field: a missing or `null` value is `None`.
pub(crate) mod serde_duration_opt {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        #[derive(Deserialize)]
        struct Text(#[serde(with = "super::serde_duration")] Duration);
        Ok(Option::<Text>::deserialize(d)?.map(|Text(duration)| duration))
    }

    pub fn serialize<S: Serializer>(value: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(duration) => super::serde_duration::serialize(duration, s),
            None => s.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("256MiB"), Ok(256 << 20));
        assert_eq!(parse_size("1_000"), Ok(1000));
        assert_eq!(parse_size("64 KiB"), Ok(64 << 10));
        assert_eq!(parse_size("2GB"), Ok(2_000_000_000));
        assert!(parse_size("").is_err());
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("12 parsecs").is_err());
        assert!(parse_size("-1MiB").is_err());
        assert!(parse_size("99999999999999999999GiB").is_err());
        assert_eq!(format_size(256 << 20), "256MiB");
        assert_eq!(format_size(1000), "1000B");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("5").is_err(), "a duration needs a unit");
        assert!(parse_duration("5h").is_err());
        assert!(parse_duration("1.5s").is_err());
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
    }
}
