//! Worker configs on disk: list, read and save across the base config folder and every
//! app's `configs/` (mesh spec §12.1, with fixes).
//!
//! Layout: `<configs_dir>/workers/<name>.yaml`, and for each app folder under `apps_dir`
//! that has one, `<apps_dir>/<app>/configs/workers/<name>.yaml`. Pipelines live in
//! `pipelines/` (Loom) or `orchestrators/` (loom-ai) beside `workers/`.
//!
//! Fixes over the original:
//!
//! * a worker name must be a valid [`WorkerName`] (`^[a-z][a-z0-9_]*$`) before it is
//!   used in a path, so `../x` or `a/b` never reach the file system (gateway spec §13.25),
//!   and a worker file that is a symlink is never written through;
//! * `read_worker` (get, test, eval) finds app workers too, base folder first (§13.26);
//! * a saved config's own `name` must be the name it is saved under;
//! * a save is checked whole (YAML, mapping, every validation error) before anything is
//!   written, and written atomically (a temp file renamed over the old one).

use std::path::{Path, PathBuf};

use loom_core::config::{PipelineConfig, WorkerConfig, WorkerKind, load_pipeline, parse_worker};
use loom_core::name::WorkerName;
use saphyr::{LoadableYamlNode, Yaml};
use serde::Serialize;
use serde_json::Value;
use tracing::warn;

use crate::error::WorkshopError;

/// The sub-folder of a config folder holding worker configs.
pub const WORKERS_DIR: &str = "workers";

/// Sub-folders of a config folder holding pipeline configs (Loom's, then loom-ai's).
pub const PIPELINE_DIRS: [&str; 2] = ["pipelines", "orchestrators"];

/// Lists, reads and saves worker configs. Every method does blocking file I/O: call it
/// from `spawn_blocking` in async code (the [`Workshop`](crate::Workshop) does).
#[derive(Debug, Clone)]
pub struct ConfigManager {
    configs_dir: PathBuf,
    apps_dir: Option<PathBuf>,
}

/// One folder of configs: the base folder or an app's `configs/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigRoot {
    /// The folder holding `workers/` (and `pipelines/`).
    pub dir: PathBuf,
    /// The app's folder name; `None` for the base folder.
    pub app_name: Option<String>,
}

/// A worker as listed.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct WorkerSummary {
    /// The worker's name.
    pub name: String,
    /// Its description (empty when it has none).
    pub description: String,
    /// The config file.
    pub path: String,
    /// Its default tier (empty when it has none).
    pub default_model_tier: String,
    /// `llm` or `processor`.
    pub worker_kind: String,
    /// The app it belongs to (empty for the base folder).
    pub app_name: String,
}

/// A worker config as stored: its file, text and, when it validates, the config.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WorkerFile {
    /// The worker's name.
    pub name: WorkerName,
    /// Where the file is.
    pub path: PathBuf,
    /// The app it belongs to, if any.
    pub app_name: Option<String>,
    /// The file's text.
    pub yaml: String,
    /// The file as JSON (`null` when it is not YAML).
    pub document: Value,
    /// The validated config, or every validation error (`file:line:col: key: message`).
    pub config: Result<WorkerConfig, Vec<String>>,
}

impl WorkerFile {
    /// The validated config, or an error listing why it does not validate.
    pub fn valid_config(&self) -> Result<&WorkerConfig, WorkshopError> {
        self.config.as_ref().map_err(|errors| {
            WorkshopError::Required(format!(
                "Worker '{}' has an invalid config: {}",
                self.name,
                errors.join("; ")
            ))
        })
    }
}

/// What a save did.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum SaveOutcome {
    /// The config was written.
    Saved {
        /// The file written.
        path: PathBuf,
        /// The app it belongs to, if any.
        app_name: Option<String>,
    },
    /// The config does not validate; nothing was written.
    Invalid {
        /// Every problem, as `file:line:col: key.path: message`.
        validation_errors: Vec<String>,
    },
}

impl ConfigManager {
    /// A manager over `configs_dir` and the apps under `apps_dir`.
    pub fn new(configs_dir: impl Into<PathBuf>, apps_dir: Option<PathBuf>) -> Self {
        ConfigManager {
            configs_dir: configs_dir.into(),
            apps_dir,
        }
    }

