//! `mrel monitor`: judges live metrics of the version in a stage against its release record and
//! the release file's `monitor` gates, and with `--rollback` puts the previous holder back when a
//! gate fails.

use std::path::PathBuf;

use crate::commands::promote::declared_stage;
use crate::commands::rollback::Rollback;
use crate::commands::{CommandError, Global, print};
use crate::gates::{self, GateResult, Status};
use crate::metrics::{self, Metrics};
use crate::record;
use crate::report::{Format, Table, format_json_value};
use crate::workspace;

pub struct Args {
    pub model: String,
    pub stage: String,
    /// The live metrics that the monitoring job exported (JSON, YAML or TOML).
    pub metrics: PathBuf,
    pub rollback: bool,
    pub no_sign: bool,
    pub format: Format,
}

#[derive(serde::Serialize)]
struct Report {
    model: String,
    stage: String,
    version: String,
    passed: bool,
    gates: Vec<GateResult>,
    /// Live metrics that the release never recorded; they are reported, not judged.
    unrecorded: Vec<String>,
    /// The rollback tag, where `--rollback` created one.
    rollback: Option<String>,
}

pub fn run(global: &Global, args: &Args) -> Result<(), CommandError> {
    let repo = global.open()?;
    let release = workspace::find_model(&repo, &args.model)?;
    let stage = declared_stage(&release, &args.stage)?;
    if release.monitor.is_empty() {
        return Err(CommandError::invalid(format!(
            "{} declares no `monitor` gates; add them, in the form of `gates`, to judge live metrics",
            release.path
        )));
    }
    let registry = global.load_registry(&repo)?;
    let Some((_, version)) = registry.in_stage(&release.model, &stage) else {
        return Err(CommandError::invalid(format!(
            "no version of {} is in {stage}",
            release.model
        )));
    };
    let release_event = registry.release(&release.model, version).ok_or_else(|| {
        CommandError::invalid(format!(
            "the release tag of {}@v{version} is missing",
            release.model
        ))
    })?;
    let released: Metrics = crate::metrics::from_record(
        &record::parse_release(&release_event.tag, &release_event.message)?.metrics,
    );
    let shown = args.metrics.display().to_string();
    let live = metrics::load(&args.metrics, &shown)?;

    let results = gates::evaluate(&release.monitor, &live, Some(&released))?;
    let passed = !gates::any_failed(&results);
    let unrecorded: Vec<String> = live
        .keys()
        .filter(|name| !released.contains_key(*name))
        .cloned()
        .collect();

    let mut report = Report {
        model: release.model.clone(),
        stage: stage.clone(),
        version: version.to_string(),
        passed,
        gates: results,
        unrecorded,
        rollback: None,
    };
    if !passed && args.rollback {
        let stage_rollback = Rollback {
            repo: &repo,
            registry: &registry,
            release: &release,
            stage: &stage,
            no_sign: args.no_sign,
        };
        match stage_rollback.execute(global, None, &rollback_reason(&report.gates)) {
            Ok(tag) => report.rollback = Some(tag),
            Err(error) => {
                print(&render(&report, args.format));
                return Err(CommandError::failed(format!(
                    "{}; no rollback tag was created",
                    error.message
                )));
            }
        }
    }

    print(&render(&report, args.format));
    if passed {
        Ok(())
    } else {
        let action = match &report.rollback {
            Some(tag) => format!("rolled back with {tag}"),
            None => {
                "nothing was changed; pass --rollback to put the previous version back".to_owned()
            }
        };
        Err(CommandError::failed(format!(
            "a monitor gate failed for {}@v{} in {}; {action}",
            report.model, report.version, report.stage
        )))
    }
}

/// Names each failing metric with its live value, its release value and the limit.
fn rollback_reason(results: &[GateResult]) -> String {
    let failures: Vec<String> = results
        .iter()
        .filter(|result| result.status == Status::Failed)
        .map(|result| {
            let value = |value: &Option<serde_json::Value>| {
                value
                    .as_ref()
                    .map_or_else(|| "missing".to_owned(), format_json_value)
            };
            format!(
                "{} live {} against release {} breaks {} {} ({})",
                result.metric,
                value(&result.value),
                value(&result.previous),
                result.check,
                result.limit,
                result.reason
            )
        })
        .collect();
    format!("monitor gate failed: {}", failures.join("; "))
}

fn render(report: &Report, format: Format) -> String {
    if format == Format::Json {
        return serde_json::to_string_pretty(report).expect("JSON output always serializes");
    }
    let markdown = format == Format::Markdown;
    let mut out = format!(
        "{} {} in {}: {}\n\n",
        report.model,
        report.version,
        report.stage,
        if report.passed {
            "all monitor gates passed"
        } else {
            "a monitor gate FAILED"
        }
    );
    let mut table = Table::new(&["metric", "check", "limit", "release", "live", "verdict"])
        .align_right(&[3, 4]);
    for result in &report.gates {
        let value = |value: &Option<serde_json::Value>| {
            value
                .as_ref()
                .map_or_else(|| "—".to_owned(), format_json_value)
        };
        let verdict = match result.status {
            Status::Passed => "passed".to_owned(),
            Status::Failed => format!("FAILED: {}", result.reason),
            Status::Skipped => format!("skipped: {}", result.reason),
        };
        table.push(vec![
            result.metric.clone(),
            result.check.clone(),
            result.limit.clone(),
            value(&result.previous),
            value(&result.value),
            verdict,
        ]);
    }
    out.push_str(&if markdown {
        table.to_markdown()
    } else {
        table.to_text()
    });
    if !report.unrecorded.is_empty() {
        out.push_str(&format!(
            "\nlive metrics that the release never recorded: {}\n",
            report.unrecorded.join(", ")
        ));
    }
    if let Some(tag) = &report.rollback {
        out.push_str(&format!("\nrolled back: {tag}\n"));
    }
    out
}
