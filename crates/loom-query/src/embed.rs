//! Text embeddings for `vector_search` and ingest: OpenAI-compatible `/v1/embeddings`
//! and Ollama `/api/embed`, at an endpoint taken from `backend_config` only.
//!
//! The original let the task payload choose the Ollama URL (an SSRF vector, spec L13).
//! Here the endpoint, model and API key come from [`EmbeddingConfig`], which only
//! configuration builds; payloads cannot name a URL.

use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use crate::config::{DEFAULT_EMBEDDING_BATCH, DEFAULT_EMBEDDING_TIMEOUT};

/// Longest error body quoted in an [`EmbedError::Status`].
const MAX_ERROR_BODY: usize = 300;

/// Which embeddings API an endpoint speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EmbeddingProvider {
    /// `POST {url}/v1/embeddings` with `{model, input: [...]}` → `data[].embedding`
    /// (OpenAI, vLLM, LM Studio, llama.cpp, Ollama's `/v1`).
    OpenAi,
    /// `POST {url}/api/embed` with `{model, input: [...]}` → `embeddings`.
    Ollama,
}

impl EmbeddingProvider {
    /// The config spelling (`openai`, `ollama`).
    pub fn as_str(self) -> &'static str {
        match self {
            EmbeddingProvider::OpenAi => "openai",
            EmbeddingProvider::Ollama => "ollama",
        }
    }
}

/// `backend_config.embedding`: where and how to embed text.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddingConfig {
    provider: EmbeddingProvider,
    url: String,
    model: String,
    api_key_env: Option<String>,
    timeout: Duration,
    batch_size: usize,
}

impl EmbeddingConfig {
    /// `model` at base `url` (with or without a trailing `/v1`; a full
    /// `…/v1/embeddings` or `…/api/embed` URL is used as given), a 30 s timeout,
    /// batches of 64 texts and no API key.
    pub fn new(
        provider: EmbeddingProvider,
        url: impl Into<String>,
        model: impl Into<String>,
    ) -> Self {
        Self {
            provider,
            url: url.into(),
            model: model.into(),
            api_key_env: None,
            timeout: DEFAULT_EMBEDDING_TIMEOUT,
            batch_size: DEFAULT_EMBEDDING_BATCH,
        }
    }

    /// Reads the API key (sent as `Authorization: Bearer …`) from environment variable
    /// `name` when the embedder is built.
    pub fn with_api_key_env(mut self, name: impl Into<String>) -> Self {
        self.api_key_env = Some(name.into());
        self
    }

    /// Sets the timeout of one HTTP request.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets how many texts go in one request (at least 1).
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// The API spoken.
    pub fn provider(&self) -> EmbeddingProvider {
        self.provider
    }

    /// The base URL as configured.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The model id.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// The environment variable holding the API key, if any.
    pub fn api_key_env(&self) -> Option<&str> {
        self.api_key_env.as_deref()
    }

    /// The timeout of one HTTP request.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Texts per request.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// The endpoint called: `{base}/v1/embeddings` or `{base}/api/embed`.
    pub fn endpoint(&self) -> String {
        let base = self.url.trim_end_matches('/');
        match self.provider {
            EmbeddingProvider::OpenAi if base.ends_with("/embeddings") => base.to_owned(),
            EmbeddingProvider::OpenAi => {
                let base = base.strip_suffix("/v1").unwrap_or(base);
                format!("{base}/v1/embeddings")
            }
            EmbeddingProvider::Ollama if base.ends_with("/api/embed") => base.to_owned(),
            EmbeddingProvider::Ollama => format!("{base}/api/embed"),
        }
    }
}

/// Why embedding failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmbedError {
    /// The configuration cannot be used (missing API key variable, bad header value…).
    #[error("embedding config: {message}")]
    Config {
        /// What is wrong.
        message: String,
    },
    /// The request did not complete (connection refused, timeout…).
    #[error("embedding request to {url} failed: {source}")]
    Http {
        /// The endpoint.
        url: String,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },
    /// The endpoint answered with an error status.
    #[error("embedding endpoint {url} answered {status}: {body}")]
    Status {
        /// The endpoint.
        url: String,
        /// The HTTP status code.
        status: u16,
        /// The start of the response body.
        body: String,
    },
    /// The answer was not the expected JSON.
    #[error("embedding endpoint {url} sent an unexpected answer: {message}")]
    Decode {
        /// The endpoint.
        url: String,
        /// What was wrong with it.
        message: String,
    },
}

/// A client for one configured embedding endpoint. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Embedder {
    client: reqwest::Client,
    provider: EmbeddingProvider,
    endpoint: String,
    model: String,
    headers: HeaderMap,
    batch_size: usize,
}

