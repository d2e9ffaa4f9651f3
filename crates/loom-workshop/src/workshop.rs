//! [`Workshop`]: the operations the MCP tools and `loom workshop` offer, over one config
//! manager, one database, one test bench.

use std::path::PathBuf;

use loom_core::message::{JsonObject, ModelTier};
use loom_llm::TierBackends;
use serde::Serialize;
use serde_json::Value;

use crate::bench::{BenchRun, TestBench};
use crate::config_manager::{ConfigManager, SaveOutcome, WorkerSummary, worker_name};
use crate::dead_letters::DeadLetterStore;
use crate::error::{WorkshopError, blocking};
use crate::eval::{Comparison, EvalCase, EvalRunner, EvalSummary, RunInfo, Scoring};
use crate::history::{Db, WorkerVersion, record_version, versions};
use crate::home::workshop_db_path;
use crate::impact::{Impact, analyze};

/// How to build a [`Workshop`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WorkshopOptions {
    /// The base config folder (`workers/`, `pipelines/` inside).
    pub configs_dir: PathBuf,
    /// The folder of apps, each maybe with a `configs/`.
    pub apps_dir: Option<PathBuf>,
    /// The database file.
    pub db_path: PathBuf,
    /// Model backends for the test bench, evals and the judge.
    pub backends: TierBackends,
    /// The tier whose model judges `llm_judge` evals.
    pub judge_tier: ModelTier,
}

impl WorkshopOptions {
    /// Options for `configs_dir` with the database in `home` (`workshop.db`), no apps,
    /// no backends, judge tier `standard`.
    pub fn new(configs_dir: impl Into<PathBuf>, home: impl Into<PathBuf>) -> Self {
        WorkshopOptions {
            configs_dir: configs_dir.into(),
            apps_dir: None,
            db_path: workshop_db_path(&home.into()),
            backends: TierBackends::new(),
            judge_tier: ModelTier::Standard,
        }
    }

    /// Sets the apps folder.
    #[must_use]
    pub fn with_apps_dir(mut self, apps_dir: Option<PathBuf>) -> Self {
        self.apps_dir = apps_dir;
        self
    }

    /// Sets the model backends.
    #[must_use]
    pub fn with_backends(mut self, backends: TierBackends) -> Self {
        self.backends = backends;
        self
    }

    /// Sets the judge tier.
    #[must_use]
    pub fn with_judge_tier(mut self, tier: ModelTier) -> Self {
        self.judge_tier = tier;
        self
    }
}

/// A worker config with its history (`workshop.worker.get`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct WorkerDetail {
    /// The worker.
    pub name: String,
    /// The config as JSON.
    pub config: Value,
    /// The file's text.
    pub yaml: String,
    /// The file.
    pub path: String,
    /// Its app (empty for the base folder).
    pub app_name: String,
    /// Why the file does not validate (empty when it does).
    pub validation_errors: Vec<String>,
    /// Saved versions, newest first.
    pub version_history: Vec<WorkerVersion>,
}

/// What `update_worker` did.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct UpdateResult {
    /// Whether the config was written.
    pub success: bool,
    /// The worker.
    pub name: String,
    /// The file written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The version recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// Why nothing was written.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub validation_errors: Vec<String>,
}

/// The Workshop: worker configs, history, test bench, evals, impact, dead letters.
/// Cheap to clone.
#[derive(Debug, Clone)]
pub struct Workshop {
    configs: ConfigManager,
    db: Db,
    bench: TestBench,
    evals: EvalRunner,
    dead_letters: DeadLetterStore,
}

impl Workshop {
    /// A workshop per `options`. Opens nothing yet: the database is opened on first use.
    pub fn new(options: WorkshopOptions) -> Self {
        let db = Db::new(options.db_path);
        let bench = TestBench::new(options.backends);
        Workshop {
            configs: ConfigManager::new(options.configs_dir, options.apps_dir),
            evals: EvalRunner::new(bench.clone(), db.clone(), options.judge_tier),
            dead_letters: DeadLetterStore::new(db.clone()),
            db,
            bench,
        }
    }

    /// The config manager.
    pub fn configs(&self) -> &ConfigManager {
        &self.configs
    }

    /// The eval runner.
    pub fn evals(&self) -> &EvalRunner {
        &self.evals
    }

