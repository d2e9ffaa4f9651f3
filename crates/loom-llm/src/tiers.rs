//! The tier → backend table (`local`, `standard`, `frontier`), built from settings or the environment.

use std::fmt;
use std::sync::Arc;

use loom_core::message::ModelTier;
use secrecy::SecretString;

use crate::backends::{AnthropicSettings, OllamaSettings, OpenAiSettings};
use crate::model::{Model, ModelError};

/// Default Ollama model (`OLLAMA_MODEL`).
pub const DEFAULT_OLLAMA_MODEL: &str = "llama3.2:3b";
/// Default LM Studio and OpenAI-compatible model id (`LM_STUDIO_MODEL`, `OPENAI_MODEL`).
pub const DEFAULT_OPENAI_MODEL: &str = "default";
/// Default standard-tier Anthropic model (`LOOM_STANDARD_MODEL`).
pub const DEFAULT_STANDARD_MODEL: &str = "claude-sonnet-4-20250514";
/// Default frontier-tier Anthropic model (`FRONTIER_MODEL`).
pub const DEFAULT_FRONTIER_MODEL: &str = "claude-opus-4-20250514";
/// LM Studio's base URL when `LOOM_LOCAL_BACKEND=lmstudio` is set without `LM_STUDIO_URL`.
pub const DEFAULT_LM_STUDIO_URL: &str = "http://localhost:1234/v1";
/// Ollama's base URL when `LOOM_LOCAL_BACKEND=ollama` is set without `OLLAMA_URL`.
pub const DEFAULT_OLLAMA_URL: &str = "http://localhost:11434";

/// How to build one backend.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum BackendSettings {
    /// An OpenAI-compatible server (OpenAI, LM Studio, vLLM, llama.cpp, Ollama `/v1`).
    OpenAi(OpenAiSettings),
    /// The Anthropic Messages API.
    Anthropic(AnthropicSettings),
    /// Ollama's native API.
    Ollama(OllamaSettings),
}

impl BackendSettings {
    /// Builds the backend.
    pub fn build(self) -> Result<Arc<dyn Model>, ModelError> {
        Ok(match self {
            BackendSettings::OpenAi(s) => Arc::new(s.build()?),
            BackendSettings::Anthropic(s) => Arc::new(s.build()?),
            BackendSettings::Ollama(s) => Arc::new(s.build()?),
        })
    }

    /// The model id it will use.
    pub fn model(&self) -> &str {
        match self {
            BackendSettings::OpenAi(s) => s.model(),
            BackendSettings::Anthropic(s) => s.model(),
            BackendSettings::Ollama(s) => s.model(),
        }
    }
}

/// No backend is configured for a tier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no backend for tier: {tier} ({hint})")]
pub struct NoBackend {
    /// The tier asked for.
    pub tier: ModelTier,
    /// Which environment variables would configure it.
    pub hint: &'static str,
}

/// The backend of each tier; workers pick one by the task's tier.
///
/// ```
/// use std::sync::Arc;
/// use loom_core::message::ModelTier;
/// use loom_llm::TierBackends;
/// use loom_llm::testing::ScriptedModel;
///
/// let backends = TierBackends::new().with(ModelTier::Local, Arc::new(ScriptedModel::new("tiny")));
/// assert_eq!(backends.get(ModelTier::Local)?.name(), "tiny");
/// let err = backends.get(ModelTier::Frontier).err().expect("not configured");
/// assert_eq!(err.to_string(), "no backend for tier: frontier (set ANTHROPIC_API_KEY)");
///
/// // From the process environment (tests pass a map lookup instead):
/// let from_env = TierBackends::from_env(|key| std::env::var(key).ok())?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Default)]
pub struct TierBackends {
    local: Option<Arc<dyn Model>>,
    standard: Option<Arc<dyn Model>>,
    frontier: Option<Arc<dyn Model>>,
}

