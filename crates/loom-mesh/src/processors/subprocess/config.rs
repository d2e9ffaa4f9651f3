//! Reading the subprocess processor's `backend_config`, reporting every problem at once.

use std::path::{Path, PathBuf};

use loom_core::message::JsonObject;
use serde_json::Value;

use super::{
    DEFAULT_SUBPROCESS_TIMEOUT_SECONDS, EnvPart, Flag, Mode, Parse, SHELL_METACHARACTERS,
    SubprocessProcessor,
};

/// The keys `backend_config` may have.
const TOP_KEYS: &[&str] = &[
    "command",
    "io_mode",
    "subprocess_timeout",
    "input_mapping",
    "output_mapping",
    "env",
    "inherit_env",
    "working_dir",
    "allowed_commands",
    "model_used",
];

impl SubprocessProcessor {
    /// Builds the processor from `backend_config`; relative paths are resolved against
    /// `base_dir` (the worker config's directory). Returns every problem found.
    pub fn from_config(
        backend_config: &JsonObject,
        base_dir: Option<&Path>,
    ) -> Result<Self, Vec<String>> {
        let mut r = Reader::default();
        r.known_keys(backend_config, "backend_config", TOP_KEYS);
        let command = match backend_config.get("command") {
            None => {
                r.problem("backend_config.command: missing (a non-empty list of strings)");
                None
            }
            Some(v) => r.string_list(v, "backend_config.command"),
        };
        if let Some(command) = &command {
            if command.is_empty() || command[0].is_empty() {
                r.problem("backend_config.command: must be a non-empty list whose first element names the program");
            }
            for (i, arg) in command.iter().enumerate() {
                r.no_metacharacters(arg, &format!("backend_config.command[{i}]"));
            }
        }
        let allowed = backend_config
            .get("allowed_commands")
            .and_then(|v| r.string_list(v, "backend_config.allowed_commands"));
        if let (Some(allowed), Some(program)) = (&allowed, command.as_ref().and_then(|c| c.first()))
        {
            if !allowed.contains(program) {
                r.problem(format!(
                    "backend_config.command[0]: '{program}' is not in allowed_commands ({})",
                    allowed.join(", ")
                ));
            }
        }
        let timeout_seconds = match backend_config.get("subprocess_timeout") {
            None => DEFAULT_SUBPROCESS_TIMEOUT_SECONDS,
            Some(v) => match v.as_f64() {
                Some(s) if s.is_finite() && s > 0.0 && s < 1e9 => s,
                _ => {
                    r.problem(format!(
                        "backend_config.subprocess_timeout: expected a number of seconds > 0, got {v}"
                    ));
                    DEFAULT_SUBPROCESS_TIMEOUT_SECONDS
                }
            },
        };
        let env = backend_config
            .get("env")
            .and_then(|v| r.env(v))
            .unwrap_or_default();
        let inherit_env = backend_config
            .get("inherit_env")
            .and_then(|v| r.string_list(v, "backend_config.inherit_env"))
            .unwrap_or_default();
        for (i, name) in inherit_env.iter().enumerate() {
            r.env_name(name, &format!("backend_config.inherit_env[{i}]"));
        }
        let working_dir = backend_config
            .get("working_dir")
            .and_then(|v| r.string(v, "backend_config.working_dir"))
            .map(|d| match base_dir {
                Some(base) if Path::new(&d).is_relative() => base.join(d),
                _ => PathBuf::from(d),
            });
        if let Some(dir) = &working_dir {
            if !dir.is_dir() {
                r.problem(format!(
                    "backend_config.working_dir: '{}' is not a directory",
                    dir.display()
                ));
            }
        }
        let model_used = backend_config
            .get("model_used")
            .and_then(|v| r.string(v, "backend_config.model_used"));
        let io_mode = backend_config
            .get("io_mode")
            .map_or(Some("json_stdio".to_owned()), |v| {
                r.string(v, "backend_config.io_mode")
            });
        let empty = JsonObject::new();
        let input = r
            .object_at(backend_config, "input_mapping")
            .unwrap_or(&empty);
        let output = r
            .object_at(backend_config, "output_mapping")
            .unwrap_or(&empty);
        let mode = io_mode.and_then(|m| r.mode(&m, input, output));
        match (command, mode) {
            (Some(command), Some(mode)) if r.problems.is_empty() => Ok(SubprocessProcessor {
                model_used: model_used.unwrap_or_else(|| command[0].clone()),
                command,
                mode,
                timeout_seconds,
                env,
                inherit_env,
                working_dir,
            }),
            _ => Err(r.problems),
        }
    }
}

/// Collects config problems, each prefixed with its key path.
#[derive(Debug, Default)]
struct Reader {
    problems: Vec<String>,
}

