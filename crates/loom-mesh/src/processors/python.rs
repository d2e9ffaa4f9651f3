//! Python's text semantics where built-in processors must match the Python originals:
//! `str(value)` of a JSON value, `str.split()`, `str.strip()`, `str.splitlines()`, truthiness.

use serde_json::Value;

/// Python's `str(v)` for a value decoded from JSON; shared with loom-core's contract error
/// texts, which use the same `repr` rules for strings.
pub(crate) use loom_core::python::str_of as python_str;

/// Python's `str.isspace()` for one character: Unicode White_Space plus the ASCII
/// separators U+001C–U+001F, which Python also treats as whitespace.
pub(crate) fn is_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// `len(text.split())`.
pub(crate) fn word_count(text: &str) -> usize {
    text.split(is_space).filter(|w| !w.is_empty()).count()
}

/// `text.strip()`.
pub(crate) fn strip(text: &str) -> &str {
    text.trim_matches(is_space)
}

/// `[line for line in text.strip().splitlines() if line]`.
pub(crate) fn non_empty_lines(text: &str) -> Vec<String> {
    strip(text)
        .split(is_line_break)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The line boundaries of `str.splitlines()`. `\r\n` splits twice here, which only
/// produces an empty line, and empty lines are dropped by the caller.
fn is_line_break(c: char) -> bool {
    matches!(
        c,
        '\n' | '\r'
            | '\u{0b}'
            | '\u{0c}'
            | '\u{1c}'
            | '\u{1d}'
            | '\u{1e}'
            | '\u{85}'
            | '\u{2028}'
            | '\u{2029}'
    )
}

/// Python truthiness of a JSON value: `None`, `False`, zero, `""`, `[]` and `{}` are false.
pub(crate) fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn str_of_json_values_matches_python() {
        let cases = [
            (json!("plain"), "plain"),
            (json!(null), "None"),
            (json!(true), "True"),
            (json!(5), "5"),
            (json!(-7), "-7"),
            (json!(1.0), "1.0"),
            (json!(0.1), "0.1"),
            (json!(1e16), "1e+16"),
            (json!(1e-5), "1e-05"),
            (json!([1, "a", null]), "[1, 'a', None]"),
            (
                json!({"k": "it's", "n": [true]}),
                "{'k': \"it's\", 'n': [True]}",
            ),
            (json!(["a\nb", "q'\""]), "['a\\nb', 'q\\'\"']"),
        ];
        for (value, want) in cases {
            assert_eq!(python_str(&value), want, "{value}");
        }
    }

    #[test]
    fn split_and_strip_follow_python_whitespace() {
        assert_eq!(word_count("  a b\t\nc  "), 3);
        assert_eq!(word_count(""), 0);
        assert_eq!(word_count("a\u{1f}b\u{a0}c\u{3000}d"), 4);
        assert_eq!(strip("\u{1c} x \n"), "x");
        assert_eq!(
            non_empty_lines("a\r\nb\n\nc\u{2028}d\n"),
            ["a", "b", "c", "d"]
        );
    }

    #[test]
    fn truthiness_matches_python() {
        for v in [
            json!(null),
            json!(false),
            json!(0),
            json!(0.0),
            json!(""),
            json!([]),
            json!({}),
        ] {
            assert!(!truthy(&v), "{v}");
        }
        for v in [
            json!(true),
            json!(1),
            json!(-0.5),
            json!("x"),
            json!([0]),
            json!({"a": 0}),
        ] {
            assert!(truthy(&v), "{v}");
        }
    }
}
