//! The review of the release files that a pull request changes. It lists the files that changed
//! between the merge base and the head, validates the head's content and summarizes the change.
//! It also names the tag a release would create and compares the head's metrics with the latest
//! release.
//!
//! A pull request's release file is untrusted input, so nothing that it declares runs: release
//! files and tracked metrics files are read from git objects, never from the work tree.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use gix::ObjectId;
use gix::bstr::ByteSlice;
use serde::Serialize;

use crate::compare::{self, MetricRow, ParamRow};
use crate::gates::{self, GateResult};
use crate::metrics::{self, MetricsError, float_text};
use crate::record;
use crate::registry::Registry;
use crate::release_file::{self, Change, Gate, Problem, ReleaseFile, StageRule, TrainCommand};
use crate::repo::{Repo, RepoError};
use crate::tags::TagKind;
use crate::yaml::Position;

/// The kind of change of a release file between the merge base and the head.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Added,
    Modified,
    Removed,
}

/// A release file whose blob differs between the merge base and the head.
#[derive(Clone, Debug)]
pub struct ChangedFile {
    pub path: String,
    pub change: ChangeKind,
    /// The content at the merge base; `None` for an added file.
    pub old: Option<Vec<u8>>,
    /// The content at the head; `None` for a removed file.
    pub new: Option<Vec<u8>>,
}

/// Lists the release files whose blobs differ between two trees, sorted by path. The maps are
/// those of [`Repo::files_named_at`] for the merge base and the head.
pub fn changed_files(
    repo: &Repo,
    old: &BTreeMap<String, ObjectId>,
    new: &BTreeMap<String, ObjectId>,
) -> Result<Vec<ChangedFile>, RepoError> {
    let paths: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    let mut changed = Vec::new();
    for path in paths {
        let (old_id, new_id) = (old.get(path), new.get(path));
        let change = match (old_id, new_id) {
            (Some(a), Some(b)) if a == b => continue,
            (Some(_), Some(_)) => ChangeKind::Modified,
            (None, Some(_)) => ChangeKind::Added,
            (Some(_), None) => ChangeKind::Removed,
            (None, None) => continue,
        };
        changed.push(ChangedFile {
            path: path.clone(),
            change,
            old: old_id.map(|id| repo.blob(*id)).transpose()?,
            new: new_id.map(|id| repo.blob(*id)).transpose()?,
        });
    }
    Ok(changed)
}

/// Maps each model declared by a valid release file among `files` to the paths that declare it.
pub fn declared_models(
    repo: &Repo,
    files: &BTreeMap<String, ObjectId>,
) -> Result<BTreeMap<String, Vec<String>>, RepoError> {
    let mut models: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (path, id) in files {
        if let Ok(release) = parse_content(path, &repo.blob(*id)?) {
            models.entry(release.model).or_default().push(path.clone());
        }
    }
    Ok(models)
}

/// Parses release file content read from git, reporting content that is not UTF-8 as a problem.
pub fn parse_content(path: &str, content: &[u8]) -> Result<ReleaseFile, Vec<Problem>> {
    let Ok(text) = content.to_str() else {
        return Err(vec![Problem {
            file: path.to_owned(),
            position: Position { line: 1, column: 1 },
            field: String::new(),
            message: "the file is not valid UTF-8".into(),
        }]);
    };
    release_file::parse(path, text).map_err(|problems| problems.0)
}

/// A unified diff of one file, with the number of added and removed lines.
#[derive(Clone, Debug, Serialize)]
pub struct Diff {
    pub text: String,
    pub added: usize,
    pub removed: usize,
}

/// Computes the unified diff of a changed file, with three lines of context.
pub fn unified_diff(file: &ChangedFile) -> Diff {
    let old = file
        .old
        .as_deref()
        .map(|bytes| bytes.to_str_lossy())
        .unwrap_or_default();
    let new = file
        .new
        .as_deref()
        .map(|bytes| bytes.to_str_lossy())
        .unwrap_or_default();
    let old_header = match file.change {
        ChangeKind::Added => "/dev/null".to_owned(),
        _ => format!("a/{}", file.path),
    };
    let new_header = match file.change {
        ChangeKind::Removed => "/dev/null".to_owned(),
        _ => format!("b/{}", file.path),
    };
    let diff = similar::TextDiff::from_lines(old.as_ref(), new.as_ref());
    let mut added = 0;
    let mut removed = 0;
    for change in diff.iter_all_changes() {
        match change.tag() {
            similar::ChangeTag::Insert => added += 1,
            similar::ChangeTag::Delete => removed += 1,
            similar::ChangeTag::Equal => {}
        }
    }
    let text = diff
        .unified_diff()
        .context_radius(3)
        .header(&old_header, &new_header)
        .to_string();
    Diff {
        text,
        added,
        removed,
    }
}