impl fmt::Debug for TierBackends {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = |m: &Option<Arc<dyn Model>>| m.as_ref().map(|m| m.name().to_owned());
        f.debug_struct("TierBackends")
            .field("local", &name(&self.local))
            .field("standard", &name(&self.standard))
            .field("frontier", &name(&self.frontier))
            .finish()
    }
}

impl TierBackends {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the backend of `tier`.
    pub fn with(mut self, tier: ModelTier, model: Arc<dyn Model>) -> Self {
        self.insert(tier, model);
        self
    }

    /// Sets the backend of `tier`, replacing any earlier one.
    pub fn insert(&mut self, tier: ModelTier, model: Arc<dyn Model>) {
        *self.slot(tier) = Some(model);
    }

    /// Builds a table from settings per tier.
    pub fn from_settings(
        settings: impl IntoIterator<Item = (ModelTier, BackendSettings)>,
    ) -> Result<Self, ModelError> {
        let mut backends = Self::new();
        for (tier, s) in settings {
            backends.insert(tier, s.build()?);
        }
        Ok(backends)
    }

    /// Builds the table from environment variables read through `lookup`
    /// (see [`settings_from_env`] for the variables).
    pub fn from_env(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ModelError> {
        Self::from_settings(settings_from_env(lookup)?)
    }

    /// The backend of `tier`.
    pub fn get(&self, tier: ModelTier) -> Result<Arc<dyn Model>, NoBackend> {
        let slot = match tier {
            ModelTier::Local => &self.local,
            ModelTier::Standard => &self.standard,
            ModelTier::Frontier => &self.frontier,
        };
        slot.clone().ok_or(NoBackend {
            tier,
            hint: env_hint(tier),
        })
    }

    /// The tiers that have a backend, in [`ModelTier::ALL`] order.
    pub fn tiers(&self) -> Vec<ModelTier> {
        ModelTier::ALL
            .into_iter()
            .filter(|t| self.get(*t).is_ok())
            .collect()
    }

    fn slot(&mut self, tier: ModelTier) -> &mut Option<Arc<dyn Model>> {
        match tier {
            ModelTier::Local => &mut self.local,
            ModelTier::Standard => &mut self.standard,
            ModelTier::Frontier => &mut self.frontier,
        }
    }
}

fn env_hint(tier: ModelTier) -> &'static str {
    match tier {
        ModelTier::Local => "set OLLAMA_URL or LM_STUDIO_URL",
        ModelTier::Standard => "set ANTHROPIC_API_KEY or OPENAI_BASE_URL",
        ModelTier::Frontier => "set ANTHROPIC_API_KEY",
    }
}

