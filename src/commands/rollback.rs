//! `mrel rollback`: puts the version that held a stage before the current one back into it.

use crate::commands::promote::{declared_stage, write_stage_tag};
use crate::commands::{CommandError, Global, print};
use crate::record::{EVENT_FORMAT, EventRecord};
use crate::registry::Registry;
use crate::release_file::ReleaseFile;
use crate::repo::Repo;
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
    let registry = global.load_registry(&repo)?;
    let to = args
        .to
        .as_deref()
        .map(|text| crate::release_file::parse_version(text.trim_start_matches('v')))
        .transpose()
        .map_err(CommandError::invalid)?;
    let rollback = Rollback {
        repo: &repo,
        registry: &registry,
        release: &release,
        stage: &stage,
        no_sign: args.no_sign,
    };
    let tag = rollback.execute(global, to.as_ref(), &args.reason)?;
    print(&tag);
    Ok(())
}

/// A rollback of one stage, shared by `mrel rollback` and `mrel monitor --rollback`.
pub struct Rollback<'a> {
    pub repo: &'a Repo,
    pub registry: &'a Registry,
    pub release: &'a ReleaseFile,
    pub stage: &'a str,
    pub no_sign: bool,
}

impl Rollback<'_> {
    /// The version that held the stage before the current one, from the stage's history rather
    /// than the version order. A version that a rollback took out of the stage is skipped unless
    /// it was promoted again since, so that a second rollback never restores what failed.
    /// Fails with exit code 1 where no such holder exists.
    pub fn previous_holder(
        &self,
        current: &semver::Version,
    ) -> Result<semver::Version, CommandError> {
        let model = &self.release.model;
        let history = self.registry.stage_history(model, self.stage);
        let mut rolled_back: Vec<semver::Version> = Vec::new();
        for (event, version) in &history {
            let details = crate::record::parse_event(&event.tag, &event.message).ok();
            match details {
                Some(details) if details.event == "rollback" => {
                    if let Some(replaced) = details
                        .replaces
                        .and_then(|text| semver::Version::parse(&text).ok())
                    {
                        rolled_back.push(replaced);
                    }
                }
                _ => {
                    if let Some(version) = version {
                        rolled_back.retain(|known| known != *version);
                    }
                }
            }
        }
        history
            .iter()
            .rev()
            .filter(|(event, _)| matches!(event.name.kind, TagKind::Assign(_)))
            .filter_map(|(_, version)| *version)
            .find(|version| *version != current && !rolled_back.contains(version))
            .cloned()
            .ok_or_else(|| {
                let skipped = if rolled_back.is_empty() {
                    String::new()
                } else {
                    let names: Vec<String> = rolled_back.iter().map(ToString::to_string).collect();
                    format!(" (skipping {}, which a rollback took out of it)", names.join(", "))
                };
                CommandError::failed(format!(
                    "{} has had no version of {model} other than {current} to roll back to{skipped}; \
                     name one with --to VERSION",
                    self.stage
                ))
            })
    }

    /// Assigns `to` (by default the previous holder) to the stage with a rollback record, and
    /// returns the tag.
    pub fn execute(
        &self,
        global: &Global,
        to: Option<&semver::Version>,
        reason: &str,
    ) -> Result<String, CommandError> {
        let model = &self.release.model;
        let stage = self.stage;
        let Some((_, current)) = self.registry.in_stage(model, stage) else {
            return Err(CommandError::failed(format!(
                "no version of {model} is in {stage}, so there is nothing to roll back"
            )));
        };
        let target = match to {
            Some(version) => version.clone(),
            None => self.previous_holder(current)?,
        };
        if &target == current {
            return Err(CommandError::invalid(format!(
                "{model}@v{target} is already in {stage}"
            )));
        }
        let (_, target_event) = self
            .registry
            .releases(model)
            .into_iter()
            .find(|(known, _)| **known == target)
            .ok_or_else(|| {
                CommandError::invalid(format!(
                    "{model}@v{target} is not an active release (it was deregistered); \
                     name another version with --to VERSION"
                ))
            })?;

        let record = EventRecord {
            format: EVENT_FORMAT.to_owned(),
            model: model.clone(),
            event: "rollback".to_owned(),
            version: Some(target.to_string()),
            stage: Some(stage.to_owned()),
            replaces: Some(current.to_string()),
            forced: false,
            reason: Some(reason.to_owned()),
            gates: Vec::new(),
        };
        let summary =
            format!("Roll back {model} in {stage} from {current} to {target}\n\n{reason}");
        write_stage_tag(
            global,
            self.repo,
            self.registry,
            &record,
            &summary,
            target_event.commit,
            self.no_sign,
        )
    }
}
