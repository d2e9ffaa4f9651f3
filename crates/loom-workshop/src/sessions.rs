//! Work sessions on a framework repository: `start`, `end`, `status`, `sync_check`,
//! `sync` (gateway spec §8), with the original's weaknesses fixed (§13.19–§13.24):
//!
//! * session ids are validated before they name a marker file;
//! * `status` works when the folder is not a git repository (`git_clean: null`);
//! * git, the hook and the service checks are child processes and sockets with
//!   timeouts, awaited without blocking the runtime;
//! * `last_active` is refreshed while a session is used ([`Sessions::touch_current`]);
//! * "the most recent session" is the one active last;
//! * `end` refuses an id that is not active instead of committing anyway, and reports a
//!   failing `git add`;
//! * `sync_check` compares with the current branch's upstream (`@{upstream}`) unless
//!   `upstream` is configured (the original hard-coded `origin/main`);
//! * the project-specific DuckDB import is a generic hook command run after the pull
//!   of `start` and `sync`; checks only run for services that are configured.

mod checks;
mod process;
mod registry;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

pub use checks::{Check, nats_address};
pub use process::{Finished, OUTPUT_TAIL_CHARS};
pub use registry::{MAX_SESSION_ID_LEN, STALE_AFTER, SessionRegistry, validate_session_id};

/// How long one git command may take.
pub const GIT_TIMEOUT: Duration = Duration::from_secs(30);

/// How long the hook may take unless configured.
pub const DEFAULT_HOOK_TIMEOUT: Duration = Duration::from_secs(120);

/// `last_active` is rewritten at most this often by [`Sessions::touch_current`].
pub const TOUCH_INTERVAL: Duration = Duration::from_secs(60);

/// The commit message `end` uses when none is given.
pub const DEFAULT_END_MESSAGE: &str = "analytical session updates";

/// Why a session action failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// A session id that could name another file.
    #[error(
        "invalid session id '{0}': use 1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit"
    )]
    InvalidId(String),
    /// `end` of a session that has no marker.
    #[error("session '{0}' is not active")]
    NotActive(String),
    /// The framework folder is not a git work tree.
    #[error("Framework is not a git repo")]
    NotARepo,
    /// No upstream to compare or pull from.
    #[error(
        "the current branch has no upstream; set tools.session.upstream (e.g. origin/main) or run git branch --set-upstream-to"
    )]
    NoUpstream,
    /// A step failed; `details` says what was done before.
    #[error("{message}")]
    Failed {
        /// What failed (`Framework pull failed: …`, `NATS is required but unreachable`, …).
        message: String,
        /// Context for the caller (`session_id`, `steps`).
        details: Map<String, Value>,
    },
    /// A program could not be started.
    #[error("cannot run {command}: {message}")]
    Spawn {
        /// The command line.
        command: String,
        /// Why.
        message: String,
    },
    /// A program ran too long and was killed.
    #[error("{command} timed out after {seconds}s")]
    TimedOut {
        /// The command line.
        command: String,
        /// The timeout.
        seconds: f64,
    },
    /// A marker file could not be written or removed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Blocking work panicked.
    #[error("internal error: {0}")]
    Internal(String),
}

impl SessionError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        SessionError::Io {
            path: path.to_owned(),
            source,
        }
    }

    /// Extra fields for the error result (`session_id`, `steps`), if any.
    pub fn details(&self) -> Option<&Map<String, Value>> {
        match self {
            SessionError::Failed { details, .. } => Some(details),
            _ => None,
        }
    }
}

/// How sessions work.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SessionOptions {
    /// The framework repository.
    pub framework_dir: PathBuf,
    /// The session workspace (checked by `status` when set).
    pub workspace_dir: Option<PathBuf>,
    /// NATS to check; when unset, NATS is neither checked nor required.
    pub nats_url: Option<String>,
    /// Ollama to check; when unset, it is not checked.
    pub ollama_url: Option<String>,
    /// What `sync_check`/`sync` compare with and pull from; default `@{upstream}`.
    pub upstream: Option<String>,
    /// Run after the pull of `start` and `sync`: program and arguments.
    pub hook: Option<Vec<String>>,
    /// How long the hook may run.
    pub hook_timeout: Duration,
    /// What `end` commits; default everything.
    pub commit_paths: Option<Vec<String>>,
    /// Where markers live (`$LOOM_HOME/sessions`).
    pub sessions_dir: PathBuf,
    /// How long one git command may take.
    pub git_timeout: Duration,
}

