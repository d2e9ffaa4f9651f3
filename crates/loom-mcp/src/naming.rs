//! Display names for tools and prompts federated from several servers, and resolving a
//! name back to its (server, name) pair.
//!
//! Keys are built from the pair, never by concatenating strings and looking the result up
//! in a map, so no server can capture another's qualified name: a tool literally named
//! `git.status` on server `fs` never shadows `status` on server `git`.

use std::collections::HashMap;

/// When tool and prompt names carry their server's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum PrefixMode {
    /// Bare when the name is unique across servers, `server.name` when several servers
    /// share it (both copies are then qualified and the bare name is unknown).
    #[default]
    Conditional,
    /// Always `server.name`, so names do not change when a server is added.
    Always,
    /// Always bare; when servers share a name, the first server (in registry order)
    /// keeps it and the others' copies are not listed (still callable as `server.name`).
    Never,
}

impl std::str::FromStr for PrefixMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "conditional" => Ok(Self::Conditional),
            "always" => Ok(Self::Always),
            "never" => Ok(Self::Never),
            other => Err(format!(
                "unknown prefix mode '{other}' (expected conditional, always or never)"
            )),
        }
    }
}

/// One named item of one server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Item {
    /// The server's index in registry order.
    pub(crate) server: usize,
    /// The item's own (unqualified) name.
    pub(crate) name: String,
}

/// Items in registry order and their display names (`None`: not listed).
#[derive(Debug, Clone, Default)]
pub(crate) struct Names {
    pub(crate) items: Vec<Item>,
    pub(crate) display: Vec<Option<String>>,
    by_display: HashMap<String, usize>,
}

impl Names {
    /// Names `items` (already in registry order) for `servers` under `mode`.
    pub(crate) fn build(servers: &[String], items: Vec<Item>, mode: PrefixMode) -> Self {
        let mut owners: HashMap<&str, usize> = HashMap::new();
        for item in &items {
            *owners.entry(item.name.as_str()).or_default() += 1;
        }
        let qualified = |item: &Item| format!("{}.{}", servers[item.server], item.name);
        // A bare name must not read as another pair's qualified name.
        let is_qualified_elsewhere = |name: &str| split_qualified(servers, name, &items).is_some();
        let mut seen_bare: HashMap<&str, ()> = HashMap::new();
        let display: Vec<Option<String>> = items
            .iter()
            .map(|item| {
                let unique = owners.get(item.name.as_str()) == Some(&1);
                match mode {
                    PrefixMode::Always => Some(qualified(item)),
                    PrefixMode::Conditional => {
                        if unique && !is_qualified_elsewhere(&item.name) {
                            Some(item.name.clone())
                        } else {
                            Some(qualified(item))
                        }
                    }
                    PrefixMode::Never => {
                        if is_qualified_elsewhere(&item.name)
                            || seen_bare.insert(item.name.as_str(), ()).is_some()
                        {
                            tracing::warn!(
                                server = %servers[item.server],
                                name = %item.name,
                                "Name already taken with prefix mode 'never'; not listing this copy."
                            );
                            None
                        } else {
                            Some(item.name.clone())
                        }
                    }
                }
            })
            .collect();
        let by_display = display
            .iter()
            .enumerate()
            .filter_map(|(i, d)| d.clone().map(|d| (d, i)))
            .collect();
        Self {
            items,
            display,
            by_display,
        }
    }

    /// The item `name` refers to: a listed display name, `server.name`,
    /// `server__name`, or a bare name that exactly one server has.
    pub(crate) fn resolve(&self, servers: &[String], name: &str) -> Option<usize> {
        if let Some(&i) = self.by_display.get(name) {
            return Some(i);
        }
        if let Some(i) = split_qualified(servers, name, &self.items) {
            return Some(i);
        }
        let mut bare = self
            .items
            .iter()
            .enumerate()
            .filter(|(_, item)| item.name == name);
        match (bare.next(), bare.next()) {
            (Some((i, _)), None) => Some(i),
            _ => None,
        }
    }

    /// The listed items with their display names, in order.
    pub(crate) fn listed(&self) -> impl Iterator<Item = (usize, &str)> {
        self.display
            .iter()
            .enumerate()
            .filter_map(|(i, d)| d.as_deref().map(|d| (i, d)))
    }
}

