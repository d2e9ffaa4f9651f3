//! The errors of bus operations, one type per operation.
//!
//! Messages are lowercase, name the subject (or server URL) at fault and keep the
//! underlying cause in [`std::error::Error::source`], so a chain prints as
//! `cannot publish to 'a.b': …`.

use std::fmt;
use std::time::Duration;

use crate::subject::SubjectError;

/// A boxed error from a transport (async-nats) kept as a source.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The cause attached to errors of an operation on a closed bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the bus is closed")]
pub struct BusClosed;

/// Publishing (or flushing) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// The subject or reply subject is not a valid subject to publish to.
    #[error(transparent)]
    InvalidSubject(#[from] SubjectError),
    /// The bus was closed.
    #[error("cannot publish to '{subject}': the bus is closed")]
    Closed {
        /// The subject of the message.
        subject: String,
    },
    /// The transport refused the message.
    #[error("cannot publish to '{subject}'")]
    Transport {
        /// The subject of the message.
        subject: String,
        /// The transport's error.
        #[source]
        source: BoxError,
    },
    /// [`Bus::flush`](crate::Bus::flush) failed; the source is [`BusClosed`] on a closed bus.
    #[error("cannot flush the bus")]
    Flush {
        /// Why.
        #[source]
        source: BoxError,
    },
}

/// Subscribing failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SubscribeError {
    /// The subject is not a valid subscribe subject.
    #[error(transparent)]
    InvalidSubject(#[from] SubjectError),
    /// The queue group name is empty or contains whitespace.
    #[error(
        "cannot subscribe to '{subject}': invalid queue group '{queue_group}' (empty or contains whitespace)"
    )]
    InvalidQueueGroup {
        /// The subject.
        subject: String,
        /// The queue group as given.
        queue_group: String,
    },
    /// The bus was closed.
    #[error("cannot subscribe to '{subject}': the bus is closed")]
    Closed {
        /// The subject.
        subject: String,
    },
    /// The transport refused the subscription.
    #[error("cannot subscribe to '{subject}'")]
    Transport {
        /// The subject.
        subject: String,
        /// The transport's error.
        #[source]
        source: BoxError,
    },
}

/// Unsubscribing explicitly failed (dropping a subscription never fails).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UnsubscribeError {
    /// The transport could not send the unsubscribe.
    #[error("cannot unsubscribe from '{subject}'")]
    Transport {
        /// The subject.
        subject: String,
        /// The transport's error.
        #[source]
        source: BoxError,
    },
}

/// Closing (draining) the bus failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CloseError {
    /// The transport could not drain the connection.
    #[error("cannot drain the connection to {url}")]
    Drain {
        /// The server URL(s).
        url: String,
        /// The transport's error.
        #[source]
        source: BoxError,
    },
    /// Draining did not finish before the deadline; the connection was abandoned.
    #[error("draining the connection to {url} did not finish within {timeout:?}")]
    TimedOut {
        /// The server URL(s).
        url: String,
        /// The deadline.
        timeout: Duration,
    },
}

/// What went wrong with a request; see [`RequestError::kind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestErrorKind {
    /// Somebody listens on the subject but no reply came in time.
    TimedOut,
    /// Nobody listens on the subject; reported at once, without waiting for the timeout.
    NoResponders,
    /// The bus is closed (or was closed while waiting).
    Closed,
    /// The subject is not a valid subject to publish to.
    InvalidSubject,
    /// Any other transport failure.
    Other,
}

impl fmt::Display for RequestErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::TimedOut => "timed out",
            Self::NoResponders => "no responders",
            Self::Closed => "bus closed",
            Self::InvalidSubject => "invalid subject",
            Self::Other => "failed",
        })
    }
}

/// A request failed. Branch on [`kind`](Self::kind): a gateway answers
/// [`RequestErrorKind::NoResponders`] with an immediate failure instead of a timeout.
#[derive(Debug)]
pub struct RequestError {
    kind: RequestErrorKind,
    subject: String,
    timeout: Duration,
    source: Option<BoxError>,
}

impl RequestError {
    /// A new error of `kind` for a request to `subject` made with `timeout`.
    pub fn new(kind: RequestErrorKind, subject: &str, timeout: Duration) -> Self {
        Self {
            kind,
            subject: subject.to_owned(),
            timeout,
            source: None,
        }
    }

    /// Attaches the underlying cause.
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> RequestErrorKind {
        self.kind
    }

    /// The subject the request was sent to.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The timeout the request was made with.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let subject = &self.subject;
        match self.kind {
            RequestErrorKind::TimedOut => write!(
                f,
                "request to '{subject}' timed out after {:?}",
                self.timeout
            ),
            RequestErrorKind::NoResponders => write!(f, "no responders for request to '{subject}'"),
            RequestErrorKind::Closed => {
                write!(f, "cannot send request to '{subject}': the bus is closed")
            }
            RequestErrorKind::InvalidSubject => {
                write!(f, "cannot send request to '{subject}': invalid subject")
            }
            RequestErrorKind::Other => write!(f, "request to '{subject}' failed"),
        }
    }
}

impl std::error::Error for RequestError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_ref()
            .map(|source| source.as_ref() as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn request_error_messages_name_the_subject_and_keep_the_source() {
        let timeout = Duration::from_millis(250);
        let timed_out = RequestError::new(RequestErrorKind::TimedOut, "svc.echo", timeout);
        assert_eq!(
            timed_out.to_string(),
            "request to 'svc.echo' timed out after 250ms"
        );
        assert_eq!(timed_out.kind(), RequestErrorKind::TimedOut);
        assert_eq!(timed_out.subject(), "svc.echo");
        assert_eq!(timed_out.timeout(), timeout);
        assert!(timed_out.source().is_none());

        let closed =
            RequestError::new(RequestErrorKind::Closed, "svc.echo", timeout).with_source(BusClosed);
        assert_eq!(
            closed.to_string(),
            "cannot send request to 'svc.echo': the bus is closed"
        );
        assert_eq!(
            closed.source().map(ToString::to_string).as_deref(),
            Some("the bus is closed")
        );
        assert_eq!(
            RequestError::new(RequestErrorKind::NoResponders, "a", timeout).to_string(),
            "no responders for request to 'a'"
        );
    }

    #[test]
    fn invalid_subject_errors_are_transparent() {
        let err = PublishError::from(SubjectError::Whitespace {
            subject: "a b".to_owned(),
        });
        assert_eq!(
            err.to_string(),
            "invalid subject 'a b': contains whitespace"
        );
    }
}
