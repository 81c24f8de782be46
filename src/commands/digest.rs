//! `mrel digest`: prints the SHA-256 of files and folders as a release records them, through
//! the digest cache. It is hidden from `--help`; benchmarks and scripts use it.

use crate::commands::{CommandError, Global, print};
use crate::digest::{Cache, Hasher};
use crate::repo::Repo;
use crate::report::Format;

pub struct Args {
    /// Files or folders, relative to the working folder (`-C`) or absolute.
    pub paths: Vec<String>,
    pub no_cache: bool,
    pub format: Format,
}

/// Works outside a repository too, without a cache.
pub fn run(global: &Global, args: &Args) -> Result<(), CommandError> {
    let directory = std::path::absolute(&global.directory).map_err(|error| {
        CommandError::invalid(format!(
            "invalid directory {}: {error}",
            global.directory.display()
        ))
    })?;
    let hasher = match Repo::discover(&directory) {
        Ok(repo) => hasher(global, &repo, args.no_cache),
        Err(_) => Hasher::new(None),
    };
    let entries = hasher.artifacts(&directory, &args.paths)?;
    save_cache(global, &hasher);

    let output = match args.format {
        Format::Json => {
            serde_json::to_string_pretty(&entries).expect("JSON output always serializes")
        }
        Format::Text | Format::Markdown => entries
            .iter()
            .map(|entry| match &entry.sha256 {
                Some(sha256) => format!("{sha256}  {}", entry.path),
                None => format!("{:64}  {}", "(empty folder)", entry.path),
            })
            .collect::<Vec<_>>()
            .join("\n"),
    };
    print(&output);
    Ok(())
}

/// Builds the hasher of a command: with the repository's digest cache unless `no_cache` is set.
/// A cache file that cannot be read is replaced, after a warning.
pub fn hasher(global: &Global, repo: &Repo, no_cache: bool) -> Hasher {
    if no_cache {
        return Hasher::new(None);
    }
    let (cache, problem) = Cache::open(repo.git_dir());
    if let Some(problem) = problem {
        global.warn(&problem.to_string());
    }
    Hasher::new(Some(cache))
}

/// Saves what `hasher` added to the digest cache. A cache that cannot be written costs only
/// time, so it is a warning and not an error.
pub fn save_cache(global: &Global, hasher: &Hasher) {
    if let Err(error) = hasher.save_cache() {
        global.warn(&error.to_string());
    }
}
