//! Verification of a release: the signature of its tag, the record inside the tag, and the
//! digests of its artifacts against the files. Nothing that a release file declares runs.

use std::collections::HashSet;
use std::path::{Component, Path};

use crate::digest::{DigestError, FileToHash, Hasher, Listing};
use crate::record::{self, ReleaseRecord};
use crate::registry::{Event, Registry};
use crate::release_file;
use crate::repo::Repo;
use crate::signature::{Verdict, Verifier};
use crate::tags::{self, TagKind};

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("tag {tag} not found{hint}")]
    NotFound { tag: String, hint: String },
    #[error(
        "tag {tag} is not a release tag; verify takes a release tag (MODEL@vVERSION), \
         MODEL@VERSION or MODEL#STAGE"
    )]
    NotRelease { tag: String },
    #[error(
        "no version of model `{model}` is in stage `{stage}`; `mrel status {model}` lists the stages"
    )]
    EmptyStage { model: String, stage: String },
    #[error(
        "tag {tag} is a lightweight tag, so it carries neither a signature nor a record; \
         registry tags are annotated"
    )]
    Lightweight { tag: String },
    #[error(
        "{model}@v{version} is in stage `{stage}` but was deregistered ({tag}); \
         promote an active version or roll the stage back"
    )]
    Deregistered {
        model: String,
        version: semver::Version,
        stage: String,
        tag: String,
    },
}

/// The release to verify, and the stage assignment it was reached through.
pub struct Target {
    pub release: Event,
    pub version: semver::Version,
    /// The stage and the tag that assigned the version to it, for `MODEL#STAGE`.
    pub stage: Option<(String, Event)>,
}

/// Finds the release that `spec` names: a release tag (`MODEL@vVERSION`), `MODEL@VERSION`, or
/// `MODEL#STAGE` for the version in that stage now.
pub fn resolve(registry: &Registry, spec: &str) -> Result<Target, VerifyError> {
    if let Some(name) = tags::parse(spec)
        && let TagKind::Assign(stage) = &name.kind
        && name.counter.is_none()
    {
        let empty = || VerifyError::EmptyStage {
            model: name.model.clone(),
            stage: stage.clone(),
        };
        let (assignment, version) = registry.in_stage(&name.model, stage).ok_or_else(empty)?;
        let release = registry.release(&name.model, version).ok_or_else(empty)?;
        if !registry.is_active(&name.model, version) {
            let withdrawn = tags::TagName {
                model: name.model.clone(),
                kind: TagKind::Deregister(version.clone()),
                counter: None,
            };
            return Err(VerifyError::Deregistered {
                model: name.model.clone(),
                version: version.clone(),
                stage: stage.clone(),
                tag: withdrawn.to_string(),
            });
        }
        return Ok(Target {
            release: release.clone(),
            version: version.clone(),
            stage: Some((stage.clone(), assignment.clone())),
        });
    }

    let tag = with_version_prefix(spec);
    if let Some(event) = registry.events().iter().find(|event| event.tag == tag) {
        return match &event.name.kind {
            TagKind::Register(version) => Ok(Target {
                release: event.clone(),
                version: version.clone(),
                stage: None,
            }),
            _ => Err(VerifyError::NotRelease { tag }),
        };
    }
    if registry.lightweight.contains(&tag) {
        return Err(VerifyError::Lightweight { tag });
    }
    let hint = match tags::parse(&tag) {
        Some(name) => {
            let known: Vec<String> = registry
                .releases(&name.model)
                .into_iter()
                .map(|(_, event)| event.tag.clone())
                .collect();
            if known.is_empty() {
                format!("; model `{}` has no releases", name.model)
            } else {
                format!(" (releases of {}: {})", name.model, known.join(", "))
            }
        }
        None => {
            "; verify takes a release tag (MODEL@vVERSION), MODEL@VERSION or MODEL#STAGE".to_owned()
        }
    };
    Err(VerifyError::NotFound { tag, hint })
}

