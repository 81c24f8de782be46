//! `mrel release --run PATH`: a release from a run record made elsewhere, checked against the
//! code, params and artifacts under review before anything is tagged.

use std::path::{Path, PathBuf};

use crate::commands::{CommandError, Global, digest};
use crate::compare::flatten_json;
use crate::digest::FileToHash;
use crate::notes::{RunOrigin, Trained};
use crate::release_file::ReleaseFile;
use crate::repo::Repo;
use crate::run_record::{self, RunRecord};

/// Location of the run record, and the differences from the work tree that it may have.
pub struct RunSource<'a> {
    pub record: &'a Path,
    /// A revision whose commit the run may name instead of HEAD.
    pub allow_commit: Option<&'a str>,
    /// A folder holding the artifacts, with the record's paths relative to it.
    pub artifacts: Option<&'a Path>,
    pub no_cache: bool,
}

/// Reads the run record and checks it: model, version, exit status, commit, params and every
/// artifact's digest. Every mismatch is reported, each naming the field and both values.
pub fn trained_from_run(
    global: &Global,
    repo: &Repo,
    release: &ReleaseFile,
    source: &RunSource<'_>,
) -> Result<Trained, CommandError> {
    let run = run_record::read(source.record)
        .map_err(|error| CommandError::invalid(error.to_string()))?;
    let mut mismatches = Vec::new();

    if run.model != release.model {
        mismatches.push(format!(
            "model: the run trained `{}`, the release file declares `{}`",
            run.model, release.model
        ));
    }
    if run.version != release.version.to_string() {
        mismatches.push(format!(
            "version: the run trained {}, the release file declares {}",
            run.version, release.version
        ));
    }
    if run.exit_status != 0 {
        mismatches.push(format!(
            "exit_status: the run's training exited with {}, not 0",
            run.exit_status
        ));
    }
    mismatches.extend(commit_mismatch(repo, &run, source.allow_commit)?);
    mismatches.extend(params_mismatches(&run, release));
    mismatches.extend(artifact_mismatches(global, repo, release, &run, source));

    if !mismatches.is_empty() {
        for mismatch in &mismatches {
            eprintln!("run record mismatch: {mismatch}");
        }
        return Err(CommandError::failed(format!(
            "the run record {} does not match what is under review ({} mismatch{}); no tag was created",
            source.record.display(),
            mismatches.len(),
            if mismatches.len() == 1 { "" } else { "es" }
        )));
    }

    let started = run.started.parse::<jiff::Timestamp>().map_err(|error| {
        CommandError::invalid(format!(
            "the run record {}: field `started`: invalid time `{}`: {error}",
            source.record.display(),
            run.started
        ))
    })?;
    Ok(Trained {
        metrics: crate::metrics::from_record(&run.metrics),
        artifacts: run.artifacts.clone(),
        started: Some(started),
        duration: std::time::Duration::try_from_secs_f64(run.duration_seconds).ok(),
        run: Some(RunOrigin {
            record: source.record.display().to_string(),
            host: run.host.clone(),
            command: run.command.clone(),
        }),
    })
}

fn commit_mismatch(
    repo: &Repo,
    run: &RunRecord,
    allow_commit: Option<&str>,
) -> Result<Option<String>, CommandError> {
    let head = repo.head_commit()?.to_string();
    if run.commit == head {
        return Ok(None);
    }
    if let Some(revision) = allow_commit {
        let allowed = repo.resolve_commit(revision)?.to_string();
        if allowed == run.commit {
            return Ok(None);
        }
        return Ok(Some(format!(
            "commit: the run trained from {}, and --allow-commit {revision} names {allowed}",
            run.commit
        )));
    }
    Ok(Some(format!(
        "commit: the run trained from {}, HEAD is {head}; check out that commit, or pass \
         --allow-commit {} if the difference does not matter",
        run.commit, run.commit
    )))
}

fn params_mismatches(run: &RunRecord, release: &ReleaseFile) -> Vec<String> {
    let Some(params) = &run.params else {
        let expected = run_record::params_digest(&release.params);
        if run.params_digest == expected {
            return Vec::new();
        }
        return vec![format!(
            "params_digest: the run has {}, the release file's params give {expected}",
            run.params_digest
        )];
    };
    let ran = flatten_json(params);
    let declared = flatten_json(&release.params);
    let names: std::collections::BTreeSet<&String> = ran.keys().chain(declared.keys()).collect();
    let same = |a: &serde_json::Value, b: &serde_json::Value| match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    };
    names
        .into_iter()
        .filter_map(|name| match (ran.get(name), declared.get(name)) {
            (Some(a), Some(b)) if same(a, b) => None,
            (a, b) => {
                let shown = |value: Option<&serde_json::Value>| {
                    value.map_or_else(|| "nothing".to_owned(), ToString::to_string)
                };
                Some(format!(
                    "params.{name}: the run has {}, the release file has {}",
                    shown(a),
                    shown(b)
                ))
            }
        })
        .collect()
}

fn artifact_mismatches(
    global: &Global,
    repo: &Repo,
    release: &ReleaseFile,
    run: &RunRecord,
    source: &RunSource<'_>,
) -> Vec<String> {
    let base: PathBuf = source
        .artifacts
        .map_or_else(|| repo.root().to_path_buf(), Path::to_path_buf);
    let mut mismatches = Vec::new();

    for declared in &release.artifacts {
        let covered = run.artifacts.iter().any(|entry| {
            entry.path == *declared || entry.path.starts_with(&format!("{declared}/"))
        });
        if !covered {
            mismatches.push(format!(
                "artifacts: the release file declares {declared}, which the run does not list"
            ));
        }
    }

    let files: Vec<(usize, FileToHash)> = run
        .artifacts
        .iter()
        .enumerate()
        .filter(|(_, entry)| entry.sha256.is_some())
        .map(|(index, entry)| {
            (
                index,
                FileToHash {
                    shown: entry.path.clone(),
                    path: base.join(&entry.path),
                },
            )
        })
        .collect();
    let hasher = digest::hasher(global, repo, source.no_cache);
    let to_hash: Vec<FileToHash> = files.iter().map(|(_, file)| file.clone()).collect();
    let results = hasher.files(&to_hash);
    digest::save_cache(global, &hasher);
    for ((index, file), result) in files.iter().zip(results) {
        let entry = &run.artifacts[*index];
        let expected = entry.sha256.as_deref().unwrap_or_default();
        match result {
            Ok(found) if found.sha256 == expected => {}
            Ok(found) => mismatches.push(format!(
                "artifact {}: the run recorded sha256 {expected}, the file at {} has {}",
                entry.path,
                file.path.display(),
                found.sha256
            )),
            Err(_) => mismatches.push(format!(
                "artifact {}: missing at {}; pass --artifacts DIR where the run's files are",
                entry.path,
                file.path.display()
            )),
        }
    }
    mismatches
}
