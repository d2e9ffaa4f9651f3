//! The multiplexed reply inbox of a `MemoryBus`: one `_INBOX.<uuid>.*` subscription
//! shared by every request, with a map from reply token to the waiting caller.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::oneshot;

use crate::bus::Message;

pub(super) struct Inbox {
    /// `_INBOX.<uuid>.`; a reply subject is this plus a decimal token.
    prefix: String,
    pending: Mutex<HashMap<u64, oneshot::Sender<Message>>>,
    next_token: AtomicU64,
}

impl Inbox {
    pub(super) fn new() -> Self {
        Self {
            prefix: format!("_INBOX.{}.", uuid::Uuid::new_v4().simple()),
            pending: Mutex::new(HashMap::new()),
            next_token: AtomicU64::new(0),
        }
    }

    /// The subscription pattern covering every reply subject of this inbox.
    pub(super) fn pattern(&self) -> String {
        format!("{}*", self.prefix)
    }

    /// Registers a waiting request; returns its token, reply subject and receiver.
    pub(super) fn register(&self) -> (u64, String, oneshot::Receiver<Message>) {
        let token = self.next_token.fetch_add(1, Ordering::Relaxed);
        let reply = format!("{}{token}", self.prefix);
        let (tx, rx) = oneshot::channel();
        self.lock().insert(token, tx);
        (token, reply, rx)
    }

    /// Forgets a request that finished, timed out or was cancelled.
    pub(super) fn cancel(&self, token: u64) {
        self.lock().remove(&token);
    }

    /// Completes the request a reply is addressed to; late or unknown replies are
    /// dropped, as NATS drops messages nobody waits for.
    pub(super) fn deliver(&self, message: Message) {
        let Some(token) = message
            .subject
            .strip_prefix(self.prefix.as_str())
            .and_then(|token| token.parse::<u64>().ok())
        else {
            return;
        };
        let waiter = self.lock().remove(&token);
        match waiter {
            Some(tx) => {
                // The caller may have given up in the meantime; then nobody wants it.
                let _ = tx.send(message);
            }
            None => {
                tracing::debug!(subject = %message.subject, "Dropping a reply nobody waits for.")
            }
        }
    }

    /// Fails every waiting request (their receivers see the sender dropped).
    pub(super) fn close(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<u64, oneshot::Sender<Message>>> {
        // No code panics while holding this lock, so a poisoned map is still consistent.
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