impl SessionOptions {
    /// Options for `framework_dir` with markers in `sessions_dir`, nothing else configured.
    pub fn new(framework_dir: impl Into<PathBuf>, sessions_dir: impl Into<PathBuf>) -> Self {
        SessionOptions {
            framework_dir: framework_dir.into(),
            workspace_dir: None,
            nats_url: None,
            ollama_url: None,
            upstream: None,
            hook: None,
            hook_timeout: DEFAULT_HOOK_TIMEOUT,
            commit_paths: None,
            sessions_dir: sessions_dir.into(),
            git_timeout: GIT_TIMEOUT,
        }
    }
}

/// The session actions. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Sessions {
    options: Arc<SessionOptions>,
    registry: SessionRegistry,
    /// The session this process started last, and when its marker was last refreshed.
    current: Arc<Mutex<Option<(String, Instant)>>>,
    /// When [`Sessions::touch_current`] last looked for a session (it looks at most every
    /// [`TOUCH_INTERVAL`] when it knows none).
    looked: Arc<Mutex<Option<Instant>>>,
}

impl Sessions {
    /// Sessions per `options`.
    pub fn new(options: SessionOptions) -> Self {
        Sessions {
            registry: SessionRegistry::new(options.sessions_dir.clone()),
            options: Arc::new(options),
            current: Arc::new(Mutex::new(None)),
            looked: Arc::new(Mutex::new(None)),
        }
    }

    /// The options.
    pub fn options(&self) -> &SessionOptions {
        &self.options
    }

    /// The marker registry.
    pub fn registry(&self) -> &SessionRegistry {
        &self.registry
    }