/// Writes `MODEL@1.2.0` as the tag name `MODEL@v1.2.0`; other text stays as it is.
fn with_version_prefix(spec: &str) -> String {
    match spec.split_once('@') {
        Some((model, version)) if version.starts_with(|c: char| c.is_ascii_digit()) => {
            format!("{model}@v{version}")
        }
        _ => spec.to_owned(),
    }
}

/// The outcome of verifying one release.
#[derive(Debug, serde::Serialize)]
pub struct Report {
    pub tag: String,
    /// The id of the tag object.
    pub tag_object: String,
    pub model: String,
    pub version: String,
    /// The commit the tag points at, after peeling.
    pub commit: String,
    /// Whether every check passed.
    pub verified: bool,
    pub signature: Verdict,
    /// The stage assignment that `MODEL#STAGE` went through; its signature must be good too.
    pub stage: Option<StageCheck>,
    pub record: RecordCheck,
    pub artifacts: ArtifactsCheck,
}

#[derive(Debug, serde::Serialize)]
pub struct StageCheck {
    pub stage: String,
    pub tag: String,
    pub signature: Verdict,
}

#[derive(Debug, serde::Serialize)]
pub struct RecordCheck {
    pub ok: bool,
    /// Problems of the record, one sentence each.
    pub problems: Vec<String>,
}

#[derive(Debug, serde::Serialize)]
pub struct ArtifactsCheck {
    /// False when the record could not be read, so that there was nothing to compare with.
    pub checked: bool,
    /// The folder that the record's paths were looked up in.
    pub root: String,
    /// One row per artifact entry of the record, in its order, then one per added file.
    pub files: Vec<FileCheck>,
    /// Limits of this check, such as folders that could not be searched for added files.
    pub notes: Vec<String>,
}

/// The state of one artifact file against the record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileStatus {
    /// Size and digest match the record.
    Ok,
    /// The content, size or kind differs from the record.
    Changed,
    /// The file is not there.
    Missing,
    /// A file in an artifact folder that the record does not list.
    Added,
    /// The file could not be read, or the record's entry is unusable.
    Error,
}

impl FileStatus {
    /// Returns the status as output shows it.
    pub fn label(self) -> &'static str {
        match self {
            FileStatus::Ok => "ok",
            FileStatus::Changed => "changed",
            FileStatus::Missing => "missing",
            FileStatus::Added => "added",
            FileStatus::Error => "error",
        }
    }
}

#[derive(Debug, serde::Serialize)]
pub struct FileCheck {
    pub path: String,
    pub status: FileStatus,
    /// Size and digest as recorded.
    pub size: Option<u64>,
    pub sha256: Option<String>,
    /// Size and digest found on disk, where the file was read.
    pub found_size: Option<u64>,
    pub found_sha256: Option<String>,
    /// Whether the found digest came from the digest cache.
    pub cached: bool,
    /// The difference or failure, for any status but `ok`.
    pub detail: Option<String>,
}

impl FileCheck {
    fn new(path: &str, status: FileStatus) -> FileCheck {
        FileCheck {
            path: path.to_owned(),
            status,
            size: None,
            sha256: None,
            found_size: None,
            found_sha256: None,
            cached: false,
            detail: None,
        }
    }

    fn detail(mut self, detail: impl Into<String>) -> FileCheck {
        self.detail = Some(detail.into());
        self
    }
}

impl Report {
    /// Lists every failed check, one sentence each, naming the tag, record field or file.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !self.signature.is_good() {
            problems.push(format!(
                "signature of {}: {}: {}",
                self.tag, self.signature.status, self.signature.detail
            ));
        }
        if let Some(stage) = &self.stage
            && !stage.signature.is_good()
        {
            problems.push(format!(
                "signature of the stage tag {}: {}: {}",
                stage.tag, stage.signature.status, stage.signature.detail
            ));
        }
        problems.extend(
            self.record
                .problems
                .iter()
                .map(|problem| format!("record: {problem}")),
        );
        for file in &self.artifacts.files {
            if file.status != FileStatus::Ok {
                let status = match file.status {
                    FileStatus::Error => "cannot be checked",
                    other => other.label(),
                };
                let detail = file.detail.as_deref().unwrap_or_default();
                problems.push(format!("artifact {} {status}: {detail}", file.path));
            }
        }
        problems
    }
}

