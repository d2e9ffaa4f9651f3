//! DuckDB values as JSON: numbers stay numbers, dates and timestamps become strings in
//! the original's form (`2024-01-01 10:00:00`, Python's `str(datetime)`), lists, structs
//! and maps nest, binary data becomes `null`.

use ::duckdb::types::{TimeUnit, Value as DuckValue};
use serde_json::{Map, Value};

use crate::row::number;

const MICROS_PER_SECOND: i64 = 1_000_000;
const MICROS_PER_DAY: i64 = 86_400 * MICROS_PER_SECOND;

/// `value` as JSON.
///
/// * `HUGEINT`/`UHUGEINT` outside the `i64`/`u64` range and non-finite floats cannot be
///   JSON numbers: the former become decimal strings, the latter `null`.
/// * `DECIMAL` becomes a (double precision) number.
/// * `TIMESTAMP` (and `TIMESTAMPTZ`, in UTC) → `YYYY-MM-DD HH:MM:SS[.ffffff]`, `DATE` →
///   `YYYY-MM-DD`, `TIME` → `HH:MM:SS[.ffffff]`, `INTERVAL` → ISO 8601 (`P1M2DT3S`).
/// * `BLOB` becomes `null`, as in the SQLite backend.
pub(super) fn to_json(value: DuckValue) -> Value {
    match value {
        DuckValue::Null | DuckValue::Blob(_) | DuckValue::Geometry(_) => Value::Null,
        DuckValue::Boolean(b) => Value::Bool(b),
        DuckValue::TinyInt(i) => Value::from(i),
        DuckValue::SmallInt(i) => Value::from(i),
        DuckValue::Int(i) => Value::from(i),
        DuckValue::BigInt(i) => Value::from(i),
        DuckValue::UTinyInt(i) => Value::from(i),
        DuckValue::USmallInt(i) => Value::from(i),
        DuckValue::UInt(i) => Value::from(i),
        DuckValue::UBigInt(i) => Value::from(i),
        DuckValue::HugeInt(i) => {
            i64::try_from(i).map_or_else(|_| Value::String(i.to_string()), Value::from)
        }
        DuckValue::UHugeInt(i) => {
            u64::try_from(i).map_or_else(|_| Value::String(i.to_string()), Value::from)
        }
        DuckValue::Float(f) => number(f64::from(f)),
        DuckValue::Double(f) => number(f),
        DuckValue::Decimal(d) => d.to_string().parse::<f64>().map_or(Value::Null, number),
        DuckValue::Timestamp(unit, t) => Value::String(timestamp(to_micros(unit, t))),
        DuckValue::Date32(days) => Value::String(date(i64::from(days))),
        DuckValue::Time64(unit, t) => Value::String(time_of_day(to_micros(unit, t))),
        DuckValue::Interval {
            months,
            days,
            nanos,
        } => Value::String(interval(months, days, nanos)),
        DuckValue::Text(s) | DuckValue::Enum(s) => Value::String(s),
        DuckValue::List(items) | DuckValue::Array(items) => {
            Value::Array(items.into_iter().map(to_json).collect())
        }
        DuckValue::Struct(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), to_json(v.clone())))
                .collect(),
        ),
        DuckValue::Map(entries) => {
            let mut out = Map::new();
            for (k, v) in entries.iter() {
                let key = match to_json(k.clone()) {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                out.insert(key, to_json(v.clone()));
            }
            Value::Object(out)
        }
        DuckValue::Union(inner) => to_json(*inner),
        // A kind added by a later `duckdb` crate: its debug form beats losing it.
        other => Value::String(format!("{other:?}")),
    }
}

fn to_micros(unit: TimeUnit, value: i64) -> i64 {
    match unit {
        TimeUnit::Second => value.saturating_mul(MICROS_PER_SECOND),
        TimeUnit::Millisecond => value.saturating_mul(1000),
        TimeUnit::Microsecond => value,
        TimeUnit::Nanosecond => value.div_euclid(1000),
    }
}

/// `YYYY-MM-DD HH:MM:SS[.ffffff]` for microseconds since the Unix epoch (DuckDB's
/// `infinity` timestamps, stored as the extreme integers, print as `infinity`).
fn timestamp(micros: i64) -> String {
    match micros {
        i64::MAX => "infinity".to_owned(),
        i64::MIN | -9_223_372_036_854_775_807 => "-infinity".to_owned(),
        _ => {
            let days = micros.div_euclid(MICROS_PER_DAY);
            let rest = micros.rem_euclid(MICROS_PER_DAY);
            format!("{} {}", date(days), time_of_day(rest))
        }
    }
}

