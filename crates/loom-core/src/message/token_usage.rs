//! [`TokenUsage`]: token counts by kind, order-preserving.

use std::fmt;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

use super::lax::LaxInt;

/// Token counts by kind, in insertion order (`prompt_tokens`, then `completion_tokens`).
///
/// Travels as a JSON object of integers. Worker results always carry both standard keys
/// (zeros when unknown); final goal results carry `{}`. Order is kept so that Rust output
/// matches the Python original byte for byte.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenUsage {
    entries: Vec<(String, i64)>,
}

impl TokenUsage {
    /// Key of the prompt (input) token count.
    pub const PROMPT: &'static str = "prompt_tokens";
    /// Key of the completion (output) token count.
    pub const COMPLETION: &'static str = "completion_tokens";

    /// No counts: `{}`.
    pub fn new() -> Self {
        TokenUsage::default()
    }

    /// `{"prompt_tokens": prompt, "completion_tokens": completion}`, as workers send it.
    pub fn from_counts(prompt: i64, completion: i64) -> Self {
        TokenUsage {
            entries: vec![
                (Self::PROMPT.to_owned(), prompt),
                (Self::COMPLETION.to_owned(), completion),
            ],
        }
    }

    /// The count stored under `key`, if any.
    pub fn get(&self, key: &str) -> Option<i64> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }

    /// Sets `key` to `value`, keeping its position if present; returns the old value.
    pub fn insert(&mut self, key: impl Into<String>, value: i64) -> Option<i64> {
        let key = key.into();
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => Some(std::mem::replace(v, value)),
            None => {
                self.entries.push((key, value));
                None
            }
        }
    }

    /// Adds every count of `other` to this one (missing keys count as 0).
    pub fn add(&mut self, other: &TokenUsage) {
        for (k, v) in &other.entries {
            let sum = self.get(k).unwrap_or(0).saturating_add(*v);
            self.insert(k.clone(), sum);
        }
    }

    /// `prompt_tokens`, or 0.
    pub fn prompt_tokens(&self) -> i64 {
        self.get(Self::PROMPT).unwrap_or(0)
    }

    /// `completion_tokens`, or 0.
    pub fn completion_tokens(&self) -> i64 {
        self.get(Self::COMPLETION).unwrap_or(0)
    }

    /// The entries in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, i64)> + '_ {
        self.entries.iter().map(|(k, v)| (k.as_str(), *v))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True for `{}`.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl<K: Into<String>> FromIterator<(K, i64)> for TokenUsage {
    fn from_iter<I: IntoIterator<Item = (K, i64)>>(iter: I) -> Self {
        let mut usage = TokenUsage::new();
        for (k, v) in iter {
            usage.insert(k, v);
        }
        usage
    }
}

impl Serialize for TokenUsage {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.entries.len()))?;
        for (k, v) in &self.entries {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for TokenUsage {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct UsageVisitor;
        impl<'de> Visitor<'de> for UsageVisitor {
            type Value = TokenUsage;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of integer token counts")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TokenUsage, A::Error> {
                let mut usage = TokenUsage::new();
                while let Some((k, LaxInt(v))) = map.next_entry::<String, LaxInt<i64>>()? {
                    usage.insert(k, v);
                }
                Ok(usage)
            }
        }
        deserializer.deserialize_map(UsageVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_usage_keeps_order_and_sums() {
        let mut usage = TokenUsage::from_counts(10, 5);
        usage.add(&TokenUsage::from_counts(1, 2));
        assert_eq!(usage.prompt_tokens(), 11);
        assert_eq!(usage.completion_tokens(), 7);
        let json = serde_json::to_string(&usage).expect("serialises");
        assert_eq!(json, r#"{"prompt_tokens":11,"completion_tokens":7}"#);
    }
}
