//! `mrel notes`: renders the notes that `release` would write, without training or tagging.

use crate::commands::release::previous_release;
use crate::commands::{CommandError, Global, digest, print};
use crate::metrics::{self, Metrics};
use crate::notes::{self, Trained};
use crate::release_file::in_worktree;
use crate::templates::Templates;
use crate::workspace;

pub struct Args {
    pub model: String,
    /// Prints the template context as JSON instead of the notes.
    pub context: bool,
    /// Hashes every artifact instead of taking unchanged files' digests from the cache.
    pub no_cache: bool,
}

/// Uses the metrics and artifacts that a previous `mrel train` left in the work tree; nothing
/// that the release file declares is run.
pub fn run(global: &Global, args: &Args) -> Result<(), CommandError> {
    let repo = global.open()?;
    let release = workspace::find_model(&repo, &args.model)?;
    let registry = global.load_registry(&repo)?;
    let previous = previous_release(&registry, &release)?;
    let commit = repo.head_commit()?.to_string();

    let metrics = match &release.metrics {
        Some(path) if in_worktree(repo.root(), path).is_file() => {
            metrics::load(&in_worktree(repo.root(), path), path)?
        }
        Some(path) => {
            global.warn(&format!(
                "the metrics file {path} does not exist yet; run `mrel train {}` to fill the metrics",
                release.model
            ));
            Metrics::new()
        }
        None => Metrics::new(),
    };
    let hasher = digest::hasher(global, &repo, args.no_cache);
    let mut artifacts = Vec::new();
    for path in &release.artifacts {
        match hasher.artifacts(repo.root(), std::slice::from_ref(path)) {
            Ok(found) => artifacts.extend(found),
            Err(error) => global.warn(&error.to_string()),
        }
    }
    digest::save_cache(global, &hasher);
    let trained = Trained {
        metrics,
        artifacts,
        started: None,
        duration: None,
        run: None,
    };
    let prepared = notes::prepare(&release, &commit, trained, previous.as_ref())?;

    if args.context {
        print(
            &serde_json::to_string_pretty(&prepared.context)
                .expect("the context always serializes"),
        );
        return Ok(());
    }
    let templates = Templates::load(Some(repo.root()))?;
    print(&templates.render("notes.md.j2", &prepared.context)?);
    Ok(())
}

/// Renders the notes from a context file that `--context` wrote, so that a pull request can
/// preview them. No repository is opened, and the nearest folder above the working folder that
/// contains `.git` only supplies its template overrides.
pub fn run_from_context(
    global: &Global,
    model: Option<&str>,
    file: &std::path::Path,
) -> Result<(), CommandError> {
    let path = global.directory.join(file);
    let text = std::fs::read_to_string(&path).map_err(|error| {
        CommandError::invalid(format!(
            "cannot read the context file {}: {error}",
            path.display()
        ))
    })?;
    let context: serde_json::Value = serde_json::from_str(&text).map_err(|error| {
        CommandError::invalid(format!(
            "the context file {} is not valid JSON: {error}",
            path.display()
        ))
    })?;
    let Some(fields) = context.as_object() else {
        return Err(CommandError::invalid(format!(
            "the context file {} contains no JSON object; write it with `mrel notes MODEL --context`",
            path.display()
        )));
    };
    if let Some(model) = model {
        let found = fields.get("model").and_then(serde_json::Value::as_str);
        if found != Some(model) {
            return Err(CommandError::invalid(format!(
                "the context file {} is for model `{}`, not `{model}`",
                path.display(),
                found.unwrap_or("(none)")
            )));
        }
    }

    let root = work_tree_root(&global.directory);
    let templates = Templates::load(root.as_deref())?;
    print(&templates.render("notes.md.j2", &context)?);
    Ok(())
}

/// Finds the nearest folder at or above `start` that contains `.git`, without opening a
/// repository.
fn work_tree_root(start: &std::path::Path) -> Option<std::path::PathBuf> {
    let start = std::path::absolute(start).ok()?;
    start
        .ancestors()
        .find(|folder| folder.join(".git").exists())
        .map(std::path::Path::to_path_buf)
}
