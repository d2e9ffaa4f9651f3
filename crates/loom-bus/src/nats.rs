//! [`NatsBus`]: the [`Bus`] on a NATS server, through async-nats.
//!
//! * **Connect** fails at once, naming the URL(s), when no server is reachable at start;
//!   after that the client reconnects forever (by default) with exponential backoff and
//!   resubscribes every live subscription. Connection events are logged through
//!   `tracing` (disconnects at WARN, reconnects at INFO).
//! * **Request** uses async-nats's own multiplexed request inbox (one `_INBOX` wildcard
//!   subscription per connection) and maps its no-responders status to
//!   [`RequestErrorKind::NoResponders`].
//! * **Slow subscribers:** async-nats drops messages for a subscription whose buffer
//!   ([`NatsOptions::with_subscription_capacity`]) is full and reports a slow-consumer
//!   event, logged at WARN (rate-limited). [`Subscription::dropped`] is `None` here.
//! * **Close** flushes, drains every subscription (each ends after the messages already
//!   received) and waits for the connection to close, within
//!   [`NatsOptions::with_drain_timeout`].
//! * While disconnected, publishes queue in the client (up to async-nats's command
//!   buffer, then they wait); they are sent after the reconnect.
//!
//! `async_nats` types never leave this module.

mod options;

use std::fmt;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_nats::client::RequestErrorKind as NatsRequestErrorKind;
use async_nats::connection::State;
use async_trait::async_trait;
use bytes::Bytes;
use futures::Stream;
use tokio::sync::watch;

use self::options::reconnect_delay;
pub use self::options::{
    DEFAULT_CONNECTION_TIMEOUT, DEFAULT_DRAIN_TIMEOUT, DEFAULT_RECONNECT_DELAY_INITIAL,
    DEFAULT_RECONNECT_DELAY_MAX, NatsOptions,
};
use crate::bus::{Bus, BusState, Message};
use crate::error::{
    BoxError, BusClosed, CloseError, PublishError, RequestError, RequestErrorKind, SubscribeError,
    UnsubscribeError,
};
use crate::subject::{is_valid_queue_group, validate_publish_subject, validate_subscribe_subject};
use crate::subscription::{Backend, Subscription};

/// How often slow-consumer events are logged at most.
const SLOW_CONSUMER_WARN_INTERVAL: Duration = Duration::from_secs(5);

/// How long `flush` and `close` wait for the server's answer to their round trip.
const DRAIN_BARRIER_TIMEOUT: Duration = Duration::from_secs(1);

/// Connecting to NATS failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The options name no server.
    #[error("no NATS server URL given")]
    NoServers,
    /// A server URL does not parse.
    #[error("invalid NATS server URL '{url}'")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// Why it does not parse.
        #[source]
        source: BoxError,
    },
    /// The credentials file cannot be read or parsed.
    #[error("cannot read NATS credentials file {}", path.display())]
    Credentials {
        /// The file.
        path: PathBuf,
        /// The I/O or parse error.
        #[source]
        source: std::io::Error,
    },
    /// No server could be reached (refused, timed out, TLS or authentication failed).
    #[error("cannot connect to NATS at {urls}")]
    Unreachable {
        /// The server URL(s), comma-separated.
        urls: String,
        /// The last connection error.
        #[source]
        source: BoxError,
    },
}

/// A [`Bus`] on a NATS server; see the [module docs](self).
///
/// Cheap to clone: clones share one connection, and closing any of them closes it.
///
/// ```no_run
/// use loom_bus::{Bus, NatsBus, NatsOptions};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let bus = NatsBus::connect(NatsOptions::new("nats://127.0.0.1:4222").with_name("loom")).await?;
/// bus.publish("loom.tasks.summarize", "{}".into()).await?;
/// bus.close().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct NatsBus {
    client: async_nats::Client,
    shared: Arc<Shared>,
}

struct Shared {
    urls: String,
    closed: AtomicBool,
    /// Becomes true when async-nats reports the connection closed.
    connection_closed: watch::Receiver<bool>,
    drain_timeout: Duration,
}

impl NatsBus {
    /// A round trip to the server: once it answers (no responders on a fresh inbox), it
    /// has processed every publish and subscription sent before, and sent us every message
    /// routed to us before it. Its outcome does not matter.
    async fn barrier(&self) {
        let request = async_nats::Request::new().timeout(Some(DRAIN_BARRIER_TIMEOUT));
        let _ = self
            .client
            .send_request(async_nats::Subject::from(self.client.new_inbox()), request)
            .await;
    }

