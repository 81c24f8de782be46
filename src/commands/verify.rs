//! `mrel verify`: checks a release's signature, its record and its artifacts' digests.

use std::path::PathBuf;

use crate::commands::{CommandError, Global, Kind, digest, print};
use crate::report::{Format, Table};
use crate::verify::{self, FileStatus, Report, VerifyError};

pub struct Args {
    /// A release tag (`MODEL@vVERSION`), `MODEL@VERSION`, or `MODEL#STAGE`.
    pub target: String,
    /// The folder that stands for the repository root when artifact files are looked up.
    pub artifacts: Option<PathBuf>,
    /// Hashes every artifact instead of taking unchanged files' digests from the cache.
    pub no_cache: bool,
    pub format: Format,
}

impl From<VerifyError> for CommandError {
    fn from(error: VerifyError) -> Self {
        let kind = match error {
            VerifyError::Lightweight { .. } | VerifyError::Deregistered { .. } => Kind::Failed,
            _ => Kind::Invalid,
        };
        CommandError {
            kind,
            message: error.to_string(),
        }
    }
}

/// Exits 0 when the signature is good, the record matches the tag and every artifact matches its
/// digest; 1 when any of them fails; 2 when the release cannot be found.
pub fn run(global: &Global, args: &Args) -> Result<(), CommandError> {
    let repo = global.open()?;
    let registry = global.load_registry(&repo)?;
    let target = verify::resolve(&registry, &args.target)?;
    let root = match &args.artifacts {
        Some(folder) => {
            let folder = std::path::absolute(global.directory.join(folder)).map_err(|error| {
                CommandError::invalid(format!(
                    "invalid artifacts folder {}: {error}",
                    folder.display()
                ))
            })?;
            if !folder.is_dir() {
                return Err(CommandError::invalid(format!(
                    "the artifacts folder {} does not exist or is not a folder; pass the folder \
                     that holds the artifacts at their recorded paths",
                    folder.display()
                )));
            }
            folder
        }
        None => repo.root().to_path_buf(),
    };

    let hasher = digest::hasher(global, &repo, args.no_cache);
    let report = verify::verify(&repo, &target, &root, &hasher);
    digest::save_cache(global, &hasher);

    for note in &report.artifacts.notes {
        global.warn(note);
    }
    print(&render(&report, args.format));
    if !report.verified {
        let problems: Vec<String> = report
            .problems()
            .into_iter()
            .map(|problem| format!("  - {problem}"))
            .collect();
        return Err(CommandError::failed(format!(
            "verification of {} failed:\n{}",
            report.tag,
            problems.join("\n")
        )));
    }
    if !global.quiet {
        eprintln!(
            "verified {}: good signature, record matches, {}",
            report.tag,
            artifact_summary(&report)
        );
    }
    Ok(())
}

fn render(report: &Report, format: Format) -> String {
    if format == Format::Json {
        return serde_json::to_string_pretty(report).expect("JSON output always serializes");
    }

    let mut checks = Table::new(&["check", "result", "detail"]);
    checks.push(vec![
        "signature".into(),
        report.signature.status.to_string(),
        report.signature.detail.clone(),
    ]);
    if let Some(stage) = &report.stage {
        checks.push(vec![
            format!("stage {}", stage.stage),
            stage.signature.status.to_string(),
            format!("{}: {}", stage.tag, stage.signature.detail),
        ]);
    }
    let record = if report.record.ok {
        (
            "ok".to_owned(),
            format!(
                "{} {} at commit {}",
                report.model,
                report.version,
                &report.commit[..12]
            ),
        )
    } else {
        ("failed".to_owned(), report.record.problems.join("; "))
    };
    checks.push(vec!["record".into(), record.0, record.1]);
    let artifacts_result = if !report.artifacts.checked {
        "not checked"
    } else if report
        .artifacts
        .files
        .iter()
        .all(|file| file.status == FileStatus::Ok)
    {
        "ok"
    } else {
        "failed"
    };
    checks.push(vec![
        "artifacts".into(),
        artifacts_result.into(),
        artifact_summary(report),
    ]);

    let mut files = Table::new(&["artifact", "status", "detail"]);
    for file in report
        .artifacts
        .files
        .iter()
        .filter(|file| file.status != FileStatus::Ok)
    {
        files.push(vec![
            file.path.clone(),
            file.status.label().into(),
            file.detail.clone().unwrap_or_default(),
        ]);
    }

    let mut output = if format == Format::Markdown {
        checks.to_markdown()
    } else {
        checks.to_text()
    };
    if !files.rows.is_empty() {
        if format == Format::Text {
            output.push('\n');
        }
        output.push_str(&if format == Format::Markdown {
            files.to_markdown()
        } else {
            files.to_text()
        });
    }
    output
}

/// Counts the artifact files by status, such as `2 files match in /repo` or `3 recorded files in
/// /repo: 1 changed, 1 missing`.
fn artifact_summary(report: &Report) -> String {
    let artifacts = &report.artifacts;
    if !artifacts.checked {
        return "the record cannot be read".into();
    }
    let recorded = artifacts
        .files
        .iter()
        .filter(|file| file.status != FileStatus::Added)
        .count();
    if recorded == 0 && artifacts.files.is_empty() {
        return "the record lists no artifacts".into();
    }
    let plural = if recorded == 1 { "" } else { "s" };
    let counts: Vec<String> = [
        FileStatus::Changed,
        FileStatus::Missing,
        FileStatus::Added,
        FileStatus::Error,
    ]
    .into_iter()
    .filter_map(|status| {
        let count = artifacts
            .files
            .iter()
            .filter(|file| file.status == status)
            .count();
        (count > 0).then(|| format!("{count} {}", status.label()))
    })
    .collect();
    if counts.is_empty() {
        let verb = if recorded == 1 { "matches" } else { "match" };
        format!("{recorded} file{plural} {verb} in {}", artifacts.root)
    } else {
        format!(
            "{recorded} recorded file{plural} in {}: {}",
            artifacts.root,
            counts.join(", ")
        )
    }
}
