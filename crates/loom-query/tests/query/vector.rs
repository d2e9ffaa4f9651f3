//! vector_search through the LLM stand-in's embedding endpoints (both providers), and
//! the SSRF fix: the endpoint comes from config only.

use loom_core::config::QueryAction;
use loom_query::{EmbeddingConfig, EmbeddingProvider, QueryError, SqliteBackend};
use loom_testkit::LlmStandIn;
use serde_json::json;

use crate::common::{Fixture, documents, embedded_text, ids, invalid, run, within};

async fn backend_with(provider: EmbeddingProvider, llm: &LlmStandIn) -> (Fixture, SqliteBackend) {
    let f = Fixture::new();
    let embedding =
        EmbeddingConfig::new(provider, llm.base_url(), "embed-model").with_batch_size(4);
    f.ingest(Some(embedding), true).await;
    let config = f.config(json!({
        "embedding": {"provider": provider.as_str(), "url": llm.base_url(), "model": "embed-model"},
    }));
    let backend = within(SqliteBackend::open(config)).await.unwrap();
    (f, backend)
}

async fn finds_the_document_whose_text_was_embedded(provider: EmbeddingProvider, path: &str) {
    let llm = within(LlmStandIn::start()).await.unwrap();
    let (_f, b) = backend_with(provider, &llm).await;
    // Ingest sent 6 texts in batches of 4.
    let ingest_requests = llm.requests();
    assert_eq!(ingest_requests.len(), 2);
    assert!(ingest_requests.iter().all(|r| r.path == path));
    assert_eq!(ingest_requests[0].body["model"], "embed-model");

    let target = &documents()[4];
    let out = run(
        &b,
        QueryAction::VectorSearch,
        json!({"query": embedded_text(target)}),
    )
    .await
    .unwrap();
    let found = ids(&out);
    assert_eq!(found.len(), 5, "default limit 5");
    assert_eq!(found[0], "c1");
    let first = out["results"][0].as_object().unwrap();
    let keys: Vec<&str> = first.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        ["id", "title", "category", "year", "tags", "similarity"]
    );
    assert!((first["similarity"].as_f64().unwrap() - 1.0).abs() < 1e-5);
    let sims: Vec<f64> = out["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["similarity"].as_f64().unwrap())
        .collect();
    assert!(sims.windows(2).all(|w| w[0] >= w[1]), "{sims:?}");
    assert_eq!(out["total"], 5);
    let out = run(
        &b,
        QueryAction::VectorSearch,
        json!({"query": "anything", "limit": 2}),
    )
    .await
    .unwrap();
    assert_eq!(out["total"], 2);
    let last = llm.requests().pop().unwrap();
    assert_eq!(last.path, path);
    assert_eq!(last.body["input"], json!(["anything"]));
}

#[tokio::test]
async fn vector_search_through_openai_embeddings() {
    finds_the_document_whose_text_was_embedded(EmbeddingProvider::OpenAi, "/v1/embeddings").await;
}

#[tokio::test]
async fn vector_search_through_ollama_embeddings() {
    finds_the_document_whose_text_was_embedded(EmbeddingProvider::Ollama, "/api/embed").await;
}

#[tokio::test]
async fn payload_cannot_choose_the_embedding_endpoint() {
    let llm = within(LlmStandIn::start()).await.unwrap();
    let (_f, b) = backend_with(EmbeddingProvider::Ollama, &llm).await;
    let before = llm.requests().len();
    for args in [
        json!({"query": "x", "embedding": {"model": "m", "ollama_url": "http://169.254.169.254"}}),
        json!({"query": "x", "url": "http://127.0.0.1:1"}),
        json!({"query": "x", "ollama_url": "http://127.0.0.1:1"}),
        json!({"query": "x", "model": "other"}),
    ] {
        let (field, message) = invalid(run(&b, QueryAction::VectorSearch, args).await);
        assert!(
            ["embedding", "url", "ollama_url", "model"].contains(&field.as_str()),
            "{field}"
        );
        assert!(message.contains("allowed: query, limit"), "{message}");
    }
    assert_eq!(llm.requests().len(), before, "nothing was embedded");
}

#[tokio::test]
async fn vector_search_without_embedding_config_is_unsupported() {
    let (_f, b) = Fixture::backend().await;
    let err = run(&b, QueryAction::VectorSearch, json!({"query": "x"}))
        .await
        .unwrap_err();
    assert!(matches!(err, QueryError::Unsupported { .. }), "{err}");
    assert!(
        err.to_string().contains("backend_config.embedding"),
        "{err}"
    );
}

#[tokio::test]
async fn embedding_failures_are_clear_errors() {
    let llm = within(LlmStandIn::start()).await.unwrap();
    let (_f, b) = backend_with(EmbeddingProvider::OpenAi, &llm).await;
    drop(llm);
    let err = run(&b, QueryAction::VectorSearch, json!({"query": "budget"}))
        .await
        .unwrap_err();
    assert!(matches!(err, QueryError::Embedding(_)), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("embedding failed: embedding request to http://127.0.0.1:"),
        "{err}"
    );
}
