//! The `[run]` table: deterministic runs, and the instants (`2024-01-01T00:00:00Z`) they
//! start from.
//!
//! ```toml
//! [run]
//! deterministic = true             # fix the clocks and the random sources from `seed`
//! seed = 7                         # required when deterministic
//! clock = "2024-01-02T00:00:00Z"   # the guest's wall clock at the start (optional)
//! ```
//!
//! What "deterministic" fixes differs by backend; [`crate::outcome::Outcome`] says which
//! parts were not fixed (`not_reproducible`), and the README describes both.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The `[run]` table as written. Every key is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct RunConfig {
    /// Fix the clocks and the random sources from `seed`. Default false.
    pub deterministic: bool,
    /// The seed of a deterministic run. Required when `deterministic` is true, refused
    /// otherwise (it would fix nothing). Default none.
    pub seed: Option<u64>,
    /// The guest's wall clock when a deterministic run starts, an RFC 3339 instant in UTC.
    /// Default [`Determinism::DEFAULT_CLOCK`].
    #[serde(with = "serde_instant")]
    pub clock: Option<Duration>,
}

impl RunConfig {
    pub(super) fn check(&self) -> Result<(), String> {
        match (self.deterministic, self.seed, self.clock) {
            (true, None, _) => Err("run.deterministic = true needs run.seed".into()),
            (false, Some(_), _) => Err(
                "run.seed is set but run.deterministic is not: set run.deterministic = true \
                 for the seed to take effect"
                    .into(),
            ),
            (false, None, Some(_)) => {
                Err("run.clock applies to deterministic runs only: set run.deterministic = true and run.seed".into())
            }
            _ => Ok(()),
        }
    }

    /// The resolved determinism: `None` unless `deterministic` is true.
    pub fn determinism(&self) -> Option<Determinism> {
        match (self.deterministic, self.seed) {
            (true, Some(seed)) => Some(Determinism {
                seed,
                clock_start: self.clock.unwrap_or(Determinism::DEFAULT_CLOCK),
            }),
            _ => None,
        }
    }
}

/// A deterministic run's settings, resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Determinism {
    /// The seed.
    pub seed: u64,
    /// The guest's wall clock at the start of the run, since the Unix epoch.
    pub clock_start: Duration,
}

impl Determinism {
    /// 2024-01-01T00:00:00Z: where a deterministic run's wall clock starts by default.
    pub const DEFAULT_CLOCK: Duration = Duration::from_secs(1_704_067_200);

    /// The container's `PYTHONHASHSEED` for this seed: the seed modulo 2³² (the range
    /// CPython accepts).
    pub fn python_hash_seed(&self) -> u32 {
        (self.seed & u64::from(u32::MAX)) as u32
    }

    /// A 64-bit value derived from the seed for one purpose (`"secure-random"`, ...), so
    /// that the random sources of one run are independent of each other: SHA-256 of the
    /// purpose and the seed, first eight bytes.
    pub fn derive(&self, purpose: &str) -> u64 {
        use sha2::{Digest, Sha256};
        let digest = Sha256::new()
            .chain_update(b"stratbox-seed\0")
            .chain_update(purpose.as_bytes())
            .chain_update(b"\0")
            .chain_update(self.seed.to_le_bytes())
            .finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        u64::from_le_bytes(first)
    }
}

/// An instant that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not a valid instant: {why} (expected RFC 3339 such as 2024-01-02T00:00:00Z)")]
pub struct InstantError {
    /// The text that was given.
    pub input: String,
    /// What is wrong with it.
    pub why: &'static str,
}

/// Parses an RFC 3339 instant, `YYYY-MM-DDTHH:MM:SS[.fraction]` followed by `Z` or an
/// offset `±HH:MM`, into the time since the Unix epoch. Instants before 1970 are refused
/// (the WASI wall clock cannot show them).
pub fn parse_instant(input: &str) -> Result<Duration, InstantError> {
    let err = |why| InstantError {
        input: input.to_owned(),
        why,
    };
    let text = input.trim();
    let bytes = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = text.get(range)?;
        part.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| part.parse().ok())
            .flatten()
    };
    if bytes.len() < 20
        || bytes[4] != b'-'
        || bytes[7] != b'-'
        || !matches!(bytes[10], b'T' | b't' | b' ')
        || bytes[13] != b':'
        || bytes[16] != b':'
    {
        return Err(err("not of the form YYYY-MM-DDTHH:MM:SSZ"));
    }
    let field = |range, why| digits(range).ok_or(err(why));
    let year = field(0..4, "bad year")?;
    let month = field(5..7, "bad month")?;
    let day = field(8..10, "bad day")?;
    let hour = field(11..13, "bad hour")?;
    let minute = field(14..16, "bad minute")?;
    let second = field(17..19, "bad second")?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return Err(err("no such date"));
    }
    if hour > 23 || minute > 59 || second > 59 {
        return Err(err("no such time of day (leap seconds are not accepted)"));
    }
    let mut rest = &text[19..];
    let mut nanos: u32 = 0;
    if let Some(fraction) = rest.strip_prefix('.') {
        let end = fraction
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(fraction.len());
        if end == 0 || end > 9 {
            return Err(err("the fraction of a second needs 1 to 9 digits"));
        }
        let padded = format!("{:0<9}", &fraction[..end]);
        nanos = padded
            .parse()
            .map_err(|_| err("bad fraction of a second"))?;
        rest = &fraction[end..];
    }
    let offset_seconds = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first() {
                Some(b'+') => 1,
                Some(b'-') => -1,
                _ => return Err(err("expected Z or an offset such as +02:00")),
            };
            let offset = rest.as_bytes();
            if offset.len() != 6 || offset[3] != b':' {
                return Err(err("expected Z or an offset such as +02:00"));
            }
            let hours: i64 = rest[1..3].parse().map_err(|_| err("bad offset"))?;
            let minutes: i64 = rest[4..6].parse().map_err(|_| err("bad offset"))?;
            if hours > 23 || minutes > 59 {
                return Err(err("bad offset"));
            }
            sign * (hours * 3600 + minutes * 60)
        }
    };
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second
        - offset_seconds;
    let seconds =
        u64::try_from(seconds).map_err(|_| err("instants before 1970 are not accepted"))?;
    Ok(Duration::new(seconds, nanos))
}

