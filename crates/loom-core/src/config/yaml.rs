//! Reading YAML with positions: the layer between saphyr's spanned nodes and typed configs.
//!
//! serde stops at the first error, and a user fixing a config wants all of them at once.
//! So configs are decoded by hand from saphyr's [`MarkedYaml`] tree: every reader
//! records a [`ConfigError`] with line, column and key path and carries on, and a
//! [`MapReader`] reports every key nobody asked for, with a "did you mean".

use std::path::{Path, PathBuf};

use saphyr::{LoadableYamlNode, MarkedYaml, Scalar, YamlData};
use serde_json::{Map, Value};

use super::error::{ConfigError, ConfigErrors, Location, suggestion};
use crate::name::NameError;

/// A YAML node with its position.
pub(crate) type Node<'a> = MarkedYaml<'a>;

/// Largest config file read, so a wrong path (a log, a dump) fails fast instead of
/// being parsed for minutes.
pub(crate) const MAX_CONFIG_BYTES: u64 = 4 * 1024 * 1024;

/// Reads a config file and parses its single YAML document.
///
/// Returns the source text; the caller parses it with [`parse_document`] so that the
/// nodes can borrow from it.
pub(crate) fn read_source(file: &Path) -> Result<String, ConfigErrors> {
    let meta = std::fs::metadata(file).map_err(|e| ConfigErrors::one(file, io_message(&e)))?;
    if meta.is_dir() {
        return Err(ConfigErrors::one(file, "is a directory, not a config file"));
    }
    if meta.len() > MAX_CONFIG_BYTES {
        return Err(ConfigErrors::one(
            file,
            format!(
                "file is {} bytes; config files are limited to {MAX_CONFIG_BYTES}",
                meta.len()
            ),
        ));
    }
    let bytes = std::fs::read(file).map_err(|e| ConfigErrors::one(file, io_message(&e)))?;
    String::from_utf8(bytes).map_err(|e| {
        ConfigErrors::one(
            file,
            format!(
                "file is not valid UTF-8 (first bad byte at offset {})",
                e.utf8_error().valid_up_to()
            ),
        )
    })
}

fn io_message(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "file not found".to_owned(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        _ => format!("cannot read file: {e}"),
    }
}

/// Parses `source` as exactly one YAML document whose root is a mapping.
pub(crate) fn parse_document<'s>(file: &Path, source: &'s str) -> Result<Node<'s>, ConfigErrors> {
    let mut docs = Node::load_from_str(source).map_err(|e| {
        let m = e.marker();
        ConfigErrors::new(vec![ConfigError {
            file: file.to_owned(),
            location: Some(Location {
                line: m.line(),
                column: m.col() + 1,
            }),
            key_path: String::new(),
            message: format!("invalid YAML: {}", e.info()),
        }])
    })?;
    match docs.len() {
        0 => Err(ConfigErrors::one(
            file,
            "file is empty; expected a YAML mapping",
        )),
        1 => {
            let root = docs.remove(0);
            if root.data.is_null() {
                return Err(ConfigErrors::one(
                    file,
                    "file is empty; expected a YAML mapping",
                ));
            }
            Ok(root)
        }
        n => Err(ConfigErrors::one(
            file,
            format!("file holds {n} YAML documents; a config is exactly one"),
        )),
    }
}

/// Collects the errors of one config file while its nodes are decoded.
pub(crate) struct Decoder {
    file: PathBuf,
    base_dir: PathBuf,
    errors: Vec<ConfigError>,
}

impl Decoder {
    /// A decoder for `file`; relative paths inside it resolve against its directory.
    pub(crate) fn new(file: &Path) -> Self {
        let base_dir = file
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        Decoder {
            file: file.to_owned(),
            base_dir,
            errors: Vec::new(),
        }
    }

    /// The file being decoded.
    pub(crate) fn file(&self) -> &Path {
        &self.file
    }

    /// Records an error at `node`.
    pub(crate) fn error(&mut self, node: &Node<'_>, path: &str, message: impl Into<String>) {
        self.errors.push(ConfigError {
            file: self.file.clone(),
            location: Some(location(node)),
            key_path: path.to_owned(),
            message: message.into(),
        });
    }

    /// Records an error at a position saved earlier.
    pub(crate) fn error_at(&mut self, at: Location, path: &str, message: impl Into<String>) {
        self.errors.push(ConfigError {
            file: self.file.clone(),
            location: Some(at),
            key_path: path.to_owned(),
            message: message.into(),
        });
    }

