//! `subprocess`: any program that reads input and writes output becomes a worker.
//!
//! The Rust twin of heddle's `SubprocessBackend` (mesh spec §6.10), configured by the
//! same `backend_config` keys, with its weaknesses fixed (§19 L14):
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `command` | required | Non-empty list of strings: program and fixed arguments. No element may contain a shell metacharacter (`` ; \| & $ ` \ ! # ~ < > { } ( ) ``), although no shell is ever used. |
//! | `io_mode` | `json_stdio` | `json_stdio`, `stdin_stdout`, `args_stdout` or `file_file` (below). |
//! | `subprocess_timeout` | 30 | Seconds before the child is killed. |
//! | `input_mapping` / `output_mapping` | `{}` | Mode-specific, below. Unknown keys are errors. |
//! | `env` | `{}` | Variables set for the child. `${payload.field}` placeholders are replaced, **all** of them and in place, by `str(payload[field])` (`""` when missing). |
//! | `inherit_env` | `[]` | Names of variables copied from the worker's environment (new in Rust). |
//! | `working_dir` | the worker's | Working directory, relative to the config file's directory. |
//! | `allowed_commands` | none | When set, `command[0]` must be one of them. |
//! | `model_used` | `command[0]` | Label for the result. |
//!
//! **Environment allow-list.** Unlike heddle, which merged `env` over the whole parent
//! environment (handing every secret of the worker to the tool), the child gets only
//! `PATH`, `HOME` and `LANG` (when the worker has them), the variables named in
//! `inherit_env`, and the `env` map, in that order of precedence (later wins).
//!
//! | mode | input | output |
//! |---|---|---|
//! | `json_stdio` | stdin = the payload as JSON, or only `input_mapping.fields` (a list; `"all"` = everything) | stdout parsed as JSON; `output_mapping.extract_key` picks a key (which must exist); `target` `root` (default) requires an object, another name wraps the value as `{target: value}` |
//! | `stdin_stdout` | stdin = `str(payload[input_mapping.stdin_field])` (default `input`, missing → empty) | `{stdout_field (default output): parse(stdout)}`, `parse` one of `raw` (default), `strip`, `int`, `float`, `lines` (non-empty lines), `json` |
//! | `args_stdout` | arguments from `input_mapping.flags` (`[{flag, field, is_boolean}]`), then `--`, then `input_mapping.positional` (`[{field}]`); missing fields are skipped | as `stdin_stdout` |
//! | `file_file` | `payload[content_field]` (default `content`) written to `input<input_extension>` (default `.tmp`) in a fresh private directory; arguments `args_template` (default `["{input}"]`) with `{input}`/`{output}` replaced | the file `output<output_extension>` (default `.out`), read as `read_mode` `text` (default) or `binary` (base64), as `{output_field (default content): data}` |
//!
//! **Payload values are never options** (L14). In `args_stdout`, positional values follow
//! a `--` argument, so a value such as `--help` or `-rf` reaches the program as an
//! operand. For programs that do not understand `--`, set
//! `input_mapping.end_of_options: false`: then no `--` is added and a positional value
//! starting with `-` fails the task instead. A flag's value is passed as the argument
//! after its flag; it may not start with `-` unless it is a number (`-5`).
//!
//! **Errors.** A non-zero exit fails the task with the exit code and the last 2 KiB of
//! stderr; a timeout with `timed out after Ns` and the stderr tail; unparsable stdout
//! names the problem and shows the first 200 characters. On timeout or cancel the child
//! and every process in its process group are killed, and the child is reaped.

mod config;
mod exec;

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use loom_core::message::{JsonObject, TaskMessage};
use serde_json::Value;

use self::config::json_type;
use self::exec::{Invocation, RunError};
use super::python;
use crate::worker::{ProcessError, ProcessOutput, Processor, TaskContext};

/// `subprocess_timeout` when the config does not say, in seconds.
pub const DEFAULT_SUBPROCESS_TIMEOUT_SECONDS: f64 = 30.0;

/// The parent variables every child gets (when set).
pub const BASE_ENV: [&str; 3] = ["PATH", "HOME", "LANG"];

/// Characters refused in the static parts of a command.
const SHELL_METACHARACTERS: &[char] = &[
    ';', '|', '&', '$', '`', '\\', '!', '#', '~', '<', '>', '{', '}', '(', ')',
];