/// The backend settings per tier that the environment describes. Empty values count as unset.
///
/// | variable | effect |
/// |---|---|
/// | `LM_STUDIO_URL`, `LM_STUDIO_MODEL` (default `default`) | `local` → LM Studio (OpenAI-compatible) |
/// | `OLLAMA_URL`, `OLLAMA_MODEL` (default `llama3.2:3b`) | `local` → Ollama, when LM Studio is not set |
/// | `LOOM_LOCAL_BACKEND` = `ollama` \| `lmstudio` | forces the local backend (its URL defaulting to `http://localhost:11434` or `http://localhost:1234/v1`) |
/// | `ANTHROPIC_API_KEY` | `standard` and `frontier` → Anthropic |
/// | `LOOM_STANDARD_MODEL` (default `claude-sonnet-4-20250514`) | the standard Anthropic model |
/// | `FRONTIER_MODEL` (default `claude-opus-4-20250514`) | the frontier Anthropic model |
/// | `ANTHROPIC_VERSION` (default `2023-06-01`), `ANTHROPIC_BASE_URL` | Anthropic header and endpoint |
/// | `OPENAI_BASE_URL`, `OPENAI_API_KEY`, `OPENAI_MODEL` (default `default`) | `standard` → OpenAI-compatible, when `ANTHROPIC_API_KEY` is not set |
///
/// Fails with [`ModelError::Config`] for an unknown `LOOM_LOCAL_BACKEND`.
pub fn settings_from_env(
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Vec<(ModelTier, BackendSettings)>, ModelError> {
    let var = |key: &str| lookup(key).filter(|v| !v.trim().is_empty());
    let mut out = Vec::new();

    let lm_studio = || {
        OpenAiSettings::new(
            var("LM_STUDIO_URL").unwrap_or_else(|| DEFAULT_LM_STUDIO_URL.to_owned()),
            var("LM_STUDIO_MODEL").unwrap_or_else(|| DEFAULT_OPENAI_MODEL.to_owned()),
        )
    };
    let ollama = || {
        OllamaSettings::new(
            var("OLLAMA_URL").unwrap_or_else(|| DEFAULT_OLLAMA_URL.to_owned()),
            var("OLLAMA_MODEL").unwrap_or_else(|| DEFAULT_OLLAMA_MODEL.to_owned()),
        )
    };
    let local = match var("LOOM_LOCAL_BACKEND").as_deref().map(str::trim) {
        Some("lmstudio") => Some(BackendSettings::OpenAi(lm_studio())),
        Some("ollama") => Some(BackendSettings::Ollama(ollama())),
        Some(other) => {
            return Err(ModelError::config(format!(
                "unknown LOOM_LOCAL_BACKEND '{other}' (valid: ollama, lmstudio)"
            )));
        }
        None if var("LM_STUDIO_URL").is_some() => Some(BackendSettings::OpenAi(lm_studio())),
        None if var("OLLAMA_URL").is_some() => Some(BackendSettings::Ollama(ollama())),
        None => None,
    };
    if let Some(local) = local {
        out.push((ModelTier::Local, local));
    }

    if let Some(key) = var("ANTHROPIC_API_KEY") {
        let key = SecretString::from(key);
        let anthropic = |model: String| {
            let mut s = AnthropicSettings::new(key.clone(), model);
            if let Some(version) = var("ANTHROPIC_VERSION") {
                s = s.with_version(version);
            }
            if let Some(base) = var("ANTHROPIC_BASE_URL") {
                s = s.with_base_url(base);
            }
            BackendSettings::Anthropic(s)
        };
        out.push((
            ModelTier::Standard,
            anthropic(
                var("LOOM_STANDARD_MODEL").unwrap_or_else(|| DEFAULT_STANDARD_MODEL.to_owned()),
            ),
        ));
        out.push((
            ModelTier::Frontier,
            anthropic(var("FRONTIER_MODEL").unwrap_or_else(|| DEFAULT_FRONTIER_MODEL.to_owned())),
        ));
    } else if let Some(base) = var("OPENAI_BASE_URL") {
        let mut s = OpenAiSettings::new(
            base,
            var("OPENAI_MODEL").unwrap_or_else(|| DEFAULT_OPENAI_MODEL.to_owned()),
        );
        if let Some(key) = var("OPENAI_API_KEY") {
            s = s.with_api_key(SecretString::from(key));
        }
        out.push((ModelTier::Standard, BackendSettings::OpenAi(s)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |key| map.get(key).cloned()
    }

    /// A short description of each configured tier, e.g. `local=ollama:llama3.2:3b@http://o`.
    fn plan(pairs: &[(&str, &str)]) -> Vec<String> {
        settings_from_env(env(pairs))
            .expect("valid env")
            .into_iter()
            .map(|(tier, s)| match s {
                BackendSettings::OpenAi(s) => format!(
                    "{tier}=openai:{}@{}:key={}",
                    s.model(),
                    s.base_url(),
                    s.has_api_key()
                ),
                BackendSettings::Anthropic(s) => format!(
                    "{tier}=anthropic:{}@{}:{}",
                    s.model(),
                    s.base_url(),
                    s.version()
                ),
                BackendSettings::Ollama(s) => {
                    format!("{tier}=ollama:{}@{}", s.model(), s.base_url())
                }
            })
            .collect()
    }

    #[test]
    fn empty_env_configures_nothing() {
        assert!(plan(&[]).is_empty());
        let backends = TierBackends::from_env(env(&[])).expect("builds");
        assert!(backends.tiers().is_empty());
    }

    #[test]
    fn ollama_url_configures_local_with_default_model() {
        assert_eq!(
            plan(&[("OLLAMA_URL", "http://o:11434")]),
            ["local=ollama:llama3.2:3b@http://o:11434"]
        );
        assert_eq!(
            plan(&[("OLLAMA_URL", "http://o"), ("OLLAMA_MODEL", "qwen")]),
            ["local=ollama:qwen@http://o"]
        );
    }

    #[test]
    fn lm_studio_wins_over_ollama_unless_forced() {
        let both = [
            ("OLLAMA_URL", "http://o"),
            ("LM_STUDIO_URL", "http://l:1234/v1"),
            ("LM_STUDIO_MODEL", "phi"),
        ];
        assert_eq!(plan(&both), ["local=openai:phi@http://l:1234/v1:key=false"]);
        let mut forced = both.to_vec();
        forced.push(("LOOM_LOCAL_BACKEND", "ollama"));
        assert_eq!(plan(&forced), ["local=ollama:llama3.2:3b@http://o"]);
    }

    #[test]
    fn forcing_lmstudio_without_url_uses_its_default() {
        assert_eq!(
            plan(&[("LOOM_LOCAL_BACKEND", "lmstudio")]),
            ["local=openai:default@http://localhost:1234/v1:key=false"]
        );
    }

    #[test]
    fn unknown_local_backend_is_an_error_naming_the_value() {
        let err = settings_from_env(env(&[("LOOM_LOCAL_BACKEND", "vllm")])).expect_err("invalid");
        assert_eq!(
            err.to_string(),
            "invalid model configuration: unknown LOOM_LOCAL_BACKEND 'vllm' (valid: ollama, lmstudio)"
        );
    }

    #[test]
    fn anthropic_key_configures_standard_and_frontier() {
        assert_eq!(
            plan(&[("ANTHROPIC_API_KEY", "k")]),
            [
                "standard=anthropic:claude-sonnet-4-20250514@https://api.anthropic.com:2023-06-01",
                "frontier=anthropic:claude-opus-4-20250514@https://api.anthropic.com:2023-06-01",
            ]
        );
        assert_eq!(
            plan(&[
                ("ANTHROPIC_API_KEY", "k"),
                ("LOOM_STANDARD_MODEL", "s"),
                ("FRONTIER_MODEL", "f"),
                ("ANTHROPIC_VERSION", "2099-01-01"),
                ("OPENAI_BASE_URL", "http://ignored"),
            ]),
            [
                "standard=anthropic:s@https://api.anthropic.com:2099-01-01",
                "frontier=anthropic:f@https://api.anthropic.com:2099-01-01",
            ]
        );
    }

    #[test]
    fn openai_base_url_configures_standard_without_anthropic_key() {
        assert_eq!(
            plan(&[
                ("OPENAI_BASE_URL", "http://vllm:8000/v1"),
                ("OPENAI_API_KEY", "sk"),
                ("OPENAI_MODEL", "mistral")
            ]),
            ["standard=openai:mistral@http://vllm:8000/v1:key=true"]
        );
    }

    #[test]
    fn empty_values_count_as_unset() {
        assert!(plan(&[("OLLAMA_URL", ""), ("ANTHROPIC_API_KEY", " ")]).is_empty());
    }

    #[test]
    fn get_names_the_tier_and_the_variables() {
        let backends = TierBackends::from_env(env(&[("OLLAMA_URL", "http://o")])).expect("builds");
        assert_eq!(backends.tiers(), [ModelTier::Local]);
        assert_eq!(
            backends.get(ModelTier::Local).expect("local").name(),
            "llama3.2:3b"
        );
        let err = backends
            .get(ModelTier::Standard)
            .err()
            .expect("standard missing");
        assert_eq!(
            err.to_string(),
            "no backend for tier: standard (set ANTHROPIC_API_KEY or OPENAI_BASE_URL)"
        );
    }
}
