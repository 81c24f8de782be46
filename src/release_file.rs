//! The release file, `release.yaml`: parsed strictly, with every problem reported at its line,
//! column and field rather than only the first one.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use crate::yaml::{self, Entry, Node, Position, Resolved, Value};

/// The file name that marks a release file anywhere in a repository.
pub const FILE_NAME: &str = "release.yaml";

/// A parsed and validated release file.
#[derive(Clone, Debug)]
pub struct ReleaseFile {
    /// Path of the file relative to the repository root, with `/` separators.
    pub path: String,
    pub model: String,
    /// Position of the `model` value, for problems about the model as a whole.
    pub model_position: Position,
    pub version: semver::Version,
    pub description: Option<String>,
    pub stages: Vec<String>,
    pub train: Option<Train>,
    /// The `params` mapping, converted to JSON for training and for the record.
    pub params: serde_json::Map<String, serde_json::Value>,
    pub metrics: Option<String>,
    pub artifacts: Vec<String>,
    pub gates: BTreeMap<String, Gate>,
    pub notes: Option<String>,
    pub card: Option<Card>,
    /// Rules a version must meet to enter a stage, keyed by stage.
    pub promotion: BTreeMap<String, StageRule>,
    /// Gates on live metrics of the version in a stage. Relative limits compare with the values
    /// in that version's release record.
    pub monitor: BTreeMap<String, Gate>,
}

/// Conditions for entering one stage.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StageRule {
    /// Minimum time the version must have spent in the previous stage of the path.
    pub soak: Option<Duration>,
    /// Gates checked against the release's record. Relative limits compare with the record of
    /// the version in the stage at the time of promotion.
    pub gates: BTreeMap<String, Gate>,
}

impl ReleaseFile {
    /// Folder of the release file relative to the repository root ("" at the root).
    pub fn folder(&self) -> &str {
        self.path.rsplit_once('/').map_or("", |(folder, _)| folder)
    }

    /// Returns the release tag name, `MODEL@vVERSION`.
    pub fn tag_name(&self) -> String {
        crate::tags::release_tag(&self.model, &self.version)
    }
}

/// How to run training.
#[derive(Clone, Debug)]
pub struct Train {
    pub command: TrainCommand,
    /// Working folder relative to the repository root.
    pub workdir: String,
    pub timeout: Option<Duration>,
    pub env: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum TrainCommand {
    /// Runs under `sh -c`.
    Shell(String),
    /// Runs as argv, without a shell.
    Argv(Vec<String>),
}

impl fmt::Display for TrainCommand {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrainCommand::Shell(command) => formatter.write_str(command),
            TrainCommand::Argv(arguments) => {
                let quoted: Vec<String> = arguments
                    .iter()
                    .map(|argument| shell_quote(argument))
                    .collect();
                formatter.write_str(&quoted.join(" "))
            }
        }
    }
}

/// Quotes an argument for display the way a POSIX shell would read it back.
fn shell_quote(argument: &str) -> String {
    let plain = !argument.is_empty()
        && argument
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./=:,+-@%".contains(c));
    if plain {
        argument.to_owned()
    } else {
        format!("'{}'", argument.replace('\'', "'\\''"))
    }
}

/// A limit relative to the previous release: an absolute amount or a percentage of the previous
/// value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Change {
    Absolute(f64),
    Percent(f64),
}

impl fmt::Display for Change {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::Absolute(amount) => write!(formatter, "{amount}"),
            Change::Percent(percent) => write!(formatter, "{percent}%"),
        }
    }
}

/// Direction in which a metric improves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Better {
    Higher,
    Lower,
}

/// The quality gate of one metric.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Gate {
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub max_increase: Option<Change>,
    pub max_decrease: Option<Change>,
    /// Set explicitly, or implied by the limits: `min` and `max_decrease` mean higher is better.
    pub better: Option<Better>,
}

/// Model card details that the release record lacks, for a Hugging Face model card.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Card {
    pub license: Option<String>,
    pub task: Option<CardTask>,
    pub dataset: Option<CardDataset>,
    pub tags: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct CardTask {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: Option<String>,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct CardDataset {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: Option<String>,
    pub split: Option<String>,
}

/// One problem in a release file, with where it is.
#[derive(Clone, Debug, PartialEq)]
pub struct Problem {
    pub file: String,
    pub position: Position,
    /// Dotted path of the field, such as `train.timeout`; empty for the whole file.
    pub field: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}:{}: ", self.file, self.position)?;
        if !self.field.is_empty() {
            write!(formatter, "field `{}`: ", self.field)?;
        }
        formatter.write_str(&self.message)
    }
}