impl Reader {
    fn problem(&mut self, p: impl Into<String>) {
        self.problems.push(p.into());
    }

    fn known_keys(&mut self, map: &JsonObject, path: &str, known: &[&str]) {
        for key in map.keys() {
            if !known.contains(&key.as_str()) {
                self.problem(format!(
                    "{path}: unknown key '{key}' (valid: {})",
                    known.join(", ")
                ));
            }
        }
    }

    fn string(&mut self, v: &Value, path: &str) -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            other => {
                self.problem(format!(
                    "{path}: expected a string, got {}",
                    json_type(other)
                ));
                None
            }
        }
    }

    fn bool(&mut self, v: &Value, path: &str) -> Option<bool> {
        match v {
            Value::Bool(b) => Some(*b),
            other => {
                self.problem(format!(
                    "{path}: expected true or false, got {}",
                    json_type(other)
                ));
                None
            }
        }
    }

    fn string_list(&mut self, v: &Value, path: &str) -> Option<Vec<String>> {
        let Value::Array(items) = v else {
            self.problem(format!(
                "{path}: expected a list of strings, got {}",
                json_type(v)
            ));
            return None;
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            out.push(self.string(item, &format!("{path}[{i}]"))?);
        }
        Some(out)
    }

    fn object_at<'a>(&mut self, map: &'a JsonObject, key: &str) -> Option<&'a JsonObject> {
        match map.get(key)? {
            Value::Object(o) => Some(o),
            Value::Null => None,
            other => {
                self.problem(format!(
                    "backend_config.{key}: expected a mapping, got {}",
                    json_type(other)
                ));
                None
            }
        }
    }

    fn no_metacharacters(&mut self, arg: &str, path: &str) {
        if let Some(c) = arg.chars().find(|c| SHELL_METACHARACTERS.contains(c)) {
            self.problem(format!(
                "{path}: '{arg}' contains the shell metacharacter '{c}'; commands never run through a shell, so write each argument as its own list element"
            ));
        }
        if arg.contains('\0') {
            self.problem(format!("{path}: contains a NUL byte"));
        }
    }

    fn env_name(&mut self, name: &str, path: &str) {
        if name.is_empty() || name.contains('=') || name.contains('\0') {
            self.problem(format!(
                "{path}: '{name}' is not a valid environment variable name"
            ));
        }
    }

    fn env(&mut self, v: &Value) -> Option<Vec<(String, Vec<EnvPart>)>> {
        let Value::Object(map) = v else {
            self.problem(format!(
                "backend_config.env: expected a mapping of names to strings, got {}",
                json_type(v)
            ));
            return None;
        };
        let mut out = Vec::new();
        for (name, value) in map {
            let path = format!("backend_config.env.{name}");
            self.env_name(name, &path);
            let Some(value) = self.string(value, &path) else {
                continue;
            };
            match env_template(&value) {
                Ok(parts) => out.push((name.clone(), parts)),
                Err(e) => self.problem(format!("{path}: {e}")),
            }
        }
        Some(out)
    }

    fn field(&mut self, map: &JsonObject, key: &str, path: &str, default: &str) -> String {
        map.get(key)
            .and_then(|v| self.string(v, &format!("{path}.{key}")))
            .unwrap_or_else(|| default.to_owned())
    }

    fn parse_mode(&mut self, output: &JsonObject) -> Parse {
        let Some(v) = output.get("parse") else {
            return Parse::Raw;
        };
        match self
            .string(v, "backend_config.output_mapping.parse")
            .as_deref()
        {
            Some("raw") | None => Parse::Raw,
            Some("strip") => Parse::Strip,
            Some("int") => Parse::Int,
            Some("float") => Parse::Float,
            Some("lines") => Parse::Lines,
            Some("json") => Parse::Json,
            Some(other) => {
                self.problem(format!(
                    "backend_config.output_mapping.parse: unknown parse mode '{other}' (valid: raw, strip, int, float, lines, json)"
                ));
                Parse::Raw
            }
        }
    }

    fn extension(&mut self, map: &JsonObject, key: &str, default: &str) -> String {
        let path = "backend_config.input_mapping";
        let ext = self.field(map, key, path, default);
        if ext.contains('/') || ext.contains('\0') {
            self.problem(format!("{path}.{key}: '{ext}' must not contain '/'"));
        }
        self.no_metacharacters(&ext, &format!("{path}.{key}"));
        ext
    }

    fn mode(&mut self, io_mode: &str, input: &JsonObject, output: &JsonObject) -> Option<Mode> {
        const IN: &str = "backend_config.input_mapping";
        const OUT: &str = "backend_config.output_mapping";
        let mode = match io_mode {
            "json_stdio" => {
                self.known_keys(input, IN, &["fields"]);
                self.known_keys(output, OUT, &["extract_key", "target"]);
                let fields = match input.get("fields") {
                    None => None,
                    Some(Value::String(s)) if s == "all" => None,
                    Some(v) => self.string_list(v, &format!("{IN}.fields")),
                };
                let extract_key = output
                    .get("extract_key")
                    .and_then(|v| self.string(v, &format!("{OUT}.extract_key")))
                    .filter(|k| !k.is_empty());
                let target = output
                    .get("target")
                    .and_then(|v| self.string(v, &format!("{OUT}.target")))
                    .filter(|t| t != "root");
                Mode::JsonStdio {
                    fields,
                    extract_key,
                    target,
                }
            }
            "stdin_stdout" => {
                self.known_keys(input, IN, &["stdin_field"]);
                self.known_keys(output, OUT, &["stdout_field", "parse"]);
                Mode::StdinStdout {
                    stdin_field: self.field(input, "stdin_field", IN, "input"),
                    stdout_field: self.field(output, "stdout_field", OUT, "output"),
                    parse: self.parse_mode(output),
                }
            }
            "args_stdout" => {
                self.known_keys(input, IN, &["positional", "flags", "end_of_options"]);
                self.known_keys(output, OUT, &["stdout_field", "parse"]);
                let positional = self.positional(input.get("positional"));
                let flags = self.flags(input.get("flags"));
                let end_of_options = input
                    .get("end_of_options")
                    .and_then(|v| self.bool(v, &format!("{IN}.end_of_options")))
                    .unwrap_or(true);
                Mode::ArgsStdout {
                    positional,
                    flags,
                    end_of_options,
                    stdout_field: self.field(output, "stdout_field", OUT, "output"),
                    parse: self.parse_mode(output),
                }
            }
            "file_file" => {
                self.known_keys(
                    input,
                    IN,
                    &[
                        "content_field",
                        "input_extension",
                        "output_extension",
                        "args_template",
                    ],
                );
                self.known_keys(output, OUT, &["output_field", "read_mode"]);
                let args_template = match input.get("args_template") {
                    None => vec!["{input}".to_owned()],
                    Some(v) => self
                        .string_list(v, &format!("{IN}.args_template"))
                        .unwrap_or_default(),
                };
                for (i, arg) in args_template.iter().enumerate() {
                    let fixed = arg.replace("{input}", "").replace("{output}", "");
                    self.no_metacharacters(&fixed, &format!("{IN}.args_template[{i}]"));
                }
                let binary = match self.field(output, "read_mode", OUT, "text").as_str() {
                    "text" => false,
                    "binary" => true,
                    other => {
                        self.problem(format!(
                            "{OUT}.read_mode: unknown read_mode '{other}' (valid: text, binary)"
                        ));
                        false
                    }
                };
                Mode::FileFile {
                    content_field: self.field(input, "content_field", IN, "content"),
                    input_extension: self.extension(input, "input_extension", ".tmp"),
                    output_extension: self.extension(input, "output_extension", ".out"),
                    args_template,
                    output_field: self.field(output, "output_field", OUT, "content"),
                    binary,
                }
            }
            other => {
                self.problem(format!(
                    "backend_config.io_mode: unknown io_mode '{other}' (valid: json_stdio, stdin_stdout, args_stdout, file_file)"
                ));
                return None;
            }
        };
        Some(mode)
    }

    /// `positional: [{field: name}, …]`; a bare string is accepted for `{field: …}`.
    fn positional(&mut self, v: Option<&Value>) -> Vec<String> {
        let path = "backend_config.input_mapping.positional";
        let Some(v) = v else {
            return Vec::new();
        };
        let Value::Array(items) = v else {
            self.problem(format!(
                "{path}: expected a list of {{field: name}}, got {}",
                json_type(v)
            ));
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let p = format!("{path}[{i}]");
            match item {
                Value::String(s) => out.push(s.clone()),
                Value::Object(m) => {
                    self.known_keys(m, &p, &["field"]);
                    match m.get("field") {
                        Some(f) => {
                            if let Some(f) = self.string(f, &format!("{p}.field")) {
                                out.push(f);
                            }
                        }
                        None => self.problem(format!("{p}: missing 'field'")),
                    }
                }
                other => self.problem(format!(
                    "{p}: expected {{field: name}}, got {}",
                    json_type(other)
                )),
            }
        }
        out
    }

    /// `flags: [{flag: --x, field: name, is_boolean: false}, …]`.
    fn flags(&mut self, v: Option<&Value>) -> Vec<Flag> {
        let path = "backend_config.input_mapping.flags";
        let Some(v) = v else {
            return Vec::new();
        };
        let Value::Array(items) = v else {
            self.problem(format!(
                "{path}: expected a list of {{flag, field}}, got {}",
                json_type(v)
            ));
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let p = format!("{path}[{i}]");
            let Value::Object(m) = item else {
                self.problem(format!(
                    "{p}: expected {{flag, field}}, got {}",
                    json_type(item)
                ));
                continue;
            };
            self.known_keys(m, &p, &["flag", "field", "is_boolean"]);
            let flag = match m.get("flag") {
                Some(f) => self.string(f, &format!("{p}.flag")),
                None => {
                    self.problem(format!("{p}: missing 'flag'"));
                    None
                }
            };
            let field = match m.get("field") {
                Some(f) => self.string(f, &format!("{p}.field")),
                None => {
                    self.problem(format!("{p}: missing 'field'"));
                    None
                }
            };
            let is_boolean = m
                .get("is_boolean")
                .and_then(|b| self.bool(b, &format!("{p}.is_boolean")))
                .unwrap_or(false);
            if let Some(flag) = &flag {
                self.no_metacharacters(flag, &format!("{p}.flag"));
                if !flag.starts_with('-') || flag == "--" {
                    self.problem(format!(
                        "{p}.flag: '{flag}' must be an option such as '-n' or '--name'"
                    ));
                }
            }
            if let (Some(flag), Some(field)) = (flag, field) {
                out.push(Flag {
                    flag,
                    field,
                    is_boolean,
                });
            }
        }
        out
    }
}

