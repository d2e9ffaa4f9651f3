//! `loom submit`: send one goal or task, wait, print the result.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{ArgGroup, Args};
use loom_core::message::{ModelTier, OrchestratorGoal, TaskMessage, TaskResult, TaskStatus};
use loom_core::name::{PipelineName, WorkerName};
use loom_mesh::mesh::{MeshOptions, start_mesh};
use loom_mesh::pipeline::{StageStatus, submit_goal};
use loom_mesh::task_client::submit_task;
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use crate::EXIT_NO;
use crate::commands::processor::parse_tier;
use crate::commands::up::load_plan;
use crate::runtime::{NatsArgs, close_bus, tokio_runtime};

/// The long help of `loom submit`.
pub(crate) const LONG_ABOUT: &str = "Send one goal to a pipeline (--pipeline) or one task to a worker \
(--worker), wait for the result and print it as JSON on stdout.\n\n\
The input is a JSON object given as an argument, or read from stdin with '-'; --context \
KEY=VALUE adds string fields (repeatable; a value may contain '='). Pipeline stage progress \
goes to stderr.\n\n\
With --embedded PATH the mesh described by those configs (as for `loom up`) runs inside this \
command on the in-process bus, for the one submission; otherwise the goal or task goes to the \
NATS mesh at --nats-url.\n\n\
Exit status: 0 the result is COMPLETED; 1 it is FAILED; 2 no result (timeout, no connection) \
or bad arguments.\n\n\
Examples:\n  \
loom submit --embedded examples/docman --pipeline ingest '{\"text\": \"a b c\", \"title\": \"t\"}'\n  \
loom submit --nats-url nats://127.0.0.1:4222 --worker text_stats --context text='hello world'";

/// Arguments of `loom submit`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("target").required(true).args(["pipeline", "worker"])))]
pub struct SubmitArgs {
    /// Send a goal to this pipeline (loom.goals.{pipeline}).
    #[arg(long, value_name = "NAME")]
    pub pipeline: Option<PipelineName>,

    /// Send a task to this worker type, through the router.
    #[arg(long, value_name = "NAME")]
    pub worker: Option<WorkerName>,

    /// The goal context or task payload: a JSON object, or '-' to read it from stdin.
    #[arg(value_name = "JSON")]
    pub input: Option<String>,

    /// Add a string field to the input (repeatable).
    #[arg(long = "context", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub context: Vec<(String, String)>,

    /// The model tier a task asks for (tasks only; default: with --embedded the worker's
    /// default_model_tier, else standard).
    #[arg(long, value_name = "TIER", value_parser = parse_tier, requires = "worker")]
    pub tier: Option<ModelTier>,

    /// The goal's instruction text (goals only).
    #[arg(
        long,
        value_name = "TEXT",
        default_value = "loom submit",
        requires = "pipeline"
    )]
    pub instruction: String,

    /// Seconds to wait for the result.
    #[arg(long, value_name = "SECS", default_value_t = 300.0)]
    pub timeout: f64,

    /// Run the mesh of these configs in this process for the submission (repeatable).
    #[arg(long, value_name = "PATH", conflicts_with = "nats_url")]
    pub embedded: Vec<PathBuf>,

    #[command(flatten)]
    pub nats: NatsArgs,
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("'{s}' is not KEY=VALUE")),
    }
}

