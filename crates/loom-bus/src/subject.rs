//! NATS subject syntax: validating subjects and matching them against wildcard patterns.
//!
//! A subject is a sequence of non-empty tokens separated by `.`, without whitespace.
//! Subscriptions may use two wildcards, each as a whole token: `*` matches exactly one
//! token and `>` (last token only) matches one or more tokens. Loom is stricter than
//! nats-server in one respect: `*` and `>` may not appear inside a longer token
//! (`a.b*`), because such subjects are almost always a mistake.

/// A subject or pattern that is not valid NATS syntax. Every variant names the subject.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubjectError {
    /// The subject is the empty string.
    #[error("invalid subject '': a subject cannot be empty")]
    Empty,
    /// A token is empty: the subject starts or ends with `.` or contains `..`.
    #[error("invalid subject '{subject}': empty token (leading, trailing or double '.')")]
    EmptyToken {
        /// The subject as given.
        subject: String,
    },
    /// The subject contains whitespace.
    #[error("invalid subject '{subject}': contains whitespace")]
    Whitespace {
        /// The subject as given.
        subject: String,
    },
    /// A subject to publish to contains `*` or `>`.
    #[error("invalid subject '{subject}': wildcards '*' and '>' are only allowed when subscribing")]
    WildcardInPublish {
        /// The subject as given.
        subject: String,
    },
    /// `*` or `>` is part of a longer token.
    #[error("invalid subject '{subject}': wildcards '*' and '>' must be whole tokens")]
    PartialWildcard {
        /// The subject as given.
        subject: String,
    },
    /// `>` is not the last token.
    #[error("invalid subject '{subject}': '>' must be the last token")]
    FullWildcardNotLast {
        /// The subject as given.
        subject: String,
    },
}

/// Checks a subject to publish to: non-empty tokens, no whitespace, no wildcards.
///
/// ```
/// use loom_bus::subject::validate_publish_subject;
///
/// assert!(validate_publish_subject("loom.tasks.summarize").is_ok());
/// assert!(validate_publish_subject("loom.tasks.*").is_err());
/// ```
pub fn validate_publish_subject(subject: &str) -> Result<(), SubjectError> {
    let scan = scan(subject)?;
    if scan.has_wildcard_byte {
        return Err(SubjectError::WildcardInPublish {
            subject: subject.to_owned(),
        });
    }
    Ok(())
}

/// Checks a subject pattern to subscribe to: non-empty tokens, no whitespace, `*` only
/// as a whole token and `>` only as the whole last token.
///
/// ```
/// use loom_bus::subject::validate_subscribe_subject;
///
/// assert!(validate_subscribe_subject("loom.*.results.>").is_ok());
/// assert!(validate_subscribe_subject("loom.>.results").is_err());
/// ```
pub fn validate_subscribe_subject(subject: &str) -> Result<(), SubjectError> {
    let scan = scan(subject)?;
    if !scan.has_wildcard_byte {
        return Ok(());
    }
    let mut tokens = subject.split('.').peekable();
    while let Some(token) = tokens.next() {
        let is_last = tokens.peek().is_none();
        match token {
            "*" => {}
            ">" if is_last => {}
            ">" => {
                return Err(SubjectError::FullWildcardNotLast {
                    subject: subject.to_owned(),
                });
            }
            _ if token.bytes().any(|b| b == b'*' || b == b'>') => {
                return Err(SubjectError::PartialWildcard {
                    subject: subject.to_owned(),
                });
            }
            _ => {}
        }
    }
    Ok(())
}

/// Whether `subject` (a literal subject) matches `pattern` (a valid subscribe subject).
///
/// `*` matches exactly one token, `>` one or more trailing tokens, any other token only
/// itself. The pattern is assumed valid; see [`validate_subscribe_subject`].
///
/// ```
/// use loom_bus::subject::matches;
///
/// assert!(matches("loom.tasks.*", "loom.tasks.summarize"));
/// assert!(matches("loom.>", "loom.tasks.summarize"));
/// assert!(!matches("loom.>", "loom"));
/// assert!(!matches("loom.*", "loom.tasks.summarize"));
/// ```
pub fn matches(pattern: &str, subject: &str) -> bool {
    // One pass over both strings, token by token; this runs for every wildcard
    // subscription on every publish, so it avoids `split` and its searches.
    let (p, s) = (pattern.as_bytes(), subject.as_bytes());
    let (mut i, mut j) = (0, 0);
    loop {
        let whole_token = |at: usize| at + 1 == p.len() || p.get(at + 1) == Some(&b'.');
        match p.get(i) {
            Some(b'>') if i + 1 == p.len() => return true,
            Some(b'*') if whole_token(i) => {
                while j < s.len() && s[j] != b'.' {
                    j += 1;
                }
                i += 1;
            }
            _ => {
                while i < p.len() && p[i] != b'.' {
                    if s.get(j) != Some(&p[i]) {
                        return false;
                    }
                    i += 1;
                    j += 1;
                }
                if j < s.len() && s[j] != b'.' {
                    return false;
                }
            }
        }
        // Both are at the end of a token.
        match (i == p.len(), j == s.len()) {
            (true, true) => return true,
            (false, false) => {
                i += 1;
                j += 1;
            }
            _ => return false,
        }
    }
}

/// Whether a valid subscribe subject contains a wildcard token.
pub(crate) fn is_wildcard(pattern: &str) -> bool {
    pattern.split('.').any(|token| token == "*" || token == ">")
}

/// Checks a queue group name: non-empty, no whitespace.
pub(crate) fn is_valid_queue_group(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(char::is_whitespace)
}