/// The old and new value of a field; `None` where the side does not set it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ValueChange {
    pub old: Option<String>,
    pub new: Option<String>,
}

/// A changed training setting other than the command, such as `train.timeout`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SettingChange {
    pub field: String,
    pub old: Option<String>,
    pub new: Option<String>,
}

/// Whether a gate change lets more releases through (loosened) or fewer (tightened).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    Loosened,
    Tightened,
    /// Neither: the direction changed, or a relative limit switched between an amount and a
    /// percentage, which cannot be compared.
    Changed,
}

/// The set of gates that a gate belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// `gates`, applied on release.
    Release,
    /// `promotion.STAGE.gates`, applied when a version enters the stage.
    Promotion,
    /// `monitor`, applied to live metrics of the version in a stage.
    Monitor,
}

/// One changed check of one gate.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GateChange {
    pub scope: Scope,
    /// The stage whose promotion rule contains the gate; `None` outside promotion rules.
    pub stage: Option<String>,
    pub metric: String,
    /// `min`, `max`, `max_increase`, `max_decrease` or `better`.
    pub check: String,
    pub old: Option<String>,
    pub new: Option<String>,
    pub effect: Effect,
}

/// A changed soak time, the time a version must hold the stage before `stage` on the path.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SoakChange {
    pub stage: String,
    pub old: Option<String>,
    pub new: Option<String>,
    /// A shorter or removed soak time loosens; a longer or added one tightens.
    pub effect: Effect,
}

/// The promotion path before and after.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StagesChange {
    pub old: Vec<String>,
    pub new: Vec<String>,
}

/// The meaning of a change to a release file.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// Set when the training command changed, or when a new file declares one: it is what CI
    /// runs on release.
    pub training_command: Option<ValueChange>,
    /// Changes to `train.workdir`, `train.timeout` and `train.env`.
    pub training: Vec<SettingChange>,
    pub model: Option<ValueChange>,
    pub version: Option<ValueChange>,
    pub params: Vec<ParamRow>,
    /// Release gates first, then the gates of promotion rules, then monitor gates.
    pub gates: Vec<GateChange>,
    pub soak: Vec<SoakChange>,
    pub stages: Option<StagesChange>,
    /// Other top-level fields that changed: description, metrics, artifacts, notes, card.
    pub other: Vec<String>,
}

