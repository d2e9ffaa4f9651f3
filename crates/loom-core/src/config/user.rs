//! The user config: `~/.loom/config.yaml` (or `$LOOM_HOME/config.yaml`), where model
//! endpoints and keys live so that every command finds them (mesh spec §14).
//!
//! Keys are loom-ai 0.9.0's, grouped in optional sections `backends`, `rag` and `workshop`
//! or written at the top level; Rust adds LM Studio, OpenAI-compatible and model settings.
//! Precedence: command-line flags, then environment variables, then this file, then
//! defaults — so each key answers for the environment variable it stands for
//! ([`UserConfig::lookup`]).

use std::path::{Path, PathBuf};

use super::error::ConfigErrors;
use super::yaml::{Decoder, Node, child, parse_document, read_source, scalar_str};

/// Each user-config key and the environment variable it stands for.
pub const USER_CONFIG_KEYS: [(&str, &str); 16] = [
    ("ollama_url", "OLLAMA_URL"),
    ("ollama_model", "OLLAMA_MODEL"),
    ("anthropic_api_key", "ANTHROPIC_API_KEY"),
    ("anthropic_version", "ANTHROPIC_VERSION"),
    ("standard_model", "LOOM_STANDARD_MODEL"),
    ("frontier_model", "FRONTIER_MODEL"),
    ("lm_studio_url", "LM_STUDIO_URL"),
    ("lm_studio_model", "LM_STUDIO_MODEL"),
    ("local_backend", "LOOM_LOCAL_BACKEND"),
    ("openai_base_url", "OPENAI_BASE_URL"),
    ("openai_api_key", "OPENAI_API_KEY"),
    ("openai_model", "OPENAI_MODEL"),
    ("embedding_model", "LOOM_EMBEDDING_MODEL"),
    ("rag_data_dir", "LOOM_RAG_DATA_DIR"),
    ("rag_vector_store", "LOOM_RAG_VECTOR_STORE"),
    ("rag_db_path", "LOOM_RAG_DB_PATH"),
];

/// Keys loom-ai 0.9.0 accepts that Rust does not use yet; accepted so its files load.
const ACCEPTED_UNUSED: [&str; 1] = ["workshop_port"];

/// The sections keys may be grouped in.
const SECTIONS: [&str; 3] = ["backends", "rag", "workshop"];

/// A validated user config: the values of the keys that were set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserConfig {
    values: Vec<(&'static str, String)>,
    /// The file it was read from, when there was one.
    pub source: Option<PathBuf>,
}

impl UserConfig {
    /// The value standing for environment variable `var`, if the file sets it.
    pub fn lookup(&self, var: &str) -> Option<String> {
        let key = USER_CONFIG_KEYS
            .iter()
            .find(|(_, v)| *v == var)
            .map(|(k, _)| *k)?;
        self.values
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.clone())
    }

    /// The value of `key` (`ollama_url`), if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Where the user config lives: `$LOOM_HOME/config.yaml`, else `~/.loom/config.yaml`.
pub fn user_config_path(lookup_env: impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    if let Some(home) = lookup_env("LOOM_HOME").filter(|h| !h.is_empty()) {
        return Some(Path::new(&home).join("config.yaml"));
    }
    lookup_env("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| Path::new(&h).join(".loom").join("config.yaml"))
}

/// Reads the user config at `path`; a missing file is an empty config, not an error.
pub fn load_user_config(path: &Path) -> Result<UserConfig, ConfigErrors> {
    if !path.exists() {
        return Ok(UserConfig::default());
    }
    let source = read_source(path)?;
    let root = parse_document(path, &source)?;
    let mut d = Decoder::new(path);
    let mut config = UserConfig {
        values: Vec::new(),
        source: Some(path.to_owned()),
    };
    if let Some(mut m) = d.map(&root, "") {
        for (key, key_node, value) in m.remaining() {
            if SECTIONS.contains(&key) {
                if let Some(mut section) = d.map(value, key) {
                    for (k, kn, v) in section.remaining() {
                        read_key(&mut d, &mut config, &child(key, k), k, kn, v);
                    }
                }
            } else {
                read_key(&mut d, &mut config, key, key, key_node, value);
            }
        }
    }
    d.finish(Some(config))
}

fn read_key(
    d: &mut Decoder,
    config: &mut UserConfig,
    path: &str,
    key: &str,
    key_node: &Node<'_>,
    value: &Node<'_>,
) {
    if ACCEPTED_UNUSED.contains(&key) {
        return;
    }
    let Some(&(known, _)) = USER_CONFIG_KEYS.iter().find(|(k, _)| *k == key) else {
        let hint = super::error::suggestion(key, USER_CONFIG_KEYS.iter().map(|(k, _)| *k));
        d.error(key_node, path, format!("unknown key '{key}'{hint}"));
        return;
    };
    if value.data.is_null() {
        return;
    }
    match scalar_str(value) {
        Some(s) => config.values.push((known, s.to_owned())),
        None => d.error(
            value,
            path,
            format!("expected a string, found {}", super::yaml::describe(value)),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_and_top_level_keys_stand_for_environment_variables() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("config.yaml");
        std::fs::write(&p, "backends:\n  ollama_url: http://127.0.0.1:11434\n  anthropic_api_key: sk-x\nfrontier_model: opus\nworkshop:\n  workshop_port: '8080'\n").expect("write");
        let c = load_user_config(&p).expect("valid");
        assert_eq!(
            c.lookup("OLLAMA_URL").as_deref(),
            Some("http://127.0.0.1:11434")
        );
        assert_eq!(c.lookup("ANTHROPIC_API_KEY").as_deref(), Some("sk-x"));
        assert_eq!(c.lookup("FRONTIER_MODEL").as_deref(), Some("opus"));
        assert_eq!(c.lookup("OPENAI_BASE_URL"), None);
        assert_eq!(
            load_user_config(&dir.path().join("missing.yaml")),
            Ok(UserConfig::default())
        );
    }

    #[test]
    fn typos_and_wrong_types_are_reported_with_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("config.yaml");
        std::fs::write(&p, "olama_url: x\nbackends:\n  ollama_model: 3\n").expect("write");
        let e = load_user_config(&p).expect_err("invalid");
        let text: Vec<String> = e.errors().iter().map(|e| e.message.clone()).collect();
        assert_eq!(
            text,
            [
                "unknown key 'olama_url'; did you mean 'ollama_url'?",
                "expected a string, found an integer (3)"
            ]
        );
    }

    #[test]
    fn loom_home_wins_over_home() {
        let env = |k: &str| match k {
            "LOOM_HOME" => Some("/srv/loom".to_owned()),
            "HOME" => Some("/home/u".to_owned()),
            _ => None,
        };
        assert_eq!(
            user_config_path(env),
            Some(PathBuf::from("/srv/loom/config.yaml"))
        );
        let env = |k: &str| (k == "HOME").then(|| "/home/u".to_owned());
        assert_eq!(
            user_config_path(env),
            Some(PathBuf::from("/home/u/.loom/config.yaml"))
        );
    }
}