/// All problems of one or more release files.
#[derive(Clone, Debug, thiserror::Error)]
pub struct Problems(pub Vec<Problem>);

impl fmt::Display for Problems {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, problem) in self.0.iter().enumerate() {
            if index > 0 {
                formatter.write_str("\n")?;
            }
            write!(formatter, "{problem}")?;
        }
        Ok(())
    }
}

/// Checks a model name: letters, digits, `-`, `_` and `/`, starting and ending with a letter or
/// digit.
pub fn check_model_name(name: &str) -> Result<(), String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '/');
    let edges_ok = name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if name.is_empty() || !name.chars().all(allowed) || !edges_ok || name.contains("//") {
        return Err(format!(
            "invalid model name `{name}`: use letters, digits, '-', '_' and '/', starting and \
             ending with a letter or digit"
        ));
    }
    Ok(())
}

/// Returns whether `license` has the form of a Hub license identifier: lowercase letters, digits,
/// `-` and `.`, starting with a letter or digit.
pub fn is_license_identifier(license: &str) -> bool {
    // NOTE: only the form is checked, not that the Hub's list of licenses has the identifier.
    license.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && license
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.'))
}

/// Returns whether GTO and DVC Studio accept the name too: their rule allows only lowercase letters,
/// digits, '-' and '/'.
pub fn is_gto_name(name: &str) -> bool {
    name.chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '/'))
}

/// Parses a version as SemVer 2.0 without a leading `v`.
pub fn parse_version(text: &str) -> Result<semver::Version, String> {
    if text.starts_with(['v', 'V']) {
        let rest = &text[1..];
        return Err(if semver::Version::parse(rest).is_ok() {
            format!("invalid version `{text}`: write it without the leading 'v', as in `{rest}`")
        } else {
            format!(
                "invalid version `{text}`: write it without a leading 'v', as SemVer 2.0 such as `1.2.0`"
            )
        });
    }
    semver::Version::parse(text).map_err(|error| {
        format!("invalid version `{text}`: {error}; expected SemVer 2.0 such as `1.2.0`")
    })
}

/// Parses a duration such as `90s`, `30m`, `2h`, `1d` or `1h30m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let invalid = || {
        format!(
            "invalid duration `{text}`: expected a number with a unit s, m, h or d, such as `2h` or `1h30m`"
        )
    };
    let mut total = 0u64;
    let mut digits = String::new();
    let mut seen_unit = false;
    for c in text.trim().chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(invalid()),
        };
        let amount: u64 = digits.parse().map_err(|_| invalid())?;
        total = amount
            .checked_mul(unit)
            .and_then(|seconds| total.checked_add(seconds))
            .ok_or_else(invalid)?;
        digits.clear();
        seen_unit = true;
    }
    if !digits.is_empty() || !seen_unit {
        return Err(invalid());
    }
    if total == 0 {
        return Err(format!(
            "invalid duration `{text}`: it must be longer than zero"
        ));
    }
    Ok(Duration::from_secs(total))
}

/// Resolves a path written in a release file against `base` (relative to the repository root),
/// rejecting absolute paths and paths that leave the repository.
pub fn resolve_path(base: &str, written: &str) -> Result<String, String> {
    if written.is_empty() {
        return Err("empty path".into());
    }
    let path = Path::new(written);
    if path.is_absolute() || written.starts_with('~') {
        return Err(format!(
            "path `{written}` is absolute: write it relative to the release file's folder"
        ));
    }
    let mut parts: Vec<String> = base
        .split('/')
        .filter(|part| !part.is_empty())
        .map(str::to_owned)
        .collect();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if parts.pop().is_none() {
                    return Err(format!("path `{written}` leaves the repository"));
                }
            }
            Component::Normal(part) => parts.push(part.to_string_lossy().into_owned()),
            Component::RootDir | Component::Prefix(_) => {
                return Err(format!("path `{written}` is absolute"));
            }
        }
    }
    Ok(parts.join("/"))
}

/// Joins a repository-relative path to the work tree.
pub fn in_worktree(root: &Path, relative: &str) -> PathBuf {
    if relative.is_empty() {
        root.to_path_buf()
    } else {
        root.join(relative)
    }
}