/// Summarizes the change from `old` (`None` for a new file or one that did not parse) to `new`.
pub fn summarize(old: Option<&ReleaseFile>, new: &ReleaseFile) -> Summary {
    let old_train = old.and_then(|release| release.train.as_ref());
    let new_train = new.train.as_ref();

    let old_command = old_train.map(|train| command_text(&train.command));
    let new_command = new_train.map(|train| command_text(&train.command));
    let training_command = (old_command != new_command).then_some(ValueChange {
        old: old_command,
        new: new_command,
    });

    let mut training = Vec::new();
    let mut setting = |field: &str, old: Option<String>, new: Option<String>| {
        if old != new {
            training.push(SettingChange {
                field: field.to_owned(),
                old,
                new,
            });
        }
    };
    setting(
        "train.workdir",
        old_train.map(|train| train.workdir.clone()),
        new_train.map(|train| train.workdir.clone()),
    );
    setting(
        "train.timeout",
        old_train.and_then(|train| train.timeout).map(duration_text),
        new_train.and_then(|train| train.timeout).map(duration_text),
    );
    let empty = BTreeMap::new();
    let old_env = old_train.map_or(&empty, |train| &train.env);
    let new_env = new_train.map_or(&empty, |train| &train.env);
    let names: BTreeSet<&String> = old_env.keys().chain(new_env.keys()).collect();
    for name in names {
        setting(
            &format!("train.env.{name}"),
            old_env.get(name).cloned(),
            new_env.get(name).cloned(),
        );
    }

    let changed = |old: Option<String>, new: String| {
        (old.as_ref() != Some(&new)).then_some(ValueChange {
            old,
            new: Some(new),
        })
    };
    let model = changed(old.map(|release| release.model.clone()), new.model.clone());
    let version = changed(
        old.map(|release| release.version.to_string()),
        new.version.to_string(),
    );

    let no_params = serde_json::Map::new();
    let params = compare::param_rows(
        old.map_or(&no_params, |release| &release.params),
        &new.params,
        false,
    );
    let no_gates = BTreeMap::new();
    let mut gates = gate_changes(old.map_or(&no_gates, |release| &release.gates), &new.gates);
    let no_rules = BTreeMap::new();
    let (promotion_gates, soak) = promotion_changes(
        old.map_or(&no_rules, |release| &release.promotion),
        &new.promotion,
    );
    gates.extend(promotion_gates);
    for mut change in gate_changes(
        old.map_or(&no_gates, |release| &release.monitor),
        &new.monitor,
    ) {
        change.scope = Scope::Monitor;
        gates.push(change);
    }
    let old_stages = old
        .map(|release| release.stages.clone())
        .unwrap_or_default();
    let stages = (old_stages != new.stages).then(|| StagesChange {
        old: old_stages,
        new: new.stages.clone(),
    });

    let mut other = Vec::new();
    if let Some(old) = old {
        let fields = [
            ("description", old.description != new.description),
            ("metrics", old.metrics != new.metrics),
            ("artifacts", old.artifacts != new.artifacts),
            ("notes", old.notes != new.notes),
            ("card", old.card != new.card),
        ];
        other.extend(
            fields
                .into_iter()
                .filter(|(_, differs)| *differs)
                .map(|(field, _)| field.to_owned()),
        );
    }

    Summary {
        training_command,
        training,
        model,
        version,
        params,
        gates,
        soak,
        stages,
        other,
    }
}

/// Compares promotion rules stage by stage: their gates as [`gate_changes`] does, and their
/// soak times.
fn promotion_changes(
    old: &BTreeMap<String, StageRule>,
    new: &BTreeMap<String, StageRule>,
) -> (Vec<GateChange>, Vec<SoakChange>) {
    let stages: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    let no_gates = BTreeMap::new();
    let mut gates = Vec::new();
    let mut soak = Vec::new();
    for stage in stages {
        let before = old.get(stage);
        let after = new.get(stage);
        for mut change in gate_changes(
            before.map_or(&no_gates, |rule| &rule.gates),
            after.map_or(&no_gates, |rule| &rule.gates),
        ) {
            change.scope = Scope::Promotion;
            change.stage = Some(stage.clone());
            gates.push(change);
        }
        let old_soak = before.and_then(|rule| rule.soak);
        let new_soak = after.and_then(|rule| rule.soak);
        if let Some(effect) = effect_of(old_soak, new_soak, |a, b| Some(b < a)) {
            soak.push(SoakChange {
                stage: stage.clone(),
                old: old_soak.map(duration_text),
                new: new_soak.map(duration_text),
                effect,
            });
        }
    }
    (gates, soak)
}

/// Formats the training command as one line: a shell command as written, argv as a JSON list.
pub fn command_text(command: &TrainCommand) -> String {
    match command {
        TrainCommand::Shell(command) => command.clone(),
        TrainCommand::Argv(arguments) => {
            serde_json::to_string(arguments).expect("a list of strings always serializes")
        }
    }
}

/// Writes a duration in the release file's notation, such as `1h30m`.
fn duration_text(duration: Duration) -> String {
    let mut seconds = duration.as_secs();
    let mut text = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
        if seconds >= size {
            text.push_str(&format!("{}{unit}", seconds / size));
            seconds %= size;
        }
    }
    if text.is_empty() {
        text.push_str("0s");
    }
    text
}

