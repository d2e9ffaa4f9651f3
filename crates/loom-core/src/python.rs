//! Python's `repr()` and `str()` for the values Loom handles, where a Rust component must
//! reproduce the text a loom-ai 0.9.0 (Python) component writes: error messages that embed
//! a list of strings, and processors that format payload values with `str(value)`.
//!
//! | Python | here | used by |
//! |---|---|---|
//! | `repr(s)` for a `str` | [`repr_str`] | contract error texts (`Input validation: ['…']`) |
//! | `repr(v)` for a JSON-decoded value | [`repr`] | items inside lists and dicts |
//! | `str(v)` for a JSON-decoded value | [`str_of`] | loom-mesh's built-in processors |
//! | `repr(f)` / `str(f)` for a `float` | [`float_repr`] | the above, and [`to_python_json`] |
//!
//! `repr` and `str` differ only at the top level, and only for strings: `str('a')` is `a`,
//! `repr('a')` is `'a'`. Inside a list or dict, Python always uses `repr`, so `str(['a'])`
//! is `['a']`.
//!
//! A JSON value decodes in Python to `None`, `bool`, `int`, `float`, `str`, `list` or `dict`;
//! the spellings follow: `None`, `True`/`False`, integers as digits, floats in `repr` form
//! (`1.0`, `1e-05`, `1e+16`), strings in quotes with escapes, `[a, b]` and `{'k': v}`.
//!
//! [`to_python_json`]: crate::message::to_python_json

use serde_json::{Number, Value};

/// Python's `repr(value)` for a value decoded from JSON (`json.loads`).
///
/// ```
/// use serde_json::json;
/// assert_eq!(
///     loom_core::python::repr(&json!({"k": "it's", "n": [1, 2.0, null, true]})),
///     r#"{'k': "it's", 'n': [1, 2.0, None, True]}"#,
/// );
/// assert_eq!(loom_core::python::repr(&json!("a")), "'a'");
/// ```
pub fn repr(value: &Value) -> String {
    let mut out = String::new();
    write_repr(value, &mut out);
    out
}

/// Python's `str(value)` for a value decoded from JSON: a string as it is, anything else as
/// [`repr`] (so strings nested in lists and dicts are still quoted).
///
/// ```
/// use serde_json::json;
/// assert_eq!(loom_core::python::str_of(&json!("it's")), "it's");
/// assert_eq!(loom_core::python::str_of(&json!(["it's"])), r#"["it's"]"#);
/// assert_eq!(loom_core::python::str_of(&json!(null)), "None");
/// ```
pub fn str_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => repr(other),
    }
}

/// Python's `repr(s)` for a `str`.
///
/// The quotes are single unless the text holds `'` and no `"`. Backslashes, the quote in
/// use, `\n`, `\r` and `\t` are escaped, and every character [`is_printable`] rejects is
/// written as `\xhh`, `\uhhhh` or `\Uhhhhhhhh`. Other non-ASCII characters stay as they are.
///
/// ```
/// assert_eq!(loom_core::python::repr_str("missing field 'text'"), r#""missing field 'text'""#);
/// assert_eq!(loom_core::python::repr_str("a\nb"), r"'a\nb'");
/// ```
pub fn repr_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    write_repr_str(s, &mut out);
    out
}