    /// Connects to the first reachable server of `options`.
    ///
    /// Tries each server once and fails with [`ConnectError::Unreachable`] if none
    /// answers; it does not retry forever at start.
    pub async fn connect(options: NatsOptions) -> Result<Self, ConnectError> {
        if options.servers.is_empty() {
            return Err(ConnectError::NoServers);
        }
        let urls = options.servers.join(",");
        let mut addrs = Vec::with_capacity(options.servers.len());
        for url in &options.servers {
            let addr = url.parse::<async_nats::ServerAddr>().map_err(|source| {
                ConnectError::InvalidUrl {
                    url: url.clone(),
                    source: Box::new(source),
                }
            })?;
            addrs.push(addr);
        }

        let (closed_tx, closed_rx) = watch::channel(false);
        let events = EventLog {
            urls: urls.clone(),
            connected_before: AtomicBool::new(false),
            started: Instant::now(),
            last_slow_warn_ms: AtomicU64::new(u64::MAX),
            closed_tx,
        };
        let initial = options.reconnect_delay_initial;
        let max = options.reconnect_delay_max;
        let mut connect = async_nats::ConnectOptions::new()
            .connection_timeout(options.connection_timeout)
            .subscription_capacity(options.subscription_capacity)
            .max_reconnects(options.max_reconnects)
            .reconnect_delay_callback(move |attempts| reconnect_delay(attempts, initial, max))
            .require_tls(options.tls_required)
            .event_callback(move |event| {
                events.log(event);
                std::future::ready(())
            });
        if let Some(name) = &options.name {
            connect = connect.name(name);
        }
        for path in &options.root_certificates {
            connect = connect.add_root_certificates(path.clone());
        }
        if let Some((certificate, key)) = &options.client_certificate {
            connect = connect.add_client_certificate(certificate.clone(), key.clone());
        }
        if let Some(path) = &options.credentials_file {
            connect = connect.credentials_file(path).await.map_err(|source| {
                ConnectError::Credentials {
                    path: path.clone(),
                    source,
                }
            })?;
        }
        let client = connect
            .connect(addrs)
            .await
            .map_err(|source| ConnectError::Unreachable {
                urls: urls.clone(),
                source: Box::new(source),
            })?;
        Ok(Self {
            client,
            shared: Arc::new(Shared {
                urls,
                closed: AtomicBool::new(false),
                connection_closed: closed_rx,
                drain_timeout: options.drain_timeout,
            }),
        })
    }

    /// The server URL(s) this bus was configured with, comma-separated.
    pub fn urls(&self) -> &str {
        &self.shared.urls
    }

    fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire)
    }

    async fn drain(&self) -> Result<(), CloseError> {
        let url = || self.shared.urls.clone();
        // Hand everything published so far to the server before unsubscribing.
        self.client.flush().await.map_err(|err| CloseError::Drain {
            url: url(),
            source: Box::new(err),
        })?;
        self.barrier().await;
        self.client.drain().await.map_err(|err| CloseError::Drain {
            url: url(),
            source: Box::new(err),
        })?;
        let mut closed = self.shared.connection_closed.clone();
        // An error means the event task is gone, i.e. the connection is gone too.
        let _ = closed.wait_for(|closed| *closed).await;
        Ok(())
    }
}

impl fmt::Debug for NatsBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsBus")
            .field("urls", &self.shared.urls)
            .field("state", &self.state())
            .finish()
    }
}

#[async_trait]
impl Bus for NatsBus {
    async fn publish(&self, subject: &str, payload: Bytes) -> Result<(), PublishError> {
        validate_publish_subject(subject)?;
        if self.is_closed() {
            return Err(PublishError::Closed {
                subject: subject.to_owned(),
            });
        }
        self.client
            .publish(async_nats::Subject::from(subject), payload)
            .await
            .map_err(|err| PublishError::Transport {
                subject: subject.to_owned(),
                source: Box::new(err),
            })
    }

    async fn publish_with_reply(
        &self,
        subject: &str,
        reply: &str,
        payload: Bytes,
    ) -> Result<(), PublishError> {
        validate_publish_subject(subject)?;
        validate_publish_subject(reply)?;
        if self.is_closed() {
            return Err(PublishError::Closed {
                subject: subject.to_owned(),
            });
        }
        self.client
            .publish_with_reply(
                async_nats::Subject::from(subject),
                async_nats::Subject::from(reply),
                payload,
            )
            .await
            .map_err(|err| PublishError::Transport {
                subject: subject.to_owned(),
                source: Box::new(err),
            })
    }

    async fn subscribe(
        &self,
        subject: &str,
        queue_group: Option<&str>,
    ) -> Result<Subscription, SubscribeError> {
        validate_subscribe_subject(subject)?;
        if let Some(queue_group) = queue_group {
            if !is_valid_queue_group(queue_group) {
                return Err(SubscribeError::InvalidQueueGroup {
                    subject: subject.to_owned(),
                    queue_group: queue_group.to_owned(),
                });
            }
        }
        if self.is_closed() {
            return Err(SubscribeError::Closed {
                subject: subject.to_owned(),
            });
        }
        let nats_subject = async_nats::Subject::from(subject);
        let subscriber = match queue_group {
            None => self.client.subscribe(nats_subject).await,
            Some(queue_group) => {
                self.client
                    .queue_subscribe(nats_subject, queue_group.to_owned())
                    .await
            }
        }
        .map_err(|err| SubscribeError::Transport {
            subject: subject.to_owned(),
            source: Box::new(err),
        })?;
        Ok(Subscription::new(
            subject,
            queue_group,
            Backend::Nats(NatsReceiver { subscriber }),
        ))
    }