/// Formats the time since the Unix epoch as RFC 3339 in UTC with millisecond precision,
/// e.g. `2024-01-01T00:00:00.000Z`.
pub fn format_instant(since_epoch: Duration) -> String {
    let seconds = i64::try_from(since_epoch.as_secs()).unwrap_or(i64::MAX);
    let (days, in_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        in_day / 3600,
        in_day % 3600 / 60,
        in_day % 60,
        since_epoch.subsec_millis()
    )
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date of a day count since 1970-01-01 (the inverse of [`days_from_civil`]).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `Option<Duration>` as an RFC 3339 string in profiles.
pub(crate) mod serde_instant {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let text: Option<String> = Option::deserialize(d)?;
        text.map(|text| parse_instant(&text).map_err(serde::de::Error::custom))
            .transpose()
    }

    pub fn serialize<S: Serializer>(value: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(instant) => s.serialize_some(&format_instant(*instant)),
            None => s.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_parse_and_format() {
        assert_eq!(
            parse_instant("2024-01-01T00:00:00Z"),
            Ok(Determinism::DEFAULT_CLOCK)
        );
        assert_eq!(
            parse_instant("2024-01-02T00:00:00Z"),
            Ok(Determinism::DEFAULT_CLOCK + Duration::from_secs(86_400))
        );
        assert_eq!(
            parse_instant("2024-01-01T02:00:00.5+02:00"),
            Ok(Determinism::DEFAULT_CLOCK + Duration::from_millis(500))
        );
        assert_eq!(parse_instant("1970-01-01T00:00:00Z"), Ok(Duration::ZERO));
        assert_eq!(
            format_instant(Duration::from_millis(1_709_164_800_123)),
            "2024-02-29T00:00:00.123Z"
        );
        for day in [0, 59, 60, 365, 11_016, 19_782, 40_000] {
            let instant = Duration::from_secs(day * 86_400 + 3_723);
            assert_eq!(parse_instant(&format_instant(instant)), Ok(instant));
        }
    }

    #[test]
    fn bad_instants_are_refused_with_a_reason() {
        for (text, why) in [
            ("2024-01-01", "form"),
            ("2023-02-29T00:00:00Z", "no such date"),
            ("2024-13-01T00:00:00Z", "no such date"),
            ("2024-01-01T24:00:00Z", "time of day"),
            ("2024-01-01T00:00:60Z", "leap"),
            ("2024-01-01T00:00:00", "form"),
            ("2024-01-01T00:00:00+2", "offset"),
            ("1969-12-31T23:59:59Z", "before 1970"),
            ("2024-01-01T00:00:00.Z", "fraction"),
            ("２024-01-01T00:00:00Z", "form"),
        ] {
            let err = parse_instant(text).expect_err(text).to_string();
            assert!(err.contains(why), "{text}: {err}");
        }
    }

    #[test]
    fn the_run_table_is_consistent() {
        let table = |deterministic, seed, clock| RunConfig {
            deterministic,
            seed,
            clock,
        };
        assert!(table(true, None, None).check().is_err());
        assert!(table(false, Some(7), None).check().is_err());
        assert!(table(false, None, Some(Duration::ZERO)).check().is_err());
        assert_eq!(table(false, None, None).determinism(), None);
        assert_eq!(
            table(true, Some(7), None).determinism(),
            Some(Determinism {
                seed: 7,
                clock_start: Determinism::DEFAULT_CLOCK
            })
        );
    }

    #[test]
    fn derived_values_differ_by_purpose_and_seed() {
        let seven = Determinism {
            seed: 7,
            clock_start: Determinism::DEFAULT_CLOCK,
        };
        let eight = Determinism { seed: 8, ..seven };
        assert_ne!(seven.derive("a"), seven.derive("b"));
        assert_ne!(seven.derive("a"), eight.derive("a"));
        assert_eq!(seven.derive("a"), seven.derive("a"));
        assert_eq!(
            Determinism {
                seed: (1 << 32) + 5,
                ..seven
            }
            .python_hash_seed(),
            5
        );
    }
}