/// Runs `loom submit`.
pub(crate) fn run(args: &SubmitArgs) -> anyhow::Result<ExitCode> {
    let input = read_input(args)?;
    if !(args.timeout.is_finite() && args.timeout > 0.0) {
        bail!("--timeout must be a number of seconds greater than 0");
    }
    let timeout = Duration::from_secs_f64(args.timeout);
    let plan = if args.embedded.is_empty() {
        None
    } else {
        Some(load_plan(&args.embedded, true)?)
    };
    if let Some(plan) = &plan {
        // In process, a target that is not in the configs can never answer: say so now.
        if let Some(p) = args
            .pipeline
            .as_ref()
            .filter(|p| !plan.pipelines.contains_key(*p))
        {
            let known: Vec<&str> = plan.pipelines.keys().map(PipelineName::as_str).collect();
            bail!(
                "no pipeline '{p}' in the embedded configs (pipelines: {})",
                or_none(&known)
            );
        }
        if let Some(w) = args
            .worker
            .as_ref()
            .filter(|w| !plan.workers.contains_key(*w))
        {
            let known: Vec<&str> = plan.workers.keys().map(WorkerName::as_str).collect();
            bail!(
                "no worker '{w}' in the embedded configs (workers: {})",
                or_none(&known)
            );
        }
    }
    // In process we know the worker: ask for the tier it serves unless told otherwise.
    let default_tier = match (&plan, &args.worker) {
        (Some(plan), Some(w)) => plan.workers.get(w).and_then(|c| c.default_model_tier),
        _ => None,
    };
    let result = tokio_runtime()?.block_on(async {
        let shutdown = CancellationToken::new();
        let (bus, mesh) = match plan {
            Some(plan) => {
                let bus: std::sync::Arc<dyn loom_bus::Bus> =
                    std::sync::Arc::new(loom_bus::MemoryBus::new());
                let backends = crate::runtime::tier_backends()?;
                let mesh = start_mesh(
                    bus.clone(),
                    plan,
                    backends,
                    MeshOptions::default(),
                    shutdown.clone(),
                )
                .await?;
                (bus, Some(mesh))
            }
            None => (args.nats.connect("loom-submit").await?, None),
        };
        let result = submit(args, &*bus, input, timeout, default_tier).await;
        shutdown.cancel();
        if let Some(mesh) = mesh {
            mesh.join().await;
        }
        close_bus(&*bus).await;
        result
    })?;
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, &result)?;
    writeln!(out)?;
    Ok(if result.status == TaskStatus::Completed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_NO)
    })
}

async fn submit(
    args: &SubmitArgs,
    bus: &dyn loom_bus::Bus,
    input: Map<String, Value>,
    timeout: Duration,
    default_tier: Option<ModelTier>,
) -> anyhow::Result<TaskResult> {
    if let Some(pipeline) = &args.pipeline {
        let goal = OrchestratorGoal::new(args.instruction.clone()).with_context(input);
        let result = submit_goal(bus, pipeline, goal, timeout, |p| {
            let status = match p.status {
                StageStatus::Completed => "completed",
                StageStatus::Skipped => "skipped",
                StageStatus::Failed => "failed",
                _ => "finished",
            };
            progress_line(&format!(
                "[{}/{}] stage {} {status}",
                p.completed, p.total, p.stage
            ));
        })
        .await?;
        Ok(result)
    } else if let Some(worker) = &args.worker {
        let mut task = TaskMessage::new(worker, input)
            .with_parent_task_id(format!("cli-{}", uuid::Uuid::new_v4().simple()));
        if let Some(tier) = args.tier.or(default_tier) {
            task = task.with_model_tier(tier);
        }
        Ok(submit_task(bus, &task, timeout).await?)
    } else {
        bail!("pass --pipeline or --worker")
    }
}

/// Progress is for the person watching, on stderr, so stdout stays pure JSON.
#[allow(clippy::print_stderr)]
fn progress_line(line: &str) {
    eprintln!("{line}");
}

fn read_input(args: &SubmitArgs) -> anyhow::Result<Map<String, Value>> {
    let mut input = match args.input.as_deref() {
        None => Map::new(),
        Some(text) => {
            let text = if text == "-" {
                let mut buf = String::new();
                std::io::stdin()
                    .read_to_string(&mut buf)
                    .context("cannot read the input from stdin")?;
                buf
            } else {
                text.to_owned()
            };
            match serde_json::from_str::<Value>(&text).context("the input is not valid JSON")? {
                Value::Object(m) => m,
                other => bail!("the input must be a JSON object, not {}", json_kind(&other)),
            }
        }
    };
    for (k, v) in &args.context {
        input.insert(k.clone(), Value::String(v.clone()));
    }
    Ok(input)
}

fn or_none(names: &[&str]) -> String {
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
