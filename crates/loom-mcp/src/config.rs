//! Reading server specs from a Claude-Desktop-style `servers.json`:
//! `{"mcpServers": {"name": {"command", "args", "env", "cwd"} | {"url", "headers", "timeout"}}}`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::spec::{ServerSpec, SpecError};

/// Why a servers file could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServersFileError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not the expected JSON.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, with line and column.
        message: String,
    },
    /// An entry is not a valid server.
    #[error("{path}: mcpServers.{server}: {message}")]
    Entry {
        /// The file.
        path: PathBuf,
        /// The entry's name.
        server: String,
        /// What is wrong.
        message: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(rename = "mcpServers")]
    mcp_servers: serde_json::Map<String, serde_json::Value>,
}

/// One entry: a command (stdio) or a URL (streamable HTTP).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    /// The program of a stdio server.
    command: Option<String>,
    /// Its arguments.
    #[serde(default)]
    args: Vec<String>,
    /// Variables added to its environment.
    #[serde(default)]
    env: BTreeMap<String, String>,
    /// Its working directory (relative to the file's directory).
    cwd: Option<PathBuf>,
    /// The URL of an HTTP server.
    url: Option<String>,
    /// Headers sent to it.
    #[serde(default)]
    headers: BTreeMap<String, String>,
    /// Seconds bounding connecting and each request.
    timeout: Option<f64>,
    /// A description of the server.
    description: Option<String>,
    /// Claude Desktop's transport hint ("stdio", "http", "streamable-http"); informative.
    #[serde(rename = "type")]
    kind: Option<String>,
    /// Claude Desktop's switch to leave a server out.
    #[serde(default)]
    disabled: bool,
}

/// Reads the servers of `path`, in file order, skipping entries with `"disabled": true`.
pub fn load_servers_file(path: &Path) -> Result<Vec<ServerSpec>, ServersFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| ServersFileError::Read {
        path: path.to_owned(),
        source,
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    parse_servers(&text, base).map_err(|e| match e {
        ParseError::Json(message) => ServersFileError::Parse {
            path: path.to_owned(),
            message,
        },
        ParseError::Entry { server, message } => ServersFileError::Entry {
            path: path.to_owned(),
            server,
            message,
        },
    })
}

enum ParseError {
    Json(String),
    Entry { server: String, message: String },
}

fn parse_servers(text: &str, base: &Path) -> Result<Vec<ServerSpec>, ParseError> {
    let file: File = serde_json::from_str(text).map_err(|e| ParseError::Json(e.to_string()))?;
    let mut specs = Vec::new();
    for (name, value) in file.mcp_servers {
        let bad = |message: String| ParseError::Entry {
            server: name.clone(),
            message,
        };
        let entry: Entry = serde_json::from_value(value).map_err(|e| bad(e.to_string()))?;
        if entry.disabled {
            continue;
        }
        let spec_error = |e: SpecError| bad(e.to_string());
        let spec = match (entry.command, entry.url) {
            (Some(command), None) => {
                let cwd = entry
                    .cwd
                    .map(|c| if c.is_absolute() { c } else { base.join(c) });
                ServerSpec::stdio(name.clone(), command, entry.args, entry.env, cwd)
                    .map_err(spec_error)?
            }
            (None, Some(url)) => {
                let timeout = match entry.timeout {
                    Some(secs) => Some(Duration::try_from_secs_f64(secs).map_err(|_| {
                        bad(format!(
                            "timeout must be a positive number of seconds, got {secs}"
                        ))
                    })?),
                    None => None,
                };
                ServerSpec::http(name.clone(), url, entry.headers, timeout).map_err(spec_error)?
            }
            (Some(_), Some(_)) => return Err(bad("give either command or url, not both".into())),
            (None, None) => return Err(bad("missing command (stdio) or url (http)".into())),
        };
        let _ = entry.kind;
        specs.push(match entry.description {
            Some(d) => spec.with_description(d),
            None => spec,
        });
    }
    Ok(specs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Transport;

    fn parse(text: &str) -> Result<Vec<ServerSpec>, String> {
        parse_servers(text, Path::new("/etc/loom")).map_err(|e| match e {
            ParseError::Json(m) => m,
            ParseError::Entry { server, message } => format!("{server}: {message}"),
        })
    }

    #[test]
    fn reads_stdio_and_http_entries_in_file_order() {
        let specs = parse(
            r#"{"mcpServers": {
                "git": {"command": "uvx", "args": ["mcp-server-git"], "env": {"A": "1"}, "cwd": "repo"},
                "hosted": {"url": "https://example.com/mcp", "headers": {"Authorization": "Bearer x"}, "timeout": 5},
                "off": {"command": "x", "disabled": true}
            }}"#,
        )
        .expect("valid");
        let names: Vec<_> = specs.iter().map(ServerSpec::name).collect();
        assert_eq!(names, ["git", "hosted"]);
        assert!(
            matches!(specs[0].transport(), Transport::Stdio { cwd: Some(cwd), .. } if cwd == Path::new("/etc/loom/repo"))
        );
        assert!(
            matches!(specs[1].transport(), Transport::Http { timeout, .. } if *timeout == Duration::from_secs(5))
        );
    }

    #[test]
    fn bad_entries_name_the_server() {
        let err = parse(r#"{"mcpServers": {"x": {}}}"#).expect_err("invalid");
        assert_eq!(err, "x: missing command (stdio) or url (http)");
        let err = parse(r#"{"mcpServers": {"x": {"command": "c", "url": "http://h"}}}"#)
            .expect_err("invalid");
        assert!(err.contains("not both"), "{err}");
        let err =
            parse(r#"{"mcpServers": {"x": {"command": "c", "cwdd": "."}}}"#).expect_err("invalid");
        assert!(err.contains("unknown field `cwdd`"), "{err}");
        let err = parse(r#"{"mcpServers": {"a.b": {"command": "c"}}}"#).expect_err("invalid");
        assert!(err.contains("invalid MCP server name"), "{err}");
        assert!(parse("{").is_err());
    }
}