/// Verifies the release of `target`, looking its artifacts up under `artifacts_root`.
pub fn verify(repo: &Repo, target: &Target, artifacts_root: &Path, hasher: &Hasher) -> Report {
    let verifier = Verifier::new(&repo.git);
    let event = &target.release;
    let signature = verifier.verify_tag_id(event.tag_id);
    let stage = target.stage.as_ref().map(|(stage, assignment)| StageCheck {
        stage: stage.clone(),
        tag: assignment.tag.clone(),
        signature: verifier.verify_tag_id(assignment.tag_id),
    });

    let (record, problems) = check_record(event, &target.version);
    let artifacts = match &record {
        Some(record) => check_artifacts(repo, record, artifacts_root, hasher),
        None => ArtifactsCheck {
            checked: false,
            root: artifacts_root.display().to_string(),
            files: Vec::new(),
            notes: vec!["artifacts were not checked because the record cannot be read".into()],
        },
    };

    let mut report = Report {
        tag: event.tag.clone(),
        tag_object: event.tag_id.to_string(),
        model: event.name.model.clone(),
        version: target.version.to_string(),
        commit: event.commit.to_string(),
        verified: false,
        signature,
        stage,
        record: RecordCheck {
            ok: problems.is_empty(),
            problems,
        },
        artifacts,
    };
    report.verified = report.artifacts.checked && report.problems().is_empty();
    report
}

/// Reads the record of a release tag and checks that it names the tag's model, version and
/// commit. Returns the record where it parses, and the problems found.
fn check_record(event: &Event, version: &semver::Version) -> (Option<ReleaseRecord>, Vec<String>) {
    let record = match record::parse_release(&event.tag, &event.message) {
        Ok(record) => record,
        Err(error) => return (None, vec![error.to_string()]),
    };
    let mut problems = Vec::new();
    if record.model != event.name.model {
        problems.push(format!(
            "it names model `{}`, but the tag {} is a release of `{}`",
            record.model, event.tag, event.name.model
        ));
    }
    if semver::Version::parse(&record.version).ok().as_ref() != Some(version) {
        problems.push(format!(
            "it names version {}, but the tag {} is version {version}",
            record.version, event.tag
        ));
    }
    if gix::ObjectId::from_hex(record.commit.as_bytes()).ok() != Some(event.commit) {
        problems.push(format!(
            "it names commit {}, but the tag {} points at commit {}",
            record.commit, event.tag, event.commit
        ));
    }
    (Some(record), problems)
}

/// Checks that a record's path is relative, stays inside the root and has no `.` or `..` parts.
fn is_plain_relative(path: &str) -> bool {
    let trimmed = path.strip_suffix('/').unwrap_or(path);
    !trimmed.is_empty()
        && !trimmed.contains("//")
        && Path::new(trimmed)
            .components()
            .all(|component| matches!(component, Component::Normal(_)))
}

/// Compares every artifact entry of `record` with the files under `root`.
fn check_artifacts(
    repo: &Repo,
    record: &ReleaseRecord,
    root: &Path,
    hasher: &Hasher,
) -> ArtifactsCheck {
    let mut files = Vec::new();
    let mut to_hash = Vec::new();
    for entry in &record.artifacts {
        let path = entry.path.as_str();
        if !is_plain_relative(path) {
            files.push(FileCheck::new(path, FileStatus::Error).detail(
                "the record's path is not a relative path inside the repository, so it was not read",
            ));
            continue;
        }
        let full = root.join(path.trim_end_matches('/'));
        if path.ends_with('/') {
            files.push(check_empty_folder(path, &full));
            continue;
        }
        let mut check = FileCheck::new(path, FileStatus::Ok);
        check.size = entry.size;
        check.sha256.clone_from(&entry.sha256);
        if entry.sha256.is_none() {
            check.status = FileStatus::Error;
            files.push(check.detail("the record has no sha256 for this file"));
            continue;
        }
        match precheck(&full, entry.size) {
            Ok(()) => {
                to_hash.push((
                    files.len(),
                    FileToHash {
                        shown: path.to_owned(),
                        path: full,
                    },
                ));
                files.push(check);
            }
            Err((status, found_size, detail)) => {
                check.status = status;
                check.found_size = found_size;
                files.push(check.detail(detail));
            }
        }
    }

    let (indexes, queue): (Vec<usize>, Vec<FileToHash>) = to_hash.into_iter().unzip();
    for (index, result) in indexes.into_iter().zip(hasher.files(&queue)) {
        compare(&mut files[index], result);
    }

    let mut notes = Vec::new();
    files.extend(added_files(repo, record, root, &mut notes));
    ArtifactsCheck {
        checked: true,
        root: root.display().to_string(),
        files,
        notes,
    }
}

