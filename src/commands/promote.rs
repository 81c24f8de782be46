//! `mrel promote`: assigns a stage to a released version, along the declared promotion path.

use crate::commands::{CommandError, Global};
use crate::record::{EVENT_FORMAT, EventRecord, compose_message};
use crate::registry::Registry;
use crate::release_file::ReleaseFile;
use crate::repo::Repo;
use crate::tagging::{self, Signing};
use crate::tags::{TagKind, TagName};
use crate::workspace;

pub struct Args {
    pub model: String,
    pub version: String,
    pub stage: String,
    /// Skips the rule that a version enters a stage only after the previous one.
    pub force: bool,
    pub reason: Option<String>,
    pub no_sign: bool,
}

pub fn run(global: &Global, args: &Args) -> Result<(), CommandError> {
    let repo = global.open()?;
    let release = workspace::find_model(&repo, &args.model)?;
    let stage = declared_stage(&release, &args.stage)?;
    let registry = Registry::load(&repo)?;
    let version = crate::release_file::parse_version(args.version.trim_start_matches('v'))
        .map_err(CommandError::invalid)?;
    let Some((_, release_event)) = registry
        .releases(&release.model)
        .into_iter()
        .find(|(known, _)| **known == version)
    else {
        return Err(CommandError::invalid(format!(
            "{}@v{version} is not an active release; `mrel status {}` lists the releases",
            release.model, release.model
        )));
    };

    if args.force && args.reason.is_none() {
        return Err(CommandError::invalid(
            "--force needs --reason TEXT, which the tag records",
        ));
    }
    let position = release
        .stages
        .iter()
        .position(|known| *known == stage)
        .unwrap_or(0);
    if position > 0 && !args.force {
        let before = &release.stages[position - 1];
        let held = registry
            .stage_history(&release.model, before)
            .iter()
            .any(|(event, held)| {
                matches!(event.name.kind, TagKind::Assign(_)) && *held == Some(&version)
            });
        if !held {
            return Err(CommandError::invalid(format!(
                "{}@v{version} has not been in {before}, the stage before {stage}; promote it to {before} first, \
                 or pass --force --reason TEXT",
                release.model
            )));
        }
    }
    let current = registry
        .in_stage(&release.model, &stage)
        .map(|(_, held)| held.to_string());
    if current.as_deref() == Some(&version.to_string()) {
        return Err(CommandError::invalid(format!(
            "{}@v{version} is already in {stage}",
            release.model
        )));
    }

    let record = EventRecord {
        format: EVENT_FORMAT.to_owned(),
        model: release.model.clone(),
        event: "promote".to_owned(),
        version: Some(version.to_string()),
        stage: Some(stage.clone()),
        replaces: current,
        forced: args.force,
        reason: args.reason.clone(),
    };
    let summary = format!("Promote {} {version} to {stage}", release.model);
    let tag = write_stage_tag(
        global,
        &repo,
        &registry,
        &record,
        &summary,
        release_event.commit,
        args.no_sign,
    )?;
    crate::commands::print(&tag);
    Ok(())
}

/// Returns the stage as the release file declares it. A name that differs only in case is
/// rejected with the declared spelling.
pub fn declared_stage(release: &ReleaseFile, stage: &str) -> Result<String, CommandError> {
    if release.stages.iter().any(|known| known == stage) {
        return Ok(stage.to_owned());
    }
    if let Some(known) = release
        .stages
        .iter()
        .find(|known| known.eq_ignore_ascii_case(stage))
    {
        return Err(CommandError::invalid(format!(
            "stage `{stage}` is not declared; did you mean `{known}`? Stage names are case-sensitive"
        )));
    }
    let declared = if release.stages.is_empty() {
        "none".to_owned()
    } else {
        release.stages.join(", ")
    };
    Err(CommandError::invalid(format!(
        "stage `{stage}` is not declared in {}; declared stages: {declared}",
        release.path
    )))
}

/// Writes the assignment tag `MODEL#STAGE#N` on `commit` with the event record.
pub fn write_stage_tag(
    global: &Global,
    repo: &Repo,
    registry: &Registry,
    record: &EventRecord,
    summary: &str,
    commit: gix::ObjectId,
    no_sign: bool,
) -> Result<String, CommandError> {
    let stage = record.stage.clone().unwrap_or_default();
    let tag = TagName {
        model: record.model.clone(),
        kind: TagKind::Assign(stage),
        counter: Some(registry.next_counter(&record.model)),
    }
    .to_string();
    write_tag(global, repo, &tag, record, summary, commit, no_sign)?;
    Ok(tag)
}

/// Writes an event tag, signed unless `no_sign`.
pub fn write_tag(
    global: &Global,
    repo: &Repo,
    tag: &str,
    record: &EventRecord,
    summary: &str,
    commit: gix::ObjectId,
    no_sign: bool,
) -> Result<(), CommandError> {
    let signing = if no_sign {
        Signing::Unsigned
    } else {
        Signing::Sign
    };
    if signing == Signing::Sign {
        tagging::check_signing(repo, tag)?;
    }
    let message = compose_message(summary, record);
    tagging::create(repo, tag, commit, &message, signing)?;
    if !global.quiet {
        eprintln!("created tag {tag}; push it with `git push origin {tag}`");
    }
    Ok(())
}
