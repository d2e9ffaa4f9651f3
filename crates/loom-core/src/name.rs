//! Validated names: worker types, pipelines and stages.
//!
//! These names become NATS subject tokens (`loom.tasks.{worker}.{tier}`) and file
//! names, so they are restricted to `^[a-z][a-z0-9_]*$`. The original accepted any
//! string, and a name with `.`, `*`, `>` or a space corrupted or hijacked routing
//! (mesh spec §19, L8). A `Name` can only be built through validation, so code past
//! the config loader never re-checks.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest name accepted. NATS has no token limit, but file systems and humans do.
pub const MAX_NAME_LEN: usize = 128;

/// Why a string is not a valid name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// The string is empty.
    #[error("name is empty")]
    Empty,
    /// The string is longer than [`MAX_NAME_LEN`].
    #[error("name '{name}' is {len} characters long; the limit is {MAX_NAME_LEN}")]
    TooLong {
        /// The offending name, truncated for display.
        name: String,
        /// Its length in bytes.
        len: usize,
    },
    /// The string has a character outside `[a-z0-9_]` or does not start with `a-z`.
    #[error(
        "name '{name}' is not valid: use lowercase letters, digits and underscores, starting with a letter (^[a-z][a-z0-9_]*$)"
    )]
    Invalid {
        /// The offending name.
        name: String,
    },
}

/// Checks `s` against `^[a-z][a-z0-9_]*$` and [`MAX_NAME_LEN`].
pub fn validate_name(s: &str) -> Result<(), NameError> {
    let mut bytes = s.bytes();
    let Some(first) = bytes.next() else {
        return Err(NameError::Empty);
    };
    if s.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong {
            name: s.chars().take(40).collect::<String>() + "…",
            len: s.len(),
        });
    }
    let ok = first.is_ascii_lowercase()
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(NameError::Invalid { name: s.to_owned() })
    }
}

macro_rules! name_type {
    ($(#[$doc:meta])* $ty:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $ty(String);

        impl $ty {
            /// The name as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $ty {
            type Error = NameError;
            fn try_from(s: String) -> Result<Self, NameError> {
                validate_name(&s)?;
                Ok(Self(s))
            }
        }

        impl TryFrom<&str> for $ty {
            type Error = NameError;
            fn try_from(s: &str) -> Result<Self, NameError> {
                validate_name(s)?;
                Ok(Self(s.to_owned()))
            }
        }

        impl std::str::FromStr for $ty {
            type Err = NameError;
            fn from_str(s: &str) -> Result<Self, NameError> {
                Self::try_from(s)
            }
        }

        impl From<$ty> for String {
            fn from(n: $ty) -> String {
                n.0
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

name_type!(
    /// The name of a worker: its config `name` and the `worker_type` of the tasks it serves.
    WorkerName
);
name_type!(
    /// The name of a pipeline: goals for it go to `loom.goals.{name}`.
    PipelineName
);
name_type!(
    /// The name of a stage inside a pipeline; other stages refer to it in paths.
    StageName
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_lowercase_names_with_digits_and_underscores() {
        for ok in ["a", "summarizer", "doc_extractor2", "a_b_c"] {
            assert_eq!(validate_name(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn rejects_names_that_would_corrupt_subjects() {
        for bad in [
            "Summarizer",
            "doc.extract",
            "a*",
            "a>",
            "with space",
            "_x",
            "9lives",
            "é",
        ] {
            assert!(
                matches!(validate_name(bad), Err(NameError::Invalid { .. })),
                "{bad} was accepted"
            );
        }
        assert_eq!(validate_name(""), Err(NameError::Empty));
        let long = "a".repeat(MAX_NAME_LEN + 1);
        assert!(matches!(
            validate_name(&long),
            Err(NameError::TooLong { .. })
        ));
    }

    #[test]
    fn deserializing_validates() {
        let ok: WorkerName = serde_json::from_str("\"summarizer\"").expect("valid name");
        assert_eq!(ok.as_str(), "summarizer");
        let err = serde_json::from_str::<WorkerName>("\"Bad.Name\"").expect_err("must fail");
        assert!(err.to_string().contains("^[a-z][a-z0-9_]*$"), "{err}");
    }
}
