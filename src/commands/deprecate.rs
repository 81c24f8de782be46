//! `mrel deprecate`: deregisters a version (`MODEL@vX!`) or deprecates the model
//! (`MODEL@deprecated`). A later release or assignment makes the model active again, as in GTO.

use crate::commands::promote::write_tag;
use crate::commands::{CommandError, Global, print};
use crate::record::{EVENT_FORMAT, EventRecord};
use crate::tags::{TagKind, TagName};

pub struct Args {
    pub model: String,
    pub version: Option<String>,
    pub reason: Option<String>,
    pub no_sign: bool,
}

pub fn run(global: &Global, args: &Args) -> Result<(), CommandError> {
    let repo = global.open()?;
    let registry = global.load_registry(&repo)?;
    if registry.model_events(&args.model).next().is_none() {
        return Err(CommandError::invalid(format!(
            "model `{}` has no registry tags",
            args.model
        )));
    }

    let (kind, commit, version) = match &args.version {
        Some(text) => {
            let version = crate::release_file::parse_version(text.trim_start_matches('v'))
                .map_err(CommandError::invalid)?;
            let (_, event) = registry
                .releases(&args.model)
                .into_iter()
                .find(|(known, _)| **known == version)
                .ok_or_else(|| {
                    CommandError::invalid(format!(
                        "{}@v{version} is not an active release",
                        args.model
                    ))
                })?;
            (
                TagKind::Deregister(version.clone()),
                event.commit,
                Some(version.to_string()),
            )
        }
        None => (TagKind::Deprecate, repo.head_commit()?, None),
    };
    let mut name = TagName {
        model: args.model.clone(),
        kind,
        counter: None,
    };
    // A model deprecated again after a later release needs a new tag name; GTO's counter form
    // gives one.
    if crate::tagging::exists(&repo, &name.to_string())? {
        name.counter = Some(registry.next_counter(&args.model));
    }
    let tag = name.to_string();
    let event = if version.is_some() {
        "deregister"
    } else {
        "deprecate"
    };
    let record = EventRecord {
        format: EVENT_FORMAT.to_owned(),
        model: args.model.clone(),
        event: event.to_owned(),
        version: version.clone(),
        stage: None,
        replaces: None,
        forced: false,
        reason: args.reason.clone(),
        gates: Vec::new(),
    };
    let summary = match &version {
        Some(version) => format!("Deregister {} {version}", args.model),
        None => format!("Deprecate {}", args.model),
    };
    write_tag(global, &repo, &tag, &record, &summary, commit, args.no_sign)?;
    print(&tag);
    Ok(())
}