/// Checks what a file's metadata can tell before reading it: that it exists, is a regular file
/// and has the recorded size. A file of another size is changed without reading it.
fn precheck(full: &Path, size: Option<u64>) -> Result<(), (FileStatus, Option<u64>, String)> {
    let metadata = match std::fs::symlink_metadata(full) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Err((
                FileStatus::Missing,
                None,
                format!("{} does not exist", full.display()),
            ));
        }
        Err(error) => {
            return Err((
                FileStatus::Error,
                None,
                format!("cannot read {}: {error}", full.display()),
            ));
        }
    };
    let kind = if metadata.file_type().is_symlink() {
        Some("a symbolic link")
    } else if metadata.is_dir() {
        Some("a folder")
    } else if !metadata.is_file() {
        Some("a special file")
    } else {
        None
    };
    if let Some(kind) = kind {
        return Err((
            FileStatus::Changed,
            None,
            format!("{} is now {kind}, not a file", full.display()),
        ));
    }
    match size {
        Some(size) if size != metadata.len() => Err((
            FileStatus::Changed,
            Some(metadata.len()),
            format!("size {size} bytes recorded, {} bytes found", metadata.len()),
        )),
        _ => Ok(()),
    }
}

fn check_empty_folder(path: &str, full: &Path) -> FileCheck {
    match std::fs::symlink_metadata(full) {
        Ok(metadata) if metadata.is_dir() => FileCheck::new(path, FileStatus::Ok),
        Ok(_) => FileCheck::new(path, FileStatus::Changed)
            .detail(format!("{} is no longer a folder", full.display())),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            FileCheck::new(path, FileStatus::Missing)
                .detail(format!("the folder {} does not exist", full.display()))
        }
        Err(error) => FileCheck::new(path, FileStatus::Error)
            .detail(format!("cannot read {}: {error}", full.display())),
    }
}

fn compare(check: &mut FileCheck, result: Result<crate::digest::FileDigest, DigestError>) {
    match result {
        Ok(digest) => {
            check.found_size = Some(digest.size);
            check.found_sha256 = Some(digest.sha256.clone());
            check.cached = digest.cached;
            if check.sha256.as_deref() != Some(digest.sha256.as_str())
                || check.size.is_some_and(|size| size != digest.size)
            {
                check.status = FileStatus::Changed;
                let hint = if digest.cached {
                    " (the found digest came from the digest cache; --no-cache reads the file again)"
                } else {
                    ""
                };
                check.detail = Some(format!(
                    "sha256 {} recorded, {} found{hint}",
                    check.sha256.as_deref().unwrap_or_default(),
                    digest.sha256
                ));
            }
        }
        Err(DigestError::Missing { .. }) => {
            check.status = FileStatus::Missing;
            check.detail = Some("the file was removed while it was checked".into());
        }
        Err(DigestError::Symlink { .. } | DigestError::Special { .. }) => {
            check.status = FileStatus::Changed;
            check.detail = Some("the file is no longer a regular file".into());
        }
        Err(error @ DigestError::Read { .. }) => {
            check.status = FileStatus::Error;
            check.detail = Some(error.to_string());
        }
    }
}