/// Compares two sets of gates check by check. A lower `min`, a higher `max`, a higher
/// `max_increase` or `max_decrease`, and a removed check loosen a gate. The opposite moves and an
/// added check tighten it.
pub fn gate_changes(old: &BTreeMap<String, Gate>, new: &BTreeMap<String, Gate>) -> Vec<GateChange> {
    let metrics: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    let mut changes = Vec::new();
    for metric in metrics {
        let before = old.get(metric);
        let after = new.get(metric);
        let mut push = |check: &str, old: Option<String>, new: Option<String>, effect| {
            changes.push(GateChange {
                scope: Scope::Release,
                stage: None,
                metric: metric.clone(),
                check: check.to_owned(),
                old,
                new,
                effect,
            });
        };

        let limits = [
            (
                "min",
                before.and_then(|gate| gate.min),
                after.and_then(|gate| gate.min),
            ),
            (
                "max",
                before.and_then(|gate| gate.max),
                after.and_then(|gate| gate.max),
            ),
        ];
        for (check, a, b) in limits {
            let loosened = |a: f64, b: f64| if check == "min" { b < a } else { b > a };
            if let Some(effect) = effect_of(a, b, |a, b| Some(loosened(a, b))) {
                push(check, a.map(float_text), b.map(float_text), effect);
            }
        }

        let relative = [
            (
                "max_increase",
                before.and_then(|gate| gate.max_increase),
                after.and_then(|gate| gate.max_increase),
            ),
            (
                "max_decrease",
                before.and_then(|gate| gate.max_decrease),
                after.and_then(|gate| gate.max_decrease),
            ),
        ];
        for (check, a, b) in relative {
            let raised = |a: Change, b: Change| match (a, b) {
                (Change::Absolute(a), Change::Absolute(b))
                | (Change::Percent(a), Change::Percent(b)) => Some(b > a),
                _ => None,
            };
            if let Some(effect) = effect_of(a, b, raised) {
                push(
                    check,
                    a.map(|change| change.to_string()),
                    b.map(|change| change.to_string()),
                    effect,
                );
            }
        }

        if let (Some(before), Some(after)) = (before, after)
            && before.better != after.better
        {
            let text = |gate: &Gate| {
                gate.better.map(|better| match better {
                    release_file::Better::Higher => "higher".to_owned(),
                    release_file::Better::Lower => "lower".to_owned(),
                })
            };
            push("better", text(before), text(after), Effect::Changed);
        }
    }
    changes
}

/// Returns the effect of one check going from `old` to `new`, or `None` when it did not change.
/// `loosened` returns whether a changed value lets more through, or `None` where the two values
/// cannot be compared.
fn effect_of<T: PartialEq + Copy>(
    old: Option<T>,
    new: Option<T>,
    loosened: impl Fn(T, T) -> Option<bool>,
) -> Option<Effect> {
    match (old, new) {
        (None, None) => None,
        (Some(_), None) => Some(Effect::Loosened),
        (None, Some(_)) => Some(Effect::Tightened),
        (Some(a), Some(b)) if a == b => None,
        (Some(a), Some(b)) => Some(match loosened(a, b) {
            Some(true) => Effect::Loosened,
            Some(false) => Effect::Tightened,
            None => Effect::Changed,
        }),
    }
}

/// The tag that releasing the head's version would create, and the problems that would stop it.
#[derive(Clone, Debug, Serialize)]
pub struct ReleaseCheck {
    pub tag: String,
    /// Whether a ref of that name exists under `refs/tags/`.
    pub exists: bool,
    /// The model's greatest active version.
    pub latest: Option<String>,
    /// Whether the version was deregistered (a `MODEL@vVERSION!` tag exists).
    pub deregistered: bool,
    /// Reasons that a release of this version would be rejected; empty when it would go ahead.
    pub problems: Vec<String>,
}

/// Checks that the head's version can be released: its tag does not exist, it is greater than
/// the latest release, and it was never deregistered.
pub fn release_check(
    repo: &Repo,
    registry: &Registry,
    release: &ReleaseFile,
    base_version: Option<&semver::Version>,
) -> Result<ReleaseCheck, RepoError> {
    let tag = release.tag_name();
    let exists =
        crate::tagging::exists(repo, &tag).map_err(|error| RepoError::Git(error.to_string()))?;
    let latest = registry.latest(&release.model).map(|(version, _)| version);
    let deregistered = registry.model_events(&release.model).any(|event| {
        matches!(&event.name.kind, TagKind::Deregister(version) if *version == release.version)
    });

    let mut problems = Vec::new();
    let unchanged = base_version == Some(&release.version);
    if deregistered {
        problems.push(format!(
            "version {} was deregistered (tag {tag}! exists) and is never released again; \
             choose a version above {}",
            release.version,
            latest.map_or_else(|| release.version.to_string(), ToString::to_string)
        ));
    } else if exists {
        let hint = if unchanged {
            "the change keeps the version; raise `version`"
        } else {
            "raise `version`"
        };
        problems.push(format!("tag {tag} already exists; {hint}"));
    }
    if let Some(latest) = latest
        && release.version <= *latest
        && !exists
        && !deregistered
    {
        problems.push(format!(
            "version {} is not greater than the latest release {latest}; raise `version` above it",
            release.version
        ));
    }
    Ok(ReleaseCheck {
        tag,
        exists,
        latest: latest.map(ToString::to_string),
        deregistered,
        problems,
    })
}