    /// Starts a session: pull, hook, service checks, marker.
    pub async fn start(
        &self,
        session_id: Option<&str>,
    ) -> Result<Map<String, Value>, SessionError> {
        let sid = match session_id.filter(|s| !s.is_empty()) {
            Some(s) => {
                validate_session_id(s)?;
                s.to_owned()
            }
            None => chrono::Utc::now()
                .format("session-%Y%m%d-%H%M%S")
                .to_string(),
        };
        let mut steps: Vec<Value> = Vec::new();
        if self.is_repo().await {
            match self.upstream().await? {
                None => steps.push(json!({"step": "pull", "ok": false, "reason": "no upstream"})),
                Some(upstream) => {
                    let pulled = self.pull(&upstream).await?;
                    if !pulled.ok() {
                        return Err(failed(
                            format!("Framework pull failed: {}", pulled.stderr.trim()),
                            &sid,
                            steps,
                        ));
                    }
                    let commit = self.head().await;
                    steps.push(json!({"step": "pull", "ok": true, "commit": commit}));
                }
            }
        } else {
            steps.push(json!({"step": "pull", "ok": false, "reason": "not a git repo"}));
        }
        if let Some(hook) = self.run_hook().await {
            steps.push(hook);
        }
        let (nats, ollama) = tokio::join!(self.check_nats(), self.check_ollama());
        let nats_down = nats.as_ref().is_some_and(|c| !c.ok);
        steps.push(service_step("nats", nats));
        steps.push(service_step("ollama", ollama));
        if nats_down {
            return Err(failed(
                "NATS is required but unreachable".to_owned(),
                &sid,
                steps,
            ));
        }
        let mut extra = Map::new();
        extra.insert(
            "framework_dir".to_owned(),
            json!(self.options.framework_dir.display().to_string()),
        );
        let registry = self.registry.clone();
        let id = sid.clone();
        blocking(move || registry.register(&id, &extra)).await?;
        steps.push(json!({"step": "register", "ok": true}));
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) =
            Some((sid.clone(), Instant::now()));
        Ok(object(
            json!({"session_id": sid, "status": "active", "steps": steps}),
        ))
    }

    /// Ends a session (the most recently active one when `session_id` is `None`):
    /// commits and pushes the framework's changes, then removes the marker.
    pub async fn end(
        &self,
        session_id: Option<&str>,
        message: Option<&str>,
    ) -> Result<Map<String, Value>, SessionError> {
        let registry = self.registry.clone();
        let sid = match session_id.filter(|s| !s.is_empty()) {
            Some(s) => {
                validate_session_id(s)?;
                let id = s.to_owned();
                let r = registry.clone();
                if blocking(move || r.get(&id)).await?.is_none() {
                    return Err(SessionError::NotActive(s.to_owned()));
                }
                s.to_owned()
            }
            None => {
                let r = registry.clone();
                let active = blocking(move || Ok(r.active())).await?;
                match active
                    .first()
                    .and_then(|m| m.get("session_id"))
                    .and_then(Value::as_str)
                {
                    Some(s) => s.to_owned(),
                    None => return Ok(object(json!({"status": "no_active_sessions"}))),
                }
            }
        };
        let message = message
            .filter(|m| !m.trim().is_empty())
            .unwrap_or(DEFAULT_END_MESSAGE);
        let mut result = object(
            json!({"session_id": sid, "status": "ended", "committed": false, "pushed": false}),
        );
        if self.is_repo().await {
            let status = self.git(&["status", "--porcelain"]).await?;
            if !status.stdout.trim().is_empty() {
                let added = match &self.options.commit_paths {
                    Some(paths) => {
                        let mut args = vec!["add", "--"];
                        args.extend(paths.iter().map(String::as_str));
                        self.git(&args).await?
                    }
                    None => self.git(&["add", "-A"]).await?,
                };
                if !added.ok() {
                    return Err(failed(
                        format!("git add failed: {}", added.stderr.trim()),
                        &sid,
                        Vec::new(),
                    ));
                }
                let staged = self.git(&["diff", "--cached", "--quiet"]).await?;
                if staged.code == Some(1) {
                    let stamp = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ");
                    let text = format!("Session {sid}: {message} \u{2014} {stamp}");
                    let commit = self.git(&["commit", "-m", &text]).await?;
                    if !commit.ok() {
                        return Err(failed(
                            format!("Commit failed: {}", first_text(&commit)),
                            &sid,
                            Vec::new(),
                        ));
                    }
                    result.insert("committed".to_owned(), json!(true));
                    result.insert("commit".to_owned(), json!(self.head().await));
                    let pushed = match self.upstream().await? {
                        Some(upstream) => self.push(&upstream).await?,
                        None => Finished {
                            code: None,
                            stdout: String::new(),
                            stderr: "no upstream".to_owned(),
                        },
                    };
                    result.insert("pushed".to_owned(), json!(pushed.ok()));
                    if !pushed.ok() {
                        result.insert("push_error".to_owned(), json!(first_text(&pushed)));
                    }
                }
            }
        }
        let id = sid.clone();
        blocking(move || registry.unregister(&id)).await?;
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        if current.as_ref().is_some_and(|(c, _)| *c == sid) {
            *current = None;
        }
        Ok(result)
    }

    /// Active sessions, the framework's git state and the configured services.
    pub async fn status(&self) -> Result<Map<String, Value>, SessionError> {
        self.touch_current().await;
        let registry = self.registry.clone();
        let sessions = blocking(move || Ok(registry.active())).await?;
        let framework = if self.is_repo().await {
            let status = self.git(&["status", "--porcelain"]).await?;
            let dirty = status
                .stdout
                .lines()
                .filter(|l| !l.trim().is_empty())
                .count();
            let branch = self.git(&["rev-parse", "--abbrev-ref", "HEAD"]).await?;
            json!({
                "git_repo": true,
                "git_clean": dirty == 0,
                "dirty_files": dirty,
                "branch": branch.ok().then(|| branch.stdout.trim().to_owned()),
                "commit": self.head().await,
            })
        } else {
            json!({"git_repo": false, "git_clean": null, "dirty_files": 0})
        };
        let (nats, ollama, workspace) =
            tokio::join!(self.check_nats(), self.check_ollama(), async {
                match &self.options.workspace_dir {
                    Some(dir) => Some(checks::workspace(dir).await),
                    None => None,
                }
            });
        let mut services = Map::new();
        for (name, check) in [("nats", nats), ("ollama", ollama), ("workspace", workspace)] {
            services.insert(name.to_owned(), service_value(check));
        }
        Ok(object(json!({
            "sessions": sessions,
            "framework": framework,
            "services": services,
        })))
    }

    /// Fetches and counts commits ahead of and behind the upstream.
    pub async fn sync_check(&self) -> Result<Map<String, Value>, SessionError> {
        self.touch_current().await;
        if !self.is_repo().await {
            return Err(SessionError::NotARepo);
        }
        let upstream = self.upstream().await?.ok_or(SessionError::NoUpstream)?;
        if let Some((remote, _)) = upstream.split_once('/') {
            let fetched = self.git(&["fetch", "--quiet", remote]).await?;
            if !fetched.ok() {
                return Err(SessionError::Failed {
                    message: format!("Fetch failed: {}", fetched.stderr.trim()),
                    details: Map::new(),
                });
            }
        }
        let range = format!("HEAD...{upstream}");
        let counted = self
            .git(&["rev-list", "--left-right", "--count", &range])
            .await?;
        let mut counts = counted
            .stdout
            .split_whitespace()
            .map(|n| n.parse::<u64>().ok());
        let (ahead, behind) = match (counted.ok(), counts.next(), counts.next()) {
            (true, Some(Some(a)), Some(Some(b))) => (a, b),
            _ => {
                return Err(SessionError::Failed {
                    message: format!("cannot compare with {upstream}: {}", first_text(&counted)),
                    details: Map::new(),
                });
            }
        };
        let status = match (ahead > 0, behind > 0) {
            (true, true) => "diverged",
            (false, true) => "behind",
            (true, false) => "ahead",
            (false, false) => "current",
        };
        Ok(object(json!({
            "status": status,
            "behind": behind,
            "ahead": ahead,
            "upstream": upstream,
        })))
    }

    /// Pulls (fast-forward only) and runs the hook.
    pub async fn sync(&self) -> Result<Map<String, Value>, SessionError> {
        self.touch_current().await;
        if !self.is_repo().await {
            return Err(SessionError::NotARepo);
        }
        let upstream = self.upstream().await?.ok_or(SessionError::NoUpstream)?;
        let pulled = self.pull(&upstream).await?;
        if !pulled.ok() {
            return Err(SessionError::Failed {
                message: format!("Pull failed: {}", first_text(&pulled)),
                details: Map::new(),
            });
        }
        let commit = self.head().await;
        let hook = self.run_hook().await;
        let hook_ok = hook
            .as_ref()
            .is_none_or(|h| h.get("ok").and_then(Value::as_bool) == Some(true));
        Ok(object(json!({
            "status": "synced",
            "commit": commit,
            "hook": hook,
            "hook_ok": hook_ok,
        })))
    }

    /// Whether [`Sessions::touch_current`] would do anything now: a cheap check (two
    /// locks, no I/O) so that callers on a hot path spawn the refresh only when due.
    pub fn touch_due(&self) -> bool {
        let current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        match &*current {
            Some((_, at)) => at.elapsed() >= TOUCH_INTERVAL,
            None => !self
                .looked
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .is_some_and(|at| at.elapsed() < TOUCH_INTERVAL),
        }
    }

    /// Refreshes `last_active` of the session in use — the one this process started,
    /// else the most recently active one — at most every [`TOUCH_INTERVAL`].
    pub async fn touch_current(&self) {
        let current = self
            .current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some((_, at)) = &current {
            if at.elapsed() < TOUCH_INTERVAL {
                return;
            }
        } else {
            let mut looked = self.looked.lock().unwrap_or_else(PoisonError::into_inner);
            if looked.is_some_and(|at| at.elapsed() < TOUCH_INTERVAL) {
                return;
            }
            *looked = Some(Instant::now());
        }
        let registry = self.registry.clone();
        let known = current.map(|(id, _)| id);
        let touched = blocking(move || {
            let id = match known {
                Some(id) => Some(id),
                None => registry
                    .active()
                    .first()
                    .and_then(|m| m.get("session_id"))
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            };
            match id {
                Some(id) => Ok(registry.touch(&id)?.then_some(id)),
                None => Ok(None),
            }
        })
        .await;
        match touched {
            Ok(Some(id)) => {
                *self.current.lock().unwrap_or_else(PoisonError::into_inner) =
                    Some((id, Instant::now()));
            }
            Ok(None) => {}
            Err(e) => tracing::debug!(error = %e, "Cannot refresh the session marker."),
        }
    }

    async fn git(&self, args: &[&str]) -> Result<Finished, SessionError> {
        process::run(
            "git",
            args,
            &self.options.framework_dir,
            self.options.git_timeout,
        )
        .await
    }

    async fn is_repo(&self) -> bool {
        if !self.options.framework_dir.is_dir() {
            return false;
        }
        matches!(
            self.git(&["rev-parse", "--is-inside-work-tree"]).await,
            Ok(f) if f.ok() && f.stdout.trim() == "true"
        )
    }

    async fn head(&self) -> String {
        match self.git(&["rev-parse", "--short", "HEAD"]).await {
            Ok(f) if f.ok() => f.stdout.trim().to_owned(),
            _ => "?".to_owned(),
        }
    }

    /// The configured upstream, else the current branch's (`None` when it has none).
    async fn upstream(&self) -> Result<Option<String>, SessionError> {
        if let Some(u) = &self.options.upstream {
            return Ok(Some(u.clone()));
        }
        let found = self
            .git(&[
                "rev-parse",
                "--abbrev-ref",
                "--symbolic-full-name",
                "@{upstream}",
            ])
            .await?;
        Ok(found
            .ok()
            .then(|| found.stdout.trim().to_owned())
            .filter(|s| !s.is_empty()))
    }

    async fn pull(&self, upstream: &str) -> Result<Finished, SessionError> {
        match (&self.options.upstream, upstream.split_once('/')) {
            (Some(_), Some((remote, branch))) => {
                self.git(&["pull", "--ff-only", remote, branch]).await
            }
            _ => self.git(&["pull", "--ff-only"]).await,
        }
    }

    async fn push(&self, upstream: &str) -> Result<Finished, SessionError> {
        match (&self.options.upstream, upstream.split_once('/')) {
            (Some(_), Some((remote, branch))) => {
                let refspec = format!("HEAD:{branch}");
                self.git(&["push", remote, &refspec]).await
            }
            _ => self.git(&["push"]).await,
        }
    }

    async fn run_hook(&self) -> Option<Value> {
        let argv = self.options.hook.as_ref()?;
        let (program, args) = argv.split_first()?;
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let ran = process::run(
            program,
            &args,
            &self.options.framework_dir,
            self.options.hook_timeout,
        )
        .await;
        Some(match ran {
            Ok(f) => {
                let mut output = f.stdout.clone();
                if !f.stderr.trim().is_empty() {
                    output.push_str(&f.stderr);
                }
                json!({"step": "hook", "ok": f.ok(), "exit_code": f.code, "output": process::tail(&output)})
            }
            Err(e) => json!({"step": "hook", "ok": false, "error": e.to_string()}),
        })
    }

    async fn check_nats(&self) -> Option<Check> {
        match &self.options.nats_url {
            Some(url) => Some(checks::nats(url).await),
            None => None,
        }
    }

    async fn check_ollama(&self) -> Option<Check> {
        match &self.options.ollama_url {
            Some(url) => Some(checks::ollama(url).await),
            None => None,
        }
    }
}

fn failed(message: String, sid: &str, steps: Vec<Value>) -> SessionError {
    let mut details = Map::new();
    details.insert("session_id".to_owned(), json!(sid));
    details.insert("steps".to_owned(), Value::Array(steps));
    SessionError::Failed { message, details }
}

fn service_value(check: Option<Check>) -> Value {
    match check {
        Some(c) => json!({"ok": c.ok, "message": c.message}),
        None => json!({"ok": null, "message": "not configured"}),
    }
}

fn service_step(name: &str, check: Option<Check>) -> Value {
    let mut v = service_value(check);
    if let Value::Object(m) = &mut v {
        m.insert("step".to_owned(), json!(name));
    }
    v
}

/// stderr when there is any, else stdout, trimmed.
fn first_text(f: &Finished) -> String {
    let e = f.stderr.trim();
    if e.is_empty() {
        f.stdout.trim().to_owned()
    } else {
        e.to_owned()
    }
}

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

async fn blocking<T, F>(f: F) -> Result<T, SessionError>
where
    F: FnOnce() -> Result<T, SessionError> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| SessionError::Internal(e.to_string()))?
}
