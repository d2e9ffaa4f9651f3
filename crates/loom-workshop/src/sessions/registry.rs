//! Session markers: `~/.loom/sessions/<id>.json` (`$LOOM_HOME/sessions/`), the format
//! loom-ai 0.9.0 shares with other tools: `{"session_id": …, "last_active": <unix
//! seconds>, …extra keys}` (gateway spec §8.1).
//!
//! Fixes: ids are validated before they name a file ([`validate_session_id`]); extra
//! keys cannot override `session_id` or `last_active`; markers that are not JSON objects
//! or lack a numeric `last_active` are skipped, not fatal; active sessions are sorted by
//! `last_active`, newest first, so "the most recent" really is; [`SessionRegistry::touch`]
//! refreshes a marker while its session is used. Markers are written atomically.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};
use tracing::warn;

use super::SessionError;

/// A session without activity for this long is no longer active.
pub const STALE_AFTER: Duration = Duration::from_secs(1800);

/// Longest session id.
pub const MAX_SESSION_ID_LEN: usize = 128;

/// Checks a session id: 1–128 of `A-Z a-z 0-9 . _ -`, starting with a letter or digit
/// (so never `.`, `..`, a path or a hidden file).
pub fn validate_session_id(id: &str) -> Result<(), SessionError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_SESSION_ID_LEN
        && id.as_bytes()[0].is_ascii_alphanumeric()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(SessionError::InvalidId(id.chars().take(80).collect()))
    }
}

/// The marker folder. Every method does blocking file I/O.
#[derive(Debug, Clone)]
pub struct SessionRegistry {
    dir: PathBuf,
}

impl SessionRegistry {
    /// Markers in `dir` (created when the first one is written).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        SessionRegistry { dir: dir.into() }
    }

    /// The marker folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn marker(&self, id: &str) -> Result<PathBuf, SessionError> {
        validate_session_id(id)?;
        Ok(self.dir.join(format!("{id}.json")))
    }

    /// Writes (or overwrites) the marker of `id`, active now, with `extra` keys.
    pub fn register(&self, id: &str, extra: &Map<String, Value>) -> Result<(), SessionError> {
        let path = self.marker(id)?;
        let mut marker = Map::new();
        marker.insert("session_id".to_owned(), Value::String(id.to_owned()));
        marker.insert("last_active".to_owned(), now_seconds().into());
        for (k, v) in extra {
            if k != "session_id" && k != "last_active" {
                marker.insert(k.clone(), v.clone());
            }
        }
        self.write(&path, &marker)
    }

    /// Removes the marker of `id`; true when there was one.
    pub fn unregister(&self, id: &str) -> Result<bool, SessionError> {
        let path = self.marker(id)?;
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(SessionError::io(&path, e)),
        }
    }

    /// The marker of `id`, if there is a readable one.
    pub fn get(&self, id: &str) -> Result<Option<Map<String, Value>>, SessionError> {
        let path = self.marker(id)?;
        Ok(read_marker(&path))
    }

    /// Sets `last_active` of `id` to now; false when it has no marker.
    pub fn touch(&self, id: &str) -> Result<bool, SessionError> {
        let path = self.marker(id)?;
        let Some(mut marker) = read_marker(&path) else {
            return Ok(false);
        };
        marker.insert("last_active".to_owned(), now_seconds().into());
        self.write(&path, &marker)?;
        Ok(true)
    }

    /// Sessions active within [`STALE_AFTER`], most recently active first.
    pub fn active(&self) -> Vec<Map<String, Value>> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let now = now_seconds();
        let mut out: Vec<(f64, Map<String, Value>)> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .filter_map(|p| read_marker(&p))
            .filter_map(|m| {
                let at = m.get("last_active").and_then(Value::as_f64)?;
                m.get("session_id").and_then(Value::as_str)?;
                (now - at <= STALE_AFTER.as_secs_f64()).then_some((at, m))
            })
            .collect();
        out.sort_by(|a, b| b.0.total_cmp(&a.0));
        out.into_iter().map(|(_, m)| m).collect()
    }

    fn write(&self, path: &Path, marker: &Map<String, Value>) -> Result<(), SessionError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| SessionError::io(&self.dir, e))?;
        let tmp = self
            .dir
            .join(format!(".{}.tmp", uuid::Uuid::new_v4().simple()));
        let text = Value::Object(marker.clone()).to_string();
        std::fs::write(&tmp, text).map_err(|e| SessionError::io(&tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            SessionError::io(path, e)
        })
    }
}

fn read_marker(path: &Path) -> Option<Map<String, Value>> {
    let text = std::fs::read_to_string(path).ok()?;
    match serde_json::from_str(&text) {
        Ok(Value::Object(m)) => Some(m),
        Ok(_) | Err(_) => {
            warn!(path = %path.display(), "Skipping a session marker that is not a JSON object.");
            None
        }
    }
}

/// Seconds since the Unix epoch, as the marker stores them.
pub(crate) fn now_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_that_could_name_other_files_are_refused() {
        for bad in ["", "..", ".hidden", "../x", "a/b", "a\\b", "x y", "é"] {
            assert!(validate_session_id(bad).is_err(), "{bad:?}");
        }
        for good in ["session-20250101-120000", "s.1_a-b", "A1"] {
            assert!(validate_session_id(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn register_keeps_id_and_time_and_lists_newest_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        let reg = SessionRegistry::new(dir.path().join("sessions"));
        assert!(reg.active().is_empty());
        let mut extra = Map::new();
        extra.insert("last_active".into(), 0.into());
        extra.insert("session_id".into(), "other".into());
        extra.insert("user".into(), "ann".into());
        reg.register("a", &extra).expect("register a");
        reg.register("b", &Map::new()).expect("register b");
        // Make "a" stale and a marker that is not an object.
        let stale = serde_json::json!({"session_id": "old", "last_active": 1.0});
        std::fs::write(dir.path().join("sessions/old.json"), stale.to_string()).expect("write");
        std::fs::write(dir.path().join("sessions/bad.json"), "[1]").expect("write");
        std::fs::write(dir.path().join("sessions/junk.json"), "{").expect("write");
        let a = reg.get("a").expect("get").expect("marker");
        assert_eq!(a["session_id"], "a");
        assert_eq!(a["user"], "ann");
        assert!(a["last_active"].as_f64().unwrap_or(0.0) > 1.0);
        std::thread::sleep(Duration::from_millis(20));
        assert!(reg.touch("a").expect("touch"));
        let ids: Vec<String> = reg
            .active()
            .iter()
            .map(|m| m["session_id"].as_str().unwrap_or_default().to_owned())
            .collect();
        assert_eq!(ids, ["a", "b"]);
        assert!(reg.unregister("a").expect("unregister"));
        assert!(!reg.unregister("a").expect("missing is fine"));
        assert!(reg.register("../escape", &Map::new()).is_err());
    }
}
