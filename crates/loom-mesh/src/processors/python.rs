//! Python's text semantics where built-in processors must match the Python originals:
//! `str(value)` of a JSON value, `str.split()`, `str.strip()`, `str.splitlines()`, truthiness.

use serde_json::{Number, Value};

/// Python's `str(v)` for a value decoded from JSON: strings as they are, `None`,
/// `True`/`False`, Python float spelling, and `repr`-style lists and dicts.
pub(crate) fn python_str(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => {
            let mut out = String::new();
            repr(other, &mut out);
            out
        }
    }
}

fn repr(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("None"),
        Value::Bool(true) => out.push_str("True"),
        Value::Bool(false) => out.push_str("False"),
        Value::Number(n) => out.push_str(&number_str(n)),
        Value::String(s) => string_repr(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                repr(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                string_repr(k, out);
                out.push_str(": ");
                repr(v, out);
            }
            out.push('}');
        }
    }
}

fn number_str(n: &Number) -> String {
    if let Some(i) = n.as_i64() {
        i.to_string()
    } else if let Some(u) = n.as_u64() {
        u.to_string()
    } else {
        n.as_f64().map(float_repr).unwrap_or_else(|| n.to_string())
    }
}

/// Python's `repr(str)`: single quotes unless the text has `'` and no `"`.
fn string_repr(s: &str, out: &mut String) {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || (0x7f..0xa0).contains(&(c as u32)) => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
}

/// Python's `repr(float)`: shortest round-trip digits, exponent form below 1e-4 and
/// from 1e16, a trailing `.0` on whole numbers.
pub(crate) fn float_repr(v: f64) -> String {
    if v.is_nan() {
        return "nan".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf" } else { "-inf" }.into();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    let sci = format!("{v:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    if !(-4..16).contains(&exp) {
        let (first, rest) = digits.split_at(1);
        let frac = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let exp_sign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{first}{frac}e{exp_sign}{:02}", exp.abs());
    }
    let point = usize::try_from(exp + 1).unwrap_or(0);
    if exp < 0 {
        let zeros = "0".repeat(usize::try_from(-exp - 1).unwrap_or(0));
        format!("{sign}0.{zeros}{digits}")
    } else if digits.len() <= point {
        format!("{sign}{digits}{}.0", "0".repeat(point - digits.len()))
    } else {
        format!("{sign}{}.{}", &digits[..point], &digits[point..])
    }
}

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