    /// Adds errors found elsewhere (in a referenced file).
    pub(crate) fn extend(&mut self, errors: impl IntoIterator<Item = ConfigError>) {
        self.errors.extend(errors);
    }

    /// `Ok(value)` when nothing went wrong, else every error.
    pub(crate) fn finish<T>(self, value: Option<T>) -> Result<T, ConfigErrors> {
        match value {
            Some(v) if self.errors.is_empty() => Ok(v),
            _ => {
                let mut errors = self.errors;
                if errors.is_empty() {
                    // A reader returned None without saying why: a bug, but never a silent pass.
                    errors.push(ConfigError::file(self.file, "config could not be read"));
                }
                Err(ConfigErrors::new(errors))
            }
        }
    }

    /// A mapping, ready for keyed reads.
    pub(crate) fn map<'n, 's>(
        &mut self,
        node: &'n Node<'s>,
        path: &str,
    ) -> Option<MapReader<'n, 's>> {
        match &node.data {
            YamlData::Mapping(m) => {
                let mut entries = Vec::with_capacity(m.len());
                for (k, v) in m {
                    match scalar_str(k) {
                        Some(key) => entries.push(Entry {
                            key,
                            key_node: k,
                            value: v,
                            used: false,
                        }),
                        None => self.error(k, path, "mapping keys must be strings"),
                    }
                }
                Some(MapReader {
                    node,
                    path: path.to_owned(),
                    entries,
                    asked: Vec::new(),
                })
            }
            _ => {
                self.error(
                    node,
                    path,
                    format!("expected a mapping, found {}", describe(node)),
                );
                None
            }
        }
    }