/// The source of the metrics of a reviewed release file.
#[derive(Clone, Copy, Debug)]
pub enum MetricsSource<'a> {
    /// The metrics file that the release file names, where the head commit tracks it.
    Tracked,
    /// A file given on the command line, such as the output of a training job in CI.
    File(&'a Path),
}

/// The head's metrics compared with the latest release, and the gates' verdicts.
#[derive(Clone, Debug, Serialize)]
pub struct MetricsReview {
    /// The place the metrics were read from: `PATH at HEAD`, or the path given on the command line.
    pub source: String,
    /// The release tag compared with; `None` before the first release.
    pub compared_with: Option<String>,
    pub rows: Vec<MetricRow>,
    pub gates: Vec<GateResult>,
    /// A problem that kept the metrics from being compared or the gates from being applied.
    pub error: Option<String>,
}

impl MetricsReview {
    /// Returns whether a gate failed or the metrics could not be judged.
    pub fn failed(&self) -> bool {
        self.error.is_some() || gates::any_failed(&self.gates)
    }
}

/// Reads the head's metrics and compares them with the latest release of the model. Returns
/// `Ok(None)` where there are no metrics to read, and an error only for a file given on the
/// command line that cannot be read or parsed.
pub fn review_metrics(
    repo: &Repo,
    registry: &Registry,
    release: &ReleaseFile,
    head: ObjectId,
    head_label: &str,
    source: MetricsSource<'_>,
    notes: &mut Vec<String>,
) -> Result<Option<MetricsReview>, MetricsError> {
    let (shown, current) = match source {
        MetricsSource::File(path) => {
            let shown = path.display().to_string();
            let current = metrics::load(path, &shown)?;
            (shown, Ok(current))
        }
        MetricsSource::Tracked => {
            let Some(path) = &release.metrics else {
                return Ok(None);
            };
            let content = match repo.file_at(head, path) {
                Ok(Some(content)) => content,
                Ok(None) => {
                    notes.push(format!(
                        "the metrics file {path} is not tracked at {head_label}, so no metrics \
                         were compared; pass the output of a training run with --metrics"
                    ));
                    return Ok(None);
                }
                Err(error) => {
                    notes.push(format!("cannot read the metrics file {path}: {error}"));
                    return Ok(None);
                }
            };
            let shown = format!("{path} at {head_label}");
            let parsed = metrics::parse(
                &content.to_str_lossy(),
                &shown,
                metrics::Format::from_path(path),
            );
            (shown, parsed.map_err(|error| error.to_string()))
        }
    };

    let mut review = MetricsReview {
        source: shown,
        compared_with: None,
        rows: Vec::new(),
        gates: Vec::new(),
        error: None,
    };
    let current = match current {
        Ok(current) => current,
        Err(error) => {
            review.error = Some(error);
            return Ok(Some(review));
        }
    };

    let previous = match registry.latest(&release.model) {
        Some((_, event)) => match record::parse_release(&event.tag, &event.message) {
            Ok(record) => {
                review.compared_with = Some(event.tag.clone());
                Some(crate::metrics::from_record(&record.metrics))
            }
            Err(error) => {
                notes.push(format!(
                    "the metrics are not compared with {}: {error}",
                    event.tag
                ));
                None
            }
        },
        None => None,
    };

    match gates::evaluate(&release.gates, &current, previous.as_ref()) {
        Ok(results) => review.gates = results,
        Err(error) => review.error = Some(error.to_string()),
    }
    review.rows = compare::metric_rows(
        &previous.unwrap_or_default(),
        &current,
        &release.gates,
        &review.gates,
        false,
    );
    Ok(Some(review))
}

/// One problem of a release file, as JSON output carries it.
#[derive(Clone, Debug, Serialize)]
pub struct ProblemEntry {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub field: String,
    pub message: String,
}

impl From<&Problem> for ProblemEntry {
    fn from(problem: &Problem) -> Self {
        ProblemEntry {
            file: problem.file.clone(),
            line: problem.position.line,
            column: problem.position.column,
            field: problem.field.clone(),
            message: problem.message.clone(),
        }
    }
}