/// Splits an `env` value into text and `${payload.field}` placeholders.
pub(super) fn env_template(value: &str) -> Result<Vec<EnvPart>, String> {
    const OPEN: &str = "${payload.";
    let mut parts = Vec::new();
    let mut rest = value;
    while let Some(start) = rest.find(OPEN) {
        if start > 0 {
            parts.push(EnvPart::Text(rest[..start].to_owned()));
        }
        let after = &rest[start + OPEN.len()..];
        let Some(end) = after.find('}') else {
            return Err(format!("unterminated '{OPEN}' placeholder in '{value}'"));
        };
        let field = &after[..end];
        if field.is_empty() {
            return Err(format!("empty '{OPEN}}}' placeholder in '{value}'"));
        }
        parts.push(EnvPart::Field(field.to_owned()));
        rest = &after[end + 1..];
    }
    if !rest.is_empty() {
        parts.push(EnvPart::Text(rest.to_owned()));
    }
    Ok(parts)
}

pub(super) fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::SubprocessProcessor;
    use super::*;

    fn build(config: Value) -> Result<SubprocessProcessor, Vec<String>> {
        let Value::Object(map) = config else {
            panic!("config must be an object");
        };
        SubprocessProcessor::from_config(&map, None)
    }

    #[test]
    fn env_placeholders_are_all_replaced_in_place() {
        assert_eq!(
            env_template("a-${payload.x}-${payload.y}").expect("valid"),
            [
                EnvPart::Text("a-".into()),
                EnvPart::Field("x".into()),
                EnvPart::Text("-".into()),
                EnvPart::Field("y".into()),
            ]
        );
        assert!(env_template("${payload.x").is_err());
        assert!(env_template("${payload.}").is_err());
    }

    #[test]
    fn every_config_problem_is_reported() {
        let problems = build(json!({
            "command": ["tool;rm", "a|b"],
            "io_mode": "json_stdio",
            "subprocess_timeout": -1,
            "colour": "red",
            "env": {"A=B": "x"},
            "input_mapping": {"stdin_field": "x"},
        }))
        .expect_err("invalid");
        let text = problems.join("\n");
        for want in [
            "command[0]: 'tool;rm' contains the shell metacharacter ';'",
            "command[1]: 'a|b' contains the shell metacharacter '|'",
            "subprocess_timeout",
            "unknown key 'colour'",
            "'A=B' is not a valid environment variable name",
            "input_mapping: unknown key 'stdin_field' (valid: fields)",
        ] {
            assert!(text.contains(want), "missing {want:?} in:\n{text}");
        }
    }

    #[test]
    fn allowed_commands_and_empty_commands_are_checked() {
        let e =
            build(json!({"command": ["curl"], "allowed_commands": ["cat"]})).expect_err("refused");
        assert!(
            e[0].contains("'curl' is not in allowed_commands (cat)"),
            "{e:?}"
        );
        let e = build(json!({"command": []})).expect_err("refused");
        assert!(e[0].contains("non-empty"), "{e:?}");
        let e = build(json!({"io_mode": "pipe"})).expect_err("refused");
        assert!(e.iter().any(|p| p.contains("command: missing")), "{e:?}");
        assert!(
            e.iter().any(|p| p.contains("unknown io_mode 'pipe'")),
            "{e:?}"
        );
    }
}
