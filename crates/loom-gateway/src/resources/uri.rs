//! `workspace:///…` URIs: building them from relative paths and taking them apart.
//!
//! A URI is [`URI_SCHEME`] followed by the file's root-relative path, `/`-separated, each
//! segment percent-encoded where a URI needs it (space, `%`, `#`, `?`, quotes, brackets,
//! control characters and every non-ASCII byte). Parsing accepts the encoded and the
//! plain spelling of the same file, because it decodes **once**: `sp%20ace.txt` and
//! `sp ace.txt` name one file, while `%252e%252e` names a file literally called `%2e%2e`.
//!
//! Parsing is lexical. It refuses what can never name a file inside the root: a `..`
//! segment (also when spelled `%2e%2e` or `..%2f`, and with `\` as a separator), an
//! absolute path (`workspace:////etc/passwd`, `%2Fetc%2Fpasswd`, a drive prefix), NUL
//! bytes and invalid UTF-8. What is left is checked against the file system by
//! [`Workspace::resolve`](loom_core::workspace::Workspace::resolve).

use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};

use super::{ResourceError, URI_SCHEME};

/// Bytes encoded inside a path segment (RFC 3986 `pchar` plus `/`, which we keep as
/// the separator). Non-ASCII bytes are always encoded.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// Longest URI echoed back in an error message; longer ones are cut with `…`.
const MAX_SHOWN_URI_CHARS: usize = 512;

/// `workspace:///` + `relative`, percent-encoded.
pub(super) fn encode(relative: &str) -> String {
    format!("{URI_SCHEME}{}", utf8_percent_encode(relative, SEGMENT))
}

/// The URI as it may appear in an error message or a log: control characters escaped,
/// cut at [`MAX_SHOWN_URI_CHARS`].
pub(super) fn shown(uri: &str) -> String {
    let mut out: String = uri
        .chars()
        .take(MAX_SHOWN_URI_CHARS)
        .flat_map(|c| {
            // Escape control characters only; keep other text readable.
            let escaped: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect();
    if uri.chars().nth(MAX_SHOWN_URI_CHARS).is_some() {
        out.push('…');
    }
    out
}

/// Takes `uri` apart into its normalized root-relative path: percent-decoded once,
/// `/`-separated, without empty or `.` segments.
pub(super) fn parse(uri: &str) -> Result<String, ResourceError> {
    let invalid = || ResourceError::InvalidUri { uri: shown(uri) };
    let escapes = || ResourceError::Escapes { uri: shown(uri) };
    let scheme_len = URI_SCHEME.len();
    let rest = match uri.get(..scheme_len) {
        Some(scheme) if scheme.eq_ignore_ascii_case(URI_SCHEME) => &uri[scheme_len..],
        _ => return Err(invalid()),
    };
    let decoded = percent_decode_str(rest)
        .decode_utf8()
        .map_err(|_| invalid())?;
    if decoded.contains('\0') {
        return Err(invalid());
    }
    let bytes = decoded.as_bytes();
    let drive_prefix = bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':';
    if decoded.starts_with(['/', '\\']) || drive_prefix {
        return Err(escapes());
    }
    // `\` separates on Windows; refuse `..` between either separator everywhere.
    if decoded.split(['/', '\\']).any(|segment| segment == "..") {
        return Err(escapes());
    }
    let segments: Vec<&str> = decoded
        .split('/')
        .filter(|segment| !segment.is_empty() && *segment != ".")
        .collect();
    if segments.is_empty() {
        return Err(invalid());
    }
    Ok(segments.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_what_a_uri_needs_and_keeps_slashes() {
        assert_eq!(encode("a/b.md"), "workspace:///a/b.md");
        assert_eq!(encode("sp ace.txt"), "workspace:///sp%20ace.txt");
        assert_eq!(encode("100%.txt"), "workspace:///100%25.txt");
        assert_eq!(encode("é.md"), "workspace:///%C3%A9.md");
        assert_eq!(encode("a#b?c"), "workspace:///a%23b%3Fc");
        assert_eq!(encode("keep-_.~+@(x)"), "workspace:///keep-_.~+@(x)");
    }

    #[test]
    fn parse_round_trips_encode() {
        for relative in [
            "a/b.md",
            "sp ace.txt",
            "100%.txt",
            "é.md",
            "a#b?c",
            "%2e%2e",
        ] {
            assert_eq!(parse(&encode(relative)).ok().as_deref(), Some(relative));
        }
    }

    #[test]
    fn parse_decodes_once_and_normalizes() {
        assert_eq!(
            parse("workspace:///sp ace.txt").ok().as_deref(),
            Some("sp ace.txt")
        );
        assert_eq!(parse("workspace:///a//./b").ok().as_deref(), Some("a/b"));
        assert_eq!(parse("WORKSPACE:///a").ok().as_deref(), Some("a"));
        assert_eq!(
            parse("workspace:///%252e%252e").ok().as_deref(),
            Some("%2e%2e")
        );
    }

    #[test]
    fn parse_refuses_escapes() {
        for uri in [
            "workspace:///../x",
            "workspace:////etc/passwd",
            "workspace:///a/../../x",
            "workspace:///%2e%2e/x",
            "workspace:///..%2fx",
            "workspace:///%2Fetc%2Fpasswd",
            "workspace:///..\\x",
            "workspace:///C:/x",
            "workspace:///a/..",
        ] {
            assert!(
                matches!(parse(uri), Err(ResourceError::Escapes { .. })),
                "{uri}"
            );
        }
    }

    #[test]
    fn parse_refuses_invalid() {
        for uri in [
            "file:///etc/passwd",
            "workspace://host/a",
            "workspace:/a",
            "workspace:///",
            "workspace:///./",
            "workspace:///a%00b",
            "workspace:///%ff",
            "",
            "wörkspace:///a",
        ] {
            assert!(
                matches!(parse(uri), Err(ResourceError::InvalidUri { .. })),
                "{uri}"
            );
        }
    }

    #[test]
    fn shown_escapes_controls_and_cuts() {
        assert_eq!(shown("a\nb"), "a\\nb");
        let long = "x".repeat(MAX_SHOWN_URI_CHARS + 10);
        assert_eq!(shown(&long).chars().count(), MAX_SHOWN_URI_CHARS + 1);
    }
}
