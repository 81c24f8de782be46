//! Finding and loading the release files of a repository.

use std::path::Path;

use gix::bstr::ByteSlice;

use crate::release_file::{self, FILE_NAME, Problem, Problems, ReleaseFile};
use crate::repo::{Repo, RepoError};
use crate::yaml::Position;

/// Source of the release files: the work tree or the index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The files in the work tree.
    WorkTree,
    /// The staged content, as a pre-commit hook must see it.
    Index,
}

/// The release files found, and the problems of those that did not parse.
pub struct Loaded {
    pub releases: Vec<ReleaseFile>,
    pub problems: Vec<Problem>,
    /// Number of files read.
    pub files: usize,
}

/// Paths of every tracked `release.yaml`, relative to the root.
pub fn tracked_release_files(repo: &Repo) -> Result<Vec<String>, RepoError> {
    let mut paths: Vec<String> = repo
        .tracked_files()?
        .into_iter()
        .filter(|path| path.rsplit('/').next() == Some(FILE_NAME))
        .collect();
    paths.sort();
    Ok(paths)
}

/// Turns a path given on the command line into a path relative to the repository root.
pub fn relative_to_root(repo: &Repo, path: &Path) -> Result<String, Problem> {
    let problem = |message: String| Problem {
        file: path.display().to_string(),
        position: Position::default(),
        field: String::new(),
        message,
    };
    let absolute = std::path::absolute(path).map_err(|error| problem(error.to_string()))?;
    let absolute = absolute.canonicalize().unwrap_or(absolute);
    let root = repo
        .root()
        .canonicalize()
        .unwrap_or_else(|_| repo.root().to_path_buf());
    let relative = absolute.strip_prefix(&root).map_err(|_| {
        problem(format!(
            "the file is outside the repository at {}",
            root.display()
        ))
    })?;
    Ok(relative
        .components()
        .map(|part| part.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/"))
}

/// Loads release files: the given paths, or every tracked `release.yaml` when none is given.
pub fn load(repo: &Repo, paths: &[String], source: Source) -> Result<Loaded, RepoError> {
    let paths = if paths.is_empty() {
        tracked_release_files(repo)?
    } else {
        paths.to_vec()
    };
    let mut releases = Vec::new();
    let mut problems = Vec::new();
    for path in &paths {
        let text = match source {
            Source::WorkTree => std::fs::read(repo.root().join(path)).map(Some),
            Source::Index => repo
                .staged_file(path)
                .map_err(|error| std::io::Error::other(error.to_string())),
        };
        let text = match text {
            Ok(Some(bytes)) => bytes,
            Ok(None) => continue,
            Err(error) => {
                problems.push(Problem {
                    file: path.clone(),
                    position: Position::default(),
                    field: String::new(),
                    message: format!("cannot read the file: {error}"),
                });
                continue;
            }
        };
        let Ok(text) = text.to_str() else {
            problems.push(Problem {
                file: path.clone(),
                position: Position { line: 1, column: 1 },
                field: String::new(),
                message: "the file is not valid UTF-8".into(),
            });
            continue;
        };
        match release_file::parse(path, text) {
            Ok(release) => releases.push(release),
            Err(Problems(found)) => problems.extend(found),
        }
    }
    problems.extend(duplicate_models(&releases));
    Ok(Loaded {
        releases,
        problems,
        files: paths.len(),
    })
}

/// Two files that declare the same model are a problem of the second one.
fn duplicate_models(releases: &[ReleaseFile]) -> Vec<Problem> {
    let mut problems = Vec::new();
    for (index, release) in releases.iter().enumerate() {
        if let Some(first) = releases[..index]
            .iter()
            .find(|other| other.model == release.model)
        {
            problems.push(Problem {
                file: release.path.clone(),
                position: release.model_position,
                field: "model".into(),
                message: format!(
                    "model `{}` is also declared in {}; each model has one release file",
                    release.model, first.path
                ),
            });
        }
    }
    problems
}

#[derive(Debug, thiserror::Error)]
pub enum FindError {
    #[error(transparent)]
    Invalid(#[from] Problems),
    #[error("model `{model}` not found: no tracked release.yaml declares it{}", known_models(.known))]
    NotFound { model: String, known: Vec<String> },
    #[error(transparent)]
    Repo(#[from] RepoError),
}

fn known_models(known: &[String]) -> String {
    if known.is_empty() {
        "; add a release.yaml and `git add` it".into()
    } else {
        format!(" (known models: {})", known.join(", "))
    }
}

/// Finds the release file of `model` among the tracked ones. A second file declaring the same
/// model is an error. Problems of other files are not, unless no valid file declares the model.
pub fn find_model(repo: &Repo, model: &str) -> Result<ReleaseFile, FindError> {
    let loaded = load(repo, &[], Source::WorkTree)?;
    let own_problems: Vec<Problem> = loaded
        .problems
        .iter()
        .filter(|problem| {
            loaded
                .releases
                .iter()
                .any(|release| release.model == model && release.path == problem.file)
        })
        .cloned()
        .collect();
    if !own_problems.is_empty() {
        return Err(FindError::Invalid(Problems(own_problems)));
    }
    match loaded
        .releases
        .iter()
        .find(|release| release.model == model)
    {
        Some(release) => Ok(release.clone()),
        None if !loaded.problems.is_empty() => Err(FindError::Invalid(Problems(loaded.problems))),
        None => Err(FindError::NotFound {
            model: model.to_owned(),
            known: loaded
                .releases
                .iter()
                .map(|release| release.model.clone())
                .collect(),
        }),
    }
}