impl Embedder {
    /// Builds the client, reading the API key from the configured environment variable.
    pub fn new(config: &EmbeddingConfig) -> Result<Embedder, EmbedError> {
        let mut headers = HeaderMap::new();
        if let Some(var) = config.api_key_env() {
            let key =
                std::env::var(var)
                    .map(SecretString::from)
                    .map_err(|_| EmbedError::Config {
                        message: format!(
                            "environment variable {var} (embedding.api_key_env) is not set"
                        ),
                    })?;
            let mut value = HeaderValue::from_str(&format!("Bearer {}", key.expose_secret()))
                .map_err(|_| EmbedError::Config {
                    message: format!(
                        "the API key in {var} has characters not allowed in an HTTP header"
                    ),
                })?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        let client = reqwest::Client::builder()
            .timeout(config.timeout())
            .build()
            .map_err(|e| EmbedError::Config {
                message: format!("cannot build the HTTP client: {e}"),
            })?;
        Ok(Embedder {
            client,
            provider: config.provider(),
            endpoint: config.endpoint(),
            model: config.model().to_owned(),
            headers,
            batch_size: config.batch_size(),
        })
    }

    /// The endpoint called.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Embeds one text.
    pub async fn embed_one(&self, text: &str) -> Result<Vec<f32>, EmbedError> {
        let mut vectors = self.embed_batch(&[text]).await?;
        vectors
            .pop()
            .ok_or_else(|| self.decode("no embedding in the answer"))
    }

    /// Embeds `texts` in batches of the configured size, in order.
    pub async fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut out = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(self.batch_size) {
            out.extend(self.embed_batch(chunk).await?);
        }
        Ok(out)
    }

    async fn embed_batch(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let body = json!({"model": self.model, "input": texts});
        let response = self
            .client
            .post(&self.endpoint)
            .headers(self.headers.clone())
            .json(&body)
            .send()
            .await
            .map_err(|source| EmbedError::Http {
                url: self.endpoint.clone(),
                source,
            })?;
        let status = response.status();
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            let body: String = text.chars().take(MAX_ERROR_BODY).collect();
            return Err(EmbedError::Status {
                url: self.endpoint.clone(),
                status: status.as_u16(),
                body,
            });
        }
        let answer: Value = response
            .json()
            .await
            .map_err(|e| self.decode(&format!("not JSON: {e}")))?;
        let vectors = match self.provider {
            EmbeddingProvider::OpenAi => {
                let data = answer
                    .get("data")
                    .and_then(Value::as_array)
                    .ok_or_else(|| self.decode("no 'data' list"))?;
                let mut indexed: Vec<(u64, Vec<f32>)> = Vec::with_capacity(data.len());
                for (i, item) in data.iter().enumerate() {
                    let index = item
                        .get("index")
                        .and_then(Value::as_u64)
                        .unwrap_or(i as u64);
                    let vector = item
                        .get("embedding")
                        .ok_or_else(|| self.decode("an item of 'data' has no 'embedding'"))?;
                    indexed.push((index, self.vector(vector)?));
                }
                indexed.sort_by_key(|(i, _)| *i);
                indexed.into_iter().map(|(_, v)| v).collect::<Vec<_>>()
            }
            EmbeddingProvider::Ollama => answer
                .get("embeddings")
                .and_then(Value::as_array)
                .ok_or_else(|| self.decode("no 'embeddings' list"))?
                .iter()
                .map(|v| self.vector(v))
                .collect::<Result<Vec<_>, _>>()?,
        };
        if vectors.len() != texts.len() {
            return Err(self.decode(&format!(
                "{} embeddings for {} texts",
                vectors.len(),
                texts.len()
            )));
        }
        Ok(vectors)
    }

    fn vector(&self, v: &Value) -> Result<Vec<f32>, EmbedError> {
        let items = v
            .as_array()
            .filter(|a| !a.is_empty())
            .ok_or_else(|| self.decode("an embedding is not a non-empty list of numbers"))?;
        items
            .iter()
            .map(|x| {
                x.as_f64()
                    .map(|f| f as f32)
                    .ok_or_else(|| self.decode("an embedding holds a value that is not a number"))
            })
            .collect()
    }

    fn decode(&self, message: &str) -> EmbedError {
        EmbedError::Decode {
            url: self.endpoint.clone(),
            message: message.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_follow_the_provider() {
        let e = |p, u: &str| EmbeddingConfig::new(p, u, "m").endpoint();
        assert_eq!(
            e(EmbeddingProvider::OpenAi, "http://h:1"),
            "http://h:1/v1/embeddings"
        );
        assert_eq!(
            e(EmbeddingProvider::OpenAi, "http://h:1/v1/"),
            "http://h:1/v1/embeddings"
        );
        assert_eq!(
            e(EmbeddingProvider::OpenAi, "http://h:1/v1/embeddings"),
            "http://h:1/v1/embeddings"
        );
        assert_eq!(
            e(EmbeddingProvider::Ollama, "http://h:11434"),
            "http://h:11434/api/embed"
        );
        assert_eq!(
            e(EmbeddingProvider::Ollama, "http://h:11434/api/embed"),
            "http://h:11434/api/embed"
        );
    }
}