/// Parses the text of a release file stored at `path` (relative to the repository root).
pub fn parse(path: &str, text: &str) -> Result<ReleaseFile, Problems> {
    let mut reader = Reader {
        file: path.to_owned(),
        problems: Vec::new(),
    };
    let root = match yaml::parse_keeping_first(text) {
        Ok((Some(root), duplicates)) => {
            for duplicate in duplicates {
                let message = format!(
                    "duplicate key (first defined at line {})",
                    duplicate.first_line
                );
                reader.report(duplicate.position, &duplicate.field, message);
            }
            root
        }
        Ok((None, _)) => {
            reader.report(
                Position { line: 1, column: 1 },
                "",
                "the file is empty".into(),
            );
            return Err(Problems(reader.problems));
        }
        Err(error) => {
            reader.report(error.position, "", error.message);
            return Err(Problems(reader.problems));
        }
    };
    let folder = path.rsplit_once('/').map_or("", |(folder, _)| folder);
    let release = reader.release_file(&root, folder);
    match release {
        Some(release) if reader.problems.is_empty() => Ok(release),
        _ => Err(Problems(reader.problems)),
    }
}

const TOP_FIELDS: &[&str] = &[
    "model",
    "version",
    "description",
    "stages",
    "train",
    "params",
    "metrics",
    "artifacts",
    "gates",
    "notes",
    "card",
    "promotion",
    "monitor",
];
const TRAIN_FIELDS: &[&str] = &["command", "workdir", "timeout", "env"];
const GATE_FIELDS: &[&str] = &["min", "max", "max_increase", "max_decrease", "better"];
const PROMOTION_FIELDS: &[&str] = &["soak", "gates"];
const CARD_FIELDS: &[&str] = &["license", "task", "dataset", "tags"];
const TASK_FIELDS: &[&str] = &["type", "name"];
const DATASET_FIELDS: &[&str] = &["type", "name", "split"];

/// Walks the tree, converting fields and collecting every problem on the way.
struct Reader {
    file: String,
    problems: Vec<Problem>,
}

impl Reader {
    fn report(&mut self, position: Position, field: &str, message: String) {
        self.problems.push(Problem {
            file: self.file.clone(),
            position,
            field: field.to_owned(),
            message,
        });
    }

