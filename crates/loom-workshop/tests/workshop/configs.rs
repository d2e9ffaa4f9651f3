//! Worker configs: validation before saving, version history, apps, path safety.

use loom_llm::TierBackends;
use loom_workshop::WorkshopError;

use crate::common::{echo_yaml, workshop, write};

#[tokio::test]
async fn update_validates_saves_and_keeps_history_newest_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    let w = workshop(dir.path(), TierBackends::new());
    let v1 = echo_yaml("echo");
    let saved = w
        .update_worker("echo", &v1, Some("first"))
        .await
        .expect("saved");
    assert!(saved.success, "{saved:?}");
    let v2 = format!("{v1}description: Echoes.\n");
    let saved2 = w
        .update_worker("echo", &v2, Some("second"))
        .await
        .expect("saved");
    assert_ne!(saved.version_id, saved2.version_id);

    let got = w.get_worker("echo").await.expect("get");
    assert_eq!(got.yaml, v2);
    assert_eq!(got.config["description"], "Echoes.");
    assert!(got.validation_errors.is_empty());
    let history: Vec<(&str, Option<&str>)> = got
        .version_history
        .iter()
        .map(|v| (v.config_yaml.as_str(), v.description.as_deref()))
        .collect();
    assert_eq!(
        history,
        [(v2.as_str(), Some("second")), (v1.as_str(), Some("first"))]
    );
    assert_eq!(got.version_history[0].config_hash.len(), 16);
    // The database lives in the Loom home given, not in ~/.loom.
    assert!(dir.path().join("home/workshop.db").is_file());

    let listed = w.list_workers().await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].name, "echo");
    assert_eq!(listed[0].worker_kind, "processor");
    assert_eq!(listed[0].app_name, "");
}

#[tokio::test]
async fn bad_input_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let w = workshop(dir.path(), TierBackends::new());
    let outside = dir.path().join("evil.yaml");
    for name in ["../evil", "../../evil", "a/b", "Evil", "", "evil.yaml"] {
        let err = w
            .update_worker(name, &echo_yaml("evil"), None)
            .await
            .expect_err("refused");
        assert!(
            matches!(err, WorkshopError::InvalidName { .. }),
            "{name}: {err}"
        );
        assert!(matches!(
            w.get_worker(name).await,
            Err(WorkshopError::InvalidName { .. })
        ));
    }
    assert!(!outside.exists());

    let err = w
        .update_worker("echo", "name: [1, 2", None)
        .await
        .expect_err("yaml");
    assert!(err.to_string().starts_with("Invalid YAML: "), "{err}");
    let err = w
        .update_worker("echo", "- 1\n- 2\n", None)
        .await
        .expect_err("not a map");
    assert_eq!(err.to_string(), "Config must be a YAML mapping");

    let invalid = "name: echo\nworker_kind: processor\nprocessing_backend: echo\ndefault_model_tier: fast\ntimout_seconds: 3\n";
    let out = w
        .update_worker("echo", invalid, None)
        .await
        .expect("validated");
    assert!(!out.success);
    assert_eq!(
        out.validation_errors.len(),
        2,
        "{:?}",
        out.validation_errors
    );
    assert!(
        out.validation_errors[0]
            .contains("echo.yaml:4:21: default_model_tier: unknown tier 'fast'"),
        "{:?}",
        out.validation_errors
    );
    assert!(out.validation_errors[1].contains("did you mean 'timeout_seconds'"));

    let out = w
        .update_worker("echo", &echo_yaml("other"), None)
        .await
        .expect("validated");
    assert!(!out.success);
    assert!(out.validation_errors[0].contains("named 'other' but is saved as 'echo'"));

    assert!(!dir.path().join("configs/workers/echo.yaml").exists());
    assert!(matches!(
        w.get_worker("echo").await,
        Err(WorkshopError::NotFound(n)) if n == "echo"
    ));
    // Nothing was recorded either: the database was never even opened.
    assert!(!dir.path().join("home/workshop.db").exists());
}

