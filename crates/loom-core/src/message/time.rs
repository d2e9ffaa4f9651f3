//! Wire timestamps: Pydantic's output form and its lenient input forms.

use std::fmt;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, SubsecRound, TimeZone, Timelike, Utc};
use serde::de::{self, Deserializer, Visitor};
use serde::ser::Serializer;

/// A string or number that is not a date-time the wire accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid datetime '{0}': expected ISO-8601 such as 2026-03-25T10:00:00Z")]
pub struct InvalidTimestamp(pub String);

/// Formats `t` as Pydantic v2 does for a UTC datetime: ISO-8601 with a `Z` suffix and six
/// fractional digits only when the sub-second part is non-zero
/// (`2026-03-25T10:00:00.123456Z`, `2026-03-25T10:00:00Z`). Sub-microsecond digits are
/// truncated.
pub fn format_timestamp(t: &DateTime<Utc>) -> String {
    let mut buf = [0u8; TIMESTAMP_MAX_LEN];
    match timestamp_ascii(t, &mut buf) {
        Some(text) => text.to_owned(),
        None => format_timestamp_chrono(t),
    }
}

/// The longest timestamp [`timestamp_ascii`] writes: `2026-03-25T10:00:00.123456Z`.
const TIMESTAMP_MAX_LEN: usize = 27;

/// [`format_timestamp`] through chrono's formatter: years outside 0–9999 and leap seconds.
fn format_timestamp_chrono(t: &DateTime<Utc>) -> String {
    let micros = t.timestamp_subsec_micros();
    if micros == 0 {
        t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
    } else {
        format!("{}.{micros:06}Z", t.format("%Y-%m-%dT%H:%M:%S"))
    }
}

