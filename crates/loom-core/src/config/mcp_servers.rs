//! `mcp_servers`: upstream MCP servers in Claude Desktop's `mcpServers` shape, shared by
//! gateway configs (`tools.mcp_servers`), LLM workers and pipelines (`mcp_servers`).
//!
//! Plain data: `loom-gateway` and `loom-mesh` turn an entry into a `loom_mcp::ServerSpec`.
//! Each entry is either a stdio server (`command`, `args`, `env`, `cwd`) or a streamable
//! HTTP server (`url`, `headers`), plus Loom's `allow`/`deny` tool lists and `timeout`.
//! `mcp_prefix_mode` beside `mcp_servers` says when tool names carry the server's name.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::yaml::{Decoder, MapReader, Node, describe, scalar_str};

/// Longest upstream server name (the MCP client's limit).
pub const MAX_MCP_SERVER_NAME_LEN: usize = 32;

/// The upstream MCP servers of one config, with how their names are prefixed.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct McpServers {
    /// The servers, in file order (entries with `disabled: true` left out).
    pub servers: Vec<McpServerConfig>,
    /// When tool and prompt names carry their server's name.
    pub prefix_mode: McpPrefixMode,
}

/// When upstream tool and prompt names carry their server's name (`server.tool`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum McpPrefixMode {
    /// Bare when unique, `server.tool` when several servers share the name.
    #[default]
    Conditional,
    /// Always `server.tool`.
    Always,
    /// Always bare; the first server keeps a shared name.
    Never,
}

impl McpPrefixMode {
    /// The mode as written in configs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Conditional => "conditional",
            Self::Always => "always",
            Self::Never => "never",
        }
    }
}

impl std::str::FromStr for McpPrefixMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "conditional" => Ok(Self::Conditional),
            "always" => Ok(Self::Always),
            "never" => Ok(Self::Never),
            other => Err(format!(
                "unknown prefix mode '{other}' (valid: conditional, always, never)"
            )),
        }
    }
}

/// One upstream MCP server.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct McpServerConfig {
    /// The server's name: the prefix of its qualified tool names.
    pub name: String,
    /// How to reach it.
    pub transport: McpTransportConfig,
    /// Seconds bounding connecting and each request, if set.
    pub timeout_seconds: Option<f64>,
    /// What the server is for.
    pub description: Option<String>,
    /// Tool names (the server's own; `*` matches any run of characters) to expose;
    /// `None` exposes every tool.
    pub allow: Option<Vec<String>>,
    /// Tool names (same patterns) never exposed, applied after `allow`.
    pub deny: Vec<String>,
}

/// How to reach an upstream server.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum McpTransportConfig {
    /// A child process speaking MCP on stdin/stdout.
    Stdio {
        /// The program.
        command: String,
        /// Its arguments.
        args: Vec<String>,
        /// Variables added to its environment.
        env: BTreeMap<String, String>,
        /// Its working directory (resolved against the config file's directory).
        cwd: Option<PathBuf>,
    },
    /// A streamable HTTP endpoint.
    Http {
        /// The endpoint URL (`http://` or `https://`).
        url: String,
        /// Headers sent with every request.
        headers: BTreeMap<String, String>,
    },
}

impl McpServerConfig {
    /// Whether the server's tool `tool` (its own name) passes `allow` and `deny`.
    pub fn exposes(&self, tool: &str) -> bool {
        let allowed = self
            .allow
            .as_ref()
            .is_none_or(|list| list.iter().any(|p| pattern_matches(p, tool)));
        allowed && !self.deny.iter().any(|p| pattern_matches(p, tool))
    }
}