    /// The dead-letter store.
    pub fn dead_letters(&self) -> &DeadLetterStore {
        &self.dead_letters
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Every worker config that loads (base folder, then apps).
    pub async fn list_workers(&self) -> Result<Vec<WorkerSummary>, WorkshopError> {
        let configs = self.configs.clone();
        blocking(move || Ok(configs.list_workers())).await
    }

    /// Worker `name` with its text, JSON form and version history.
    pub async fn get_worker(&self, name: &str) -> Result<WorkerDetail, WorkshopError> {
        let configs = self.configs.clone();
        let n = name.to_owned();
        let file = blocking(move || configs.read_worker(&n)).await?;
        let worker = file.name.to_string();
        let history = self.db.run(move |c| versions(c, &worker)).await?;
        Ok(WorkerDetail {
            name: file.name.to_string(),
            config: file.document,
            yaml: file.yaml,
            path: file.path.display().to_string(),
            app_name: file.app_name.unwrap_or_default(),
            validation_errors: file.config.err().unwrap_or_default(),
            version_history: history,
        })
    }

    /// Validates and saves `yaml` as worker `name`, recording a version; nothing is
    /// written when it does not validate.
    pub async fn update_worker(
        &self,
        name: &str,
        yaml: &str,
        description: Option<&str>,
    ) -> Result<UpdateResult, WorkshopError> {
        let configs = self.configs.clone();
        let (n, text) = (name.to_owned(), yaml.to_owned());
        let outcome = blocking(move || configs.save_worker(&n, &text)).await?;
        match outcome {
            SaveOutcome::Invalid { validation_errors } => Ok(UpdateResult {
                success: false,
                name: name.to_owned(),
                path: None,
                version_id: None,
                validation_errors,
            }),
            SaveOutcome::Saved { path, .. } => {
                let (n, text, d) = (
                    name.to_owned(),
                    yaml.to_owned(),
                    description.map(str::to_owned),
                );
                let version = self
                    .db
                    .run(move |c| record_version(c, &n, &text, d.as_deref()))
                    .await?;
                Ok(UpdateResult {
                    success: true,
                    name: name.to_owned(),
                    path: Some(path.display().to_string()),
                    version_id: Some(version.id),
                    validation_errors: Vec::new(),
                })
            }
        }
    }

    /// Runs worker `name` on `payload` on the test bench.
    pub async fn test_worker(
        &self,
        name: &str,
        payload: JsonObject,
        tier: Option<ModelTier>,
    ) -> Result<BenchRun, WorkshopError> {
        let configs = self.configs.clone();
        let n = name.to_owned();
        let file = blocking(move || configs.read_worker(&n)).await?;
        let config = file.valid_config()?;
        Ok(self.bench.run(config, payload, tier).await)
    }

    /// Runs `cases` against worker `name` and stores the run.
    pub async fn run_eval(
        &self,
        name: &str,
        cases: Vec<EvalCase>,
        scoring: Scoring,
        tier: Option<ModelTier>,
    ) -> Result<EvalSummary, WorkshopError> {
        let configs = self.configs.clone();
        let n = name.to_owned();
        let file = blocking(move || configs.read_worker(&n)).await?;
        let config = file.valid_config()?;
        self.evals
            .run(config, &file.yaml, cases, scoring, tier)
            .await
    }

    /// Compares run `run_id` with worker `name`'s baseline.
    pub async fn compare(&self, name: &str, run_id: &str) -> Result<Comparison, WorkshopError> {
        let worker = worker_name(name)?;
        self.evals.compare(worker.as_str(), run_id).await
    }

    /// Makes run `run_id` worker `name`'s baseline.
    pub async fn set_baseline(
        &self,
        name: &str,
        run_id: &str,
        description: Option<&str>,
    ) -> Result<RunInfo, WorkshopError> {
        let worker = worker_name(name)?;
        self.evals
            .set_baseline(worker.as_str(), run_id, description)
            .await
    }

    /// What changing worker `name` affects.
    pub async fn impact(&self, name: &str) -> Result<Impact, WorkshopError> {
        let worker = worker_name(name)?;
        let configs = self.configs.clone();
        blocking(move || {
            let has_output_schema = match configs.read_worker(worker.as_str()) {
                Ok(file) => file
                    .config
                    .as_ref()
                    .is_ok_and(|c| c.output_schema.is_some()),
                Err(WorkshopError::NotFound(_)) => false,
                Err(e) => return Err(e),
            };
            Ok(analyze(&configs, worker.as_str(), has_output_schema))
        })
        .await
    }
}
