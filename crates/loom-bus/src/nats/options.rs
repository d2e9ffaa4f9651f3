//! [`NatsOptions`]: how a `NatsBus` connects (servers, TLS, credentials, reconnects).

use std::path::PathBuf;
use std::time::Duration;

use crate::memory::DEFAULT_SUBSCRIPTION_CAPACITY;

/// How long the initial connection (TCP, TLS, handshake) may take per server.
pub const DEFAULT_CONNECTION_TIMEOUT: Duration = Duration::from_secs(5);

/// The delay before the second reconnect attempt; it doubles after each failure.
pub const DEFAULT_RECONNECT_DELAY_INITIAL: Duration = Duration::from_millis(100);

/// The longest delay between two reconnect attempts.
pub const DEFAULT_RECONNECT_DELAY_MAX: Duration = Duration::from_secs(5);

/// How long [`Bus::close`](crate::Bus::close) may take to flush and drain.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Connection settings for [`NatsBus::connect`](crate::NatsBus::connect).
///
/// Defaults: reconnect forever with exponential backoff (immediately, then 100 ms
/// doubling up to 5 s), a 5 s connection timeout, [`DEFAULT_SUBSCRIPTION_CAPACITY`]
/// messages buffered per subscription, no TLS unless the URL says `tls://`.
///
/// ```
/// use std::time::Duration;
///
/// use loom_bus::NatsOptions;
///
/// let options = NatsOptions::new("nats://10.0.0.5:4222,nats://10.0.0.6:4222")
///     .with_name("loom-router")
///     .with_tls_required(true)
///     .with_root_certificate("/etc/loom/ca.pem")
///     .with_reconnect_backoff(Duration::from_millis(50), Duration::from_secs(2));
/// assert_eq!(options.servers().len(), 2);
/// ```
#[derive(Debug, Clone)]
pub struct NatsOptions {
    pub(super) servers: Vec<String>,
    pub(super) name: Option<String>,
    pub(super) credentials_file: Option<PathBuf>,
    pub(super) tls_required: bool,
    pub(super) root_certificates: Vec<PathBuf>,
    pub(super) client_certificate: Option<(PathBuf, PathBuf)>,
    pub(super) connection_timeout: Duration,
    pub(super) reconnect_delay_initial: Duration,
    pub(super) reconnect_delay_max: Duration,
    pub(super) max_reconnects: Option<usize>,
    pub(super) subscription_capacity: usize,
    pub(super) drain_timeout: Duration,
}

impl NatsOptions {
    /// Options for one server URL, or several separated by commas
    /// (`nats://a:4222,nats://b:4222`), as other NATS clients accept.
    pub fn new(url: &str) -> Self {
        Self {
            servers: split_urls(url),
            name: None,
            credentials_file: None,
            tls_required: false,
            root_certificates: Vec::new(),
            client_certificate: None,
            connection_timeout: DEFAULT_CONNECTION_TIMEOUT,
            reconnect_delay_initial: DEFAULT_RECONNECT_DELAY_INITIAL,
            reconnect_delay_max: DEFAULT_RECONNECT_DELAY_MAX,
            max_reconnects: None,
            subscription_capacity: DEFAULT_SUBSCRIPTION_CAPACITY,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
        }
    }

    /// Adds more server URLs (each may itself be a comma-separated list).
    pub fn with_server(mut self, url: &str) -> Self {
        self.servers.extend(split_urls(url));
        self
    }

    /// The client name the server shows in its monitoring.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Authenticates with a `.creds` file (JWT and NKey seed).
    pub fn with_credentials_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.credentials_file = Some(path.into());
        self
    }

    /// Refuses to connect without TLS.
    pub fn with_tls_required(mut self, required: bool) -> Self {
        self.tls_required = required;
        self
    }

    /// Trusts the CA certificates in this PEM file (may be given several times).
    pub fn with_root_certificate(mut self, path: impl Into<PathBuf>) -> Self {
        self.root_certificates.push(path.into());
        self
    }

    /// Presents this client certificate and key (PEM files) for mutual TLS.
    pub fn with_client_certificate(
        mut self,
        certificate: impl Into<PathBuf>,
        key: impl Into<PathBuf>,
    ) -> Self {
        self.client_certificate = Some((certificate.into(), key.into()));
        self
    }

    /// How long connecting to one server may take.
    pub fn with_connection_timeout(mut self, timeout: Duration) -> Self {
        self.connection_timeout = timeout;
        self
    }

    /// Reconnect backoff: the first retry is immediate, then `initial`, doubling up to
    /// `max`.
    pub fn with_reconnect_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.reconnect_delay_initial = initial;
        self.reconnect_delay_max = max.max(initial);
        self
    }

    /// Gives up after this many consecutive failed reconnect attempts; `None` (the
    /// default) retries forever.
    pub fn with_max_reconnects(mut self, max: Option<usize>) -> Self {
        self.max_reconnects = max.filter(|&n| n > 0);
        self
    }

    /// Messages buffered per subscription before the client drops messages for it.
    pub fn with_subscription_capacity(mut self, capacity: usize) -> Self {
        self.subscription_capacity = capacity.max(1);
        self
    }

    /// How long [`Bus::close`](crate::Bus::close) may take to flush and drain.
    pub fn with_drain_timeout(mut self, timeout: Duration) -> Self {
        self.drain_timeout = timeout;
        self
    }

    /// The server URLs, in the order given.
    pub fn servers(&self) -> &[String] {
        &self.servers
    }
}

fn split_urls(urls: &str) -> Vec<String> {
    urls.split(',')
        .map(str::trim)
        .filter(|url| !url.is_empty())
        .map(ToOwned::to_owned)
        .collect()
}

/// The delay before reconnect attempt `attempts` (1-based): none for the first, then
/// `initial` doubling up to `max`.
pub(super) fn reconnect_delay(attempts: usize, initial: Duration, max: Duration) -> Duration {
    if attempts <= 1 {
        return Duration::ZERO;
    }
    let doublings = u32::try_from(attempts - 2).unwrap_or(u32::MAX).min(30);
    initial.saturating_mul(1 << doublings).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnect_delay_starts_immediately_then_doubles_up_to_the_cap() {
        let initial = DEFAULT_RECONNECT_DELAY_INITIAL;
        let max = DEFAULT_RECONNECT_DELAY_MAX;
        let delays: Vec<u128> = (0..10)
            .map(|n| reconnect_delay(n, initial, max).as_millis())
            .collect();
        assert_eq!(delays, [0, 0, 100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        assert_eq!(reconnect_delay(usize::MAX, initial, max), max);
    }

    #[test]
    fn urls_are_split_on_commas() {
        let options =
            NatsOptions::new(" nats://a:4222, nats://b:4222 ,").with_server("tls://c:4222");
        assert_eq!(
            options.servers(),
            ["nats://a:4222", "nats://b:4222", "tls://c:4222"]
        );
        assert!(NatsOptions::new("").servers().is_empty());
    }
}