#[tokio::test]
async fn app_workers_are_listed_found_tested_and_updated_in_place() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "configs/workers/base.yaml", &echo_yaml("base"));
    write(
        dir.path(),
        "configs/workers/_draft.yaml",
        &echo_yaml("draft"),
    );
    write(dir.path(), "configs/workers/broken.yaml", "name: broken\n");
    write(
        dir.path(),
        "apps/alpha/configs/workers/helper.yaml",
        &echo_yaml("helper"),
    );
    write(dir.path(), "apps/beta/README.md", "no configs here");
    let w = workshop(dir.path(), TierBackends::new());
    let names: Vec<(String, String)> = w
        .list_workers()
        .await
        .expect("list")
        .into_iter()
        .map(|s| (s.name, s.app_name))
        .collect();
    assert_eq!(
        names,
        [
            ("base".to_owned(), String::new()),
            ("helper".to_owned(), "alpha".to_owned())
        ]
    );
    let got = w.get_worker("helper").await.expect("found in the app");
    assert_eq!(got.app_name, "alpha");
    let run = w
        .test_worker(
            "helper",
            crate::common::object(serde_json::json!({"x": 1})),
            None,
        )
        .await
        .expect("ran");
    assert!(run.success(), "{run:?}");
    let text = format!("{}description: updated\n", echo_yaml("helper"));
    let saved = w.update_worker("helper", &text, None).await.expect("saved");
    assert!(saved.success);
    let app_file = dir.path().join("apps/alpha/configs/workers/helper.yaml");
    assert_eq!(std::fs::read_to_string(app_file).expect("read"), text);
    assert!(!dir.path().join("configs/workers/helper.yaml").exists());
    // An invalid file can still be read, with its errors.
    let broken = w.get_worker("broken").await.expect("readable");
    assert!(!broken.validation_errors.is_empty());
    let err = w
        .test_worker("broken", serde_json::Map::new(), None)
        .await
        .expect_err("invalid config cannot run");
    assert!(err.to_string().contains("has an invalid config"), "{err}");
}

#[tokio::test]
async fn impact_follows_dependencies_transitively_across_apps() {
    let dir = tempfile::tempdir().expect("tempdir");
    for w in ["extract", "summarize", "store", "other"] {
        write(
            dir.path(),
            &format!("configs/workers/{w}.yaml"),
            &echo_yaml(w),
        );
    }
    write(
        dir.path(),
        "configs/pipelines/ingest.yaml",
        "name: ingest\npipeline_stages:\n\
         - {name: a, worker_type: extract, input_mapping: {text: goal.context.text}}\n\
         - {name: b, worker_type: summarize, input_mapping: {text: a.output.text}}\n\
         - {name: c, worker_type: store, input_mapping: {s: b.output.text}, tier: standard}\n\
         - {name: d, worker_type: other, input_mapping: {text: goal.context.text}}\n",
    );
    write(
        dir.path(),
        "apps/alpha/configs/orchestrators/side.yaml",
        "name: side\npipeline_stages:\n\
         - {name: x, worker_type: summarize, input_mapping: {text: goal.context.text}}\n",
    );
    let w = workshop(dir.path(), TierBackends::new());
    let impact = w.impact("extract").await.expect("impact");
    assert_eq!(impact.total_pipelines, 1);
    assert_eq!(impact.pipelines[0].downstream, ["b", "c"]);
    assert_eq!(impact.risk, "high");
    let impact = w.impact("summarize").await.expect("impact");
    assert_eq!(impact.total_pipelines, 2);
    assert_eq!(impact.total_stages, 2);
    assert_eq!(impact.pipelines[1].app_name, "alpha");
    assert_eq!(impact.pipelines[0].downstream, ["c"]);
    let impact = w.impact("store").await.expect("impact");
    assert_eq!((impact.total_downstream, impact.risk), (0, "low"));
    assert!(matches!(
        w.impact("../x").await,
        Err(WorkshopError::InvalidName { .. })
    ));
}
