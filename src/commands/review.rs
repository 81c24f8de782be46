//! `mrel review`: a report on the release files that a pull request changes, for people (text),
//! for a pull-request comment (markdown) and for scripts (JSON). It never runs training.

mod render;

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::commands::{CommandError, Global, print};
use crate::registry::Registry;
use crate::release_file::FILE_NAME;
use crate::report::Format;
use crate::review::{self, ChangedFile, Context, FileReview, ReviewError};

pub struct Args {
    /// The branch the pull request merges into.
    pub base: String,
    /// The pull request's head; `HEAD` by default.
    pub head: String,
    /// Metrics files produced by training elsewhere: `FILE` when one release file changed,
    /// `MODEL=FILE` to name the model.
    pub metrics: Vec<String>,
    pub format: Format,
}

/// The whole report, as `--format json` prints it.
#[derive(serde::Serialize)]
pub struct Report {
    pub base: String,
    pub head: String,
    pub base_commit: String,
    pub head_commit: String,
    pub merge_base: String,
    /// Whether every changed release file passed.
    pub passed: bool,
    pub files: Vec<FileReview>,
}

impl From<ReviewError> for CommandError {
    fn from(error: ReviewError) -> Self {
        CommandError::invalid(error.to_string())
    }
}

pub fn run(global: &Global, args: &Args) -> Result<(), CommandError> {
    let repo = global.open()?;
    let base_commit = repo.resolve_commit(&args.base)?;
    let head_commit = repo.resolve_commit(&args.head)?;
    let merge_base = repo.merge_base(base_commit, head_commit)?.ok_or_else(|| {
        CommandError::invalid(format!(
            "{} and {} have no common commit: their histories are unrelated, or this is a \
             shallow clone; fetch the full history with `git fetch --unshallow` (in CI: \
             fetch-depth: 0, or GIT_DEPTH: 0)",
            args.base, args.head
        ))
    })?;

    let old_files = repo.files_named_at(merge_base, FILE_NAME)?;
    let new_files = repo.files_named_at(head_commit, FILE_NAME)?;
    let changed = review::changed_files(&repo, &old_files, &new_files)?;
    let head_models = review::declared_models(&repo, &new_files)?;
    let metrics = assign_metrics(&args.metrics, &changed)?;
    let registry = Registry::load(&repo)?;

    let context = Context {
        repo: &repo,
        registry: &registry,
        head: head_commit,
        head_label: &args.head,
        head_models: &head_models,
    };
    let mut files = Vec::new();
    for file in &changed {
        let metrics_file = metrics.get(&file.path).map(PathBuf::as_path);
        files.push(review::review_file(&context, file, metrics_file)?);
    }

    let report = Report {
        base: args.base.clone(),
        head: args.head.clone(),
        base_commit: base_commit.to_string(),
        head_commit: head_commit.to_string(),
        merge_base: merge_base.to_string(),
        passed: files.iter().all(|file| file.passed),
        files,
    };
    let output = match args.format {
        Format::Json => {
            serde_json::to_string_pretty(&report).expect("JSON output always serializes")
        }
        Format::Markdown => render::markdown(&report),
        Format::Text => render::text(&report),
    };
    print(&output);

    let failed = report.files.iter().filter(|file| !file.passed).count();
    if failed == 0 {
        Ok(())
    } else {
        let noun = if failed == 1 { "file" } else { "files" };
        Err(CommandError::failed(format!(
            "review failed for {failed} release {noun}: an invalid file, a version that cannot \
             be released, or a failed gate"
        )))
    }
}

/// Maps each `--metrics` value to the path of the changed release file it belongs to.
fn assign_metrics(
    values: &[String],
    changed: &[ChangedFile],
) -> Result<BTreeMap<String, PathBuf>, CommandError> {
    let models: Vec<(String, String)> = changed
        .iter()
        .filter_map(|file| {
            let content = file.new.as_deref()?;
            let release = review::parse_content(&file.path, content).ok()?;
            Some((release.model, file.path.clone()))
        })
        .collect();
    let mut assigned = BTreeMap::new();
    for value in values {
        let named = value.split_once('=').and_then(|(model, file)| {
            models
                .iter()
                .find(|(known, _)| known == model)
                .map(|(_, path)| (path.clone(), file))
        });
        let (path, file) = match named {
            Some(found) => found,
            None => match models.as_slice() {
                [(_, path)] => (path.clone(), value.as_str()),
                [] => {
                    return Err(CommandError::invalid(format!(
                        "--metrics {value}: no valid release file changed, so there is no \
                         model to compare these metrics with"
                    )));
                }
                several => {
                    let names: Vec<&str> =
                        several.iter().map(|(model, _)| model.as_str()).collect();
                    return Err(CommandError::invalid(format!(
                        "--metrics {value}: {} release files changed ({}); name the model, as \
                         in --metrics {}=FILE",
                        several.len(),
                        names.join(", "),
                        names[0]
                    )));
                }
            },
        };
        if assigned.insert(path.clone(), PathBuf::from(file)).is_some() {
            return Err(CommandError::invalid(format!(
                "--metrics is given twice for {path}; give one metrics file per model"
            )));
        }
    }
    Ok(assigned)
}