    fn mapping<'n>(&mut self, node: &'n Node, field: &str, known: &[&str]) -> Option<&'n [Entry]> {
        let Value::Mapping(entries) = &node.value else {
            let what = if field.is_empty() {
                "the file"
            } else {
                "this field"
            };
            self.report(
                node.position,
                field,
                format!("expected a mapping for {what}, found {}", node.kind_name()),
            );
            return None;
        };
        for entry in entries {
            if !known.contains(&entry.key.as_str()) {
                let field = join(field, &entry.key);
                self.report(
                    entry.key_position,
                    &field,
                    format!("unknown field; expected one of: {}", known.join(", ")),
                );
            }
        }
        Some(entries)
    }

    fn string(&mut self, node: &Node, field: &str) -> Option<String> {
        match &node.value {
            Value::Scalar(scalar) => match scalar.resolve() {
                Resolved::String(text) => Some(text.to_owned()),
                _ => {
                    self.report(
                        node.position,
                        field,
                        format!(
                            "expected a string, found {} `{}`; quote it to make it a string",
                            node.kind_name(),
                            scalar.text
                        ),
                    );
                    None
                }
            },
            _ => {
                self.report(
                    node.position,
                    field,
                    format!("expected a string, found {}", node.kind_name()),
                );
                None
            }
        }
    }

    /// Reads a scalar's text whatever it resolves to, for values such as versions and env values.
    fn scalar_text(&mut self, node: &Node, field: &str, expected: &str) -> Option<String> {
        match &node.value {
            Value::Scalar(scalar) if scalar.resolve() != Resolved::Null => {
                Some(scalar.text.clone())
            }
            _ => {
                self.report(
                    node.position,
                    field,
                    format!("expected {expected}, found {}", node.kind_name()),
                );
                None
            }
        }
    }

    fn number(&mut self, node: &Node, field: &str) -> Option<f64> {
        if let Value::Scalar(scalar) = &node.value {
            match scalar.resolve() {
                Resolved::Integer(text) => return text.parse().ok(),
                Resolved::Float(value) if value.is_finite() => return Some(value),
                _ => {}
            }
        }
        self.report(
            node.position,
            field,
            match &node.value {
                Value::Scalar(scalar) if matches!(scalar.resolve(), Resolved::Float(value) if !value.is_finite()) => {
                    format!("expected a finite number, found `{}`", scalar.text)
                }
                _ => format!("expected a finite number, found {}", node.kind_name()),
            },
        );
        None
    }

    fn string_list(&mut self, node: &Node, field: &str) -> Option<Vec<(String, Position)>> {
        let Value::Sequence(items) = &node.value else {
            self.report(
                node.position,
                field,
                format!("expected a list of strings, found {}", node.kind_name()),
            );
            return None;
        };
        let mut values = Vec::new();
        for (index, item) in items.iter().enumerate() {
            if let Some(text) = self.string(item, &format!("{field}[{index}]")) {
                values.push((text, item.position));
            }
        }
        (values.len() == items.len()).then_some(values)
    }

    fn path(&mut self, node: &Node, field: &str, base: &str) -> Option<String> {
        let written = self.string(node, field)?;
        match resolve_path(base, &written) {
            Ok(path) => Some(path),
            Err(message) => {
                self.report(node.position, field, message);
                None
            }
        }
    }

    fn release_file(&mut self, root: &Node, folder: &str) -> Option<ReleaseFile> {
        let entries = self.mapping(root, "", TOP_FIELDS)?;
        let field = |name: &str| entries.iter().find(|entry| entry.key == name);

        let model = match field("model") {
            Some(entry) => self.model(&entry.value),
            None => {
                self.report(root.position, "model", "missing required field".into());
                None
            }
        };
        let version = match field("version") {
            Some(entry) => self
                .scalar_text(&entry.value, "version", "a SemVer version")
                .and_then(|text| {
                    parse_version(&text)
                        .map_err(|message| self.report(entry.value.position, "version", message))
                        .ok()
                }),
            None => {
                self.report(root.position, "version", "missing required field".into());
                None
            }
        };
        let description =
            field("description").and_then(|entry| self.string(&entry.value, "description"));
        let stages = field("stages").map_or(Some(Vec::new()), |entry| self.stages(&entry.value));
        let train = match field("train") {
            Some(entry) => self.train(&entry.value, folder).map(Some),
            None => Some(None),
        };
        let params = match field("params") {
            Some(entry) => match to_json(&entry.value) {
                serde_json::Value::Object(map) => Some(map),
                _ => {
                    let found = entry.value.kind_name();
                    self.report(
                        entry.value.position,
                        "params",
                        format!("expected a mapping of parameter names to values, found {found}"),
                    );
                    None
                }
            },
            None => Some(serde_json::Map::new()),
        };
        let metrics = match field("metrics") {
            Some(entry) => self.path(&entry.value, "metrics", folder).map(Some),
            None => Some(None),
        };
        let artifacts = match field("artifacts") {
            Some(entry) => self.artifacts(&entry.value, folder),
            None => Some(Vec::new()),
        };
        let gates = match field("gates") {
            Some(entry) => self.gates(&entry.value, "gates"),
            None => Some(BTreeMap::new()),
        };
        let notes = field("notes").and_then(|entry| self.string(&entry.value, "notes"));
        let card = match field("card") {
            Some(entry) => self.card(&entry.value).map(Some),
            None => Some(None),
        };
        let promotion = match field("promotion") {
            Some(entry) => self.promotion(&entry.value, stages.as_deref().unwrap_or_default()),
            None => Some(BTreeMap::new()),
        };
        let monitor = match field("monitor") {
            Some(entry) => self.gates(&entry.value, "monitor"),
            None => Some(BTreeMap::new()),
        };

        Some(ReleaseFile {
            path: self.file.clone(),
            model: model?,
            model_position: field("model").map_or(root.position, |entry| entry.value.position),
            version: version?,
            description,
            stages: stages?,
            train: train?,
            params: params?,
            metrics: metrics?,
            artifacts: artifacts?,
            gates: gates?,
            notes,
            card: card?,
            promotion: promotion?,
            monitor: monitor?,
        })
    }

    fn model(&mut self, node: &Node) -> Option<String> {
        let name = self.string(node, "model")?;
        match check_model_name(&name) {
            Ok(()) => Some(name),
            Err(message) => {
                self.report(node.position, "model", message);
                None
            }
        }
    }

    fn stages(&mut self, node: &Node) -> Option<Vec<String>> {
        let items = self.string_list(node, "stages")?;
        let mut stages: Vec<String> = Vec::new();
        for (index, (stage, position)) in items.into_iter().enumerate() {
            let field = format!("stages[{index}]");
            if let Err(message) = check_model_name(&stage) {
                let message = message.replacen("model name", "stage name", 1);
                self.report(position, &field, message);
            } else if stages.iter().any(|seen| seen.eq_ignore_ascii_case(&stage)) {
                self.report(position, &field, format!("stage `{stage}` is listed twice"));
            } else {
                stages.push(stage);
            }
        }
        Some(stages)
    }

    fn train(&mut self, node: &Node, folder: &str) -> Option<Train> {
        let entries = self.mapping(node, "train", TRAIN_FIELDS)?;
        let field = |name: &str| entries.iter().find(|entry| entry.key == name);

        let command = match field("command") {
            Some(entry) => match &entry.value.value {
                Value::Sequence(_) => {
                    let arguments = self.string_list(&entry.value, "train.command")?;
                    if arguments.is_empty() {
                        self.report(
                            entry.value.position,
                            "train.command",
                            "the command list is empty".into(),
                        );
                        None
                    } else {
                        Some(TrainCommand::Argv(
                            arguments.into_iter().map(|(text, _)| text).collect(),
                        ))
                    }
                }
                _ => {
                    let command = self.string(&entry.value, "train.command")?;
                    if command.trim().is_empty() {
                        self.report(
                            entry.value.position,
                            "train.command",
                            "the command is empty".into(),
                        );
                        None
                    } else {
                        Some(TrainCommand::Shell(command))
                    }
                }
            },
            None => {
                self.report(
                    node.position,
                    "train.command",
                    "missing required field".into(),
                );
                None
            }
        };
        let workdir = match field("workdir") {
            Some(entry) => self.path(&entry.value, "train.workdir", folder),
            None => Some(folder.to_owned()),
        };
        let timeout = match field("timeout") {
            Some(entry) => self
                .scalar_text(&entry.value, "train.timeout", "a duration such as `2h`")
                .and_then(|text| {
                    parse_duration(&text)
                        .map_err(|message| {
                            self.report(entry.value.position, "train.timeout", message)
                        })
                        .ok()
                })
                .map(Some),
            None => Some(None),
        };
        let env = match field("env") {
            Some(entry) => self.env(&entry.value),
            None => Some(BTreeMap::new()),
        };
        Some(Train {
            command: command?,
            workdir: workdir?,
            timeout: timeout?,
            env: env?,
        })
    }

    fn env(&mut self, node: &Node) -> Option<BTreeMap<String, String>> {
        let Value::Mapping(entries) = &node.value else {
            self.report(
                node.position,
                "train.env",
                format!(
                    "expected a mapping of variable names to values, found {}",
                    node.kind_name()
                ),
            );
            return None;
        };
        let mut env = BTreeMap::new();
        let mut valid = true;
        for entry in entries {
            let field = format!("train.env.{}", entry.key);
            let name_ok = !entry.key.is_empty()
                && !entry.key.starts_with(|c: char| c.is_ascii_digit())
                && entry
                    .key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !name_ok {
                self.report(
                    entry.key_position,
                    &field,
                    "invalid variable name: use letters, digits and '_', not starting with a digit"
                        .into(),
                );
                valid = false;
            } else if entry.key.starts_with("MREL_") {
                self.report(
                    entry.key_position,
                    &field,
                    "variables starting with MREL_ are set by mrel itself".into(),
                );
                valid = false;
            }
            match self.scalar_text(&entry.value, &field, "a string, number or boolean") {
                Some(value) => {
                    env.insert(entry.key.clone(), value);
                }
                None => valid = false,
            }
        }
        valid.then_some(env)
    }

    fn artifacts(&mut self, node: &Node, folder: &str) -> Option<Vec<String>> {
        let Value::Sequence(items) = &node.value else {
            self.report(
                node.position,
                "artifacts",
                format!("expected a list of paths, found {}", node.kind_name()),
            );
            return None;
        };
        let mut paths = Vec::new();
        for (index, item) in items.iter().enumerate() {
            let field = format!("artifacts[{index}]");
            if let Some(path) = self.path(item, &field, folder) {
                if paths.contains(&path) {
                    self.report(
                        item.position,
                        &field,
                        format!("artifact `{path}` is listed twice"),
                    );
                } else {
                    paths.push(path);
                }
            }
        }
        (paths.len() == items.len()).then_some(paths)
    }

    fn gates(&mut self, node: &Node, field: &str) -> Option<BTreeMap<String, Gate>> {
        let Value::Mapping(entries) = &node.value else {
            self.report(
                node.position,
                field,
                format!(
                    "expected a mapping of metric names to limits, found {}",
                    node.kind_name()
                ),
            );
            return None;
        };
        let mut gates = BTreeMap::new();
        let mut valid = true;
        for entry in entries {
            match self.gate(&entry.value, &join(field, &entry.key)) {
                Some(gate) => {
                    gates.insert(entry.key.clone(), gate);
                }
                None => valid = false,
            }
        }
        valid.then_some(gates)
    }

    fn promotion(&mut self, node: &Node, stages: &[String]) -> Option<BTreeMap<String, StageRule>> {
        let Value::Mapping(entries) = &node.value else {
            self.report(
                node.position,
                "promotion",
                format!(
                    "expected a mapping of stage names to rules, found {}",
                    node.kind_name()
                ),
            );
            return None;
        };
        let problems_before = self.problems.len();
        let mut rules = BTreeMap::new();
        for entry in entries {
            let field = join("promotion", &entry.key);
            if !stages.contains(&entry.key) {
                let declared = if stages.is_empty() {
                    "none".to_owned()
                } else {
                    stages.join(", ")
                };
                self.report(
                    entry.key_position,
                    &field,
                    format!(
                        "stage `{}` is not in `stages` (declared: {declared})",
                        entry.key
                    ),
                );
                continue;
            }
            let Some(fields) = self.mapping(&entry.value, &field, PROMOTION_FIELDS) else {
                continue;
            };
            let mut rule = StageRule::default();
            for rule_entry in fields {
                let rule_field = join(&field, &rule_entry.key);
                match rule_entry.key.as_str() {
                    "soak" => {
                        rule.soak = self
                            .scalar_text(&rule_entry.value, &rule_field, "a duration such as `24h`")
                            .and_then(|text| {
                                parse_duration(&text)
                                    .map_err(|message| {
                                        self.report(rule_entry.value.position, &rule_field, message)
                                    })
                                    .ok()
                            });
                    }
                    "gates" => {
                        rule.gates = self
                            .gates(&rule_entry.value, &rule_field)
                            .unwrap_or_default()
                    }
                    _ => {}
                }
            }
            rules.insert(entry.key.clone(), rule);
        }
        (self.problems.len() == problems_before).then_some(rules)
    }

    fn gate(&mut self, node: &Node, field: &str) -> Option<Gate> {
        let entries = self.mapping(node, field, GATE_FIELDS)?;
        let problems_before = self.problems.len();
        let mut gate = Gate::default();
        for entry in entries {
            let field = join(field, &entry.key);
            match entry.key.as_str() {
                "min" => gate.min = self.number(&entry.value, &field),
                "max" => gate.max = self.number(&entry.value, &field),
                "max_increase" => gate.max_increase = self.change(&entry.value, &field),
                "max_decrease" => gate.max_decrease = self.change(&entry.value, &field),
                "better" => {
                    gate.better = match self.string(&entry.value, &field).as_deref() {
                        Some("higher") => Some(Better::Higher),
                        Some("lower") => Some(Better::Lower),
                        Some(other) => {
                            self.report(
                                entry.value.position,
                                &field,
                                format!("invalid value `{other}`: expected `higher` or `lower`"),
                            );
                            None
                        }
                        None => None,
                    }
                }
                _ => {}
            }
        }
        if let (Some(min), Some(max)) = (gate.min, gate.max)
            && min > max
        {
            self.report(
                node.position,
                field,
                format!("`min` ({min}) is greater than `max` ({max}), so no value can pass"),
            );
        }
        if entries.is_empty() {
            self.report(
                node.position,
                field,
                format!(
                    "the gate sets no limit; expected one of: {}",
                    GATE_FIELDS.join(", ")
                ),
            );
        }
        if gate.better.is_none() {
            gate.better = implied_direction(&gate);
        }
        (self.problems.len() == problems_before).then_some(gate)
    }

    fn change(&mut self, node: &Node, field: &str) -> Option<Change> {
        if let Value::Scalar(scalar) = &node.value
            && let Resolved::String(text) = scalar.resolve()
        {
            let percent = text
                .strip_suffix('%')
                .and_then(|number| number.trim().parse::<f64>().ok())
                .filter(|percent| percent.is_finite() && *percent >= 0.0);
            return match percent {
                Some(percent) => Some(Change::Percent(percent)),
                None => {
                    self.report(
                        node.position,
                        field,
                        format!(
                            "invalid limit `{text}`: expected a number or a percentage such as `5%`"
                        ),
                    );
                    None
                }
            };
        }
        let amount = self.number(node, field)?;
        if amount < 0.0 {
            self.report(
                node.position,
                field,
                format!("invalid limit `{amount}`: a change limit cannot be negative"),
            );
            return None;
        }
        Some(Change::Absolute(amount))
    }

    fn card(&mut self, node: &Node) -> Option<Card> {
        let entries = self.mapping(node, "card", CARD_FIELDS)?;
        let problems_before = self.problems.len();
        let mut card = Card::default();
        for entry in entries {
            let field = join("card", &entry.key);
            match entry.key.as_str() {
                "license" => card.license = self.string(&entry.value, &field),
                "tags" => {
                    card.tags = self
                        .string_list(&entry.value, &field)
                        .map(|tags| tags.into_iter().map(|(tag, _)| tag).collect())
                        .unwrap_or_default();
                }
                "task" => {
                    let fields = self.named_fields(&entry.value, &field, TASK_FIELDS);
                    card.task = fields.map(|mut fields| CardTask {
                        kind: fields.remove("type").unwrap_or_default(),
                        name: fields.remove("name"),
                    });
                }
                "dataset" => {
                    let fields = self.named_fields(&entry.value, &field, DATASET_FIELDS);
                    card.dataset = fields.map(|mut fields| CardDataset {
                        kind: fields.remove("type").unwrap_or_default(),
                        name: fields.remove("name"),
                        split: fields.remove("split"),
                    });
                }
                _ => {}
            }
        }
        // A model card on the Hub needs a license, a task and a dataset, so `mrel card` can only
        // serve a release whose card section has them.
        for (field, present) in [
            ("card.license", card.license.is_some()),
            (
                "card.task",
                card.task.is_some() || entries.iter().any(|entry| entry.key == "task"),
            ),
            (
                "card.dataset",
                card.dataset.is_some() || entries.iter().any(|entry| entry.key == "dataset"),
            ),
        ] {
            if !present {
                self.report(
                    node.position,
                    field,
                    "missing required field; a model card needs `license`, `task` and `dataset`"
                        .into(),
                );
            }
        }
        if let Some(license) = &card.license
            && !is_license_identifier(license)
        {
            let position = entries
                .iter()
                .find(|entry| entry.key == "license")
                .map_or(node.position, |entry| entry.value.position);
            self.report(
                    position,
                    "card.license",
                    format!(
                        "invalid license `{license}`: the Hub expects a lowercase identifier such as `mit` or `apache-2.0`"
                    ),
                );
        }
        (self.problems.len() == problems_before).then_some(card)
    }

    /// Reads a mapping of string fields in which `type` is required.
    fn named_fields(
        &mut self,
        node: &Node,
        field: &str,
        known: &[&str],
    ) -> Option<BTreeMap<String, String>> {
        let entries = self.mapping(node, field, known)?;
        let mut fields = BTreeMap::new();
        for entry in entries {
            if let Some(text) = self.string(&entry.value, &join(field, &entry.key)) {
                fields.insert(entry.key.clone(), text);
            }
        }
        if !fields.contains_key("type") {
            self.report(
                node.position,
                &join(field, "type"),
                "missing required field".into(),
            );
            return None;
        }
        Some(fields)
    }
}

fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

fn implied_direction(gate: &Gate) -> Option<Better> {
    let higher = gate.min.is_some() || gate.max_decrease.is_some();
    let lower = gate.max.is_some() || gate.max_increase.is_some();
    match (higher, lower) {
        (true, false) => Some(Better::Higher),
        (false, true) => Some(Better::Lower),
        _ => None,
    }
}

/// Converts a YAML node to JSON; integers beyond 64 bits become floats.
pub fn to_json(node: &Node) -> serde_json::Value {
    use serde_json::Value as Json;
    match &node.value {
        Value::Scalar(scalar) => match scalar.resolve() {
            Resolved::Null => Json::Null,
            Resolved::Bool(value) => Json::Bool(value),
            Resolved::Integer(text) => text
                .parse::<i64>()
                .map(Json::from)
                .or_else(|_| text.parse::<u64>().map(Json::from))
                .unwrap_or_else(|_| float_to_json(text.parse().unwrap_or(f64::NAN), text)),
            Resolved::Float(value) => float_to_json(value, &scalar.text),
            Resolved::String(text) => Json::String(text.to_owned()),
        },
        Value::Sequence(items) => Json::Array(items.iter().map(to_json).collect()),
        Value::Mapping(entries) => Json::Object(
            entries
                .iter()
                .map(|entry| (entry.key.clone(), to_json(&entry.value)))
                .collect(),
        ),
    }
}