/// `HH:MM:SS[.ffffff]` for microseconds since midnight.
fn time_of_day(micros: i64) -> String {
    let seconds = micros.div_euclid(MICROS_PER_SECOND);
    let fraction = micros.rem_euclid(MICROS_PER_SECOND);
    let (h, m, s) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    if fraction == 0 {
        format!("{h:02}:{m:02}:{s:02}")
    } else {
        format!("{h:02}:{m:02}:{s:02}.{fraction:06}")
    }
}

/// `YYYY-MM-DD` for days since 1970-01-01 (proleptic Gregorian calendar; H. Hinnant's
/// `civil_from_days`).
fn date(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    if year < 0 {
        format!("-{:04}-{month:02}-{day:02}", -year)
    } else {
        format!("{year:04}-{month:02}-{day:02}")
    }
}

/// ISO 8601 duration: `P1Y2M3DT4H5M6.5S`, `PT0S` for zero.
fn interval(months: i32, days: i32, nanos: i64) -> String {
    let mut out = String::from("P");
    let (years, months) = (months / 12, months % 12);
    for (n, unit) in [(years, 'Y'), (months, 'M'), (days, 'D')] {
        if n != 0 {
            out.push_str(&format!("{n}{unit}"));
        }
    }
    if nanos != 0 || out.len() == 1 {
        out.push('T');
        let sign = if nanos < 0 { "-" } else { "" };
        let nanos = nanos.unsigned_abs();
        let (h, m) = (nanos / 3_600_000_000_000, nanos / 60_000_000_000 % 60);
        let (s, frac) = (nanos / 1_000_000_000 % 60, nanos % 1_000_000_000);
        if h != 0 {
            out.push_str(&format!("{sign}{h}H"));
        }
        if m != 0 {
            out.push_str(&format!("{sign}{m}M"));
        }
        if s != 0 || frac != 0 || (h == 0 && m == 0) {
            let frac = if frac == 0 {
                String::new()
            } else {
                format!(".{frac:09}").trim_end_matches('0').to_owned()
            };
            out.push_str(&format!("{sign}{s}{frac}S"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_times_print_like_python_str() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(19_782), "2024-02-29");
        assert_eq!(date(-1), "1969-12-31");
        assert_eq!(date(-719_528), "0000-01-01");
        assert_eq!(timestamp(1_704_103_200_000_000), "2024-01-01 10:00:00");
        assert_eq!(
            timestamp(1_704_103_200_123_000),
            "2024-01-01 10:00:00.123000"
        );
        assert_eq!(timestamp(-1), "1969-12-31 23:59:59.999999");
        assert_eq!(timestamp(i64::MAX), "infinity");
        assert_eq!(time_of_day(36_672_500_000), "10:11:12.500000");
        assert_eq!(
            to_json(DuckValue::Time64(TimeUnit::Nanosecond, 1_500_000_000)),
            Value::String("00:00:01.500000".into())
        );
    }

    #[test]
    fn intervals_are_iso_8601() {
        assert_eq!(interval(0, 1, 3_000_000_000), "P1DT3S");
        assert_eq!(interval(14, 0, 0), "P1Y2M");
        assert_eq!(interval(0, 0, 0), "PT0S");
        assert_eq!(interval(0, 0, 5_400_500_000_000), "PT1H30M0.5S");
    }

    #[test]
    fn numbers_nest_and_overflow_to_strings() {
        assert_eq!(to_json(DuckValue::HugeInt(5)), Value::from(5));
        assert_eq!(
            to_json(DuckValue::HugeInt(i128::MAX)),
            Value::String(i128::MAX.to_string())
        );
        assert_eq!(to_json(DuckValue::Double(f64::NAN)), Value::Null);
        assert_eq!(
            to_json(DuckValue::List(vec![
                DuckValue::Float(1.5),
                DuckValue::Null
            ])),
            serde_json::json!([1.5, null])
        );
        let map =
            ::duckdb::types::OrderedMap::from(vec![(DuckValue::Int(1), DuckValue::Boolean(true))]);
        assert_eq!(to_json(DuckValue::Map(map)), serde_json::json!({"1": true}));
    }
}