/// How many characters of unparsable stdout an error shows.
const PREVIEW_CHARS: usize = 200;

/// Runs a program per task, as configured by `backend_config` (see the module docs).
#[derive(Debug, Clone)]
pub struct SubprocessProcessor {
    command: Vec<String>,
    mode: Mode,
    timeout_seconds: f64,
    env: Vec<(String, Vec<EnvPart>)>,
    inherit_env: Vec<String>,
    working_dir: Option<PathBuf>,
    model_used: String,
}

#[derive(Debug, Clone)]
enum Mode {
    JsonStdio {
        fields: Option<Vec<String>>,
        extract_key: Option<String>,
        target: Option<String>,
    },
    StdinStdout {
        stdin_field: String,
        stdout_field: String,
        parse: Parse,
    },
    ArgsStdout {
        positional: Vec<String>,
        flags: Vec<Flag>,
        end_of_options: bool,
        stdout_field: String,
        parse: Parse,
    },
    FileFile {
        content_field: String,
        input_extension: String,
        output_extension: String,
        args_template: Vec<String>,
        output_field: String,
        binary: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Parse {
    Raw,
    Strip,
    Int,
    Float,
    Lines,
    Json,
}

#[derive(Debug, Clone)]
struct Flag {
    flag: String,
    field: String,
    is_boolean: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum EnvPart {
    Text(String),
    Field(String),
}

impl SubprocessProcessor {
    /// The child's environment for `payload`: the allow-list, then `inherit_env`, then `env`.
    fn child_env(&self, payload: &JsonObject) -> Result<Vec<(String, String)>, ProcessError> {
        let mut env: Vec<(String, String)> = Vec::new();
        let mut set = |k: &str, v: String| match env.iter_mut().find(|(name, _)| name == k) {
            Some(entry) => entry.1 = v,
            None => env.push((k.to_owned(), v)),
        };
        for name in BASE_ENV
            .iter()
            .copied()
            .chain(self.inherit_env.iter().map(String::as_str))
        {
            if let Some(v) = std::env::var_os(name) {
                set(name, v.to_string_lossy().into_owned());
            }
        }
        for (name, parts) in &self.env {
            let mut value = String::new();
            for part in parts {
                match part {
                    EnvPart::Text(t) => value.push_str(t),
                    EnvPart::Field(f) => {
                        value.push_str(&payload.get(f).map(python::python_str).unwrap_or_default())
                    }
                }
            }
            if value.contains('\0') {
                return Err(ProcessError::fatal(format!(
                    "environment variable '{name}' would contain a NUL byte"
                )));
            }
            set(name, value);
        }
        Ok(env)
    }

    fn program(&self) -> &str {
        &self.command[0]
    }

    async fn run(
        &self,
        args: Vec<String>,
        stdin: Option<Vec<u8>>,
        payload: &JsonObject,
        ctx: &TaskContext,
    ) -> Result<Vec<u8>, ProcessError> {
        let mut all_args: Vec<String> = self.command[1..].to_vec();
        all_args.extend(args);
        if all_args.iter().any(|a| a.contains('\0')) {
            return Err(self.error("an argument would contain a NUL byte".to_owned()));
        }
        let inv = Invocation {
            program: self.program(),
            args: all_args,
            env: self.child_env(payload)?,
            cwd: self.working_dir.as_deref(),
            stdin,
            timeout: Duration::from_secs_f64(self.timeout_seconds),
        };
        match exec::run(inv, &ctx.cancel).await {
            Ok(finished) => Ok(finished.stdout),
            Err(e) => Err(self.run_error(e)),
        }
    }

    fn error(&self, message: String) -> ProcessError {
        ProcessError::fatal(message).with_model_used(&self.model_used)
    }

    fn run_error(&self, e: RunError) -> ProcessError {
        let program = self.program();
        let or_none = |tail: String| {
            if tail.is_empty() {
                "(no stderr)".to_owned()
            } else {
                tail
            }
        };
        self.error(match e {
            RunError::Spawn(e) => format!("cannot start command '{program}': {e}"),
            RunError::Io(e) => format!("cannot read the output of command '{program}': {e}"),
            RunError::Exit {
                status,
                stderr_tail,
            } => match status.code() {
                Some(code) => format!(
                    "command '{program}' exited with code {code}: {}",
                    or_none(stderr_tail)
                ),
                None => format!(
                    "command '{program}' was killed by {}: {}",
                    signal_name(status),
                    or_none(stderr_tail)
                ),
            },
            RunError::TimedOut { stderr_tail } => format!(
                "command '{program}' timed out after {}s: {}",
                self.timeout_seconds,
                or_none(stderr_tail)
            ),
            RunError::Cancelled => format!("command '{program}' was cancelled"),
            RunError::StdoutTooLarge => format!(
                "command '{program}' wrote more than {} bytes to stdout",
                exec::MAX_STDOUT_BYTES
            ),
        })
    }

    fn stdout_text(&self, stdout: Vec<u8>) -> Result<String, ProcessError> {
        String::from_utf8(stdout).map_err(|e| {
            self.error(format!(
                "stdout of command '{}' is not valid UTF-8: {}",
                self.program(),
                e.utf8_error()
            ))
        })
    }

    fn parse_stdout(&self, stdout: Vec<u8>, parse: Parse) -> Result<Value, ProcessError> {
        let text = self.stdout_text(stdout)?;
        let bad = |what: &str, detail: String| {
            self.error(format!(
                "stdout of command '{}' is not {what}{detail}; first {PREVIEW_CHARS} characters: {:?}",
                self.program(),
                preview(&text)
            ))
        };
        Ok(match parse {
            Parse::Raw => Value::String(text.clone()),
            Parse::Strip => Value::String(python::strip(&text).to_owned()),
            Parse::Int => {
                let digits: String = python::strip(&text).replace('_', "");
                match digits.parse::<i64>() {
                    Ok(i) => i.into(),
                    Err(e) => return Err(bad("an integer", format!(" ({e})"))),
                }
            }
            Parse::Float => {
                let parsed = python::strip(&text).replace('_', "").parse::<f64>();
                match parsed.ok().and_then(serde_json::Number::from_f64) {
                    Some(n) => Value::Number(n),
                    None => return Err(bad("a finite number", String::new())),
                }
            }
            Parse::Lines => Value::Array(
                python::non_empty_lines(&text)
                    .into_iter()
                    .map(Value::String)
                    .collect(),
            ),
            Parse::Json => match serde_json::from_str(&text) {
                Ok(v) => v,
                Err(e) => return Err(bad("valid JSON", format!(" ({e})"))),
            },
        })
    }

    async fn json_stdio(
        &self,
        payload: &JsonObject,
        ctx: &TaskContext,
        fields: Option<&[String]>,
        extract_key: Option<&str>,
        target: Option<&str>,
    ) -> Result<JsonObject, ProcessError> {
        let stdin = match fields {
            None => serde_json::to_vec(payload),
            Some(fields) => {
                let subset: JsonObject = fields
                    .iter()
                    .filter_map(|f| payload.get(f).map(|v| (f.clone(), v.clone())))
                    .collect();
                serde_json::to_vec(&subset)
            }
        }
        .map_err(|e| self.error(format!("cannot encode the payload as JSON: {e}")))?;
        let stdout = self.run(Vec::new(), Some(stdin), payload, ctx).await?;
        let mut value = self.parse_stdout(stdout, Parse::Json)?;
        if let Some(key) = extract_key {
            value = match value {
                Value::Object(mut map) if map.contains_key(key) => {
                    map.remove(key).unwrap_or(Value::Null)
                }
                _ => {
                    return Err(self.error(format!(
                        "extract_key '{key}' not found in the stdout JSON of command '{}'",
                        self.program()
                    )));
                }
            };
        }
        match (target, value) {
            (None, Value::Object(map)) => Ok(map),
            (None, other) => Err(self.error(format!(
                "command '{}' must write a JSON object to stdout (target 'root'), got {}",
                self.program(),
                json_type(&other)
            ))),
            (Some(target), value) => Ok(JsonObject::from_iter([(target.to_owned(), value)])),
        }
    }

    fn args_for(
        &self,
        payload: &JsonObject,
        positional: &[String],
        flags: &[Flag],
        end_of_options: bool,
    ) -> Result<Vec<String>, ProcessError> {
        let mut args = Vec::new();
        for flag in flags {
            let Some(value) = payload.get(&flag.field) else {
                continue;
            };
            if flag.is_boolean {
                if python::truthy(value) {
                    args.push(flag.flag.clone());
                }
                continue;
            }
            let value = python::python_str(value);
            if value.starts_with('-') && value.parse::<f64>().is_err() {
                return Err(self.error(format!(
                    "payload field '{}' for flag '{}' starts with '-', which the program could take as an option",
                    flag.field, flag.flag
                )));
            }
            args.push(flag.flag.clone());
            args.push(value);
        }
        let values: Vec<(String, String)> = positional
            .iter()
            .filter_map(|f| payload.get(f).map(|v| (f.clone(), python::python_str(v))))
            .collect();
        if end_of_options {
            if !values.is_empty() {
                args.push("--".to_owned());
            }
        } else if let Some((field, _)) = values.iter().find(|(_, v)| v.starts_with('-')) {
            return Err(self.error(format!(
                "payload field '{field}' starts with '-', which the program could take as an option (end_of_options is off)"
            )));
        }
        args.extend(values.into_iter().map(|(_, v)| v));
        Ok(args)
    }

    #[allow(clippy::too_many_arguments)]
    async fn file_file(
        &self,
        payload: &JsonObject,
        ctx: &TaskContext,
        content_field: &str,
        input_extension: &str,
        output_extension: &str,
        args_template: &[String],
        output_field: &str,
        binary: bool,
    ) -> Result<JsonObject, ProcessError> {
        let dir = TempDir::create()
            .map_err(|e| self.error(format!("cannot create a temporary directory: {e}")))?;
        let input_path = dir.path.join(format!("input{input_extension}"));
        let output_path = dir.path.join(format!("output{output_extension}"));
        let content = payload
            .get(content_field)
            .map(python::python_str)
            .unwrap_or_default();
        tokio::fs::write(&input_path, content.as_bytes())
            .await
            .map_err(|e| self.error(format!("cannot write {}: {e}", input_path.display())))?;
        let input_str = input_path.to_string_lossy();
        let output_str = output_path.to_string_lossy();
        let args = args_template
            .iter()
            .map(|a| {
                a.replace("{input}", &input_str)
                    .replace("{output}", &output_str)
            })
            .collect();
        self.run(args, None, payload, ctx).await?;
        let data = match tokio::fs::read(&output_path).await {
            Ok(data) => data,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(self.error(format!(
                    "command '{}' did not create its output file {}",
                    self.program(),
                    output_path.display()
                )));
            }
            Err(e) => {
                return Err(self.error(format!("cannot read {}: {e}", output_path.display())));
            }
        };
        let value = if binary {
            base64(&data)
        } else {
            String::from_utf8(data).map_err(|e| {
                self.error(format!(
                    "output file of command '{}' is not valid UTF-8 ({}); use read_mode: binary",
                    self.program(),
                    e.utf8_error()
                ))
            })?
        };
        Ok(JsonObject::from_iter([(
            output_field.to_owned(),
            Value::String(value),
        )]))
    }
}

#[async_trait]
impl Processor for SubprocessProcessor {
    async fn process(
        &self,
        task: &TaskMessage,
        ctx: &TaskContext,
    ) -> Result<ProcessOutput, ProcessError> {
        let payload = &task.payload;
        let output = match &self.mode {
            Mode::JsonStdio {
                fields,
                extract_key,
                target,
            } => {
                self.json_stdio(
                    payload,
                    ctx,
                    fields.as_deref(),
                    extract_key.as_deref(),
                    target.as_deref(),
                )
                .await?
            }
            Mode::StdinStdout {
                stdin_field,
                stdout_field,
                parse,
            } => {
                let stdin = payload
                    .get(stdin_field)
                    .map(python::python_str)
                    .unwrap_or_default();
                let stdout = self
                    .run(Vec::new(), Some(stdin.into_bytes()), payload, ctx)
                    .await?;
                JsonObject::from_iter([(stdout_field.clone(), self.parse_stdout(stdout, *parse)?)])
            }
            Mode::ArgsStdout {
                positional,
                flags,
                end_of_options,
                stdout_field,
                parse,
            } => {
                let args = self.args_for(payload, positional, flags, *end_of_options)?;
                let stdout = self.run(args, None, payload, ctx).await?;
                JsonObject::from_iter([(stdout_field.clone(), self.parse_stdout(stdout, *parse)?)])
            }
            Mode::FileFile {
                content_field,
                input_extension,
                output_extension,
                args_template,
                output_field,
                binary,
            } => {
                self.file_file(
                    payload,
                    ctx,
                    content_field,
                    input_extension,
                    output_extension,
                    args_template,
                    output_field,
                    *binary,
                )
                .await?
            }
        };
        Ok(ProcessOutput::new(output).with_model_used(&self.model_used))
    }
}

fn preview(text: &str) -> String {
    text.chars().take(PREVIEW_CHARS).collect()
}

#[cfg(unix)]
fn signal_name(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status.signal() {
        Some(s) => format!("signal {s}"),
        None => "a signal".to_owned(),
    }
}

#[cfg(not(unix))]
fn signal_name(_status: std::process::ExitStatus) -> String {
    "a signal".to_owned()
}

/// A private temporary directory, removed on drop.
struct TempDir {
    path: PathBuf,
}

impl TempDir {
    fn create() -> std::io::Result<TempDir> {
        let path = std::env::temp_dir().join(format!("loom-subprocess-{}", uuid::Uuid::new_v4()));
        let mut builder = std::fs::DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(&path)?;
        Ok(TempDir { path })
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.path) {
            tracing::warn!(dir = %self.path.display(), error = %e, "Cannot remove a temporary directory.");
        }
    }
}

/// Standard base64 with padding, as Python's `base64.b64encode`.
fn base64(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(data)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn build(config: Value) -> Result<SubprocessProcessor, Vec<String>> {
        let Value::Object(map) = config else {
            panic!("config must be an object");
        };
        SubprocessProcessor::from_config(&map, None)
    }

    #[test]
    fn base64_matches_python() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar\xff"), "Zm9vYmFy/w==");
    }

