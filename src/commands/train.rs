//! `mrel train`: runs the training command and shows the metrics, without releasing.

use crate::commands::{CommandError, Global, print};
use crate::metrics::MetricValue;
use crate::registry::Registry;
use crate::release_file::ReleaseFile;
use crate::repo::Repo;
use crate::report::{Format, Table, format_json_value};
use crate::training::{self, Outcome, humanize};
use crate::workspace;

pub struct Args {
    pub model: String,
    pub format: Format,
}

pub fn run(global: &Global, args: &Args) -> Result<(), CommandError> {
    let repo = global.open()?;
    let release = workspace::find_model(&repo, &args.model)?;
    let registry = Registry::load(&repo)?;
    let previous = registry
        .previous(&release.model, &release.version)
        .map(|(version, _)| version.to_string());
    let outcome = train(global, &repo, &release, previous)?;

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

/// Runs training for `release`, with its log under the git directory.
pub fn train(
    global: &Global,
    repo: &Repo,
    release: &ReleaseFile,
    previous_version: Option<String>,
) -> Result<Outcome, CommandError> {
    let run = training::Run {
        root: repo.root(),
        state_dir: repo.git_dir().join("mrel").join("logs"),
        release,
        previous_version,
        quiet: global.quiet,
    };
    Ok(run.execute()?)
}