    /// A sequence's items.
    pub(crate) fn seq<'n, 's>(&mut self, node: &'n Node<'s>, path: &str) -> Option<&'n [Node<'s>]> {
        match &node.data {
            YamlData::Sequence(items) => Some(items),
            _ => {
                self.error(
                    node,
                    path,
                    format!("expected a list, found {}", describe(node)),
                );
                None
            }
        }
    }

    /// A string (YAML numbers and booleans are not strings: quote them).
    pub(crate) fn string(&mut self, node: &Node<'_>, path: &str) -> Option<String> {
        match scalar_str(node) {
            Some(s) => Some(s.to_owned()),
            None => {
                self.error(
                    node,
                    path,
                    format!("expected a string, found {}", describe(node)),
                );
                None
            }
        }
    }

    /// A string that is not empty or only whitespace.
    pub(crate) fn non_empty_string(&mut self, node: &Node<'_>, path: &str) -> Option<String> {
        let s = self.string(node, path)?;
        if s.trim().is_empty() {
            self.error(node, path, "must not be empty");
            return None;
        }
        Some(s)
    }

    /// A boolean.
    pub(crate) fn bool(&mut self, node: &Node<'_>, path: &str) -> Option<bool> {
        match &node.data {
            YamlData::Value(Scalar::Boolean(b)) => Some(*b),
            _ => {
                self.error(
                    node,
                    path,
                    format!("expected true or false, found {}", describe(node)),
                );
                None
            }
        }
    }

    /// An integer in `min..=max` (booleans are not integers).
    pub(crate) fn int_in(
        &mut self,
        node: &Node<'_>,
        path: &str,
        min: i64,
        max: i64,
    ) -> Option<i64> {
        match &node.data {
            YamlData::Value(Scalar::Integer(i)) if (min..=max).contains(i) => Some(*i),
            YamlData::Value(Scalar::Integer(i)) => {
                let range = if max >= i64::from(u32::MAX) {
                    format!("at least {min}")
                } else {
                    format!("between {min} and {max}")
                };
                self.error(node, path, format!("must be {range}, found {i}"));
                None
            }
            _ => {
                self.error(
                    node,
                    path,
                    format!("expected an integer, found {}", describe(node)),
                );
                None
            }
        }
    }

    /// A `u32` of at least `min`.
    pub(crate) fn u32_min(&mut self, node: &Node<'_>, path: &str, min: u32) -> Option<u32> {
        self.int_in(node, path, i64::from(min), i64::from(u32::MAX))
            .and_then(|i| u32::try_from(i).ok())
    }

    /// A finite number greater than zero (an integer or a float; booleans rejected).
    pub(crate) fn positive_number(&mut self, node: &Node<'_>, path: &str) -> Option<f64> {
        let n = match &node.data {
            // i64 → f64 is exact for every value a config needs.
            #[allow(clippy::cast_precision_loss)]
            YamlData::Value(Scalar::Integer(i)) => *i as f64,
            YamlData::Value(Scalar::FloatingPoint(f)) => f.into_inner(),
            _ => {
                self.error(
                    node,
                    path,
                    format!("expected a number, found {}", describe(node)),
                );
                return None;
            }
        };
        if !(n.is_finite() && n > 0.0) {
            self.error(
                node,
                path,
                format!("must be a number greater than 0, found {n}"),
            );
            return None;
        }
        Some(n)
    }

    /// A validated name (`^[a-z][a-z0-9_]*$`).
    pub(crate) fn name<T>(&mut self, node: &Node<'_>, path: &str) -> Option<T>
    where
        T: TryFrom<String, Error = NameError>,
    {
        let s = self.string(node, path)?;
        match T::try_from(s) {
            Ok(n) => Some(n),
            Err(e) => {
                self.error(node, path, e.to_string());
                None
            }
        }
    }

    /// A value parsed by `FromStr`, with the parser's error as the message.
    pub(crate) fn parsed<T>(&mut self, node: &Node<'_>, path: &str) -> Option<T>
    where
        T: std::str::FromStr,
        T::Err: std::fmt::Display,
    {
        let s = self.string(node, path)?;
        match s.parse() {
            Ok(v) => Some(v),
            Err(e) => {
                self.error(node, path, e.to_string());
                None
            }
        }
    }

    /// A path, resolved against the directory of the config file.
    pub(crate) fn path(&mut self, node: &Node<'_>, path: &str) -> Option<PathBuf> {
        let s = self.non_empty_string(node, path)?;
        Some(self.resolve(&s))
    }

    /// `s` resolved against the directory of the config file (absolute paths kept).
    pub(crate) fn resolve(&self, s: &str) -> PathBuf {
        let p = Path::new(s);
        if p.is_absolute() {
            p.to_owned()
        } else {
            self.base_dir.join(p)
        }
    }

    /// Any YAML value as JSON (for schemas and free-form settings).
    pub(crate) fn json(&mut self, node: &Node<'_>, path: &str) -> Option<Value> {
        let before = self.errors.len();
        let v = self.json_inner(node, path);
        (self.errors.len() == before).then_some(v)
    }

    fn json_inner(&mut self, node: &Node<'_>, path: &str) -> Value {
        match &node.data {
            YamlData::Value(s) => match s {
                Scalar::Null => Value::Null,
                Scalar::Boolean(b) => Value::Bool(*b),
                Scalar::Integer(i) => Value::from(*i),
                Scalar::FloatingPoint(f) => match serde_json::Number::from_f64(f.into_inner()) {
                    Some(n) => Value::Number(n),
                    None => {
                        self.error(node, path, "NaN and infinity cannot be represented in JSON");
                        Value::Null
                    }
                },
                Scalar::String(s) => Value::String(s.to_string()),
            },
            YamlData::Sequence(items) => Value::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, n)| self.json_inner(n, &index(path, i)))
                    .collect(),
            ),
            YamlData::Mapping(m) => {
                let mut out = Map::with_capacity(m.len());
                for (k, v) in m {
                    match scalar_key(k) {
                        Some(key) => {
                            let child = child(path, &key);
                            let value = self.json_inner(v, &child);
                            out.insert(key, value);
                        }
                        None => self.error(k, path, "mapping keys must be strings or numbers"),
                    }
                }
                Value::Object(out)
            }
            YamlData::Tagged(_, inner) => self.json_inner(inner, path),
            _ => {
                self.error(
                    node,
                    path,
                    format!("unsupported YAML value: {}", describe(node)),
                );
                Value::Null
            }
        }
    }

    /// A mapping as a JSON object.
    pub(crate) fn json_object(
        &mut self,
        node: &Node<'_>,
        path: &str,
    ) -> Option<Map<String, Value>> {
        if !matches!(node.data, YamlData::Mapping(_)) {
            self.error(
                node,
                path,
                format!("expected a mapping, found {}", describe(node)),
            );
            return None;
        }
        match self.json(node, path)? {
            Value::Object(m) => Some(m),
            _ => None,
        }
    }

    /// A list of non-empty strings.
    pub(crate) fn string_list(&mut self, node: &Node<'_>, path: &str) -> Option<Vec<String>> {
        let items = self.seq(node, path)?;
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            match self.non_empty_string(item, &index(path, i)) {
                Some(s) => out.push(s),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }
}

/// One key of a mapping being read.
struct Entry<'n, 's> {
    key: &'n str,
    key_node: &'n Node<'s>,
    value: &'n Node<'s>,
    used: bool,
}