    #[test]
    fn payload_values_follow_end_of_options() {
        let p = build(json!({
            "command": ["prog"],
            "io_mode": "args_stdout",
            "input_mapping": {
                "positional": [{"field": "file"}],
                "flags": [{"flag": "-n", "field": "n"}, {"flag": "-v", "field": "verbose", "is_boolean": true}],
            },
        }))
        .expect("valid");
        let Mode::ArgsStdout {
            positional,
            flags,
            end_of_options,
            ..
        } = &p.mode
        else {
            panic!("args mode");
        };
        let payload = json!({"file": "--help", "n": -5, "verbose": 1});
        let Value::Object(payload) = payload else {
            panic!()
        };
        let args = p
            .args_for(&payload, positional, flags, *end_of_options)
            .expect("args");
        assert_eq!(args, ["-n", "-5", "-v", "--", "--help"]);
        let payload = json!({"n": "--all"});
        let Value::Object(payload) = payload else {
            panic!()
        };
        let e = p
            .args_for(&payload, positional, flags, true)
            .expect_err("refused");
        assert!(e.message.contains("flag '-n' starts with '-'"), "{e}");
        let payload = json!({"file": "-rf"});
        let Value::Object(payload) = payload else {
            panic!()
        };
        let e = p
            .args_for(&payload, positional, flags, false)
            .expect_err("refused");
        assert!(e.message.contains("end_of_options is off"), "{e}");
    }
}
