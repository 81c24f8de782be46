//! `mrel diff`: metrics and params of two releases, revisions or the work tree, side by side.

use gix::bstr::ByteSlice;

use crate::commands::{CommandError, Global, print};
use crate::compare::{self, MetricRow, ParamRow, Verdict};
use crate::gates::{self, GateResult, Status};
use crate::metrics::{self, Metrics};
use crate::record;
use crate::registry::{ReleaseIndex, read_event};
use crate::release_file::{self, ReleaseFile, in_worktree};
use crate::repo::Repo;
use crate::report::{Format, Table, format_change_with, format_json_value_with};
use crate::tags::{self, TagKind};
use crate::workspace;

/// The name that selects the work tree as a side of the diff.
pub const WORKSPACE: &str = "workspace";

pub struct Args {
    pub model: String,
    pub from: Option<String>,
    pub to: Option<String>,
    pub all: bool,
    pub precision: usize,
    pub format: Format,
}

/// One side of a diff.
struct Side {
    label: String,
    metrics: Metrics,
    params: serde_json::Map<String, serde_json::Value>,
}

pub fn run(global: &Global, args: &Args) -> Result<(), CommandError> {
    let repo = global.open()?;
    let release = workspace::find_model(&repo, &args.model)?;
    // Only tag names are read to find the default sides, and only the two tags compared are
    // read in full, so that the time does not grow with the size of the registry.
    let index = match (&args.from, &args.to) {
        (Some(_), Some(_)) => None,
        _ => Some(ReleaseIndex::load(&repo, &release.model)?),
    };
    let to_spec = match (&args.to, &index) {
        (Some(spec), _) => spec.clone(),
        (None, Some(index)) => latest_tag(index, &release.model)?,
        (None, None) => return Err(CommandError::invalid("--to is missing")),
    };
    let to = resolve(&repo, &release, &to_spec)?;
    let from_spec = match (&args.from, &index) {
        (Some(spec), _) => spec.clone(),
        (None, Some(index)) => default_from(index, &release.model, &to_spec)?,
        (None, None) => return Err(CommandError::invalid("--from is missing")),
    };
    let from = resolve(&repo, &release, &from_spec)?;

    let results = gates::evaluate(&release.gates, &to.metrics, Some(&from.metrics))?;
    let metric_rows = compare::metric_rows(
        &from.metrics,
        &to.metrics,
        &release.gates,
        &results,
        args.all,
    );
    let param_rows = compare::param_rows(&from.params, &to.params, args.all);

    let output = match args.format {
        Format::Json => {
            let json = serde_json::json!({
                "model": release.model,
                "from": from.label,
                "to": to.label,
                "metrics": metric_rows,
                "params": param_rows,
                "gates": results,
            });
            serde_json::to_string_pretty(&json).expect("JSON output always serializes")
        }
        Format::Text | Format::Markdown => {
            render_tables(args, &from, &to, &metric_rows, &param_rows, &results)
        }
    };
    print(&output);
    Ok(())
}

fn latest_tag(index: &ReleaseIndex<'_>, model: &str) -> Result<String, CommandError> {
    index
        .latest()?
        .map(|version| tags::release_tag(model, &version))
        .ok_or_else(|| {
            CommandError::invalid(format!(
                "{model} has no release yet; compare the work tree with a revision using \
                 `mrel diff {model} --from HEAD --to {WORKSPACE}`"
            ))
        })
}

/// Returns the release below `to` where `to` is a release, otherwise the latest release.
fn default_from(index: &ReleaseIndex<'_>, model: &str, to: &str) -> Result<String, CommandError> {
    let to_version = tags::parse(to).and_then(|name| match name.kind {
        TagKind::Register(version) => Some(version),
        _ => None,
    });
    let found = match to_version {
        Some(version) => index.previous(&version)?,
        None => index.latest()?,
    };
    found
        .map(|version| tags::release_tag(model, &version))
        .ok_or_else(|| {
            CommandError::invalid(format!(
                "{model} has only one release, {to}, so there is nothing to compare it with; \
                 name the other side with --from (a release, a revision or `{WORKSPACE}`)"
            ))
        })
}

/// Resolves a side: `workspace`, a release (`MODEL@vX` or `X`), or any git revision.
fn resolve(repo: &Repo, release: &ReleaseFile, spec: &str) -> Result<Side, CommandError> {
    if spec == WORKSPACE {
        let metrics = match &release.metrics {
            Some(path) => metrics::load(&in_worktree(repo.root(), path), path)?,
            None => Metrics::new(),
        };
        return Ok(Side {
            label: WORKSPACE.to_owned(),
            metrics,
            params: release.params.clone(),
        });
    }

    let version = match tags::parse(spec) {
        Some(name) => match name.kind {
            TagKind::Register(version) if name.model == release.model => Some(version),
            _ => {
                return Err(CommandError::invalid(format!(
                    "`{spec}` is not a release tag of {}; expected {}@vX.Y.Z, a version, a revision or `{WORKSPACE}`",
                    release.model, release.model
                )));
            }
        },
        None => semver::Version::parse(spec.strip_prefix('v').unwrap_or(spec)).ok(),
    };
    if let Some(version) = version {
        let tag = tags::release_tag(&release.model, &version);
        let event = read_event(repo, &tag)?.ok_or_else(|| {
            CommandError::invalid(format!(
                "release {}@v{version} not found; `mrel history {}` lists the releases",
                release.model, release.model
            ))
        })?;
        let record = record::parse_release(&event.tag, &event.message)?;
        return Ok(Side {
            label: event.tag.clone(),
            metrics: crate::metrics::from_record(&record.metrics),
            params: record.params,
        });
    }

    revision_side(repo, release, spec)
}

