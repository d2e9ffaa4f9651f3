//! Progress of tool calls: the transport is tapped so each `notifications/progress`
//! reaches the caller whose request carried its token, synchronously and in the order
//! the server sent them (before the call's result, which comes later on the same
//! stream). rmcp hands notifications to the handler in spawned tasks, which may reorder
//! them and may run after the result was delivered, so the handler is not used.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use rmcp::model::{JsonRpcMessage, ProgressNotificationParam, ProgressToken, ServerNotification};
use rmcp::service::{RoleClient, RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::Transport;

/// One progress report of a call (`notifications/progress`).
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// The progress so far; increases with every report.
    pub progress: f64,
    /// The total, when the server knows it.
    pub total: Option<f64>,
    /// What the server is doing, if it says.
    pub message: Option<String>,
}

impl From<&ProgressNotificationParam> for Progress {
    fn from(param: &ProgressNotificationParam) -> Self {
        Self {
            progress: param.progress,
            total: param.total,
            message: param.message.clone(),
        }
    }
}

/// Receives the progress reports of one call, in the server's order. Called on the
/// connection's reading path: it must not block (send to a channel and return).
pub type ProgressCallback = Arc<dyn Fn(Progress) + Send + Sync>;

/// Reports for tokens nobody registered yet, kept for a caller that registers right
/// after sending its request (a fast server may answer first); the oldest are dropped.
const EARLY_REPORTS: usize = 16;

#[derive(Default)]
struct Table {
    sinks: HashMap<ProgressToken, ProgressCallback>,
    early: VecDeque<(ProgressToken, Progress)>,
}

/// Progress token → callback, for one connection.
#[derive(Clone, Default)]
pub(crate) struct Routes(Arc<Mutex<Table>>);

impl Routes {
    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn deliver(&self, param: &ProgressNotificationParam) {
        let progress = Progress::from(param);
        let sink = {
            let mut table = self.lock();
            match table.sinks.get(&param.progress_token) {
                Some(sink) => sink.clone(),
                None => {
                    if table.early.len() >= EARLY_REPORTS {
                        table.early.pop_front();
                    }
                    table
                        .early
                        .push_back((param.progress_token.clone(), progress));
                    return;
                }
            }
        };
        sink(progress);
    }

    /// Routes `token`'s reports to `sink` until the returned guard is dropped; reports
    /// that came before are delivered first.
    pub(crate) fn register(&self, token: ProgressToken, sink: ProgressCallback) -> Route {
        let early: Vec<Progress> = {
            let mut table = self.lock();
            let (mine, rest): (VecDeque<_>, VecDeque<_>) =
                table.early.drain(..).partition(|(t, _)| *t == token);
            table.early = rest;
            table.sinks.insert(token.clone(), sink.clone());
            mine.into_iter().map(|(_, p)| p).collect()
        };
        for progress in early {
            sink(progress);
        }
        Route {
            routes: self.clone(),
            token,
        }
    }
}

/// A registered progress route; dropping it stops the routing.
pub(crate) struct Route {
    routes: Routes,
    token: ProgressToken,
}

impl Drop for Route {
    fn drop(&mut self) {
        self.routes.lock().sinks.remove(&self.token);
    }
}

/// A transport that hands progress notifications to [`Routes`] as it reads them (and
/// passes every message on unchanged).
pub(crate) struct Tap<T> {
    pub(crate) inner: T,
    pub(crate) routes: Routes,
}

impl<T> Transport<RoleClient> for Tap<T>
where
    T: Transport<RoleClient>,
{
    type Error = T::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleClient>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        self.inner.send(item)
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleClient>> {
        let message = self.inner.receive().await;
        if let Some(JsonRpcMessage::Notification(n)) = &message
            && let ServerNotification::ProgressNotification(p) = &n.notification
        {
            self.routes.deliver(&p.params);
        }
        message
    }

    fn close(&mut self) -> impl Future<Output = Result<(), Self::Error>> + Send {
        self.inner.close()
    }
}
