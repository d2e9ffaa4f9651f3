//! The rmcp `ClientHandler` of one connection: list-changed notifications (legacy era)
//! and sampling requests.

// Sampling is deprecated by the 2026-07-28 revision (SEP-2577) but still served to
// 2025-11-25 servers, which is what a spec's sampling handler is for.
#![allow(deprecated)]

use std::sync::Arc;

use rmcp::model::{
    ClientCapabilities, ClientConfig, CreateMessageRequestParams, CreateMessageResult, ErrorCode,
    ErrorData, Implementation, SamplingMessage,
};
use rmcp::service::{NotificationContext, RequestContext, RoleClient};

use crate::spec::SamplingHandler;

/// What changed on a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Change {
    /// Its tool list.
    Tools,
    /// Its resource list.
    Resources,
    /// Its prompt list.
    Prompts,
}

/// Called with the server's name when it reports a change. Must not block.
pub type ChangeCallback = Arc<dyn Fn(&str, Change) + Send + Sync>;

/// The model name a sampling reply reports.
pub const SAMPLING_MODEL: &str = "loom-sampling-handler";

#[derive(Clone)]
pub(crate) struct Handler {
    pub(crate) server: String,
    pub(crate) on_change: Option<ChangeCallback>,
    pub(crate) sampling: Option<Arc<dyn SamplingHandler>>,
}

impl Handler {
    pub(crate) fn changed(&self, change: Change) {
        if let Some(callback) = &self.on_change {
            callback(&self.server, change);
        }
    }
}

impl rmcp::ClientHandler for Handler {
    async fn on_tool_list_changed(&self, _: NotificationContext<RoleClient>) {
        self.changed(Change::Tools);
    }

    async fn on_resource_list_changed(&self, _: NotificationContext<RoleClient>) {
        self.changed(Change::Resources);
    }

    async fn on_prompt_list_changed(&self, _: NotificationContext<RoleClient>) {
        self.changed(Change::Prompts);
    }

    async fn create_message(
        &self,
        params: CreateMessageRequestParams,
        _: RequestContext<RoleClient>,
    ) -> Result<CreateMessageResult, ErrorData> {
        let Some(sampling) = &self.sampling else {
            return Err(ErrorData::new(
                ErrorCode::METHOD_NOT_FOUND,
                "sampling is not supported by this client",
                None,
            ));
        };
        let messages = params
            .messages
            .iter()
            .filter_map(|m| serde_json::to_value(m).ok())
            .collect();
        let preferences = params
            .model_preferences
            .as_ref()
            .and_then(|p| serde_json::to_value(p).ok());
        match sampling.sample(messages, preferences).await {
            Ok(text) => Ok(CreateMessageResult::new(
                SamplingMessage::assistant_text(text),
                SAMPLING_MODEL.to_owned(),
            )),
            Err(message) => Err(ErrorData::new(
                ErrorCode::INTERNAL_ERROR,
                format!("sampling handler failed: {message}"),
                None,
            )),
        }
    }

    fn get_info(&self) -> ClientConfig {
        let mut capabilities = ClientCapabilities::default();
        if self.sampling.is_some() {
            capabilities.sampling = Some(Default::default());
        }
        ClientConfig::new(
            capabilities,
            Implementation::new("loom", env!("CARGO_PKG_VERSION")),
        )
    }
}