/// Lists files in the release's artifact folders that the record does not name. The folders are
/// the `artifacts` of the release file at the tagged commit that the record lists files under,
/// and the record's empty folders.
fn added_files(
    repo: &Repo,
    record: &ReleaseRecord,
    root: &Path,
    notes: &mut Vec<String>,
) -> Vec<FileCheck> {
    let recorded: HashSet<&str> = record
        .artifacts
        .iter()
        .map(|entry| entry.path.as_str())
        .collect();
    let mut folders: Vec<String> = record
        .artifacts
        .iter()
        .filter_map(|entry| entry.path.strip_suffix('/'))
        .filter(|path| is_plain_relative(path))
        .map(str::to_owned)
        .collect();
    let has_files = record
        .artifacts
        .iter()
        .any(|entry| !entry.path.ends_with('/'));
    if has_files {
        match declared_artifacts(repo, record) {
            Ok(declared) => folders.extend(declared.into_iter().filter(|artifact| {
                let prefix = format!("{artifact}/");
                is_plain_relative(artifact)
                    && record
                        .artifacts
                        .iter()
                        .any(|entry| entry.path.starts_with(&prefix))
            })),
            Err(reason) => notes.push(format!(
                "artifact folders were not searched for added files: {reason}"
            )),
        }
    }
    folders.sort();
    folders.dedup();

    let mut added = Vec::new();
    for folder in folders {
        match crate::digest::list(root, &folder) {
            Ok(Listing::Folder(files)) => added.extend(
                files
                    .into_iter()
                    .filter(|file| !recorded.contains(file.shown.as_str()))
                    .map(|file| {
                        FileCheck::new(&file.shown, FileStatus::Added).detail(format!(
                            "{} is in the artifact folder {folder} but not in the record",
                            file.path.display()
                        ))
                    }),
            ),
            Ok(Listing::File(_) | Listing::EmptyFolder(_)) | Err(DigestError::Missing { .. }) => {}
            Err(DigestError::Symlink { path } | DigestError::Special { path }) => {
                added.push(
                    FileCheck::new(&path, FileStatus::Changed)
                        .detail("a symbolic link or special file is in the artifact folder"),
                );
            }
            Err(error @ DigestError::Read { .. }) => {
                added.push(FileCheck::new(&folder, FileStatus::Error).detail(error.to_string()));
            }
        }
    }
    added
}

/// Reads the `artifacts` that the release file declared at the tagged commit.
fn declared_artifacts(repo: &Repo, record: &ReleaseRecord) -> Result<Vec<String>, String> {
    let commit = gix::ObjectId::from_hex(record.commit.as_bytes()).map_err(|_| {
        format!(
            "the record's commit `{}` is not an object id",
            record.commit
        )
    })?;
    let text = repo
        .file_at(commit, &record.release_file)
        .map_err(|error| error.to_string())?
        .ok_or_else(|| {
            format!(
                "the release file {} is not in commit {}",
                record.release_file, record.commit
            )
        })?;
    let text = String::from_utf8(text)
        .map_err(|_| format!("the release file {} is not UTF-8", record.release_file))?;
    let release = release_file::parse(&record.release_file, &text).map_err(|problems| {
        format!(
            "the release file {} at commit {} is invalid: {problems}",
            record.release_file, record.commit
        )
    })?;
    Ok(release.artifacts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_without_v_becomes_tag_name() {
        assert_eq!(with_version_prefix("demo@1.2.0"), "demo@v1.2.0");
        assert_eq!(with_version_prefix("demo@v1.2.0"), "demo@v1.2.0");
        assert_eq!(with_version_prefix("demo#prod"), "demo#prod");
    }

    #[test]
    fn record_paths_must_stay_inside() {
        for path in ["out/model.bin", "out/empty/", "a"] {
            assert!(is_plain_relative(path), "{path}");
        }
        for path in [
            "",
            "/etc/passwd",
            "../x",
            "out/../../x",
            "./x",
            "out//x",
            "/",
        ] {
            assert!(!is_plain_relative(path), "{path}");
        }
    }
}
