//! Test doubles: [`ScriptedModel`], an in-memory [`Model`] that replays scripted replies.
//!
//! For tests of code that takes a `&dyn Model` (workers, the tool loop); HTTP backends
//! are tested against `loom_testkit::LlmStandIn` instead.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;

use crate::model::{Completion, CompletionRequest, Model, ModelError};

/// A [`Model`] that answers with scripted replies in order and records every request.
///
/// ```
/// use loom_llm::testing::ScriptedModel;
/// use loom_llm::{CompletionRequest, Model};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), loom_llm::ModelError> {
/// let model = ScriptedModel::new("fake").then_text("{\"ok\": true}");
/// let reply = model.complete(&CompletionRequest::new("sys", "hi")).await?;
/// assert_eq!(reply.content.as_deref(), Some("{\"ok\": true}"));
/// assert_eq!(model.requests().len(), 1);
/// // Once the script is used up, calls fail.
/// assert!(model.complete(&CompletionRequest::new("sys", "again")).await.is_err());
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct ScriptedModel {
    name: String,
    replies: Mutex<VecDeque<Result<Completion, ModelError>>>,
    requests: Mutex<Vec<CompletionRequest>>,
}

impl ScriptedModel {
    /// A model named `name` with an empty script.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            replies: Mutex::new(VecDeque::new()),
            requests: Mutex::new(Vec::new()),
        }
    }

    /// Appends a reply.
    pub fn then(self, completion: Completion) -> Self {
        self.push(Ok(completion));
        self
    }

    /// Appends a text reply from this model.
    pub fn then_text(self, content: impl Into<String>) -> Self {
        let completion = Completion::text(self.name.clone(), content);
        self.then(completion)
    }

    /// Appends an error.
    pub fn then_error(self, error: ModelError) -> Self {
        self.push(Err(error));
        self
    }

    /// Appends a reply while the model is shared (e.g. behind an `Arc`).
    pub fn push(&self, reply: Result<Completion, ModelError>) {
        self.replies
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push_back(reply);
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<CompletionRequest> {
        self.requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// How many scripted replies are left.
    pub fn remaining(&self) -> usize {
        self.replies
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[async_trait]
impl Model for ScriptedModel {
    async fn complete(&self, request: &CompletionRequest) -> Result<Completion, ModelError> {
        self.requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(request.clone());
        let next = self
            .replies
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop_front();
        next.unwrap_or_else(|| {
            Err(ModelError::Config {
                message: format!("scripted model '{}' has no replies left", self.name),
            })
        })
    }

    fn name(&self) -> &str {
        &self.name
    }
}
