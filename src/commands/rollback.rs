//! `mrel rollback`: puts the version that held a stage before the current one back into it.

use crate::commands::promote::{declared_stage, write_stage_tag};
use crate::commands::{CommandError, Global, print};
use crate::record::{EVENT_FORMAT, EventRecord};
use crate::registry::Registry;
use crate::tags::TagKind;
use crate::workspace;

pub struct Args {
    pub model: String,
    pub stage: String,
    /// The version to put back; by default the stage's previous holder.
    pub to: Option<String>,
    pub reason: String,
    pub no_sign: bool,
}

pub fn run(global: &Global, args: &Args) -> Result<(), CommandError> {
    let repo = global.open()?;
    let release = workspace::find_model(&repo, &args.model)?;
    let stage = declared_stage(&release, &args.stage)?;
    let registry = Registry::load(&repo)?;
    let Some((_, current)) = registry.in_stage(&release.model, &stage) else {
        return Err(CommandError::invalid(format!(
            "{stage} holds no version of {}; nothing to roll back",
            release.model
        )));
    };

    // The previous holder comes from the stage's history, not from the version order.
    let history = registry.stage_history(&release.model, &stage);
    let target = match &args.to {
        Some(text) => {
            let version = crate::release_file::parse_version(text.trim_start_matches('v')).map_err(CommandError::invalid)?;
            registry
                .releases(&release.model)
                .into_iter()
                .find(|(known, _)| **known == version)
                .map(|(known, _)| known)
                .ok_or_else(|| CommandError::invalid(format!("{}@v{version} is not an active release", release.model)))?
        }
        None => history
            .iter()
            .rev()
            .filter(|(event, _)| matches!(event.name.kind, TagKind::Assign(_)))
            .filter_map(|(_, version)| *version)
            .find(|version| *version != current)
            .ok_or_else(|| {
                CommandError::failed(format!(
                    "{stage} has had no version of {} other than {current}; there is nothing to roll back to",
                    release.model
                ))
            })?,
    };
    if target == current {
        return Err(CommandError::invalid(format!(
            "{}@v{target} is already in {stage}",
            release.model
        )));
    }
    let (_, target_event) = registry
        .releases(&release.model)
        .into_iter()
        .find(|(known, _)| *known == target)
        .ok_or_else(|| {
            CommandError::invalid(format!(
                "{}@v{target} is not an active release",
                release.model
            ))
        })?;

    let record = EventRecord {
        format: EVENT_FORMAT.to_owned(),
        model: release.model.clone(),
        event: "rollback".to_owned(),
        version: Some(target.to_string()),
        stage: Some(stage.clone()),
        replaces: Some(current.to_string()),
        forced: false,
        reason: Some(args.reason.clone()),
    };
    let summary = format!(
        "Roll back {} in {stage} from {current} to {target}",
        release.model
    );
    let tag = write_stage_tag(
        global,
        &repo,
        &registry,
        &record,
        &summary,
        target_event.commit,
        args.no_sign,
    )?;
    print(&tag);
    Ok(())
}
