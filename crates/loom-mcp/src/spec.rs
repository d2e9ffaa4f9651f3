//! `ServerSpec`: how to reach one MCP server (a stdio child or a streamable HTTP URL),
//! validated when built.

use std::collections::BTreeMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

/// The default bound on each HTTP request and each MCP request to an HTTP server.
pub const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// The longest server name: names become tool-name prefixes, and OpenAI caps a function
/// name at 64 characters. The same limit as configs' (`loom_core::config`).
pub const MAX_SERVER_NAME_LEN: usize = loom_core::config::MAX_MCP_SERVER_NAME_LEN;

/// Why a [`ServerSpec`] could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    /// The name cannot serve as a tool-name prefix.
    #[error("{}", loom_core::config::invalid_mcp_server_name(name))]
    InvalidName {
        /// The name given.
        name: String,
    },
    /// A stdio server without a command.
    #[error("MCP server '{name}': the command is empty")]
    EmptyCommand {
        /// The server's name.
        name: String,
    },
    /// An HTTP server whose URL does not parse or is not http(s).
    #[error("MCP server '{name}': invalid URL '{url}': {reason}")]
    InvalidUrl {
        /// The server's name.
        name: String,
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A header name or value that HTTP does not allow.
    #[error("MCP server '{name}': invalid header '{header}'")]
    InvalidHeader {
        /// The server's name.
        name: String,
        /// The header's name.
        header: String,
    },
    /// A zero timeout.
    #[error("MCP server '{name}': the timeout must be positive")]
    ZeroTimeout {
        /// The server's name.
        name: String,
    },
}

/// Answers a server's `sampling/createMessage` request (a server asking the client for an
/// LLM completion). Opt-in: the sampling capability is advertised only when a spec has one.
#[async_trait]
pub trait SamplingHandler: Send + Sync {
    /// `messages` and `model_preferences` are the request's, as JSON; the reply is the
    /// assistant's text, or an error message sent back as a JSON-RPC error.
    async fn sample(
        &self,
        messages: Vec<Value>,
        model_preferences: Option<Value>,
    ) -> Result<String, String>;
}

/// How a server is reached.
#[derive(Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Transport {
    /// A child process speaking newline-delimited JSON-RPC on stdin/stdout.
    Stdio {
        /// The program.
        command: String,
        /// Its arguments, in order.
        args: Vec<String>,
        /// Variables added to the allow-listed parent environment (sorted, so equality
        /// does not depend on the order they were given in).
        env: BTreeMap<String, String>,
        /// The child's working directory; `None` is the parent's.
        cwd: Option<PathBuf>,
    },
    /// A streamable HTTP endpoint.
    Http {
        /// The endpoint URL.
        url: String,
        /// Headers sent with every request (sorted by name).
        headers: BTreeMap<String, String>,
        /// Bounds connecting and each MCP request.
        timeout: Duration,
    },
}

/// One MCP server: a name (the registry id and tool-name prefix) and how to reach it.
///
/// Built with [`ServerSpec::stdio`] or [`ServerSpec::http`], which validate everything
/// up front. Equality and hashing ignore the sampling handler; `Debug` redacts env values
/// and header values, which often hold secrets.
///
/// ```
/// use loom_mcp::ServerSpec;
///
/// let git = ServerSpec::stdio("git", "uvx", ["mcp-server-git", "--repo", "."], [("GIT_AUTHOR_NAME", "agent")], None)?;
/// let hosted = ServerSpec::http("hosted", "https://example.com/mcp/", [("Authorization", "Bearer sk-1")], None)?;
/// assert_eq!(git.name(), "git");
/// assert!(!format!("{hosted:?}").contains("sk-1"));
/// assert!(ServerSpec::http("bad name", "https://example.com", [] as [(&str, &str); 0], None).is_err());
/// # Ok::<(), loom_mcp::SpecError>(())
/// ```
#[derive(Clone)]
pub struct ServerSpec {
    name: String,
    transport: Transport,
    description: String,
    sampling: Option<Arc<dyn SamplingHandler>>,
}

impl ServerSpec {
    /// A server started as `command args…` with the allow-listed parent environment plus
    /// `env`, in `cwd` (or the parent's working directory).
    pub fn stdio<K, V>(
        name: impl Into<String>,
        command: impl Into<String>,
        args: impl IntoIterator<Item = impl Into<String>>,
        env: impl IntoIterator<Item = (K, V)>,
        cwd: Option<PathBuf>,
    ) -> Result<Self, SpecError>
    where
        K: Into<String>,
        V: Into<String>,
    {
        let name = checked_name(name.into())?;
        let command = command.into();
        if command.trim().is_empty() {
            return Err(SpecError::EmptyCommand { name });
        }
        Ok(Self {
            transport: Transport::Stdio {
                command,
                args: args.into_iter().map(Into::into).collect(),
                env: env.into_iter().map(|(k, v)| (k.into(), v.into())).collect(),
                cwd,
            },
            name,
            description: String::new(),
            sampling: None,
        })
    }