/// Keyed reads from one mapping; [`MapReader::finish`] reports the keys nobody read.
pub(crate) struct MapReader<'n, 's> {
    node: &'n Node<'s>,
    path: String,
    entries: Vec<Entry<'n, 's>>,
    asked: Vec<&'static str>,
}

impl<'n, 's> MapReader<'n, 's> {
    /// The mapping node itself.
    pub(crate) fn node(&self) -> &'n Node<'s> {
        self.node
    }

    /// The key path of this mapping.
    pub(crate) fn path(&self) -> &str {
        &self.path
    }

    /// The key path of `key` inside this mapping.
    pub(crate) fn child_path(&self, key: &str) -> String {
        child(&self.path, key)
    }

    /// The value of `key`, if present and not null. Marks the key as known.
    pub(crate) fn get(&mut self, key: &'static str) -> Option<&'n Node<'s>> {
        self.asked.push(key);
        let e = self.entries.iter_mut().find(|e| e.key == key)?;
        e.used = true;
        (!e.value.data.is_null()).then_some(e.value)
    }

    /// Whether `key` is present (even with a null value). Marks the key as known.
    pub(crate) fn has(&mut self, key: &'static str) -> bool {
        self.asked.push(key);
        match self.entries.iter_mut().find(|e| e.key == key) {
            Some(e) => {
                e.used = true;
                true
            }
            None => false,
        }
    }

    /// Reads optional `key` with `read`.
    pub(crate) fn optional<T>(
        &mut self,
        d: &mut Decoder,
        key: &'static str,
        read: impl FnOnce(&mut Decoder, &'n Node<'s>, &str) -> Option<T>,
    ) -> Option<T> {
        let node = self.get(key)?;
        read(d, node, &self.child_path(key))
    }

    /// Reads required `key` with `read`; a missing key is an error at the mapping.
    pub(crate) fn required<T>(
        &mut self,
        d: &mut Decoder,
        key: &'static str,
        read: impl FnOnce(&mut Decoder, &'n Node<'s>, &str) -> Option<T>,
    ) -> Option<T> {
        match self.get(key) {
            Some(node) => read(d, node, &self.child_path(key)),
            None => {
                let path = self.path.clone();
                d.error(self.node, &path, format!("missing required key '{key}'"));
                None
            }
        }
    }

    /// The entries whose keys were not read, as `(key, key node, value node)`.
    pub(crate) fn remaining(&mut self) -> Vec<(&'n str, &'n Node<'s>, &'n Node<'s>)> {
        self.entries
            .iter_mut()
            .filter(|e| !e.used)
            .map(|e| {
                e.used = true;
                (e.key, e.key_node, e.value)
            })
            .collect()
    }

    /// Reports every key that was not read as unknown, suggesting a close known key.
    pub(crate) fn finish(self, d: &mut Decoder) {
        for e in self.entries.iter().filter(|e| !e.used) {
            let hint = suggestion(e.key, self.asked.iter().copied());
            let known = if hint.is_empty() && !self.asked.is_empty() {
                let mut keys: Vec<&str> = self.asked.clone();
                keys.sort_unstable();
                keys.dedup();
                format!(" (known keys: {})", keys.join(", "))
            } else {
                hint
            };
            d.error(
                e.key_node,
                &child(&self.path, e.key),
                format!("unknown key '{}'{known}", e.key),
            );
        }
    }
}

/// The position of `node`.
pub(crate) fn location(node: &Node<'_>) -> Location {
    let m = node.span.start;
    Location {
        line: m.line(),
        column: m.col() + 1,
    }
}