/// Reads the release file and the tracked metrics file as they are at a revision.
fn revision_side(repo: &Repo, release: &ReleaseFile, revision: &str) -> Result<Side, CommandError> {
    let commit = repo.resolve_commit(revision).map_err(|_| {
        CommandError::invalid(format!(
            "`{revision}` is neither a release of {} (MODEL@vX.Y.Z or X.Y.Z), a git revision, nor `{WORKSPACE}`",
            release.model
        ))
    })?;
    let short = commit.to_string()[..12].to_owned();
    let file_text = repo.file_at(commit, &release.path)?.ok_or_else(|| {
        CommandError::invalid(format!(
            "{} does not exist at {revision} ({short})",
            release.path
        ))
    })?;
    let shown = format!("{}@{revision}", release.path);
    let at_revision = release_file::parse(&shown, &file_text.to_str_lossy())?;
    let metrics = match &at_revision.metrics {
        Some(path) => match repo.file_at(commit, path)? {
            Some(bytes) => metrics::parse(
                &bytes.to_str_lossy(),
                &format!("{path}@{revision}"),
                metrics::Format::from_path(path),
            )?,
            None => {
                return Err(CommandError::invalid(format!(
                    "the metrics file {path} is not tracked at {revision} ({short}); compare releases or `{WORKSPACE}` instead"
                )));
            }
        },
        None => Metrics::new(),
    };
    Ok(Side {
        label: format!("{revision} ({short})"),
        metrics,
        params: at_revision.params,
    })
}

fn render_tables(
    args: &Args,
    from: &Side,
    to: &Side,
    metric_rows: &[MetricRow],
    param_rows: &[ParamRow],
    results: &[GateResult],
) -> String {
    let markdown = args.format == Format::Markdown;
    let precision = args.precision;
    let value = |value: &Option<serde_json::Value>| {
        value.as_ref().map_or_else(
            || "—".to_owned(),
            |value| format_json_value_with(value, precision),
        )
    };

    let mut out = String::new();
    let heading = format!("{} → {}", from.label, to.label);
    if markdown {
        out.push_str(&format!("### {} metrics: {heading}\n\n", args.model));
    } else {
        out.push_str(&format!("{} metrics: {heading}\n\n", args.model));
    }

    let mut table =
        Table::new(&["metric", "old", "new", "change", "verdict", "gate"]).align_right(&[1, 2, 3]);
    for row in metric_rows {
        let gate = match row.gate {
            Some(Status::Passed) => "passed",
            Some(Status::Failed) => "FAILED",
            Some(Status::Skipped) => "skipped",
            None => "",
        };
        let verdict = match row.verdict {
            Verdict::Improved => "improved",
            Verdict::Regressed => "regressed",
            Verdict::Unchanged => "unchanged",
            Verdict::Changed => "changed",
            Verdict::Added => "added",
            Verdict::Removed => "removed",
        };
        table.push(vec![
            row.name.clone(),
            value(&row.old.as_ref().map(metrics::MetricValue::to_json)),
            value(&row.new.as_ref().map(metrics::MetricValue::to_json)),
            format_change_with(row.change, row.relative, precision),
            verdict.to_owned(),
            gate.to_owned(),
        ]);
    }
    if metric_rows.is_empty() {
        out.push_str("No metric changed.\n\n");
    } else {
        out.push_str(&if markdown {
            table.to_markdown()
        } else {
            table.to_text() + "\n"
        });
    }

    if !param_rows.is_empty() {
        out.push_str(if markdown {
            "### Params\n\n"
        } else {
            "params:\n\n"
        });
        let mut params = Table::new(&["param", "old", "new"]);
        for row in param_rows {
            params.push(vec![row.name.clone(), value(&row.old), value(&row.new)]);
        }
        out.push_str(&if markdown {
            params.to_markdown()
        } else {
            params.to_text() + "\n"
        });
    }

    if !results.is_empty() {
        out.push_str(if markdown {
            "### Gates\n\n"
        } else {
            "gates:\n\n"
        });
        let mut gates =
            Table::new(&["metric", "check", "limit", "value", "verdict"]).align_right(&[3]);
        for result in results {
            let verdict = match result.status {
                Status::Passed => "passed".to_owned(),
                Status::Failed => format!("FAILED: {}", result.reason),
                Status::Skipped => format!("skipped: {}", result.reason),
            };
            gates.push(vec![
                result.metric.clone(),
                result.check.clone(),
                result.limit.clone(),
                value(&result.value),
                verdict,
            ]);
        }
        out.push_str(&if markdown {
            gates.to_markdown()
        } else {
            gates.to_text()
        });
    }
    out
}
