//! Service checks for session tools: NATS (a TCP connect), Ollama (`GET /api/tags`),
//! the workspace folder. Each is async with its own timeout.

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

/// How long the NATS connect may take.
pub(crate) const NATS_CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// How long the Ollama request may take.
pub(crate) const OLLAMA_CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// NATS's default port.
const NATS_DEFAULT_PORT: u16 = 4222;

/// A check's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Whether the service is usable.
    pub ok: bool,
    /// What was found.
    pub message: String,
}

impl Check {
    fn new(ok: bool, message: impl Into<String>) -> Self {
        Check {
            ok,
            message: message.into(),
        }
    }
}

/// `host:port` of the first server of a NATS URL list (`nats://user:pw@host:4222,…`).
pub fn nats_address(url: &str) -> String {
    let first = url.split(',').next().unwrap_or_default().trim();
    let rest = first.split_once("://").map_or(first, |(_, r)| r);
    let rest = rest.split('/').next().unwrap_or_default();
    let host_port = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let has_port = match host_port.rsplit_once(':') {
        // `[::1]` alone has colons but no port.
        Some((_, port)) => !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()),
        None => false,
    };
    if has_port {
        host_port.to_owned()
    } else {
        format!("{host_port}:{NATS_DEFAULT_PORT}")
    }
}

/// Whether a TCP connection to the NATS server of `url` opens.
pub(crate) async fn nats(url: &str) -> Check {
    let addr = nats_address(url);
    match tokio::time::timeout(NATS_CHECK_TIMEOUT, tokio::net::TcpStream::connect(&addr)).await {
        Ok(Ok(_)) => Check::new(true, format!("NATS reachable ({addr})")),
        _ => Check::new(false, format!("NATS unreachable at {addr}")),
    }
}

/// Whether the Ollama server at `url` answers its model list.
pub(crate) async fn ollama(url: &str) -> Check {
    match loom_llm::backends::ollama_models(url, OLLAMA_CHECK_TIMEOUT).await {
        Ok((200, models)) => {
            let first: Vec<&str> = models.iter().take(3).map(String::as_str).collect();
            Check::new(true, format!("Ollama reachable ({})", first.join(", ")))
        }
        Ok((status, _)) => Check::new(true, format!("Ollama returned {status}")),
        Err(_) => Check::new(false, format!("Ollama unreachable at {url}")),
    }
}

/// Whether the workspace folder exists (blocking metadata call, tiny).
pub(crate) async fn workspace(dir: &Path) -> Check {
    let shown = dir.display().to_string();
    match tokio::fs::metadata(dir).await {
        Ok(m) if m.is_dir() => Check::new(true, format!("workspace at {shown}")),
        Ok(_) => Check::new(false, format!("workspace {shown} is not a folder")),
        Err(_) => Check::new(false, format!("workspace not found at {shown}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nats_address_strips_scheme_credentials_and_paths() {
        assert_eq!(nats_address("nats://127.0.0.1:4333"), "127.0.0.1:4333");
        assert_eq!(nats_address("nats://u:p@host/x"), "host:4222");
        assert_eq!(nats_address("tls://a:1, nats://b:2"), "a:1");
        assert_eq!(nats_address("localhost"), "localhost:4222");
    }
}