/// [`format_timestamp`]'s text written into `buf` without chrono's format-string parser
/// (timestamps are formatted for every message on the hot path). `None` for what only
/// chrono formats: a year outside 0–9999 (chrono adds a sign) or a leap second.
fn timestamp_ascii<'a>(t: &DateTime<Utc>, buf: &'a mut [u8; TIMESTAMP_MAX_LEN]) -> Option<&'a str> {
    let year = u32::try_from(t.year()).ok().filter(|y| *y <= 9999)?;
    let nanos = t.nanosecond();
    if nanos >= 1_000_000_000 {
        return None;
    }
    let mut put = |at: usize, value: u32, digits: usize| {
        let mut v = value;
        for i in (0..digits).rev() {
            buf[at + i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, year, 4);
    put(5, t.month(), 2);
    put(8, t.day(), 2);
    put(11, t.hour(), 2);
    put(14, t.minute(), 2);
    put(17, t.second(), 2);
    let micros = nanos / 1_000;
    let len = if micros == 0 {
        20
    } else {
        put(20, micros, 6);
        27
    };
    for (at, sep) in [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')] {
        buf[at] = sep;
    }
    if micros != 0 {
        buf[19] = b'.';
    }
    buf[len - 1] = b'Z';
    std::str::from_utf8(&buf[..len]).ok()
}

/// Parses a wire timestamp: any RFC 3339 / ISO-8601 date-time with `Z` or an offset
/// (converted to UTC), a naive date-time (`2026-03-25T10:00:00`, `2026-03-25 10:00`), read
/// as UTC, or a bare date (midnight UTC). The result is truncated to microseconds.
pub fn parse_timestamp(s: &str) -> Result<DateTime<Utc>, InvalidTimestamp> {
    parse_timestamp_inner(s.trim())
        .map(|t| t.trunc_subsecs(6))
        .ok_or_else(|| InvalidTimestamp(s.to_owned()))
}

fn parse_timestamp_inner(s: &str) -> Option<DateTime<Utc>> {
    // Accept a space between date and time, as Python's `fromisoformat` and Pydantic do.
    let normalised;
    let s = if s.len() > 10 && s.as_bytes().get(10) == Some(&b' ') {
        normalised = format!("{}T{}", &s[..10], &s[11..]);
        normalised.as_str()
    } else {
        s
    };
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    if let Some(naive) = s.strip_suffix(['Z', 'z']) {
        return parse_naive(naive).map(|n| Utc.from_utc_datetime(&n));
    }
    const ZONED: [&str; 4] = [
        "%Y-%m-%dT%H:%M:%S%.f%:z",
        "%Y-%m-%dT%H:%M:%S%.f%z",
        "%Y-%m-%dT%H:%M%:z",
        "%Y-%m-%dT%H:%M%z",
    ];
    for fmt in ZONED {
        if let Ok(t) = DateTime::parse_from_str(s, fmt) {
            return Some(t.with_timezone(&Utc));
        }
    }
    parse_naive(s).map(|n| Utc.from_utc_datetime(&n))
}

fn parse_naive(s: &str) -> Option<NaiveDateTime> {
    const NAIVE: [&str; 2] = ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"];
    NAIVE
        .iter()
        .find_map(|fmt| NaiveDateTime::parse_from_str(s, fmt).ok())
        .or_else(|| {
            NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        })
}

/// Unix time as Pydantic reads it: seconds, or milliseconds when the magnitude exceeds 2e10.
/// Rounded to the nearest microsecond.
fn from_unix_number(n: f64) -> Option<DateTime<Utc>> {
    let micros = if n.abs() > 2e10 { n * 1e3 } else { n * 1e6 }.round();
    // ±9.2e18 µs is far beyond chrono's range; the bound keeps the cast exact.
    if !micros.is_finite() || micros.abs() >= 9.0e18 {
        return None;
    }
    #[allow(clippy::cast_possible_truncation)]
    let micros = micros as i64;
    Utc.timestamp_micros(micros).single()
}

/// `#[serde(with = "timestamp_serde")]` for `DateTime<Utc>` fields in the wire format.
pub(super) mod timestamp_serde {
    use super::*;

    pub(in crate::message) fn serialize<S: Serializer>(
        t: &DateTime<Utc>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; TIMESTAMP_MAX_LEN];
        match timestamp_ascii(t, &mut buf) {
            Some(text) => serializer.serialize_str(text),
            None => serializer.serialize_str(&format_timestamp_chrono(t)),
        }
    }

    pub(in crate::message) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<DateTime<Utc>, D::Error> {
        deserializer.deserialize_any(TimestampVisitor)
    }

    struct TimestampVisitor;

    impl Visitor<'_> for TimestampVisitor {
        type Value = DateTime<Utc>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an ISO-8601 datetime string or a Unix timestamp")
        }

        fn visit_str<E: de::Error>(self, s: &str) -> Result<DateTime<Utc>, E> {
            parse_timestamp(s).map_err(E::custom)
        }

        fn visit_i64<E: de::Error>(self, n: i64) -> Result<DateTime<Utc>, E> {
            #[allow(clippy::cast_precision_loss)]
            from_unix_number(n as f64).ok_or_else(|| E::custom(InvalidTimestamp(n.to_string())))
        }

        fn visit_u64<E: de::Error>(self, n: u64) -> Result<DateTime<Utc>, E> {
            #[allow(clippy::cast_precision_loss)]
            from_unix_number(n as f64).ok_or_else(|| E::custom(InvalidTimestamp(n.to_string())))
        }

        fn visit_f64<E: de::Error>(self, n: f64) -> Result<DateTime<Utc>, E> {
            from_unix_number(n).ok_or_else(|| E::custom(InvalidTimestamp(n.to_string())))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_format_like_pydantic() {
        let t = parse_timestamp("2026-03-25T10:00:00.123456789Z").expect("valid");
        assert_eq!(format_timestamp(&t), "2026-03-25T10:00:00.123456Z");
        let t = parse_timestamp("2026-03-25T10:00:00Z").expect("valid");
        assert_eq!(format_timestamp(&t), "2026-03-25T10:00:00Z");
        let t = parse_timestamp("2026-03-25T10:00:00.5+02:00").expect("valid");
        assert_eq!(format_timestamp(&t), "2026-03-25T08:00:00.500000Z");
    }

    #[test]
    fn fast_timestamp_format_matches_chrono() {
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut cases = vec![
            Utc.timestamp_micros(0).single().expect("epoch"),
            parse_timestamp("0000-01-01T00:00:00Z").expect("year 0"),
            parse_timestamp("9999-12-31T23:59:59.999999Z").expect("year 9999"),
            parse_timestamp("2024-02-29T12:34:56.000001Z").expect("leap day"),
        ];
        for _ in 0..20_000 {
            // Years about 0–9999, every other one with a whole second.
            let secs = (next() % 315_000_000_000) as i64 - 62_000_000_000;
            let micros = if next() % 2 == 0 {
                0
            } else {
                next() % 1_000_000
            };
            let t = Utc
                .timestamp_micros(secs * 1_000_000 + micros as i64)
                .single();
            cases.extend(t);
        }
        for t in cases {
            assert_eq!(format_timestamp(&t), format_timestamp_chrono(&t), "{t:?}");
        }
        // Outside the fast path: chrono's signed years and leap seconds.
        for year in [-1, 10_000] {
            let far = Utc
                .with_ymd_and_hms(year, 1, 1, 0, 0, 0)
                .single()
                .expect("valid date");
            assert_eq!(format_timestamp(&far), format_timestamp_chrono(&far));
        }
        let leap = NaiveDate::from_ymd_opt(2016, 12, 31)
            .and_then(|d| d.and_hms_micro_opt(23, 59, 59, 1_500_000))
            .map(|n| Utc.from_utc_datetime(&n))
            .expect("leap second");
        assert_eq!(format_timestamp(&leap), format_timestamp_chrono(&leap));
    }

    #[test]
    fn timestamps_accept_python_forms() {
        for (input, want) in [
            ("2026-03-25T10:00:00", "2026-03-25T10:00:00Z"),
            ("2026-03-25 10:00", "2026-03-25T10:00:00Z"),
            ("2026-03-25", "2026-03-25T00:00:00Z"),
            ("2026-03-25T10:00:00.000001", "2026-03-25T10:00:00.000001Z"),
            ("2026-03-25T10:00:00+0000", "2026-03-25T10:00:00Z"),
            ("2026-03-25T10:00:00.25z", "2026-03-25T10:00:00.250000Z"),
        ] {
            let t = parse_timestamp(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(format_timestamp(&t), want, "{input}");
        }
        for bad in [
            "",
            "yesterday",
            "2026-13-01T00:00:00Z",
            "2026-03-25T25:00:00",
        ] {
            assert!(parse_timestamp(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn unix_numbers_read_as_seconds_or_milliseconds() {
        let s = from_unix_number(1_700_000_000.0).expect("valid");
        assert_eq!(format_timestamp(&s), "2023-11-14T22:13:20Z");
        let ms = from_unix_number(1_700_000_000_123.0).expect("valid");
        assert_eq!(format_timestamp(&ms), "2023-11-14T22:13:20.123000Z");
    }
}