/// The review of one changed release file.
#[derive(Clone, Debug, Serialize)]
pub struct FileReview {
    pub path: String,
    pub change: ChangeKind,
    /// The model the head declares, or the merge base where the head does not parse or the file
    /// was removed.
    pub model: Option<String>,
    pub old_version: Option<String>,
    pub new_version: Option<String>,
    /// Whether the head's content is a valid release file; true for a removed file.
    pub valid: bool,
    pub problems: Vec<ProblemEntry>,
    pub summary: Option<Summary>,
    pub release: Option<ReleaseCheck>,
    pub metrics: Option<MetricsReview>,
    /// Remarks that do not fail the review, such as metrics that could not be compared.
    pub notes: Vec<String>,
    pub diff: Diff,
    /// Whether the file is valid, its version can be released and no gate failed.
    pub passed: bool,
}

/// The inputs that every file's review reads besides the file itself.
pub struct Context<'a> {
    pub repo: &'a Repo,
    pub registry: &'a Registry,
    pub head: ObjectId,
    /// The name of the head in messages, such as `HEAD`.
    pub head_label: &'a str,
    /// The models declared at the head, from [`declared_models`].
    pub head_models: &'a BTreeMap<String, Vec<String>>,
}

/// Reviews one changed release file. `metrics` names a file given on the command line for this
/// file's model. Without it, the review reads the tracked metrics file at the head, where there is
/// one.
pub fn review_file(
    context: &Context<'_>,
    file: &ChangedFile,
    metrics: Option<&Path>,
) -> Result<FileReview, ReviewError> {
    let diff = unified_diff(file);
    let old = file
        .old
        .as_deref()
        .map(|content| parse_content(&file.path, content));
    let new = file
        .new
        .as_deref()
        .map(|content| parse_content(&file.path, content));
    let old_release = old.as_ref().and_then(|parsed| parsed.as_ref().ok());
    let mut notes = Vec::new();

    let mut review = FileReview {
        path: file.path.clone(),
        change: file.change,
        model: old_release.map(|release| release.model.clone()),
        old_version: old_release.map(|release| release.version.to_string()),
        new_version: None,
        valid: true,
        problems: Vec::new(),
        summary: None,
        release: None,
        metrics: None,
        notes: Vec::new(),
        diff,
        passed: true,
    };

    let Some(new) = new else {
        notes.push(match &review.model {
            Some(model) => {
                format!("the release file of {model} was removed; its tags stay in the registry")
            }
            None => "the release file was removed".to_owned(),
        });
        review.notes = notes;
        return Ok(review);
    };

    let release = match new {
        Ok(release) => release,
        Err(problems) => {
            review.valid = false;
            review.passed = false;
            review.problems = problems.iter().map(ProblemEntry::from).collect();
            return Ok(review);
        }
    };
    review.model = Some(release.model.clone());
    review.new_version = Some(release.version.to_string());

    if let Some(paths) = context.head_models.get(&release.model) {
        for other in paths.iter().filter(|path| **path != release.path) {
            review.problems.push(ProblemEntry::from(&Problem {
                file: release.path.clone(),
                position: release.model_position,
                field: "model".into(),
                message: format!(
                    "model `{}` is also declared in {other}; each model has one release file",
                    release.model
                ),
            }));
        }
    }
    review.valid = review.problems.is_empty();

    if matches!(old, Some(Err(_))) {
        notes.push(
            "the file at the merge base is not a valid release file, so the summary lists \
             every field as new"
                .into(),
        );
    }
    review.summary = Some(summarize(old_release, &release));
    let base_version = old_release.map(|release| &release.version);
    review.release = Some(release_check(
        context.repo,
        context.registry,
        &release,
        base_version,
    )?);

    let source = match metrics {
        Some(path) => MetricsSource::File(path),
        None => MetricsSource::Tracked,
    };
    review.metrics = review_metrics(
        context.repo,
        context.registry,
        &release,
        context.head,
        context.head_label,
        source,
        &mut notes,
    )?;
    review.notes = notes;

    let release_ok = review
        .release
        .as_ref()
        .is_none_or(|check| check.problems.is_empty());
    let metrics_ok = !review.metrics.as_ref().is_some_and(MetricsReview::failed);
    review.passed = review.valid && release_ok && metrics_ok;
    Ok(review)
}