/// What one pass over a subject found.
struct Scan {
    has_wildcard_byte: bool,
}

/// Checks the rules shared by publish and subscribe subjects in one pass over the bytes
/// (this runs on every publish): non-empty, no empty token, no whitespace.
fn scan(subject: &str) -> Result<Scan, SubjectError> {
    if subject.is_empty() {
        return Err(SubjectError::Empty);
    }
    let mut empty_token = false;
    let mut ascii_whitespace = false;
    let mut non_ascii = false;
    let mut has_wildcard_byte = false;
    // The start counts as "just after a dot", so a leading dot is an empty token.
    let mut after_dot = true;
    for &byte in subject.as_bytes() {
        match byte {
            b'.' => {
                empty_token |= after_dot;
                after_dot = true;
                continue;
            }
            b'*' | b'>' => has_wildcard_byte = true,
            b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c => ascii_whitespace = true,
            0x80.. => non_ascii = true,
            _ => {}
        }
        after_dot = false;
    }
    empty_token |= after_dot;
    if ascii_whitespace || (non_ascii && subject.chars().any(char::is_whitespace)) {
        return Err(SubjectError::Whitespace {
            subject: subject.to_owned(),
        });
    }
    if empty_token {
        return Err(SubjectError::EmptyToken {
            subject: subject.to_owned(),
        });
    }
    Ok(Scan { has_wildcard_byte })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// A deliberately simple matcher over token slices, the model for [`matches`].
    fn reference_matches(pattern: &[&str], subject: &[&str]) -> bool {
        match (pattern.split_first(), subject.split_first()) {
            (None, None) => true,
            (Some((&">", rest)), Some(_)) => rest.is_empty(),
            (Some((&"*", p_rest)), Some((_, s_rest))) => reference_matches(p_rest, s_rest),
            (Some((p, p_rest)), Some((s, s_rest))) => p == s && reference_matches(p_rest, s_rest),
            _ => false,
        }
    }

    fn literal_token() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("a".to_owned()),
            Just("b".to_owned()),
            Just("loom".to_owned()),
            "[a-z0-9_-]{1,4}",
        ]
    }

    fn subject_strategy() -> impl Strategy<Value = Vec<String>> {
        prop::collection::vec(literal_token(), 1..6)
    }

    fn pattern_strategy() -> impl Strategy<Value = Vec<String>> {
        let token = prop_oneof![3 => literal_token(), 1 => Just("*".to_owned())];
        (prop::collection::vec(token, 1..6), any::<bool>()).prop_map(|(mut tokens, tail)| {
            if tail {
                tokens.push(">".to_owned());
            }
            tokens
        })
    }

    proptest! {
        #[test]
        fn matches_agrees_with_the_reference_matcher(
            pattern in pattern_strategy(),
            subject in subject_strategy(),
        ) {
            let p: Vec<&str> = pattern.iter().map(String::as_str).collect();
            let s: Vec<&str> = subject.iter().map(String::as_str).collect();
            let pattern = pattern.join(".");
            let subject = subject.join(".");
            prop_assert!(validate_subscribe_subject(&pattern).is_ok());
            prop_assert!(validate_publish_subject(&subject).is_ok());
            prop_assert_eq!(matches(&pattern, &subject), reference_matches(&p, &s));
        }

        #[test]
        fn a_literal_subject_matches_itself_and_its_full_wildcard_parent(
            subject in subject_strategy(),
        ) {
            let joined = subject.join(".");
            prop_assert!(matches(&joined, &joined));
            if subject.len() > 1 {
                let parent = format!("{}.>", subject[..subject.len() - 1].join("."));
                prop_assert!(matches(&parent, &joined));
            }
            prop_assert!(matches(">", &joined));
        }
    }

    #[test]
    fn publish_validation_rejects_bad_subjects_and_names_them() {
        for (subject, expected) in [
            ("", "cannot be empty"),
            ("a..b", "empty token"),
            (".a", "empty token"),
            ("a.", "empty token"),
            ("a b", "whitespace"),
            ("a\tb", "whitespace"),
            ("a\u{a0}b", "whitespace"),
            ("a.*", "only allowed when subscribing"),
            ("a.>", "only allowed when subscribing"),
            ("a.b*", "only allowed when subscribing"),
        ] {
            let err = validate_publish_subject(subject).expect_err(subject);
            let message = err.to_string();
            assert!(message.contains(expected), "{subject:?}: {message}");
            assert!(message.contains(&format!("'{subject}'")), "{message}");
        }
    }

    #[test]
    fn subscribe_validation_accepts_whole_token_wildcards_only() {
        for ok in ["a", "a.b", "*", ">", "a.*", "a.>", "*.b.>", "_INBOX.abc.*"] {
            assert!(validate_subscribe_subject(ok).is_ok(), "{ok}");
        }
        for (bad, expected) in [
            ("a.>.b", "must be the last token"),
            ("a.b*", "must be whole tokens"),
            ("a.>b", "must be whole tokens"),
            ("a..*", "empty token"),
            ("a.* ", "whitespace"),
        ] {
            let message = validate_subscribe_subject(bad).expect_err(bad).to_string();
            assert!(message.contains(expected), "{bad:?}: {message}");
        }
    }

    #[test]
    fn wildcard_detection_and_queue_group_names() {
        assert!(is_wildcard("a.*"));
        assert!(is_wildcard(">"));
        assert!(!is_wildcard("a.b"));
        assert!(is_valid_queue_group("workers"));
        assert!(!is_valid_queue_group(""));
        assert!(!is_valid_queue_group("two words"));
    }
}
