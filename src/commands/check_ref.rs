//! `mrel check-ref`: describes the registry event of a pushed tag, for pipelines that a tag push
//! triggers. Tags outside the registry grammar print nothing and succeed.

use crate::commands::{CommandError, Global, print};
use crate::record;
use crate::registry::Registry;
use crate::report::Format;
use crate::tags::{self, TagKind};

pub struct Args {
    /// A tag name, with or without `refs/tags/`.
    pub tag: String,
    pub format: Format,
}

#[derive(serde::Serialize)]
struct RefEvent {
    tag: String,
    model: String,
    /// `release`, `deregister`, `assign`, `unassign`, `deprecate` or `create`; a rollback is an
    /// `assign` with `rollback: true`.
    event: &'static str,
    version: Option<String>,
    stage: Option<String>,
    counter: Option<u64>,
    commit: String,
    rollback: bool,
}

pub fn run(global: &Global, args: &Args) -> Result<(), CommandError> {
    let name = args.tag.strip_prefix("refs/tags/").unwrap_or(&args.tag);
    let Some(parsed) = tags::parse(name) else {
        return Ok(());
    };
    let repo = global.open()?;
    let registry = Registry::load(&repo)?;
    if registry.lightweight.iter().any(|tag| tag == name) {
        return Err(CommandError::invalid(format!(
            "tag {name} is a lightweight tag in this clone, but registry tags are annotated; \
             the checkout recreated it without its tag object. Fetch the tag objects with \
             `git fetch --tags --force` (GitHub Actions: actions/checkout with fetch-depth: 0)"
        )));
    }
    let Some(event) = registry.events().iter().find(|event| event.tag == name) else {
        return Err(CommandError::invalid(format!(
            "tag {name} not found; fetch it with `git fetch origin tag {name}`"
        )));
    };

    let details = record::parse_event(&event.tag, &event.message).ok();
    let (version, stage) = match &parsed.kind {
        TagKind::Register(version) | TagKind::Deregister(version) => {
            (Some(version.to_string()), None)
        }
        TagKind::Assign(stage) | TagKind::Unassign(stage) => (
            registry
                .version_at(&parsed.model, event.commit)
                .map(ToString::to_string),
            Some(stage.clone()),
        ),
        TagKind::Deprecate | TagKind::Create => (None, None),
    };
    let output = RefEvent {
        tag: name.to_owned(),
        model: parsed.model.clone(),
        event: parsed.kind.event_name(),
        version,
        stage,
        counter: parsed.counter,
        commit: event.commit.to_string(),
        rollback: details.is_some_and(|details| details.event == "rollback"),
    };
    match args.format {
        Format::Json => {
            print(&serde_json::to_string_pretty(&output).expect("JSON output always serializes"))
        }
        Format::Text | Format::Markdown => {
            let mut line = format!(
                "{} {} {}",
                output.event,
                output.model,
                output.version.as_deref().unwrap_or("-")
            );
            if let Some(stage) = &output.stage {
                line.push_str(&format!(" {stage}"));
            }
            print(&line);
        }
    }
    Ok(())
}
