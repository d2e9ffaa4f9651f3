//! Shared helpers.

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use loom_llm::TierBackends;
use loom_workshop::{Workshop, WorkshopOptions};
use serde_json::{Map, Value};

/// Every wait in these tests ends within this.
pub(crate) const WAIT: Duration = Duration::from_secs(30);

/// Awaits `fut`, failing the test with `what` when it takes longer than [`WAIT`].
pub(crate) async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, fut)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// Writes `text` to `root/rel`, creating folders.
pub(crate) fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).expect("mkdir");
    }
    std::fs::write(path, text).expect("write");
}

/// A JSON object literal.
pub(crate) fn object(v: Value) -> Map<String, Value> {
    v.as_object().cloned().expect("an object")
}

/// A workshop over `root/configs` (apps in `root/apps`) with its database in `root/home`.
pub(crate) fn workshop(root: &Path, backends: TierBackends) -> Workshop {
    Workshop::new(
        WorkshopOptions::new(root.join("configs"), root.join("home"))
            .with_apps_dir(Some(root.join("apps")))
            .with_backends(backends),
    )
}

/// An echo processor worker's YAML.
pub(crate) fn echo_yaml(name: &str) -> String {
    format!("name: {name}\nworker_kind: processor\nprocessing_backend: echo\n")
}