    async fn request(
        &self,
        subject: &str,
        payload: Bytes,
        timeout: Duration,
    ) -> Result<Message, RequestError> {
        if let Err(err) = validate_publish_subject(subject) {
            return Err(
                RequestError::new(RequestErrorKind::InvalidSubject, subject, timeout)
                    .with_source(err),
            );
        }
        if self.is_closed() {
            return Err(
                RequestError::new(RequestErrorKind::Closed, subject, timeout)
                    .with_source(BusClosed),
            );
        }
        let request = async_nats::Request::new()
            .payload(payload)
            .timeout(Some(timeout));
        match self
            .client
            .send_request(async_nats::Subject::from(subject), request)
            .await
        {
            Ok(message) => Ok(convert(message)),
            Err(err) => {
                let kind = match err.kind() {
                    NatsRequestErrorKind::TimedOut => RequestErrorKind::TimedOut,
                    NatsRequestErrorKind::NoResponders => RequestErrorKind::NoResponders,
                    NatsRequestErrorKind::InvalidSubject => RequestErrorKind::InvalidSubject,
                    NatsRequestErrorKind::MaxPayloadExceeded | NatsRequestErrorKind::Other => {
                        RequestErrorKind::Other
                    }
                };
                Err(RequestError::new(kind, subject, timeout).with_source(err))
            }
        }
    }

    async fn flush(&self) -> Result<(), PublishError> {
        if self.is_closed() {
            return Err(PublishError::Flush {
                source: Box::new(BusClosed),
            });
        }
        self.client
            .flush()
            .await
            .map_err(|err| PublishError::Flush {
                source: Box::new(err),
            })?;
        // Writing to the socket is not enough: a subscription is only live once the
        // server has read it, and callers flush precisely so that publishes from other
        // connections are not missed.
        self.barrier().await;
        Ok(())
    }

    async fn close(&self) -> Result<(), CloseError> {
        if self.shared.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let timeout = self.shared.drain_timeout;
        match tokio::time::timeout(timeout, self.drain()).await {
            Ok(result) => result,
            Err(_) => Err(CloseError::TimedOut {
                url: self.shared.urls.clone(),
                timeout,
            }),
        }
    }

    fn state(&self) -> BusState {
        if self.is_closed() || *self.shared.connection_closed.borrow() {
            return BusState::Closed;
        }
        match self.client.connection_state() {
            State::Connected => BusState::Connected,
            State::Disconnected | State::Pending => BusState::Disconnected,
        }
    }
}

/// The receiving half of a NATS subscription.
pub(crate) struct NatsReceiver {
    subscriber: async_nats::Subscriber,
}

impl NatsReceiver {
    pub(crate) fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        Pin::new(&mut self.subscriber)
            .poll_next(cx)
            .map(|message| message.map(convert))
    }

    pub(crate) async fn unsubscribe(mut self, subject: &str) -> Result<(), UnsubscribeError> {
        self.subscriber
            .unsubscribe()
            .await
            .map_err(|err| UnsubscribeError::Transport {
                subject: subject.to_owned(),
                source: Box::new(err),
            })
    }
}

fn convert(message: async_nats::Message) -> Message {
    Message {
        subject: message.subject.to_string(),
        reply: message.reply.map(|reply| reply.to_string()),
        payload: message.payload,
    }
}

/// Logs connection events and records when the connection has closed.
struct EventLog {
    urls: String,
    connected_before: AtomicBool,
    started: Instant,
    last_slow_warn_ms: AtomicU64,
    closed_tx: watch::Sender<bool>,
}

impl EventLog {
    fn log(&self, event: async_nats::Event) {
        use async_nats::Event;

        let url = self.urls.as_str();
        match event {
            Event::Connected => {
                if self.connected_before.swap(true, Ordering::Relaxed) {
                    tracing::info!(url, "Reconnected to NATS.");
                } else {
                    tracing::info!(url, "Connected to NATS.");
                }
            }
            Event::Disconnected => {
                tracing::warn!(url, "Lost the connection to NATS; reconnecting.");
            }
            Event::LameDuckMode => {
                tracing::warn!(
                    url,
                    "NATS server is entering lame duck mode; it will shut down soon."
                );
            }
            Event::Draining => tracing::debug!(url, "Draining the NATS connection."),
            Event::Closed => {
                tracing::info!(url, "Closed the NATS connection.");
                self.closed_tx.send_replace(true);
            }
            Event::SlowConsumer(sid) => self.slow_consumer(sid),
            Event::ServerError(error) => {
                tracing::warn!(url, error = %error, "NATS server reported an error.");
            }
            Event::ClientError(error) => {
                tracing::warn!(url, error = %error, "NATS client error.");
            }
        }
    }

    fn slow_consumer(&self, sid: u64) {
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
        let last = self.last_slow_warn_ms.load(Ordering::Relaxed);
        let interval = u64::try_from(SLOW_CONSUMER_WARN_INTERVAL.as_millis()).unwrap_or(0);
        if (last == u64::MAX || now.saturating_sub(last) >= interval)
            && self
                .last_slow_warn_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                url = self.urls.as_str(),
                sid,
                "NATS subscription is too slow; the client dropped messages for it."
            );
        }
    }
}
