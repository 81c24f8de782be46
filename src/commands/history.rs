//! `mrel history`: every registry event of a model, oldest first.

use crate::commands::{CommandError, Global, print};
use crate::record;
use crate::registry::Registry;
use crate::report::{Format, Table};
use crate::signature::{Status, Verifier};
use crate::tags::TagKind;

pub struct Args {
    pub model: String,
    pub format: Format,
}

#[derive(serde::Serialize)]
struct Row {
    time: Option<String>,
    event: String,
    version: Option<String>,
    stage: Option<String>,
    who: Option<String>,
    commit: String,
    tag: String,
    /// The signature's status as `mrel verify` checks it: good, bad, unknown key, untrusted,
    /// unsigned or error.
    signature: Status,
    /// The signer, where the verifier named one.
    signer: Option<String>,
    forced: bool,
    rollback: bool,
    reason: Option<String>,
}

pub fn run(global: &Global, args: &Args) -> Result<(), CommandError> {
    let repo = global.open()?;
    let registry = Registry::load(&repo)?;
    let verifier = Verifier::new(&repo.git);
    let mut verifier_errors = Vec::new();
    let rows: Vec<Row> = registry
        .model_events(&args.model)
        .map(|event| {
            let verdict = verifier.verify_event(event);
            if verdict.status == Status::Error && !verifier_errors.contains(&verdict.detail) {
                verifier_errors.push(verdict.detail.clone());
            }
            let details = record::parse_event(&event.tag, &event.message).ok();
            let (version, stage) = match &event.name.kind {
                TagKind::Register(version) | TagKind::Deregister(version) => {
                    (Some(version.to_string()), None)
                }
                TagKind::Assign(stage) | TagKind::Unassign(stage) => (
                    registry
                        .version_at(&args.model, event.commit)
                        .map(ToString::to_string),
                    Some(stage.clone()),
                ),
                TagKind::Deprecate | TagKind::Create => (None, None),
            };
            let rollback = details
                .as_ref()
                .is_some_and(|details| details.event == "rollback");
            Row {
                time: event.tagger.as_ref().map(|tagger| tagger.time.to_string()),
                event: if rollback {
                    "rollback".to_owned()
                } else {
                    event.name.kind.event_name().to_owned()
                },
                version,
                stage,
                who: event
                    .tagger
                    .as_ref()
                    .map(|tagger| format!("{} <{}>", tagger.name, tagger.email)),
                commit: event.commit.to_string(),
                tag: event.tag.clone(),
                signature: verdict.status,
                signer: verdict.signer,
                forced: details.as_ref().is_some_and(|details| details.forced),
                rollback,
                reason: details.and_then(|details| details.reason),
            }
        })
        .collect();
    if rows.is_empty() {
        return Err(CommandError::invalid(format!(
            "model `{}` has no registry events",
            args.model
        )));
    }
    for detail in &verifier_errors {
        global.warn(&format!("signatures could not be checked: {detail}"));
    }

    let output = match args.format {
        Format::Json => serde_json::to_string_pretty(&rows).expect("JSON output always serializes"),
        Format::Text | Format::Markdown => {
            let mut table = Table::new(&[
                "time",
                "event",
                "version",
                "stage",
                "who",
                "commit",
                "signature",
                "note",
            ]);
            for row in &rows {
                let mut note = Vec::new();
                if row.forced {
                    note.push("forced".to_owned());
                }
                if let Some(reason) = &row.reason {
                    note.push(reason.clone());
                }
                table.push(vec![
                    row.time.clone().unwrap_or_default(),
                    row.event.clone(),
                    row.version.clone().unwrap_or_default(),
                    row.stage.clone().unwrap_or_default(),
                    row.who.clone().unwrap_or_default(),
                    row.commit[..12].to_owned(),
                    row.signature.to_string(),
                    note.join(": "),
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