/// Python's `repr(f)` (also `str(f)`) for a `float`: the shortest digits that round-trip,
/// scientific notation when the decimal exponent is below -4 or at least 16 (with a sign
/// and at least two exponent digits), a trailing `.0` on whole numbers, and `nan`, `inf`,
/// `-inf`, `-0.0`.
///
/// ```
/// use loom_core::python::float_repr;
/// assert_eq!(float_repr(1.0), "1.0");
/// assert_eq!(float_repr(1e-5), "1e-05");
/// assert_eq!(float_repr(1e16), "1e+16");
/// ```
pub fn float_repr(v: f64) -> String {
    if v.is_nan() {
        return "nan".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf" } else { "-inf" }.into();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    // `{:e}` gives the shortest round-trip digits, e.g. "-1.2345e16" or "1e-5".
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
    // `exp` is in -4..16 here, so the conversions cannot fail.
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

/// Python's `str.isprintable()` for one character, which decides what `repr` escapes.
///
/// Not printable: control characters (Cc), separators other than the ASCII space (Zs, Zl,
/// Zp), format characters (Cf), private-use characters (Co) and the noncharacters. Python
/// also escapes code points unassigned in its Unicode database (Cn); without that table
/// this treats them, apart from the noncharacters, as printable.
pub fn is_printable(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    let n = u32::from(c);
    let noncharacter = (0xfdd0..=0xfdef).contains(&n) || n & 0xfffe == 0xfffe;
    !(noncharacter
        || is_format(c)
        || matches!(c, '\u{e000}'..='\u{f8ff}' | '\u{f0000}'..='\u{10ffff}'))
}

/// The format characters (general category Cf).
fn is_format(c: char) -> bool {
    matches!(
        c,
        '\u{ad}'
            | '\u{600}'..='\u{605}'
            | '\u{61c}'
            | '\u{6dd}'
            | '\u{70f}'
            | '\u{890}'..='\u{891}'
            | '\u{8e2}'
            | '\u{180e}'
            | '\u{200b}'..='\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206f}'
            | '\u{feff}'
            | '\u{fff9}'..='\u{fffb}'
            | '\u{110bd}'
            | '\u{110cd}'
            | '\u{13430}'..='\u{1343f}'
            | '\u{1bca0}'..='\u{1bca3}'
            | '\u{1d173}'..='\u{1d17a}'
            | '\u{e0001}'
            | '\u{e0020}'..='\u{e007f}'
    )
}

fn write_repr(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("None"),
        Value::Bool(true) => out.push_str("True"),
        Value::Bool(false) => out.push_str("False"),
        Value::Number(n) => out.push_str(&number_repr(n)),
        Value::String(s) => write_repr_str(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_repr(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_repr_str(k, out);
                out.push_str(": ");
                write_repr(v, out);
            }
            out.push('}');
        }
    }
}

/// A JSON integer is a Python `int` (digits), anything else a `float`.
fn number_repr(n: &Number) -> String {
    if let Some(i) = n.as_i64() {
        i.to_string()
    } else if let Some(u) = n.as_u64() {
        u.to_string()
    } else {
        n.as_f64().map(float_repr).unwrap_or_else(|| n.to_string())
    }
}

fn write_repr_str(s: &str, out: &mut String) {
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
            c if !is_printable(c) => {
                let n = u32::from(c);
                if n <= 0xff {
                    out.push_str(&format!("\\x{n:02x}"));
                } else if n <= 0xffff {
                    out.push_str(&format!("\\u{n:04x}"));
                } else {
                    out.push_str(&format!("\\U{n:08x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push(quote);
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn strings_pick_quotes_and_escape_like_python() {
        let cases = [
            ("input: expected string", "'input: expected string'"),
            (
                "input: missing required field 'text'",
                "\"input: missing required field 'text'\"",
            ),
            ("say \"hi\"", "'say \"hi\"'"),
            ("a'b\"c", "'a\\'b\"c'"),
            ("x\ny\\", "'x\\ny\\\\'"),
            ("\t\r", "'\\t\\r'"),
            ("", "''"),
            ("é\u{1}", "'é\\x01'"),
        ];
        for (s, want) in cases {
            assert_eq!(repr_str(s), want, "{s:?}");
        }
    }

    #[test]
    fn unicode_is_kept_unless_python_escapes_it() {
        let cases = [
            ("é ü 日本 😀", "'é ü 日本 😀'"),
            ("\u{1}\u{7f}\u{85}", "'\\x01\\x7f\\x85'"),
            ("a\u{a0}b\u{ad}", "'a\\xa0b\\xad'"),
            (
                "\u{2028}\u{200b}\u{3000}\u{feff}",
                "'\\u2028\\u200b\\u3000\\ufeff'",
            ),
            ("\u{e000}\u{ffff}", "'\\ue000\\uffff'"),
            ("\u{e0001}\u{10fffd}", "'\\U000e0001\\U0010fffd'"),
        ];
        for (s, want) in cases {
            assert_eq!(repr_str(s), want, "{s:?}");
        }
    }

    #[test]
    fn scalars_spell_like_python() {
        let cases = [
            (json!(null), "None"),
            (json!(true), "True"),
            (json!(false), "False"),
            (json!(0), "0"),
            (json!(5), "5"),
            (json!(-7), "-7"),
            (json!(u64::MAX), "18446744073709551615"),
            (json!(1.0), "1.0"),
            (json!(-2.5), "-2.5"),
            (json!(0.1), "0.1"),
            (json!(1e16), "1e+16"),
            (json!(1e-5), "1e-05"),
            (json!(1e15), "1000000000000000.0"),
        ];
        for (value, want) in cases {
            assert_eq!(repr(&value), want, "{value}");
            assert_eq!(str_of(&value), want, "{value}");
        }
    }

    #[test]
    fn str_differs_from_repr_only_for_top_level_strings() {
        assert_eq!(str_of(&json!("it's \"x\"\n")), "it's \"x\"\n");
        assert_eq!(repr(&json!("it's")), "\"it's\"");
        assert_eq!(str_of(&json!(["it's"])), "[\"it's\"]");
        assert_eq!(str_of(&json!({"k": "v"})), "{'k': 'v'}");
    }

    #[test]
    fn nested_lists_and_dicts_use_repr_throughout() {
        let cases = [
            (json!([]), "[]"),
            (json!({}), "{}"),
            (json!([1, "a", null]), "[1, 'a', None]"),
            (
                json!({"k": "it's", "n": [true, 1.5, {"x": []}]}),
                "{'k': \"it's\", 'n': [True, 1.5, {'x': []}]}",
            ),
            (json!(["a\nb", "q'\""]), "['a\\nb', 'q\\'\"']"),
            (json!({"it's": "é"}), "{\"it's\": 'é'}"),
        ];
        for (value, want) in cases {
            assert_eq!(repr(&value), want, "{value}");
            assert_eq!(str_of(&value), want, "{value}");
        }
    }

    #[test]
    fn floats_match_python_repr() {
        let cases = [
            (1e-05, "1e-05"),
            (1e16, "1e+16"),
            (1.5e300, "1.5e+300"),
            (5e-324, "5e-324"),
            (0.1, "0.1"),
            (123.0, "123.0"),
            (12_345_678_901_234_567.0, "1.2345678901234568e+16"),
            (1e15, "1000000000000000.0"),
            (0.0001, "0.0001"),
            (0.000_123, "0.000123"),
            (-2.5, "-2.5"),
            (-0.0, "-0.0"),
            (0.0, "0.0"),
            (1.0, "1.0"),
            (123.456, "123.456"),
            (f64::NAN, "nan"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
        ];
        for (v, want) in cases {
            assert_eq!(float_repr(v), want, "{v}");
        }
    }
}
