//! The streamable HTTP side: one pooled HTTP client per server (the spec's headers on
//! every request), and reading HTTP failures (429 + Retry-After) out of rmcp's errors.

use std::collections::BTreeMap;
use std::error::Error as StdError;
use std::sync::Once;
use std::time::Duration;

use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::{
    HttpStatusError, StreamableHttpClientTransportConfig, StreamableHttpError,
};
use rmcp_reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use crate::error::McpError;
use crate::retry::parse_retry_after;

/// The transport rmcp drives for an HTTP server.
pub(crate) type HttpTransport = StreamableHttpClientTransport<rmcp_reqwest::Client>;

/// Idle connections kept per server: requests reuse one long-lived keep-alive connection.
const IDLE_CONNECTIONS_PER_HOST: usize = 4;

/// A transport for `url`: `headers` on every request, `timeout` on connecting.
pub(crate) fn transport(
    server: &str,
    url: &str,
    headers: &BTreeMap<String, String>,
    timeout: Duration,
) -> Result<HttpTransport, McpError> {
    install_crypto_provider();
    let mut defaults = HeaderMap::new();
    for (name, value) in headers {
        // Both were checked when the spec was built.
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) else {
            return Err(McpError::transport(
                server,
                format!("invalid header '{name}'"),
            ));
        };
        defaults.insert(name, value);
    }
    let client = rmcp_reqwest::Client::builder()
        .default_headers(defaults)
        .connect_timeout(timeout)
        .pool_max_idle_per_host(IDLE_CONNECTIONS_PER_HOST)
        .tcp_nodelay(true)
        .build()
        .map_err(|e| McpError::transport(server, format!("cannot build the HTTP client: {e}")))?;
    let config = StreamableHttpClientTransportConfig::with_uri(url.to_owned());
    Ok(StreamableHttpClientTransport::with_client(client, config))
}

/// rmcp's HTTP client is built without a TLS crypto provider; Loom uses ring.
fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Fails only when another provider is installed already, which is as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// A 429 or 5xx answer found in an rmcp error (or its sources): status and Retry-After.
pub(crate) fn http_status(error: &(dyn StdError + 'static)) -> Option<(u16, Option<Duration>)> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(StreamableHttpError::HttpStatus(status)) =
            e.downcast_ref::<StreamableHttpError<rmcp_reqwest::Error>>()
        {
            return Some(from_status(status));
        }
        if let Some(status) = e.downcast_ref::<HttpStatusError>() {
            return Some(from_status(status));
        }
        current = e.source();
    }
    None
}

fn from_status(status: &HttpStatusError) -> (u16, Option<Duration>) {
    (
        status.status,
        status.retry_after.as_deref().and_then(parse_retry_after),
    )
}

/// The error for an HTTP failure of `operation` on `server`.
pub(crate) fn status_error(
    server: &str,
    operation: &str,
    status: u16,
    retry_after: Option<Duration>,
) -> McpError {
    if status == 429 {
        McpError::RateLimited {
            server: server.to_owned(),
            retry_after,
        }
    } else {
        McpError::Protocol {
            server: server.to_owned(),
            operation: operation.to_owned(),
            code: -32603,
            message: format!("HTTP {status}"),
        }
    }
}
