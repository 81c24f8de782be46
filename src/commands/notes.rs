//! `mrel notes`: renders the notes that `release` would write, without training or tagging.

use crate::commands::release::previous_release;
use crate::commands::{CommandError, Global, print};
use crate::digest;
use crate::metrics::{self, Metrics};
use crate::notes::{self, Trained};
use crate::registry::Registry;
use crate::release_file::in_worktree;
use crate::templates::Templates;
use crate::workspace;

pub struct Args {
    pub model: String,
    /// Prints the template context as JSON instead of the notes.
    pub context: bool,
}

/// Uses the metrics and artifacts that a previous `mrel train` left in the work tree; nothing
/// that the release file declares is run.
pub fn run(global: &Global, args: &Args) -> Result<(), CommandError> {
    let repo = global.open()?;
    let release = workspace::find_model(&repo, &args.model)?;
    let registry = Registry::load(&repo)?;
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
    let mut artifacts = Vec::new();
    for path in &release.artifacts {
        match digest::artifact(repo.root(), path) {
            Ok(found) => artifacts.extend(found),
            Err(error) => global.warn(&error.to_string()),
        }
    }
    let trained = Trained {
        metrics,
        artifacts,
        started: None,
        duration: None,
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
