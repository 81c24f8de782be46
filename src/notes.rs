//! The release: comparing a trained model with the previous release, gating it, and turning the
//! result into the notes context and the record.

use serde::Serialize;

use crate::compare::{self, MetricRow, ParamRow};
use crate::digest::ArtifactDigest;
use crate::gates::{self, GateError, GateResult};
use crate::metrics::Metrics;
use crate::record::{RELEASE_FORMAT, ReleaseRecord, Training};
use crate::release_file::{ReleaseFile, TrainCommand};
use crate::training::humanize;

/// The previous release, as read from its tag.
pub struct Previous {
    pub version: String,
    pub record: ReleaseRecord,
}

impl Previous {
    pub fn metrics(&self) -> Metrics {
        crate::metrics::from_record(&self.record.metrics)
    }
}

/// Metrics, artifacts and timing that a training run contributes to a release.
pub struct Trained {
    pub metrics: Metrics,
    pub artifacts: Vec<ArtifactDigest>,
    pub started: Option<jiff::Timestamp>,
    pub duration: Option<std::time::Duration>,
    /// Origin of the run when it came from a run record made elsewhere.
    pub run: Option<RunOrigin>,
}

/// A run that happened elsewhere, as its run record describes it.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunOrigin {
    /// The run record's path as given to `mrel release --run`.
    pub record: String,
    pub host: Option<String>,
    /// The training command that the run record names.
    pub command: serde_json::Value,
}

/// The template context of `notes.md.j2`.
#[derive(Clone, Debug, Serialize)]
pub struct NotesContext {
    pub model: String,
    pub version: String,
    pub previous_version: Option<String>,
    pub description: Option<String>,
    /// The author's words from the release file's `notes`.
    pub notes: Option<String>,
    pub commit: String,
    pub release_file: String,
    /// Every metric, unchanged ones too.
    pub metrics: Vec<MetricRow>,
    /// Params that changed against the previous release (all of them on a first release).
    pub params: Vec<ParamRow>,
    pub gates: Vec<GateResult>,
    pub artifacts: Vec<ArtifactDigest>,
    pub training: TrainingContext,
}

#[derive(Clone, Debug, Serialize)]
pub struct TrainingContext {
    pub command: String,
    /// Human-readable duration such as `3m 05s`, or `not run`.
    pub duration: String,
    /// RFC 3339 start time, or `not run`.
    pub started: String,
}

/// A release ready to be rendered and tagged.
pub struct Prepared {
    pub context: NotesContext,
    pub record: ReleaseRecord,
}

impl Prepared {
    pub fn failed(&self) -> bool {
        gates::any_failed(&self.context.gates)
    }
}

/// Compares `trained` with `previous`, applies the gates, and builds the notes context and the
/// record of `release` at `commit`.
pub fn prepare(
    release: &ReleaseFile,
    commit: &str,
    trained: Trained,
    previous: Option<&Previous>,
) -> Result<Prepared, GateError> {
    let previous_metrics = previous.map(Previous::metrics);
    let results = gates::evaluate(&release.gates, &trained.metrics, previous_metrics.as_ref())?;
    let empty = Metrics::new();
    let metrics = compare::metric_rows(
        previous_metrics.as_ref().unwrap_or(&empty),
        &trained.metrics,
        &release.gates,
        &results,
        true,
    );
    let no_params = serde_json::Map::new();
    let params = compare::param_rows(
        previous.map_or(&no_params, |previous| &previous.record.params),
        &release.params,
        false,
    );

    let command = release.train.as_ref().map(|train| &train.command);
    let command_json = match command {
        Some(TrainCommand::Shell(text)) => serde_json::Value::String(text.clone()),
        Some(TrainCommand::Argv(arguments)) => serde_json::json!(arguments),
        None => serde_json::Value::Null,
    };
    let started = trained.started.map(|time| time.to_string());
    let record = ReleaseRecord {
        format: RELEASE_FORMAT.to_owned(),
        model: release.model.clone(),
        version: release.version.to_string(),
        commit: commit.to_owned(),
        previous_version: previous.map(|previous| previous.version.clone()),
        release_file: release.path.clone(),
        params: release.params.clone(),
        metrics: trained
            .metrics
            .iter()
            .map(|(name, value)| (name.clone(), value.to_json()))
            .collect(),
        gates: results.clone(),
        artifacts: trained.artifacts.clone(),
        training: Training {
            command: trained
                .run
                .as_ref()
                .map_or(command_json, |run| run.command.clone()),
            workdir: release
                .train
                .as_ref()
                .map(|train| train.workdir.clone())
                .unwrap_or_default(),
            started: started.clone().unwrap_or_default(),
            duration_seconds: trained
                .duration
                .map_or(0.0, |duration| duration.as_secs_f64()),
            host: match &trained.run {
                Some(run) => run.host.clone(),
                None => host_name(),
            },
            run: trained.run.clone(),
        },
    };
    let context = NotesContext {
        model: release.model.clone(),
        version: release.version.to_string(),
        previous_version: previous.map(|previous| previous.version.clone()),
        description: release.description.clone(),
        notes: release.notes.clone(),
        commit: commit.to_owned(),
        release_file: release.path.clone(),
        metrics,
        params,
        gates: results,
        artifacts: trained.artifacts,
        training: TrainingContext {
            command: command.map(ToString::to_string).unwrap_or_default(),
            duration: trained
                .duration
                .map_or_else(|| "not run".to_owned(), humanize),
            started: started.unwrap_or_else(|| "not run".to_owned()),
        },
    };
    Ok(Prepared { context, record })
}

/// Returns this machine's host name, where the system reports one.
pub fn host_name() -> Option<String> {
    let mut buffer = [0u8; 256];
    // SAFETY: gethostname writes at most `buffer.len()` bytes into the buffer it is given.
    let result = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) };
    if result != 0 {
        return None;
    }
    let end = buffer
        .iter()
        .position(|byte| *byte == 0)
        .unwrap_or(buffer.len());
    String::from_utf8(buffer[..end].to_vec())
        .ok()
        .filter(|name| !name.is_empty())
}
