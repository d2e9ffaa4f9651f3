//! `McpError`: why an operation on an MCP server failed, naming the server (and the tool).

use std::time::Duration;

/// Why an MCP operation failed. Every case names the server; callers branch on the case
/// ([`McpError::is_transport`] decides reconnect-and-retry, [`McpError::retry_after`] a
/// rate-limit retry).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum McpError {
    /// A stdio server's process ended.
    #[error("MCP server '{server}' exited with {}{}", exit_text(*.code, *.signal), stderr_text(.stderr_tail))]
    Exited {
        /// The server.
        server: String,
        /// Its exit code, when it exited normally.
        code: Option<i32>,
        /// The signal that ended it, when one did.
        signal: Option<i32>,
        /// The last lines it wrote to stderr.
        stderr_tail: String,
    },
    /// The server did not answer in time.
    #[error("MCP server '{server}': {operation} timed out after {}", secs(*.after))]
    Timeout {
        /// The server.
        server: String,
        /// What timed out (`initialize`, `tools/call 'x'`, …).
        operation: String,
        /// The limit that was hit.
        after: Duration,
    },
    /// The server answered with a JSON-RPC error, or something that is not MCP.
    #[error("MCP server '{server}': {operation} failed: {message} (JSON-RPC error {code})")]
    Protocol {
        /// The server.
        server: String,
        /// The request that failed.
        operation: String,
        /// The JSON-RPC error code.
        code: i32,
        /// The server's message.
        message: String,
    },
    /// The connection failed: cannot spawn or connect, connection closed or reset.
    #[error("MCP server '{server}': {message}")]
    Transport {
        /// The server.
        server: String,
        /// What happened.
        message: String,
    },
    /// An HTTP server answered 429 Too Many Requests: the request was not executed.
    #[error("MCP server '{server}' is rate limiting requests (HTTP 429){}", retry_text(*.retry_after))]
    RateLimited {
        /// The server.
        server: String,
        /// Its `Retry-After`, when it sent one.
        retry_after: Option<Duration>,
    },
    /// No server has this name.
    #[error("unknown MCP server: {server}")]
    UnknownServer {
        /// The name asked for.
        server: String,
    },
    /// No listed tool has this name (or a bare name is shared by several servers).
    #[error("unknown MCP tool: {tool}")]
    UnknownTool {
        /// The name asked for.
        tool: String,
    },
    /// No listed resource has this URI.
    #[error("unknown MCP resource: {uri}")]
    UnknownResource {
        /// The URI asked for.
        uri: String,
    },
    /// Several servers list this URI.
    #[error(
        "resource '{uri}' is exposed by multiple servers ({}); qualify it as 'server:uri'",
        servers.join(", ")
    )]
    AmbiguousResource {
        /// The URI asked for.
        uri: String,
        /// The servers that list it, in registry order.
        servers: Vec<String>,
    },
    /// No listed prompt has this name (or a bare name is shared by several servers).
    #[error("unknown MCP prompt: {prompt}")]
    UnknownPrompt {
        /// The name asked for.
        prompt: String,
    },
    /// Two specs share a name.
    #[error("duplicate MCP server name: {server}")]
    DuplicateServer {
        /// The name.
        server: String,
    },
}

impl McpError {
    /// Whether the connection is broken (not the request): reconnecting may help.
    pub fn is_transport(&self) -> bool {
        matches!(self, McpError::Transport { .. } | McpError::Exited { .. })
    }

    /// The server's `Retry-After` when it rate-limited the request; `Some(None)` when it
    /// rate-limited without one.
    pub fn retry_after(&self) -> Option<Option<Duration>> {
        match self {
            McpError::RateLimited { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }

    /// The server the error is about, when there is one.
    pub fn server(&self) -> Option<&str> {
        match self {
            McpError::Exited { server, .. }
            | McpError::Timeout { server, .. }
            | McpError::Protocol { server, .. }
            | McpError::Transport { server, .. }
            | McpError::RateLimited { server, .. }
            | McpError::UnknownServer { server }
            | McpError::DuplicateServer { server } => Some(server),
            _ => None,
        }
    }

    pub(crate) fn transport(server: &str, message: impl Into<String>) -> Self {
        McpError::Transport {
            server: server.to_owned(),
            message: message.into(),
        }
    }
}

fn exit_text(code: Option<i32>, signal: Option<i32>) -> String {
    match (code, signal) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => format!("signal {signal}"),
        (None, None) => "an unknown status".to_owned(),
    }
}

fn stderr_text(tail: &str) -> String {
    if tail.trim().is_empty() {
        String::new()
    } else {
        format!("; stderr: {}", tail.trim_end())
    }
}

fn retry_text(retry_after: Option<Duration>) -> String {
    retry_after.map_or(String::new(), |d| format!("; retry after {}", secs(d)))
}

fn secs(d: Duration) -> String {
    format!("{}s", d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_server_and_the_cause() {
        let exited = McpError::Exited {
            server: "git".into(),
            code: Some(3),
            signal: None,
            stderr_tail: "boom\n".into(),
        };
        assert_eq!(
            exited.to_string(),
            "MCP server 'git' exited with exit code 3; stderr: boom"
        );
        assert!(exited.is_transport());
        let killed = McpError::Exited {
            server: "git".into(),
            code: None,
            signal: Some(9),
            stderr_tail: String::new(),
        };
        assert_eq!(killed.to_string(), "MCP server 'git' exited with signal 9");
        let limited = McpError::RateLimited {
            server: "h".into(),
            retry_after: Some(Duration::from_millis(1500)),
        };
        assert_eq!(
            limited.to_string(),
            "MCP server 'h' is rate limiting requests (HTTP 429); retry after 1.5s"
        );
        assert_eq!(
            limited.retry_after(),
            Some(Some(Duration::from_millis(1500)))
        );
        assert!(!limited.is_transport());
        let timeout = McpError::Timeout {
            server: "s".into(),
            operation: "tools/call 'slow'".into(),
            after: Duration::from_secs(2),
        };
        assert_eq!(
            timeout.to_string(),
            "MCP server 's': tools/call 'slow' timed out after 2s"
        );
        assert!(!timeout.is_transport());
        let ambiguous = McpError::AmbiguousResource {
            uri: "file:///a".into(),
            servers: vec!["a".into(), "b".into()],
        };
        assert!(ambiguous.to_string().contains("(a, b)"));
    }
}