/// `server.name` or `server__name` for an existing pair: server names contain neither
/// `.` nor `__`, so the first separator is the split.
fn split_qualified(servers: &[String], name: &str, items: &[Item]) -> Option<usize> {
    for separator in [".", "__"] {
        if let Some((server, rest)) = name.split_once(separator)
            && let Some(index) = servers.iter().position(|s| s == server)
            && let Some(found) = items
                .iter()
                .position(|item| item.server == index && item.name == rest)
        {
            return Some(found);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn servers(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn items(list: &[(usize, &str)]) -> Vec<Item> {
        list.iter()
            .map(|(server, name)| Item {
                server: *server,
                name: name.to_string(),
            })
            .collect()
    }

    fn shown(names: &Names) -> Vec<&str> {
        names.listed().map(|(_, d)| d).collect()
    }

    #[test]
    fn unique_names_are_bare_and_shared_names_qualified() {
        let s = servers(&["git", "fs"]);
        let n = Names::build(
            &s,
            items(&[(0, "commit"), (0, "status"), (1, "status"), (1, "read")]),
            PrefixMode::Conditional,
        );
        assert_eq!(shown(&n), ["commit", "git.status", "fs.status", "read"]);
        assert_eq!(
            n.resolve(&s, "status"),
            None,
            "a shared bare name is unknown"
        );
        assert_eq!(n.resolve(&s, "git.status"), Some(1));
        assert_eq!(n.resolve(&s, "git__status"), Some(1));
        assert_eq!(n.resolve(&s, "fs__status"), Some(2));
        for key in ["commit", "git.commit", "git__commit"] {
            assert_eq!(n.resolve(&s, key), Some(0), "{key}");
        }
        assert_eq!(n.resolve(&s, "fs.commit"), None);
        assert_eq!(n.resolve(&s, "nope"), None);
    }

    #[test]
    fn no_server_can_shadow_another_servers_qualified_name() {
        let s = servers(&["git", "fs"]);
        let n = Names::build(
            &s,
            items(&[(0, "status"), (1, "git.status"), (1, "git__status")]),
            PrefixMode::Conditional,
        );
        assert_eq!(
            shown(&n),
            ["status", "fs.git.status", "fs.git__status"],
            "fs's look-alikes are qualified"
        );
        assert_eq!(n.resolve(&s, "git.status"), Some(0));
        assert_eq!(n.resolve(&s, "git__status"), Some(0));
        assert_eq!(n.resolve(&s, "fs.git.status"), Some(1));
        assert_eq!(n.resolve(&s, "fs__git__status"), Some(2));
    }

    #[test]
    fn display_names_are_unique_in_every_mode() {
        let s = servers(&["a", "b", "a_"]);
        let list = items(&[(0, "x"), (1, "x"), (1, "a.x"), (2, "_x"), (0, "y")]);
        for mode in [
            PrefixMode::Conditional,
            PrefixMode::Always,
            PrefixMode::Never,
        ] {
            let n = Names::build(&s, list.clone(), mode);
            let mut all = shown(&n);
            let len = all.len();
            all.sort_unstable();
            all.dedup();
            assert_eq!(all.len(), len, "{mode:?}: {:?}", shown(&n));
        }
    }

    #[test]
    fn always_and_never_modes() {
        let s = servers(&["a", "b"]);
        let list = items(&[(0, "x"), (1, "x"), (1, "y")]);
        let always = Names::build(&s, list.clone(), PrefixMode::Always);
        assert_eq!(shown(&always), ["a.x", "b.x", "b.y"]);
        assert_eq!(always.resolve(&s, "y"), Some(2), "bare still accepted");
        let never = Names::build(&s, list, PrefixMode::Never);
        assert_eq!(
            shown(&never),
            ["x", "y"],
            "first server keeps a shared name"
        );
        assert_eq!(never.resolve(&s, "x"), Some(0));
        assert_eq!(
            never.resolve(&s, "b.x"),
            Some(1),
            "hidden copy still callable"
        );
        assert_eq!("always".parse(), Ok(PrefixMode::Always));
        assert!("sometimes".parse::<PrefixMode>().is_err());
    }

    #[test]
    fn two_instances_of_one_server_are_fully_qualified() {
        let s = servers(&["git_a", "git_b"]);
        let n = Names::build(
            &s,
            items(&[(0, "status"), (0, "log"), (1, "status"), (1, "log")]),
            PrefixMode::Conditional,
        );
        assert_eq!(
            shown(&n),
            ["git_a.status", "git_a.log", "git_b.status", "git_b.log"]
        );
    }
}
