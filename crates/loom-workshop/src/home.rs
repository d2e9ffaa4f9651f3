//! Where Loom keeps per-user state: `$LOOM_HOME`, else `~/.loom`.

use std::path::{Path, PathBuf};

/// The Loom home folder: `$LOOM_HOME` when set and not empty, else `$HOME/.loom`; `None`
/// when neither is set. `lookup_env` reads a variable (tests pass a map).
pub fn loom_home(lookup_env: impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    if let Some(home) = lookup_env("LOOM_HOME").filter(|h| !h.is_empty()) {
        return Some(PathBuf::from(home));
    }
    lookup_env("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| Path::new(&h).join(".loom"))
}

/// The Workshop database in `home`: `workshop.db`.
pub fn workshop_db_path(home: &Path) -> PathBuf {
    home.join("workshop.db")
}

/// The session markers in `home`: `sessions/`.
pub fn sessions_dir(home: &Path) -> PathBuf {
    home.join("sessions")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loom_home_prefers_loom_home_then_home() {
        let env = |k: &str| match k {
            "LOOM_HOME" => Some("/srv/loom".to_owned()),
            "HOME" => Some("/home/u".to_owned()),
            _ => None,
        };
        assert_eq!(loom_home(env), Some(PathBuf::from("/srv/loom")));
        let env = |k: &str| (k == "HOME").then(|| "/home/u".to_owned());
        assert_eq!(loom_home(env), Some(PathBuf::from("/home/u/.loom")));
        assert_eq!(loom_home(|_| None), None);
    }
}