/// `parent.key` (or `key` at the root).
pub(crate) fn child(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

/// `parent[i]`.
pub(crate) fn index(parent: &str, i: usize) -> String {
    format!("{parent}[{i}]")
}

/// The node's string, if it is a string scalar.
pub(crate) fn scalar_str<'n>(node: &'n Node<'_>) -> Option<&'n str> {
    match &node.data {
        YamlData::Value(Scalar::String(s)) => Some(s),
        _ => None,
    }
}

/// A mapping key as text: strings, and numbers written as keys (`1: …`).
fn scalar_key(node: &Node<'_>) -> Option<String> {
    match &node.data {
        YamlData::Value(Scalar::String(s)) => Some(s.to_string()),
        YamlData::Value(Scalar::Integer(i)) => Some(i.to_string()),
        YamlData::Value(Scalar::Boolean(b)) => Some(b.to_string()),
        _ => None,
    }
}

/// "a string", "an integer (42)"… for error messages.
pub(crate) fn describe(node: &Node<'_>) -> String {
    match &node.data {
        YamlData::Value(Scalar::Null) => "null".to_owned(),
        YamlData::Value(Scalar::Boolean(b)) => format!("a boolean ({b})"),
        YamlData::Value(Scalar::Integer(i)) => format!("an integer ({i})"),
        YamlData::Value(Scalar::FloatingPoint(f)) => format!("a number ({f})"),
        YamlData::Value(Scalar::String(s)) => {
            let preview: String = s.chars().take(40).collect();
            if preview.len() < s.len() {
                format!("a string ('{preview}…')")
            } else {
                format!("a string ('{s}')")
            }
        }
        YamlData::Sequence(_) => "a list".to_owned(),
        YamlData::Mapping(_) => "a mapping".to_owned(),
        YamlData::Tagged(tag, _) => format!("a value tagged {tag}"),
        _ => "an unsupported YAML value".to_owned(),
    }
}

/// The node inside `node` that a JSON pointer (`/properties/x/type`) designates, or the
/// deepest one found on the way, so that a schema problem points at its line.
pub(crate) fn node_at_pointer<'n, 's>(node: &'n Node<'s>, pointer: &str) -> &'n Node<'s> {
    let mut cur = node;
    for raw in pointer.split('/').skip(1) {
        let token = raw.replace("~1", "/").replace("~0", "~");
        let next = match &cur.data {
            YamlData::Mapping(m) => m
                .iter()
                .find(|(k, _)| scalar_key(k).as_deref() == Some(token.as_str()))
                .map(|(_, v)| v),
            YamlData::Sequence(items) => token.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        };
        match next {
            Some(n) => cur = n,
            None => break,
        }
    }
    cur
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(src: &str) -> (Decoder, Node<'_>) {
        let file = Path::new("t.yaml");
        let root = parse_document(file, src).expect("valid yaml");
        (Decoder::new(file), root)
    }

    #[test]
    fn unknown_keys_are_reported_with_a_suggestion() {
        let (mut d, root) = decode("name: x\ntimout_seconds: 3\n");
        let mut m = d.map(&root, "").expect("mapping");
        let _ = m.required(&mut d, "name", Decoder::string);
        let _ = m.optional(&mut d, "timeout_seconds", Decoder::positive_number);
        m.finish(&mut d);
        let errs = d.finish(Some(())).expect_err("unknown key");
        assert_eq!(
            errs.errors()[0].to_string(),
            "t.yaml:2:1: timout_seconds: unknown key 'timout_seconds'; did you mean 'timeout_seconds'?"
        );
    }

    #[test]
    fn every_error_is_collected() {
        let (mut d, root) = decode("a: 1\nb: true\nc: -2\n");
        let mut m = d.map(&root, "").expect("mapping");
        let _ = m.required(&mut d, "a", Decoder::string);
        let _ = m.required(&mut d, "b", |d, n, p| d.int_in(n, p, 0, 10));
        let _ = m.required(&mut d, "c", Decoder::positive_number);
        let _ = m.required(&mut d, "d", Decoder::string);
        m.finish(&mut d);
        let errs = d.finish(Some(())).expect_err("errors");
        let text: Vec<String> = errs.errors().iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "t.yaml:1:1: missing required key 'd'",
                "t.yaml:1:4: a: expected a string, found an integer (1)",
                "t.yaml:2:4: b: expected an integer, found a boolean (true)",
                "t.yaml:3:4: c: must be a number greater than 0, found -2",
            ]
        );
    }

    #[test]
    fn syntax_errors_and_duplicate_keys_point_at_the_line() {
        let file = Path::new("t.yaml");
        let e = parse_document(file, "a: 1\na: 2\n").expect_err("duplicate");
        assert!(e.errors()[0].to_string().starts_with("t.yaml:2:"), "{e}");
        let e = parse_document(file, "a: [1,\n").expect_err("syntax");
        assert!(e.errors()[0].message.starts_with("invalid YAML"), "{e}");
        let e = parse_document(file, "").expect_err("empty");
        assert_eq!(
            e.errors()[0].message,
            "file is empty; expected a YAML mapping"
        );
        let e = parse_document(file, "a: 1\n---\nb: 2\n").expect_err("two docs");
        assert!(e.errors()[0].message.contains("2 YAML documents"), "{e}");
    }

    #[test]
    fn pointer_lookup_finds_the_schema_line() {
        let (_, root) = decode("schema:\n  properties:\n    x:\n      type: strng\n");
        let n = node_at_pointer(&root, "/schema/properties/x/type");
        assert_eq!(location(n).line, 4);
    }
}
