//! `mrel promote`: assigns a stage to a released version, along the declared promotion path.

use crate::commands::{CommandError, Global};
use crate::gates::{self, GateResult};
use crate::metrics::Metrics;
use crate::record::{self, EVENT_FORMAT, EventRecord, compose_message};
use crate::registry::Registry;
use crate::release_file::ReleaseFile;
use crate::repo::Repo;
use crate::tagging::{self, Signing};
use crate::tags::{TagKind, TagName};
use crate::training::humanize;
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
    let registry = global.load_registry(&repo)?;
    let version = crate::release_file::parse_version(args.version.trim_start_matches('v'))
        .map_err(CommandError::invalid)?;
    let Some((_, release_event)) = registry
        .releases(&release.model)
        .into_iter()
        .find(|(known, _)| **known == version)
    else {
        return Err(CommandError::invalid(format!(
            "{}@v{version} is not an active release; `mrel history {}` lists the releases",
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
            return Err(CommandError::failed(format!(
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

    let rule = release.promotion.get(&stage).cloned().unwrap_or_default();
    if let (Some(soak), false) = (rule.soak, args.force) {
        check_soak(&registry, &release, &version, position, soak)?;
    }
    let verdicts = stage_gates(&registry, &release, &rule, release_event, &stage)?;
    if gates::any_failed(&verdicts) {
        for result in verdicts
            .iter()
            .filter(|result| result.status == gates::Status::Failed)
        {
            eprintln!(
                "stage gate failed for {stage}: {} {} {}: {}",
                result.metric, result.check, result.limit, result.reason
            );
        }
        return Err(CommandError::failed(format!(
            "promotion of {}@v{version} to {stage} stopped: a stage gate failed; no tag was created",
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
        gates: verdicts,
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

/// Rejects a promotion that comes before the version has spent `soak` in the previous stage of
/// the path (or, for the first stage, since its release).
fn check_soak(
    registry: &Registry,
    release: &ReleaseFile,
    version: &semver::Version,
    position: usize,
    soak: std::time::Duration,
) -> Result<(), CommandError> {
    let entered = if position == 0 {
        registry
            .release(&release.model, version)
            .and_then(|event| event.tagger.as_ref())
            .map(|tagger| tagger.time)
    } else {
        let before = &release.stages[position - 1];
        registry
            .stage_history(&release.model, before)
            .into_iter()
            .filter(|(event, held)| {
                matches!(event.name.kind, TagKind::Assign(_)) && *held == Some(version)
            })
            .filter_map(|(event, _)| event.tagger.as_ref().map(|tagger| tagger.time))
            .next_back()
    };
    let Some(entered) = entered else {
        return Err(CommandError::invalid(format!(
            "cannot tell when {}@v{version} entered the previous stage, so its soak time is unknown",
            release.model
        )));
    };
    let now = jiff::Timestamp::now();
    let spent = now.duration_since(entered).unsigned_abs();
    if spent < soak {
        let left = soak - spent;
        return Err(CommandError::failed(format!(
            "{}@v{version} must soak {} before this promotion; {} left (since {entered}); \
             pass --force --reason TEXT to promote now",
            release.model,
            humanize(soak),
            humanize(left)
        )));
    }
    Ok(())
}

/// Applies the stage's gates to the release's record. Relative limits compare with the record
/// of the version in the stage now, where there is one.
fn stage_gates(
    registry: &Registry,
    release: &ReleaseFile,
    rule: &crate::release_file::StageRule,
    release_event: &crate::registry::Event,
    stage: &str,
) -> Result<Vec<GateResult>, CommandError> {
    if rule.gates.is_empty() {
        return Ok(Vec::new());
    }
    let metrics_of = |event: &crate::registry::Event| -> Result<Metrics, CommandError> {
        let record = record::parse_release(&event.tag, &event.message)?;
        Ok(crate::metrics::from_record(&record.metrics))
    };
    let candidate = metrics_of(release_event)?;
    let holder = match registry.in_stage(&release.model, stage) {
        Some((_, held)) => match registry.release(&release.model, held) {
            Some(event) => Some(metrics_of(event)?),
            None => None,
        },
        None => None,
    };
    Ok(gates::evaluate(&rule.gates, &candidate, holder.as_ref())?)
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