/// JSON has no NaN or infinity, so those keep their YAML spelling as a string.
fn float_to_json(value: f64, text: &str) -> serde_json::Value {
    serde_json::Number::from_f64(value)
        .map(serde_json::Value::Number)
        .unwrap_or_else(|| serde_json::Value::String(text.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "\
model: diabetes
version: 1.2.0
stages: [dev, staging, production]
train:
  command: python3 train.py
  timeout: 2h
  env: {SEED: 7}
params:
  learning_rate: 0.05
metrics: out/metrics.json
artifacts: [out/model.json]
gates:
  test.r2: {min: 0.4, max_decrease: 0.02}
  test.rmse: {max: 70, max_increase: 5%}
";

    fn problems(text: &str) -> Vec<Problem> {
        parse("models/a/release.yaml", text)
            .expect_err("invalid file")
            .0
    }

    #[test]
    fn good_file_parses() {
        let release = parse("models/a/release.yaml", GOOD).expect("valid file");
        assert_eq!(release.model, "diabetes");
        assert_eq!(release.version, semver::Version::new(1, 2, 0));
        assert_eq!(
            release.metrics.as_deref(),
            Some("models/a/out/metrics.json")
        );
        let train = release.train.expect("train section");
        assert_eq!(train.workdir, "models/a");
        assert_eq!(train.timeout, Some(Duration::from_secs(7200)));
        assert_eq!(train.env.get("SEED").map(String::as_str), Some("7"));
        assert_eq!(
            release.gates["test.rmse"].max_increase,
            Some(Change::Percent(5.0))
        );
        assert_eq!(release.gates["test.r2"].better, Some(Better::Higher));
    }

    #[test]
    fn every_problem_is_reported() {
        let found = problems("model: Bad Name\nversion: v1.0\nextra: 1\n");
        let fields: Vec<&str> = found.iter().map(|problem| problem.field.as_str()).collect();
        assert_eq!(fields, ["extra", "model", "version"]);
    }

    #[test]
    fn unknown_nested_field_has_position() {
        let found = problems("model: a\nversion: 1.0.0\ntrain:\n  command: x\n  comand: y\n");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].field, "train.comand");
        assert_eq!(found[0].position, Position { line: 5, column: 3 });
    }

    #[test]
    fn path_leaving_repository_is_rejected() {
        let found = problems("model: a\nversion: 1.0.0\nmetrics: ../../../m.json\n");
        assert_eq!(found[0].field, "metrics");
        assert!(found[0].message.contains("leaves the repository"));
    }

    #[test]
    fn params_accept_any_keys() {
        let release = parse(
            "release.yaml",
            "model: a\nversion: 1.0.0\nparams: {x: {y: 1}}\n",
        )
        .expect("valid file");
        assert_eq!(release.params["x"]["y"], serde_json::json!(1));
    }

    #[test]
    fn argv_command_displays_quoted() {
        let command =
            TrainCommand::Argv(vec!["python3".into(), "-c".into(), "print('a b')".into()]);
        assert_eq!(command.to_string(), r"python3 -c 'print('\''a b'\'')'");
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("45s"), Ok(Duration::from_secs(45)));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("1x").is_err());
    }

    #[test]
    fn resolve_path_normalizes() {
        assert_eq!(resolve_path("a/b", "../c/./d"), Ok("a/c/d".into()));
        assert!(resolve_path("a", "../../x").is_err());
        assert!(resolve_path("", "/etc/passwd").is_err());
    }
}
