//! `mrel check`: validates release files and reports every problem.

use crate::commands::{CommandError, Global, print};
use crate::release_file::is_gto_name;
use crate::report::Format;
use crate::workspace::{self, Source};

pub struct Args {
    pub paths: Vec<std::path::PathBuf>,
    pub staged: bool,
    pub format: Format,
}

pub fn run(global: &Global, args: &Args) -> Result<(), CommandError> {
    let repo = global.open()?;
    let mut paths = Vec::new();
    let tracked = if args.paths.iter().any(|path| path.is_dir()) {
        workspace::tracked_release_files(&repo)?
    } else {
        Vec::new()
    };
    for path in &args.paths {
        let relative = workspace::relative_to_root(&repo, path)
            .map_err(|problem| CommandError::invalid(problem.to_string()))?;
        if path.is_dir() {
            // A folder stands for every tracked release file below it.
            let prefix = if relative.is_empty() {
                String::new()
            } else {
                format!("{relative}/")
            };
            let inside: Vec<String> = tracked
                .iter()
                .filter(|file| file.starts_with(&prefix))
                .cloned()
                .collect();
            if inside.is_empty() {
                return Err(CommandError::invalid(format!(
                    "{} contains no tracked release.yaml",
                    path.display()
                )));
            }
            paths.extend(inside);
        } else {
            paths.push(relative);
        }
    }
    let source = if args.staged {
        Source::Index
    } else {
        Source::WorkTree
    };
    let mut loaded = workspace::load(&repo, &paths, source)?;
    loaded.problems.sort_by(|a, b| {
        (a.file.as_str(), a.position.line, a.position.column).cmp(&(
            b.file.as_str(),
            b.position.line,
            b.position.column,
        ))
    });

    for release in &loaded.releases {
        if release.train.is_none() {
            global.warn(&format!(
                "{}: no `train` section, so `mrel train` and `mrel release` cannot train {}; \
                 it can only be released from a run record (`mrel release --run PATH`)",
                release.path, release.model
            ));
        }
        if !is_gto_name(&release.model) {
            global.warn(&format!(
                "{}: model name `{}` has uppercase letters or '_', which GTO and DVC Studio do not read; \
                 their tags will be invisible there",
                release.path, release.model
            ));
        }
    }

    match args.format {
        Format::Json => {
            let problems: Vec<serde_json::Value> = loaded
                .problems
                .iter()
                .map(|problem| {
                    serde_json::json!({
                        "file": problem.file,
                        "line": problem.position.line,
                        "column": problem.position.column,
                        "field": problem.field,
                        "message": problem.message,
                    })
                })
                .collect();
            let output = serde_json::json!({
                "files": loaded.files,
                "valid": loaded.problems.is_empty(),
                "models": loaded.releases.iter().map(|release| serde_json::json!({
                    "model": release.model,
                    "version": release.version.to_string(),
                    "file": release.path,
                })).collect::<Vec<_>>(),
                "problems": problems,
            });
            print(&serde_json::to_string_pretty(&output).expect("JSON output always serializes"));
        }
        Format::Text | Format::Markdown => {
            for problem in &loaded.problems {
                if args.format == Format::Markdown {
                    print(&format!(
                        "- `{}:{}`: {}",
                        problem.file,
                        problem.position,
                        problem_text(problem)
                    ));
                } else {
                    print(&problem.to_string());
                }
            }
            if loaded.problems.is_empty() {
                let noun = if loaded.files == 1 { "file" } else { "files" };
                print(&format!("{} release {noun} valid", loaded.files));
            }
        }
    }

    if loaded.problems.is_empty() {
        Ok(())
    } else {
        let count = loaded.problems.len();
        let noun = if count == 1 { "problem" } else { "problems" };
        Err(CommandError::invalid(format!(
            "{count} {noun} found in release files"
        )))
    }
}

fn problem_text(problem: &crate::release_file::Problem) -> String {
    if problem.field.is_empty() {
        problem.message.clone()
    } else {
        format!("field `{}`: {}", problem.field, problem.message)
    }
}