/// Whether `name` matches `pattern`, where `*` matches any run of characters.
pub fn pattern_matches(pattern: &str, name: &str) -> bool {
    let mut parts = pattern.split('*');
    let Some(first) = parts.next() else {
        return pattern == name;
    };
    let Some(mut rest) = name.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

/// Reads `mcp_servers` and `mcp_prefix_mode` from mapping `m`; `Some(None)` when there
/// is no `mcp_servers` key, `None` on error.
pub(crate) fn mcp_section<'n, 's>(
    d: &mut Decoder,
    m: &mut MapReader<'n, 's>,
) -> Option<Option<McpServers>> {
    let prefix_node = m.get("mcp_prefix_mode");
    let prefix_mode = m.optional(d, "mcp_prefix_mode", Decoder::parsed::<McpPrefixMode>);
    let bad_prefix = prefix_node.is_some() && prefix_mode.is_none();
    let servers = match m.get("mcp_servers") {
        None => {
            if prefix_node.is_some() {
                let p = m.child_path("mcp_prefix_mode");
                if let Some(node) = prefix_node {
                    d.error(node, &p, "mcp_prefix_mode needs mcp_servers");
                }
                return None;
            }
            return if bad_prefix { None } else { Some(None) };
        }
        Some(node) => servers(d, node, &m.child_path("mcp_servers")),
    };
    if bad_prefix {
        return None;
    }
    Some(Some(McpServers {
        servers: servers?,
        prefix_mode: prefix_mode.unwrap_or_default(),
    }))
}

fn servers(d: &mut Decoder, node: &Node<'_>, path: &str) -> Option<Vec<McpServerConfig>> {
    let mut m = d.map(node, path)?;
    let mut out = Vec::new();
    let mut ok = true;
    for (name, key, value) in m.remaining() {
        let p = format!("{path}.{name}");
        if !valid_mcp_server_name(name) {
            d.error(key, &p, invalid_mcp_server_name(name));
            ok = false;
            continue;
        }
        match server(d, name, value, &p) {
            Some(Some(s)) => out.push(s),
            Some(None) => {}
            None => ok = false,
        }
    }
    m.finish(d);
    ok.then_some(out)
}

/// Whether `name` can name an upstream MCP server: 1 to [`MAX_MCP_SERVER_NAME_LEN`]
/// characters from `[A-Za-z0-9_-]`, not starting with `-` and without `__`, so it is
/// usable as a prefix in `server.tool`, `server__tool` and `server:uri`.
///
/// The one rule for configs and for `loom_mcp::ServerSpec`.
pub fn valid_mcp_server_name(name: &str) -> bool {
    (1..=MAX_MCP_SERVER_NAME_LEN).contains(&name.len())
        && !name.starts_with('-')
        && !name.contains("__")
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Why `name` fails [`valid_mcp_server_name`]: the message of the config error (which
/// adds file:line:col) and of `loom_mcp::SpecError::InvalidName`.
pub fn invalid_mcp_server_name(name: &str) -> String {
    format!(
        "invalid MCP server name '{name}': use 1 to {MAX_MCP_SERVER_NAME_LEN} characters from [A-Za-z0-9_-], not starting with '-' and without '__'"
    )
}

/// One entry; `Some(None)` for a disabled one.
fn server(
    d: &mut Decoder,
    name: &str,
    node: &Node<'_>,
    path: &str,
) -> Option<Option<McpServerConfig>> {
    let mut m = d.map(node, path)?;
    let command_node = m.get("command");
    let command = m.optional(d, "command", Decoder::non_empty_string);
    let args = m.optional(d, "args", Decoder::string_list);
    let env = m.optional(d, "env", string_map);
    let cwd = m.optional(d, "cwd", Decoder::path);
    let url_node = m.get("url");
    let url = m.optional(d, "url", url);
    let headers = m.optional(d, "headers", string_map);
    let timeout_seconds = m.optional(d, "timeout", Decoder::positive_number);
    let description = m.optional(d, "description", Decoder::string);
    let kind = m.optional(d, "type", |d, n, p| {
        let s = d.string(n, p)?;
        match s.as_str() {
            "stdio" | "http" | "streamable-http" | "streamable_http" => Some(s),
            other => {
                d.error(
                    n,
                    p,
                    format!(
                        "unsupported transport type '{other}' (valid: stdio, http, streamable-http)"
                    ),
                );
                None
            }
        }
    });
    let disabled = m.optional(d, "disabled", Decoder::bool).unwrap_or(false);
    let allow = m.optional(d, "allow", Decoder::string_list);
    let deny = m.optional(d, "deny", Decoder::string_list);
    let here = m.node();
    m.finish(d);
    let stdio_only = [
        ("args", args.is_some()),
        ("env", env.is_some()),
        ("cwd", cwd.is_some()),
    ];
    let transport = match (command_node, url_node) {
        (Some(_), Some(_)) => {
            d.error(
                here,
                path,
                "set either 'command' (stdio) or 'url' (HTTP), not both",
            );
            return None;
        }
        (None, None) => {
            d.error(
                here,
                path,
                "missing required key 'command' (stdio) or 'url' (HTTP)",
            );
            return None;
        }
        (Some(_), None) => {
            if headers.is_some() {
                d.error(here, path, "'headers' needs 'url' (HTTP servers only)");
                return None;
            }
            if kind.as_deref().is_some_and(|k| k != "stdio") {
                d.error(here, path, "type says HTTP but the entry has a 'command'");
                return None;
            }
            McpTransportConfig::Stdio {
                command: command?,
                args: args.unwrap_or_default(),
                env: env.unwrap_or_default(),
                cwd,
            }
        }
        (None, Some(_)) => {
            if let Some((key, _)) = stdio_only.iter().find(|(_, set)| *set) {
                d.error(
                    here,
                    path,
                    format!("'{key}' needs 'command' (stdio servers only)"),
                );
                return None;
            }
            if kind.as_deref() == Some("stdio") {
                d.error(here, path, "type says stdio but the entry has a 'url'");
                return None;
            }
            McpTransportConfig::Http {
                url: url?,
                headers: headers.unwrap_or_default(),
            }
        }
    };
    if disabled {
        return Some(None);
    }
    Some(Some(McpServerConfig {
        name: name.to_owned(),
        transport,
        timeout_seconds,
        description,
        allow,
        deny: deny.unwrap_or_default(),
    }))
}

fn url(d: &mut Decoder, node: &Node<'_>, path: &str) -> Option<String> {
    let s = d.non_empty_string(node, path)?;
    let lower = s.to_ascii_lowercase();
    if !(lower.starts_with("http://") || lower.starts_with("https://")) {
        d.error(
            node,
            path,
            format!("invalid URL '{s}': expected http:// or https://"),
        );
        return None;
    }
    Some(s)
}

/// A mapping of string keys to string values (env, headers).
fn string_map(d: &mut Decoder, node: &Node<'_>, path: &str) -> Option<BTreeMap<String, String>> {
    let mut m = d.map(node, path)?;
    let mut out = BTreeMap::new();
    let mut ok = true;
    for (key, _, value) in m.remaining() {
        let p = format!("{path}.{key}");
        match scalar_str(value) {
            Some(v) => {
                out.insert(key.to_owned(), v.to_owned());
            }
            None => {
                d.error(
                    value,
                    &p,
                    format!("expected a string, found {} (quote it)", describe(value)),
                );
                ok = false;
            }
        }
    }
    m.finish(d);
    ok.then_some(out)
}

#[cfg(test)]
#[path = "mcp_servers_tests.rs"]
mod tests;
