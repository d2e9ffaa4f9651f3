//! MIME types from a fixed table, and which of them are served as text.
//!
//! loom-ai 0.9.0 asked the host's MIME database, so the same file was text on one machine
//! and binary on another (YAML and Markdown came out as `application/octet-stream`). Loom
//! decides from the file's extension alone, in this order:
//!
//! 1. [`EXTENSIONS`], the table below (lower-cased extension);
//! 2. a few well-known file names without an extension ([`FILE_NAMES`]: `README`,
//!    `LICENSE`, `Makefile`, …) as `text/plain`;
//! 3. `mime_guess`'s table, which is compiled into the binary and so the same everywhere;
//! 4. `application/octet-stream`.
//!
//! A type is served as text ([`is_text`]) when it is `text/*`, one of
//! [`TEXT_APPLICATION_TYPES`], or has a `+json`, `+xml` or `+yaml` suffix (so
//! `image/svg+xml` is text).

/// The type of files nothing else claims.
pub(super) const OCTET_STREAM: &str = "application/octet-stream";

/// Extension (lower case, without the dot) → MIME type. Checked before `mime_guess`,
/// whose answers for some of these are unhelpful (`ts` is video, `sh` and `yaml` are not
/// text, `py` is plain text).
pub(super) const EXTENSIONS: &[(&str, &str)] = &[
    // Prose and data.
    ("md", "text/markdown"),
    ("markdown", "text/markdown"),
    ("txt", "text/plain"),
    ("text", "text/plain"),
    ("log", "text/plain"),
    ("rst", "text/x-rst"),
    ("csv", "text/csv"),
    ("tsv", "text/tab-separated-values"),
    ("json", "application/json"),
    ("jsonl", "application/jsonl"),
    ("ndjson", "application/jsonl"),
    ("yaml", "application/yaml"),
    ("yml", "application/yaml"),
    ("toml", "application/toml"),
    ("xml", "application/xml"),
    ("html", "text/html"),
    ("htm", "text/html"),
    ("css", "text/css"),
    ("ini", "text/plain"),
    ("cfg", "text/plain"),
    ("conf", "text/plain"),
    // Code.
    ("js", "text/javascript"),
    ("mjs", "text/javascript"),
    ("cjs", "text/javascript"),
    ("ts", "text/x-typescript"),
    ("py", "text/x-python"),
    ("rs", "text/x-rust"),
    ("go", "text/x-go"),
    ("java", "text/x-java"),
    ("c", "text/x-c"),
    ("h", "text/x-c"),
    ("cpp", "text/x-c++"),
    ("hpp", "text/x-c++"),
    ("rb", "text/x-ruby"),
    ("sh", "text/x-shellscript"),
    ("bash", "text/x-shellscript"),
    ("sql", "text/x-sql"),
    // Binary documents and images.
    ("pdf", "application/pdf"),
    ("png", "image/png"),
    ("jpg", "image/jpeg"),
    ("jpeg", "image/jpeg"),
    ("gif", "image/gif"),
    ("webp", "image/webp"),
    ("svg", "image/svg+xml"),
    ("ico", "image/vnd.microsoft.icon"),
    ("zip", "application/zip"),
    ("gz", "application/gzip"),
    ("tar", "application/x-tar"),
];

/// Files without an extension that are text by convention.
pub(super) const FILE_NAMES: &[&str] = &[
    "AUTHORS",
    "CHANGELOG",
    "CODEOWNERS",
    "CONTRIBUTING",
    "COPYING",
    "Dockerfile",
    "LICENSE",
    "Makefile",
    "NOTICE",
    "README",
];

/// `application/*` types served as text.
pub(super) const TEXT_APPLICATION_TYPES: &[&str] = &[
    "application/json",
    "application/jsonl",
    "application/xml",
    "application/yaml",
    "application/toml",
    "application/javascript",
];

/// The MIME type of the file named `name` (the last path segment).
pub(super) fn mime_for(name: &str) -> &'static str {
    let Some((stem, extension)) = name.rsplit_once('.') else {
        return if FILE_NAMES.contains(&name) {
            "text/plain"
        } else {
            OCTET_STREAM
        };
    };
    if stem.is_empty() || extension.is_empty() {
        return OCTET_STREAM;
    }
    let extension = extension.to_ascii_lowercase();
    EXTENSIONS
        .iter()
        .find(|(known, _)| *known == extension)
        .map(|(_, mime)| *mime)
        .or_else(|| mime_guess::from_ext(&extension).first_raw())
        .unwrap_or(OCTET_STREAM)
}

/// Whether content of type `mime` is served as text (when it is valid UTF-8).
pub(super) fn is_text(mime: &str) -> bool {
    mime.starts_with("text/")
        || TEXT_APPLICATION_TYPES.contains(&mime)
        || mime.ends_with("+json")
        || mime.ends_with("+xml")
        || mime.ends_with("+yaml")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_wins_over_mime_guess() {
        assert_eq!(mime_for("a.md"), "text/markdown");
        assert_eq!(mime_for("a.YAML"), "application/yaml");
        assert_eq!(mime_for("a.yml"), "application/yaml");
        assert_eq!(mime_for("a.ts"), "text/x-typescript");
        assert_eq!(mime_for("a.py"), "text/x-python");
        assert_eq!(mime_for("run.sh"), "text/x-shellscript");
    }

    #[test]
    fn falls_back_to_mime_guess_then_octet_stream() {
        assert_eq!(mime_for("a.mp3"), "audio/mpeg");
        assert_eq!(mime_for("a.unknown-ext"), OCTET_STREAM);
        assert_eq!(mime_for("data"), OCTET_STREAM);
        assert_eq!(mime_for("trailing."), OCTET_STREAM);
        assert_eq!(mime_for("README"), "text/plain");
    }

    #[test]
    fn every_table_entry_is_lower_case_and_unique() {
        for (i, (extension, _)) in EXTENSIONS.iter().enumerate() {
            assert_eq!(*extension, extension.to_ascii_lowercase());
            assert!(
                !EXTENSIONS[i + 1..].iter().any(|(e, _)| e == extension),
                "{extension} twice"
            );
        }
    }

    #[test]
    fn text_types() {
        for mime in [
            "text/plain",
            "application/json",
            "application/yaml",
            "application/toml",
            "image/svg+xml",
        ] {
            assert!(is_text(mime), "{mime}");
        }
        for mime in ["image/png", "application/pdf", OCTET_STREAM] {
            assert!(!is_text(mime), "{mime}");
        }
    }
}
