//! `mrel status`: every model, its latest version, who released it and when, and its stages.

use std::collections::BTreeMap;

use crate::commands::{CommandError, Global, print};
use crate::registry::{Event, Registry};
use crate::report::{Format, Table};
use crate::tags::TagKind;
use crate::workspace::{self, Source};

pub struct Args {
    pub model: Option<String>,
    pub format: Format,
}

#[derive(serde::Serialize)]
struct ModelStatus {
    model: String,
    latest: Option<String>,
    tag: Option<String>,
    released_at: Option<String>,
    released_by: Option<String>,
    signed: Option<bool>,
    deprecated: bool,
    /// Stage name to the version in it, from the latest assignment.
    stages: BTreeMap<String, String>,
    /// The version the release file at HEAD declares, where it has no tag yet.
    unreleased: Option<String>,
}

pub fn run(global: &Global, args: &Args) -> Result<(), CommandError> {
    let repo = global.open()?;
    let registry = Registry::load(&repo)?;
    if !registry.lightweight.is_empty() {
        global.warn(&format!(
            "ignoring lightweight tags that look like registry tags (registry tags are annotated): {}",
            registry.lightweight.join(", ")
        ));
    }
    let loaded = workspace::load(&repo, &[], Source::WorkTree)?;

    let mut models = registry.models();
    for release in &loaded.releases {
        if !models.contains(&release.model) {
            models.push(release.model.clone());
        }
    }
    models.sort();
    if let Some(model) = &args.model {
        if !models.contains(model) {
            return Err(CommandError::invalid(format!(
                "model `{model}` not found: no release file declares it and no tag names it"
            )));
        }
        models.retain(|known| known == model);
    }

    let statuses: Vec<ModelStatus> = models
        .iter()
        .map(|model| {
            let latest = registry.latest(model);
            let declared = loaded
                .releases
                .iter()
                .find(|release| &release.model == model);
            let unreleased = declared
                .filter(|release| registry.release(model, &release.version).is_none())
                .map(|release| release.version.to_string());
            status_of(&registry, model, latest.map(|(_, event)| event), unreleased)
        })
        .collect();

    let output = match args.format {
        Format::Json => {
            serde_json::to_string_pretty(&statuses).expect("JSON output always serializes")
        }
        Format::Text | Format::Markdown => {
            let mut table = Table::new(&[
                "model",
                "latest",
                "released",
                "by",
                "signed",
                "stages",
                "unreleased",
            ]);
            for status in &statuses {
                let stages: Vec<String> = status
                    .stages
                    .iter()
                    .map(|(stage, version)| format!("{stage}={version}"))
                    .collect();
                let mut latest = status.latest.clone().unwrap_or_else(|| "—".into());
                if status.deprecated {
                    latest.push_str(" (deprecated)");
                }
                table.push(vec![
                    status.model.clone(),
                    latest,
                    status.released_at.clone().unwrap_or_default(),
                    status.released_by.clone().unwrap_or_default(),
                    status.signed.map_or(String::new(), |signed| {
                        if signed { "yes".into() } else { "no".into() }
                    }),
                    stages.join(", "),
                    status.unreleased.clone().unwrap_or_default(),
                ]);
            }
            if args.format == Format::Markdown {
                table.to_markdown()
            } else {
                table.to_text()
            }
        }
    };
    print(&output);
    Ok(())
}

fn status_of(
    registry: &Registry,
    model: &str,
    latest: Option<&Event>,
    unreleased: Option<String>,
) -> ModelStatus {
    let mut stages = BTreeMap::new();
    let mut deprecated = false;
    for event in registry.model_events(model) {
        match &event.name.kind {
            TagKind::Assign(stage) => {
                let version = registry
                    .model_events(model)
                    .find(|release| {
                        release.commit == event.commit
                            && matches!(release.name.kind, TagKind::Register(_))
                    })
                    .map(|release| match &release.name.kind {
                        TagKind::Register(version) => version.to_string(),
                        _ => String::new(),
                    })
                    .unwrap_or_else(|| event.commit.to_string()[..12].to_owned());
                stages.insert(stage.clone(), version);
            }
            TagKind::Unassign(stage) => {
                stages.remove(stage);
            }
            TagKind::Deprecate => deprecated = true,
            TagKind::Register(_) => deprecated = false,
            _ => {}
        }
    }
    ModelStatus {
        model: model.to_owned(),
        latest: latest.and_then(|event| match &event.name.kind {
            TagKind::Register(version) => Some(version.to_string()),
            _ => None,
        }),
        tag: latest.map(|event| event.tag.clone()),
        released_at: latest
            .and_then(|event| event.tagger.as_ref())
            .map(|tagger| tagger.time.to_string()),
        released_by: latest
            .and_then(|event| event.tagger.as_ref())
            .map(|tagger| format!("{} <{}>", tagger.name, tagger.email)),
        signed: latest.map(|event| event.signed),
        deprecated,
        stages,
        unreleased,
    }
}
