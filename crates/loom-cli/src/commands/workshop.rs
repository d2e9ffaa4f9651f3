//! `loom workshop`: the Workshop without an MCP client — worker configs, the test bench,
//! evals and baselines, impact analysis, dead letters.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use loom_core::message::ModelTier;
use loom_workshop::eval::{Scoring, parse_suite};
use loom_workshop::{Workshop, WorkshopOptions};
use serde::Serialize;
use serde_json::Value;

use crate::EXIT_NO;
use crate::runtime::{NatsArgs, close_bus, shutdown_on_signals, tokio_runtime};

/// The long help of `loom workshop`.
pub(crate) const LONG_ABOUT: &str = "Work on worker configs: list, read and update them (every \
update is validated first and kept in the version history), run one on a payload, run eval \
suites and compare them with a golden baseline, see which pipeline stages a change affects, \
and list or replay dead-lettered tasks. The same operations as the gateway's workshop.* tools.\n\n\
Configs are read from --configs (workers in <dir>/workers/*.yaml, pipelines in \
<dir>/pipelines/) and each app's configs/ under --apps; --gateway takes both (and the judge \
tier) from a gateway config's tools.workshop section. The history, eval runs and dead letters \
live in $LOOM_HOME/workshop.db (default ~/.loom/workshop.db). Model backends for LLM workers \
come from the environment or the user config, as for `loom worker`.\n\n\
Results are JSON on stdout. Exit status: 0 success; 1 the command ran and said no (a test run \
failed, an update did not validate, a comparison found regressions); 2 usage or runtime error.";

/// Arguments of `loom workshop`.
#[derive(Debug, Args)]
pub struct WorkshopArgs {
    /// The config folder (workers/, pipelines/ inside).
    #[arg(long, value_name = "DIR", default_value = "configs", global = true)]
    pub configs: PathBuf,

    /// The folder of apps, each with its own configs/.
    #[arg(long, value_name = "DIR", global = true)]
    pub apps: Option<PathBuf>,

    /// Take configs_dir, apps_dir and judge_tier from this gateway config's tools.workshop.
    #[arg(long, value_name = "FILE", global = true, conflicts_with_all = ["configs", "apps"])]
    pub gateway: Option<PathBuf>,

    /// What to do.
    #[command(subcommand)]
    pub command: WorkshopCommand,
}

/// The `loom workshop` subcommands.
#[derive(Debug, Subcommand)]
pub enum WorkshopCommand {
    /// List every worker config that loads (base folder, then apps).
    List,
    /// Print a worker config with its version history.
    Get {
        /// The worker.
        name: String,
    },
    /// Validate a YAML file and save it as a worker's config (nothing is written when it
    /// does not validate).
    Update {
        /// The worker.
        name: String,
        /// The new config.
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Why it changed (kept in the history).
        #[arg(long)]
        description: Option<String>,
    },
    /// Run a worker on one payload and print output, raw reply, errors, tokens, latency.
    Test {
        /// The worker.
        name: String,
        /// The payload as a JSON object.
        #[arg(long, value_name = "JSON", default_value = "{}")]
        payload: String,
        /// The tier (local, standard, frontier); default the worker's.
        #[arg(long)]
        tier: Option<ModelTier>,
    },
    /// Run an eval suite (a JSON or YAML list of {name, input, expected_output}).
    Eval {
        /// The worker.
        name: String,
        /// The suite file.
        #[arg(long, value_name = "FILE")]
        suite: PathBuf,
        /// exact_match, field_match or llm_judge.
        #[arg(long, default_value = "field_match")]
        scoring: String,
        /// The tier (local, standard, frontier); default the worker's.
        #[arg(long)]
        tier: Option<ModelTier>,
    },
    /// List a worker's eval runs, newest first.
    Runs {
        /// The worker.
        name: String,
    },
    /// Make an eval run the worker's golden baseline.
    Baseline {
        /// The worker.
        name: String,
        /// The run.
        run_id: String,
        /// Why.
        #[arg(long)]
        description: Option<String>,
    },
    /// Compare an eval run with the worker's baseline, case by case.
    Compare {
        /// The worker.
        name: String,
        /// The run.
        run_id: String,
    },
    /// Show which pipeline stages depend on a worker.
    Impact {
        /// The worker.
        name: String,
    },
    /// Dead-lettered tasks: watch the bus, list, replay.
    #[command(subcommand, name = "dead-letters")]
    DeadLetters(DeadLetterCommand),
}

/// The `loom workshop dead-letters` subcommands.
#[derive(Debug, Subcommand)]
pub enum DeadLetterCommand {
    /// Store every loom.tasks.dead_letter message until SIGINT/SIGTERM.
    Watch {
        #[command(flatten)]
        nats: NatsArgs,
    },
    /// List stored dead letters, newest first.
    List {
        /// Most entries to print.
        #[arg(long, default_value_t = loom_workshop::dead_letters::DEFAULT_LIST_LIMIT)]
        limit: usize,
        /// Entries to skip.
        #[arg(long, default_value_t = 0)]
        offset: usize,
    },
    /// Publish a stored task again (with a new task id) and remove the entry.
    Replay {
        /// The entry's id.
        entry_id: String,
        #[command(flatten)]
        nats: NatsArgs,
    },
}