    /// A streamable HTTP server at `url`, sending `headers` with every request; `timeout`
    /// (default [`DEFAULT_HTTP_TIMEOUT`]) bounds connecting and each request.
    pub fn http<K, V>(
        name: impl Into<String>,
        url: impl Into<String>,
        headers: impl IntoIterator<Item = (K, V)>,
        timeout: Option<Duration>,
    ) -> Result<Self, SpecError>
    where
        K: Into<String>,
        V: Into<String>,
    {
        let name = checked_name(name.into())?;
        let url = url.into();
        match url::Url::parse(&url) {
            Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && parsed.has_host() => {}
            Ok(parsed) => {
                return Err(SpecError::InvalidUrl {
                    name,
                    reason: format!("scheme '{}' is not http or https", parsed.scheme()),
                    url,
                });
            }
            Err(e) => {
                return Err(SpecError::InvalidUrl {
                    name,
                    reason: e.to_string(),
                    url,
                });
            }
        }
        let headers: BTreeMap<String, String> = headers
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        for (header, value) in &headers {
            let bad_name = rmcp_reqwest::header::HeaderName::from_bytes(header.as_bytes()).is_err();
            let bad_value = rmcp_reqwest::header::HeaderValue::from_str(value).is_err();
            if bad_name || bad_value {
                return Err(SpecError::InvalidHeader {
                    name,
                    header: header.clone(),
                });
            }
        }
        let timeout = timeout.unwrap_or(DEFAULT_HTTP_TIMEOUT);
        if timeout.is_zero() {
            return Err(SpecError::ZeroTimeout { name });
        }
        Ok(Self {
            transport: Transport::Http {
                url,
                headers,
                timeout,
            },
            name,
            description: String::new(),
            sampling: None,
        })
    }

    /// Sets a description of the server (shown by `loom tools list`).
    pub fn with_description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    /// Sets the handler for the server's sampling requests.
    pub fn with_sampling_handler(mut self, handler: Arc<dyn SamplingHandler>) -> Self {
        self.sampling = Some(handler);
        self
    }

    /// The server's name: its registry id and tool-name prefix.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How the server is reached.
    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// The description, empty when none was set.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The sampling handler, if any.
    pub fn sampling_handler(&self) -> Option<&Arc<dyn SamplingHandler>> {
        self.sampling.as_ref()
    }
}

impl PartialEq for ServerSpec {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
            && self.transport == other.transport
            && self.description == other.description
    }
}

impl Eq for ServerSpec {}

impl Hash for ServerSpec {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
        self.transport.hash(state);
        self.description.hash(state);
    }
}

/// Keys with their values replaced, for `Debug`.
struct Redacted<'a>(&'a BTreeMap<String, String>);

impl fmt::Debug for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.keys().map(|k| (k, "<redacted>")))
            .finish()
    }
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Transport::Stdio {
                command,
                args,
                env,
                cwd,
            } => f
                .debug_struct("Stdio")
                .field("command", command)
                .field("args", args)
                .field("env", &Redacted(env))
                .field("cwd", cwd)
                .finish(),
            Transport::Http {
                url,
                headers,
                timeout,
            } => f
                .debug_struct("Http")
                .field("url", url)
                .field("headers", &Redacted(headers))
                .field("timeout", timeout)
                .finish(),
        }
    }
}

impl fmt::Debug for ServerSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerSpec")
            .field("name", &self.name)
            .field("transport", &self.transport)
            .field("description", &self.description)
            .field("sampling", &self.sampling.is_some())
            .finish()
    }
}

