//! `echo`: the output is the payload. For wiring checks and benchmarks.

use async_trait::async_trait;
use loom_core::message::TaskMessage;

use crate::worker::{ProcessError, ProcessOutput, Processor, TaskContext};

/// Answers each task with its own payload; `model_used` is `echo` unless configured.
#[derive(Debug, Clone)]
pub struct EchoProcessor {
    model_used: String,
}

impl EchoProcessor {
    /// The label reported when `backend_config` sets no `model_used`.
    pub const MODEL_USED: &'static str = "echo";

    /// An echo processor reporting `model_used`.
    pub fn new(model_used: impl Into<String>) -> Self {
        EchoProcessor {
            model_used: model_used.into(),
        }
    }
}

impl Default for EchoProcessor {
    fn default() -> Self {
        EchoProcessor::new(Self::MODEL_USED)
    }
}

#[async_trait]
impl Processor for EchoProcessor {
    async fn process(
        &self,
        task: &TaskMessage,
        _ctx: &TaskContext,
    ) -> Result<ProcessOutput, ProcessError> {
        Ok(ProcessOutput::new(task.payload.clone()).with_model_used(&self.model_used))
    }
}