/// Runs `loom workshop`.
pub(crate) fn run(args: &WorkshopArgs) -> anyhow::Result<ExitCode> {
    let workshop = workshop(args)?;
    tokio_runtime()?.block_on(async {
        match &args.command {
            WorkshopCommand::List => print(&workshop.list_workers().await?, true),
            WorkshopCommand::Get { name } => print(&workshop.get_worker(name).await?, true),
            WorkshopCommand::Update {
                name,
                file,
                description,
            } => {
                let text = std::fs::read_to_string(file)
                    .with_context(|| format!("cannot read {}", file.display()))?;
                let out = workshop
                    .update_worker(name, &text, description.as_deref())
                    .await?;
                print(&out, out.success)
            }
            WorkshopCommand::Test {
                name,
                payload,
                tier,
            } => {
                let payload = match serde_json::from_str::<Value>(payload) {
                    Ok(Value::Object(p)) => p,
                    Ok(_) => bail!("--payload must be a JSON object"),
                    Err(e) => bail!("--payload is not JSON: {e}"),
                };
                let run = workshop.test_worker(name, payload, *tier).await?;
                let ok = run.success();
                print(&run, ok)
            }
            WorkshopCommand::Eval {
                name,
                suite,
                scoring,
                tier,
            } => {
                let text = std::fs::read_to_string(suite)
                    .with_context(|| format!("cannot read {}", suite.display()))?;
                let value = loom_workshop::config_manager::yaml_document(&text)
                    .with_context(|| format!("cannot read the suite {}", suite.display()))?;
                let cases = parse_suite(&value)?;
                let scoring: Scoring = scoring.parse()?;
                print(&workshop.run_eval(name, cases, scoring, *tier).await?, true)
            }
            WorkshopCommand::Runs { name } => {
                let worker = loom_workshop::config_manager::worker_name(name)?;
                print(&workshop.evals().runs(worker.as_str()).await?, true)
            }
            WorkshopCommand::Baseline {
                name,
                run_id,
                description,
            } => print(
                &workshop
                    .set_baseline(name, run_id, description.as_deref())
                    .await?,
                true,
            ),
            WorkshopCommand::Compare { name, run_id } => {
                let cmp = workshop.compare(name, run_id).await?;
                let ok = cmp.summary.regressions == 0;
                print(&cmp, ok)
            }
            WorkshopCommand::Impact { name } => print(&workshop.impact(name).await?, true),
            WorkshopCommand::DeadLetters(cmd) => dead_letters(&workshop, cmd).await,
        }
    })
}

async fn dead_letters(workshop: &Workshop, cmd: &DeadLetterCommand) -> anyhow::Result<ExitCode> {
    let store = workshop.dead_letters();
    match cmd {
        DeadLetterCommand::List { limit, offset } => {
            print(&store.list(*limit, *offset).await?, true)
        }
        DeadLetterCommand::Replay { entry_id, nats } => {
            let bus = nats.connect("loom-workshop").await?;
            let replayed = store.replay(entry_id, &*bus).await;
            close_bus(&*bus).await;
            print(&replayed?, true)
        }
        DeadLetterCommand::Watch { nats } => {
            let bus = nats.connect("loom-workshop-dead-letters").await?;
            let shutdown = shutdown_on_signals();
            let task = store.listen(bus.clone(), shutdown.clone()).await?;
            tracing::info!(db = %workshop.db().path().display(), "Storing dead letters until interrupted.");
            let _ = task.await;
            close_bus(&*bus).await;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn workshop(args: &WorkshopArgs) -> anyhow::Result<Workshop> {
    let home = loom_workshop::home::loom_home(|k| std::env::var(k).ok())
        .context("cannot find the Loom home: set LOOM_HOME or HOME")?;
    let (configs, apps, judge) = match &args.gateway {
        Some(path) => {
            let config = loom_core::config::load_gateway(path)?;
            let Some(section) = config.workshop else {
                bail!("{} has no tools.workshop section", path.display());
            };
            (section.configs_dir, section.apps_dir, section.judge_tier)
        }
        None => (args.configs.clone(), args.apps.clone(), None),
    };
    let backends = crate::runtime::tier_backends()?;
    Ok(Workshop::new(
        WorkshopOptions::new(configs, home)
            .with_apps_dir(apps)
            .with_backends(backends)
            .with_judge_tier(judge.unwrap_or(ModelTier::Standard)),
    ))
}

/// Prints `value` as pretty JSON on stdout; exit 0 when `ok`, else 1.
fn print(value: &impl Serialize, ok: bool) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_NO)
    })
}