    /// The base config folder.
    pub fn configs_dir(&self) -> &Path {
        &self.configs_dir
    }

    /// The base folder, then every app folder (sorted by name) that has a `configs/`.
    pub fn roots(&self) -> Vec<ConfigRoot> {
        let mut roots = vec![ConfigRoot {
            dir: self.configs_dir.clone(),
            app_name: None,
        }];
        let Some(apps) = &self.apps_dir else {
            return roots;
        };
        let Ok(entries) = std::fs::read_dir(apps) else {
            return roots;
        };
        let mut apps: Vec<(String, PathBuf)> = entries
            .filter_map(Result::ok)
            .filter(|e| e.path().join("configs").is_dir())
            .filter_map(|e| {
                let name = e.file_name().to_str()?.to_owned();
                Some((name, e.path().join("configs")))
            })
            .collect();
        apps.sort();
        roots.extend(apps.into_iter().map(|(name, dir)| ConfigRoot {
            dir,
            app_name: Some(name),
        }));
        roots
    }

    /// Every worker config that loads, base folder first, each folder sorted by file
    /// name; files starting with `_` are skipped, and so (with a warning) are files that
    /// do not validate.
    pub fn list_workers(&self) -> Vec<WorkerSummary> {
        let mut out = Vec::new();
        for root in self.roots() {
            for path in yaml_files(&root.dir.join(WORKERS_DIR)) {
                match loom_core::config::load_worker(&path) {
                    Ok(config) => out.push(summary(&config, &path, root.app_name.as_deref())),
                    Err(errors) => {
                        warn!(path = %path.display(), error = %errors, "Skipping a worker config that does not load.");
                    }
                }
            }
        }
        out
    }

    /// Where worker `name` lives: the first config folder (base, then apps) with
    /// `workers/<name>.yaml`.
    pub fn locate_worker(
        &self,
        name: &str,
    ) -> Result<(WorkerName, PathBuf, Option<String>), WorkshopError> {
        let worker = worker_name(name)?;
        for root in self.roots() {
            let path = worker_path(&root.dir, &worker);
            if path.is_file() {
                return Ok((worker, path, root.app_name));
            }
        }
        Err(WorkshopError::NotFound(name.to_owned()))
    }

    /// Reads worker `name` from whichever config folder has it.
    pub fn read_worker(&self, name: &str) -> Result<WorkerFile, WorkshopError> {
        let (worker, path, app_name) = self.locate_worker(name)?;
        let yaml = std::fs::read_to_string(&path).map_err(|e| WorkshopError::io(&path, e))?;
        let document = yaml_document(&yaml).unwrap_or(Value::Null);
        let config = parse_worker(&path, &yaml)
            .map_err(|errors| errors.errors().iter().map(ToString::to_string).collect());
        Ok(WorkerFile {
            name: worker,
            path,
            app_name,
            yaml,
            document,
            config,
        })
    }

    /// Validates `yaml` as worker `name` and, when it is valid, writes it: over the
    /// existing file wherever it lives, else into the base folder.
    ///
    /// Errors: an invalid name, YAML that does not parse (`Invalid YAML: …`) or is not a
    /// mapping. Validation problems (including a `name` that differs from `name`) are
    /// [`SaveOutcome::Invalid`]. Nothing is written unless the outcome is `Saved`.
    pub fn save_worker(&self, name: &str, yaml: &str) -> Result<SaveOutcome, WorkshopError> {
        let worker = worker_name(name)?;
        match yaml_document(yaml)? {
            Value::Object(_) => {}
            _ => return Err(WorkshopError::NotMapping),
        }
        let (path, app_name) = match self.locate_worker(name) {
            Ok((_, path, app)) => (path, app),
            Err(_) => (worker_path(&self.configs_dir, &worker), None),
        };
        let config = match parse_worker(&path, yaml) {
            Ok(config) => config,
            Err(errors) => {
                return Ok(SaveOutcome::Invalid {
                    validation_errors: errors.errors().iter().map(ToString::to_string).collect(),
                });
            }
        };
        if config.name != worker {
            return Ok(SaveOutcome::Invalid {
                validation_errors: vec![format!(
                    "{}: name: the config is named '{}' but is saved as '{}'; they must match",
                    path.display(),
                    config.name,
                    worker
                )],
            });
        }
        write_atomically(&path, yaml)?;
        Ok(SaveOutcome::Saved { path, app_name })
    }

