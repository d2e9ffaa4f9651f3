//! Impact analysis: which pipeline stages use a worker and which stages depend on them,
//! over every pipeline of the base folder and the apps (mesh spec §12.5).
//!
//! Dependencies are the pipeline loader's (explicit `depends_on`, else the stages named
//! by input mappings, plus condition roots), so the analysis sees what the orchestrator
//! runs. Downstream stages are found transitively and exclude the worker's own stages.

use std::collections::{BTreeSet, VecDeque};

use loom_core::config::PipelineConfig;
use serde::Serialize;

use crate::config_manager::ConfigManager;

/// A stage that runs the worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ImpactedStage {
    /// The stage.
    pub name: String,
    /// The tier it asks for.
    pub tier: String,
    /// Whether the stage checks its input.
    pub has_input_schema: bool,
    /// Whether the stage checks its output.
    pub has_output_schema: bool,
}

/// One pipeline that runs the worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ImpactedPipeline {
    /// The pipeline.
    pub name: String,
    /// Its app (empty for the base folder).
    pub app_name: String,
    /// Its file.
    pub path: String,
    /// The stages running the worker.
    pub stages: Vec<ImpactedStage>,
    /// Stages that depend on them, directly or not, sorted.
    pub downstream: Vec<String>,
}

/// What changing a worker affects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Impact {
    /// The worker.
    pub worker_name: String,
    /// Pipelines running it.
    pub pipelines: Vec<ImpactedPipeline>,
    /// How many pipelines.
    pub total_pipelines: usize,
    /// How many stages run it.
    pub total_stages: usize,
    /// How many stages depend on those.
    pub total_downstream: usize,
    /// Whether the worker's config declares an output schema.
    pub has_output_schema: bool,
    /// `high` when any stage depends on the worker's output, else `low`.
    pub risk: &'static str,
}

/// Analyses worker `name` over every pipeline `configs` lists (blocking).
/// `has_output_schema` says whether the worker's config has one.
pub fn analyze(configs: &ConfigManager, name: &str, has_output_schema: bool) -> Impact {
    let pipelines: Vec<ImpactedPipeline> = configs
        .list_pipelines()
        .into_iter()
        .filter_map(|(p, app)| pipeline_impact(&p, name, app.as_deref()))
        .collect();
    let total_stages = pipelines.iter().map(|p| p.stages.len()).sum();
    let total_downstream = pipelines.iter().map(|p| p.downstream.len()).sum();
    Impact {
        worker_name: name.to_owned(),
        total_pipelines: pipelines.len(),
        pipelines,
        total_stages,
        total_downstream,
        has_output_schema,
        risk: if total_downstream > 0 { "high" } else { "low" },
    }
}

fn pipeline_impact(
    p: &PipelineConfig,
    worker: &str,
    app: Option<&str>,
) -> Option<ImpactedPipeline> {
    let sources: Vec<&str> = p
        .stages
        .iter()
        .filter(|s| s.worker_type.as_str() == worker)
        .map(|s| s.name.as_str())
        .collect();
    if sources.is_empty() {
        return None;
    }
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    let mut queue: VecDeque<&str> = sources.iter().copied().collect();
    while let Some(stage) = queue.pop_front() {
        for s in &p.stages {
            let name = s.name.as_str();
            if s.dependencies.iter().any(|d| d.as_str() == stage) && seen.insert(name) {
                queue.push_back(name);
            }
        }
    }
    let downstream = seen
        .into_iter()
        .filter(|s| !sources.contains(s))
        .map(str::to_owned)
        .collect();
    let stages = p
        .stages
        .iter()
        .filter(|s| s.worker_type.as_str() == worker)
        .map(|s| ImpactedStage {
            name: s.name.to_string(),
            tier: s.tier.to_string(),
            has_input_schema: s.input_schema.is_some(),
            has_output_schema: s.output_schema.is_some(),
        })
        .collect();
    Some(ImpactedPipeline {
        name: p.name.to_string(),
        app_name: app.unwrap_or_default().to_owned(),
        path: p.source.display().to_string(),
        stages,
        downstream,
    })
}