#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error(transparent)]
    Repo(#[from] RepoError),
    #[error(transparent)]
    Metrics(#[from] MetricsError),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gates(entries: &[(&str, Gate)]) -> BTreeMap<String, Gate> {
        entries
            .iter()
            .map(|(name, gate)| ((*name).to_owned(), gate.clone()))
            .collect()
    }

    fn effects(changes: &[GateChange]) -> Vec<(&str, Effect)> {
        changes
            .iter()
            .map(|change| (change.check.as_str(), change.effect))
            .collect()
    }

    #[test]
    fn lower_min_loosens() {
        let old = gates(&[(
            "r2",
            Gate {
                min: Some(0.4),
                ..Gate::default()
            },
        )]);
        let new = gates(&[(
            "r2",
            Gate {
                min: Some(0.3),
                ..Gate::default()
            },
        )]);
        assert_eq!(
            effects(&gate_changes(&old, &new)),
            [("min", Effect::Loosened)]
        );
    }

    #[test]
    fn higher_min_tightens() {
        let old = gates(&[(
            "r2",
            Gate {
                min: Some(0.4),
                ..Gate::default()
            },
        )]);
        let new = gates(&[(
            "r2",
            Gate {
                min: Some(0.5),
                ..Gate::default()
            },
        )]);
        assert_eq!(
            effects(&gate_changes(&old, &new)),
            [("min", Effect::Tightened)]
        );
    }

    #[test]
    fn higher_max_loosens() {
        let old = gates(&[(
            "rmse",
            Gate {
                max: Some(70.0),
                ..Gate::default()
            },
        )]);
        let new = gates(&[(
            "rmse",
            Gate {
                max: Some(80.0),
                ..Gate::default()
            },
        )]);
        assert_eq!(
            effects(&gate_changes(&old, &new)),
            [("max", Effect::Loosened)]
        );
    }

    #[test]
    fn raised_relative_limits_loosen() {
        let old = gates(&[(
            "loss",
            Gate {
                max_increase: Some(Change::Percent(5.0)),
                max_decrease: Some(Change::Absolute(0.01)),
                ..Gate::default()
            },
        )]);
        let new = gates(&[(
            "loss",
            Gate {
                max_increase: Some(Change::Percent(10.0)),
                max_decrease: Some(Change::Absolute(0.005)),
                ..Gate::default()
            },
        )]);
        assert_eq!(
            effects(&gate_changes(&old, &new)),
            [
                ("max_increase", Effect::Loosened),
                ("max_decrease", Effect::Tightened)
            ]
        );
    }

    #[test]
    fn amount_to_percentage_is_changed() {
        let old = gates(&[(
            "loss",
            Gate {
                max_increase: Some(Change::Absolute(5.0)),
                ..Gate::default()
            },
        )]);
        let new = gates(&[(
            "loss",
            Gate {
                max_increase: Some(Change::Percent(5.0)),
                ..Gate::default()
            },
        )]);
        assert_eq!(
            effects(&gate_changes(&old, &new)),
            [("max_increase", Effect::Changed)]
        );
    }

    #[test]
    fn removed_gate_loosens_each_check() {
        let old = gates(&[(
            "r2",
            Gate {
                min: Some(0.4),
                max_decrease: Some(Change::Absolute(0.02)),
                ..Gate::default()
            },
        )]);
        assert_eq!(
            effects(&gate_changes(&old, &BTreeMap::new())),
            [
                ("min", Effect::Loosened),
                ("max_decrease", Effect::Loosened)
            ]
        );
    }

    #[test]
    fn added_gate_tightens() {
        let new = gates(&[(
            "r2",
            Gate {
                min: Some(0.4),
                ..Gate::default()
            },
        )]);
        assert_eq!(
            effects(&gate_changes(&BTreeMap::new(), &new)),
            [("min", Effect::Tightened)]
        );
    }

    #[test]
    fn unchanged_gates_report_nothing() {
        let same = gates(&[(
            "r2",
            Gate {
                min: Some(0.4),
                ..Gate::default()
            },
        )]);
        assert!(gate_changes(&same, &same).is_empty());
    }

    #[test]
    fn durations_keep_release_file_notation() {
        assert_eq!(duration_text(Duration::from_secs(5400)), "1h30m");
        assert_eq!(duration_text(Duration::from_secs(86_401)), "1d1s");
    }
}