    /// Every pipeline config that loads, base folder first, with its app name.
    pub fn list_pipelines(&self) -> Vec<(PipelineConfig, Option<String>)> {
        let mut out = Vec::new();
        for root in self.roots() {
            for sub in PIPELINE_DIRS {
                for path in yaml_files(&root.dir.join(sub)) {
                    match load_pipeline(&path) {
                        Ok(p) => out.push((p, root.app_name.clone())),
                        Err(errors) => {
                            warn!(path = %path.display(), error = %errors, "Skipping a pipeline config that does not load.");
                        }
                    }
                }
            }
        }
        out
    }
}

/// `name` as a worker name, or why it cannot be one.
pub fn worker_name(name: &str) -> Result<WorkerName, WorkshopError> {
    WorkerName::try_from(name).map_err(|e| WorkshopError::InvalidName {
        name: name.to_owned(),
        reason: match e {
            loom_core::name::NameError::Invalid { .. } => {
                "use lowercase letters, digits and underscores, starting with a letter".to_owned()
            }
            other => other.to_string(),
        },
    })
}

fn worker_path(dir: &Path, worker: &WorkerName) -> PathBuf {
    dir.join(WORKERS_DIR).join(format!("{worker}.yaml"))
}

/// The `.yaml` files of `dir` not starting with `_`, sorted; none when it is missing.
fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && p.extension().is_some_and(|x| x == "yaml")
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| !n.starts_with('_'))
        })
        .collect();
    files.sort();
    files
}

fn summary(config: &WorkerConfig, path: &Path, app: Option<&str>) -> WorkerSummary {
    WorkerSummary {
        name: config.name.to_string(),
        description: config.description.clone().unwrap_or_default(),
        path: path.display().to_string(),
        default_model_tier: config
            .default_model_tier
            .map(|t| t.to_string())
            .unwrap_or_default(),
        worker_kind: match config.kind {
            WorkerKind::Processor { .. } => "processor",
            _ => "llm",
        }
        .to_owned(),
        app_name: app.unwrap_or_default().to_owned(),
    }
}

/// One YAML document as JSON; `Invalid YAML: …` when it does not parse or holds
/// anything but exactly one document.
pub fn yaml_document(text: &str) -> Result<Value, WorkshopError> {
    let docs = Yaml::load_from_str(text).map_err(|e| WorkshopError::InvalidYaml(e.to_string()))?;
    match docs.as_slice() {
        [] => Ok(Value::Null),
        [doc] => loom_llm::extract::yaml_to_json(doc).ok_or_else(|| {
            WorkshopError::InvalidYaml(
                "aliases, complex keys and unparsable scalars are not supported".to_owned(),
            )
        }),
        _ => Err(WorkshopError::InvalidYaml(
            "expected one document, found several".to_owned(),
        )),
    }
}

/// Writes `text` to `path` through a temp file in the same folder, renamed over it; a
/// `path` that is a symlink is refused.
fn write_atomically(path: &Path, text: &str) -> Result<(), WorkshopError> {
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(WorkshopError::io(
            path,
            std::io::Error::other("refusing to write through a symlink"),
        ));
    }
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| WorkshopError::io(dir, e))?;
    let tmp = dir.join(format!(".{}.tmp", uuid::Uuid::new_v4().simple()));
    std::fs::write(&tmp, text).map_err(|e| WorkshopError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        WorkshopError::io(path, e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_names_that_could_escape_are_refused() {
        for bad in [
            "../x",
            "a/b",
            "..",
            "",
            "A",
            "x.yaml",
            "/etc/passwd",
            "a\\b",
        ] {
            assert!(
                matches!(worker_name(bad), Err(WorkshopError::InvalidName { .. })),
                "{bad}"
            );
        }
        assert!(worker_name("summarizer_2").is_ok());
    }

    #[test]
    fn yaml_document_reports_syntax_errors_and_non_mappings() {
        assert!(matches!(
            yaml_document("a: [1, 2"),
            Err(WorkshopError::InvalidYaml(_))
        ));
        assert_eq!(
            yaml_document("- 1\n- 2\n").ok(),
            Some(serde_json::json!([1, 2]))
        );
    }
}