/// A name usable as a prefix in `server.tool`, `server__tool` and `server:uri` (the
/// rule configs apply, `loom_core::config::valid_mcp_server_name`).
fn checked_name(name: String) -> Result<String, SpecError> {
    if loom_core::config::valid_mcp_server_name(&name) {
        Ok(name)
    } else {
        Err(SpecError::InvalidName { name })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn none() -> [(&'static str, &'static str); 0] {
        []
    }

    #[test]
    fn stdio_records_command_args_env_and_cwd() {
        let spec = ServerSpec::stdio(
            "git",
            "uvx",
            ["mcp-server-git", "--repo", "."],
            [("A", "1")],
            Some(PathBuf::from("/tmp")),
        )
        .expect("valid");
        let Transport::Stdio {
            command,
            args,
            env,
            cwd,
        } = spec.transport()
        else {
            panic!("stdio")
        };
        assert_eq!(command, "uvx");
        assert_eq!(args, &["mcp-server-git", "--repo", "."]);
        assert_eq!(env.get("A").map(String::as_str), Some("1"));
        assert_eq!(cwd.as_deref(), Some(std::path::Path::new("/tmp")));
    }

    #[test]
    fn missing_args_and_env_are_empty() {
        let spec = ServerSpec::stdio("s", "cmd", Vec::<String>::new(), none(), None).expect("ok");
        assert!(
            matches!(spec.transport(), Transport::Stdio { args, env, cwd: None, .. } if args.is_empty() && env.is_empty())
        );
    }

    #[test]
    fn http_records_url_headers_and_timeout() {
        let spec = ServerSpec::http(
            "hosted",
            "https://example.com/mcp/",
            [("X-Tenant-Id", "acme")],
            Some(Duration::from_secs(5)),
        )
        .expect("valid");
        assert!(
            matches!(spec.transport(), Transport::Http { url, headers, timeout }
            if url == "https://example.com/mcp/" && headers["X-Tenant-Id"] == "acme" && *timeout == Duration::from_secs(5))
        );
        let default = ServerSpec::http("h", "http://127.0.0.1:1/mcp", none(), None).expect("ok");
        assert!(
            matches!(default.transport(), Transport::Http { timeout, .. } if *timeout == DEFAULT_HTTP_TIMEOUT)
        );
    }

    #[test]
    fn construction_validates_names_commands_urls_headers() {
        for bad in ["", "a b", "a.b", "a:b", "-a", "a__b", &"x".repeat(33)] {
            assert!(
                matches!(
                    ServerSpec::stdio(bad, "c", ["x"], none(), None),
                    Err(SpecError::InvalidName { .. })
                ),
                "{bad:?}"
            );
        }
        assert!(matches!(
            ServerSpec::stdio("a", " ", ["x"], none(), None),
            Err(SpecError::EmptyCommand { .. })
        ));
        for url in ["not a url", "ws://h/mcp", "file:///x", "http//x"] {
            assert!(
                matches!(
                    ServerSpec::http("a", url, none(), None),
                    Err(SpecError::InvalidUrl { .. })
                ),
                "{url}"
            );
        }
        assert!(matches!(
            ServerSpec::http("a", "http://h/", [("bad header", "v")], None),
            Err(SpecError::InvalidHeader { .. })
        ));
        assert!(matches!(
            ServerSpec::http("a", "http://h/", none(), Some(Duration::ZERO)),
            Err(SpecError::ZeroTimeout { .. })
        ));
        assert!(ServerSpec::stdio("git_a-1", "c", ["x"], none(), None).is_ok());
    }

    struct Never;
    #[async_trait]
    impl SamplingHandler for Never {
        async fn sample(&self, _: Vec<Value>, _: Option<Value>) -> Result<String, String> {
            Err("no".into())
        }
    }

    #[test]
    fn equality_ignores_map_order_and_sampling_handler_and_is_hashable() {
        let a = ServerSpec::stdio("s", "c", ["x"], [("A", "1"), ("B", "2")], None).expect("ok");
        let b = ServerSpec::stdio("s", "c", ["x"], [("B", "2"), ("A", "1")], None)
            .expect("ok")
            .with_sampling_handler(Arc::new(Never));
        assert_eq!(a, b);
        let h1 = ServerSpec::http("h", "http://x/", [("A", "1"), ("B", "2")], None).expect("ok");
        let h2 = ServerSpec::http("h", "http://x/", [("B", "2"), ("A", "1")], None).expect("ok");
        assert_eq!(h1, h2);
        let set: HashSet<ServerSpec> = [a, b, h1, h2].into_iter().collect();
        assert_eq!(set.len(), 2);
    }

    #[test]
    fn debug_redacts_env_and_header_values() {
        let s = ServerSpec::stdio("s", "c", ["x"], [("TOKEN", "hunter2")], None).expect("ok");
        let h = ServerSpec::http("h", "http://x/", [("Authorization", "Bearer sk-1")], None)
            .expect("ok");
        let text = format!("{s:?} {h:?}");
        assert!(text.contains("TOKEN") && text.contains("Authorization"));
        assert!(
            !text.contains("hunter2") && !text.contains("sk-1"),
            "{text}"
        );
    }
}
