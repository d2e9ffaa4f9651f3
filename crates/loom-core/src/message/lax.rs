//! Pydantic's lax parsing: integers from floats and strings, objects or nothing.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use serde_json::Value;

use super::JsonObject;

/// Reads any JSON value, keeping it only when it is an object.
pub(super) fn object_or_none<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<JsonObject>, D::Error> {
    Ok(match Value::deserialize(deserializer)? {
        Value::Object(map) => Some(map),
        _ => None,
    })
}

pub(super) fn string_field(value: &Value, key: &str) -> Option<String> {
    value.get(key).and_then(Value::as_str).map(str::to_owned)
}

pub(super) fn default_max_retries() -> u32 {
    2
}

/// An integer read as Pydantic's lax mode does: a JSON integer, a float with no fractional
/// part, or a string holding an integer.
pub(super) struct LaxInt<T>(pub(super) T);

impl<'de, T> Deserialize<'de> for LaxInt<T>
where
    T: TryFrom<i64> + TryFrom<u64>,
{
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_any(LaxIntVisitor(std::marker::PhantomData))
            .map(LaxInt)
    }
}

struct LaxIntVisitor<T>(std::marker::PhantomData<T>);

impl<T> LaxIntVisitor<T>
where
    T: TryFrom<i64> + TryFrom<u64>,
{
    fn out_of_range<E: de::Error>(shown: &dyn fmt::Display) -> E {
        E::custom(format_args!("integer {shown} is out of range"))
    }
}

impl<T> Visitor<'_> for LaxIntVisitor<T>
where
    T: TryFrom<i64> + TryFrom<u64>,
{
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an integer")
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<T, E> {
        T::try_from(n).map_err(|_| Self::out_of_range(&n))
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<T, E> {
        T::try_from(n).map_err(|_| Self::out_of_range(&n))
    }

    fn visit_f64<E: de::Error>(self, n: f64) -> Result<T, E> {
        // Exactly representable whole numbers only; 2^63 is the first value `as i64` saturates on.
        if n.fract() == 0.0 && n.abs() < 9.223_372_036_854_776e18 {
            #[allow(clippy::cast_possible_truncation)]
            let i = n as i64;
            self.visit_i64(i)
        } else {
            Err(E::invalid_type(de::Unexpected::Float(n), &"an integer"))
        }
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<T, E> {
        let t = s.trim();
        if let Ok(i) = t.parse::<i64>() {
            self.visit_i64(i)
        } else if let Ok(u) = t.parse::<u64>() {
            self.visit_u64(u)
        } else {
            Err(E::invalid_value(de::Unexpected::Str(s), &"an integer"))
        }
    }
}

pub(super) fn lax_int<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i64> + TryFrom<u64>,
{
    LaxInt::<T>::deserialize(deserializer).map(|LaxInt(v)| v)
}
