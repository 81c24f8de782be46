//! `mrel train`: runs the training command and shows the metrics, without releasing.

use crate::commands::{CommandError, Global, digest, print};
use crate::metrics::MetricValue;
use crate::release_file::{ReleaseFile, TrainCommand};
use crate::repo::Repo;
use crate::report::{Format, Table, format_json_value};
use crate::run_record::{self, RunRecord};
use crate::training::{self, Outcome, humanize};
use crate::workspace;

pub struct Args {
    pub model: String,
    pub format: Format,
    /// Hashes every artifact instead of taking unchanged files' digests from the cache.
    pub no_cache: bool,
    /// Path of the run record, by default `mrel-run.json` next to the metrics file.
    pub record: Option<std::path::PathBuf>,
}

pub fn run(global: &Global, args: &Args) -> Result<(), CommandError> {
    let repo = global.open()?;
    let release = workspace::find_model(&repo, &args.model)?;
    let registry = global.load_registry(&repo)?;
    let previous = registry
        .previous(&release.model, &release.version)
        .map(|(version, _)| version.to_string());
    let outcome = train(global, &repo, &release, previous, args.no_cache)?;
    let record_path = args
        .record
        .clone()
        .unwrap_or_else(|| repo.root().join(default_record_path(&release)));
    write_run_record(global, &repo, &release, &outcome, &record_path)?;

    match args.format {
        Format::Json => {
            let output = serde_json::json!({
                "model": release.model,
                "version": release.version.to_string(),
                "metrics": outcome.metrics.iter().map(|(name, value)| (name.clone(), value.to_json())).collect::<serde_json::Map<_, _>>(),
                "artifacts": outcome.artifacts,
                "started": outcome.started.to_string(),
                "duration_seconds": outcome.duration.as_secs_f64(),
                "log": outcome.log,
            });
            print(&serde_json::to_string_pretty(&output).expect("JSON output always serializes"));
        }
        Format::Text | Format::Markdown => {
            let mut table = Table::new(&["metric", "value"]).align_right(&[1]);
            for (name, value) in &outcome.metrics {
                table.push(vec![
                    name.clone(),
                    format_json_value(&MetricValue::to_json(value)),
                ]);
            }
            let rendered = if args.format == Format::Markdown {
                table.to_markdown()
            } else {
                table.to_text()
            };
            print(&rendered);
            if !global.quiet {
                eprintln!(
                    "trained in {}; log: {}",
                    humanize(outcome.duration),
                    outcome.log.display()
                );
            }
        }
    }
    Ok(())
}

/// `mrel-run.json` in the metrics file's folder, or in the release file's folder without one.
fn default_record_path(release: &ReleaseFile) -> String {
    let folder = match &release.metrics {
        Some(metrics) => metrics.rsplit_once('/').map_or("", |(folder, _)| folder),
        None => release.folder(),
    };
    if folder.is_empty() {
        run_record::FILE_NAME.to_owned()
    } else {
        format!("{folder}/{}", run_record::FILE_NAME)
    }
}

/// Writes the run record of a successful training run, so that the run can be released later,
/// here or from another clone, with `mrel release --run`.
fn write_run_record(
    global: &Global,
    repo: &Repo,
    release: &ReleaseFile,
    outcome: &Outcome,
    path: &std::path::Path,
) -> Result<(), CommandError> {
    if repo.is_dirty()? {
        global.warn("tracked files differ from HEAD, so the run record names HEAD but the code trained was not committed");
    }
    let command = match release.train.as_ref().map(|train| &train.command) {
        Some(TrainCommand::Shell(text)) => serde_json::Value::String(text.clone()),
        Some(TrainCommand::Argv(arguments)) => serde_json::json!(arguments),
        None => serde_json::Value::Null,
    };
    let record = RunRecord {
        format: run_record::RUN_FORMAT.to_owned(),
        model: release.model.clone(),
        version: release.version.to_string(),
        commit: repo.head_commit()?.to_string(),
        params_digest: run_record::params_digest(&release.params),
        params: Some(release.params.clone()),
        metrics: outcome
            .metrics
            .iter()
            .map(|(name, value)| (name.clone(), value.to_json()))
            .collect(),
        artifacts: outcome.artifacts.clone(),
        command,
        host: crate::notes::host_name(),
        started: outcome.started.to_string(),
        duration_seconds: outcome.duration.as_secs_f64(),
        exit_status: 0,
    };
    run_record::write(path, &record).map_err(|error| CommandError::invalid(error.to_string()))?;
    if !global.quiet {
        eprintln!("run record: {}", path.display());
    }
    Ok(())
}

/// Runs training for `release`, with its log under the git directory, and hashes the artifacts
/// through the digest cache unless `no_cache` is set.
pub fn train(
    global: &Global,
    repo: &Repo,
    release: &ReleaseFile,
    previous_version: Option<String>,
    no_cache: bool,
) -> Result<Outcome, CommandError> {
    let hasher = digest::hasher(global, repo, no_cache);
    let run = training::Run {
        root: repo.root(),
        state_dir: repo.git_dir().join("mrel").join("logs"),
        release,
        previous_version,
        quiet: global.quiet,
        hasher: &hasher,
    };
    let outcome = run.execute()?;
    digest::save_cache(global, &hasher);
    Ok(outcome)
}
