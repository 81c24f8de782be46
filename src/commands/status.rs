//! `mrel status`: every model, its latest version, who released it and when, and what is in each
//! stage since when, now or at a past moment.

use std::collections::BTreeMap;

use crate::commands::{CommandError, Global, print};
use crate::registry::{Event, Registry};
use crate::report::{Format, Table};
use crate::tags::TagKind;
use crate::workspace::{self, Source};

pub struct Args {
    pub model: Option<String>,
    /// The moment to report instead of now: RFC 3339, or a date meaning the end of that day
    /// in UTC.
    pub at: Option<String>,
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
    /// True after `MODEL@deprecated` until a later release or assignment.
    deprecated: bool,
    /// Stage name to the version in it, from the latest assignment.
    stages: BTreeMap<String, StageStatus>,
    /// The version the release file at HEAD declares, where it has no tag yet.
    unreleased: Option<String>,
    /// The stages as the release file declares them, to list them in path order.
    #[serde(skip)]
    path: Vec<String>,
}

#[derive(serde::Serialize)]
struct StageStatus {
    version: String,
    /// When the version entered the stage (the assignment tag's time).
    since: Option<String>,
    tag: String,
    /// True when the version was deregistered after it entered the stage.
    deregistered: bool,
}

/// Parses `--at`: an RFC 3339 time, or a date that stands for the end of that day in UTC.
pub fn parse_moment(text: &str) -> Result<jiff::Timestamp, CommandError> {
    let invalid = || {
        CommandError::invalid(format!(
            "invalid time `{text}`: expected RFC 3339 with a time zone, such as \
             2026-01-05T12:00:00Z, or a date such as 2026-01-05"
        ))
    };
    if let Ok(timestamp) = text.parse::<jiff::Timestamp>() {
        return Ok(timestamp);
    }
    // Only a bare date stands for a whole day; a time without a zone is ambiguous.
    let is_date = text.len() == 10
        && text.bytes().enumerate().all(|(index, byte)| {
            if index == 4 || index == 7 {
                byte == b'-'
            } else {
                byte.is_ascii_digit()
            }
        });
    if !is_date {
        return Err(invalid());
    }
    let date: jiff::civil::Date = text.parse().map_err(|_| invalid())?;
    date.at(23, 59, 59, 0)
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .map(|zoned| zoned.timestamp())
        .map_err(|error| CommandError::invalid(format!("invalid date `{text}`: {error}")))
}

pub fn run(global: &Global, args: &Args) -> Result<(), CommandError> {
    let repo = global.open()?;
    let at = args.at.as_deref().map(parse_moment).transpose()?;
    let registry = match at {
        Some(at) => global.load_registry(&repo)?.until(at),
        None => global.load_registry(&repo)?,
    };
    let loaded = workspace::load(&repo, &[], Source::WorkTree)?;

    let mut models = registry.models();
    if at.is_none() {
        for release in &loaded.releases {
            if !models.contains(&release.model) {
                models.push(release.model.clone());
            }
        }
    }
    models.sort();
    if let Some(model) = &args.model {
        if !models.contains(model) {
            return Err(CommandError::invalid(format!(
                "model `{model}` not found: no release file declares it and no tag names it{}",
                at.map(|at| format!(" at {at}")).unwrap_or_default()
            )));
        }
        models.retain(|known| known == model);
    }

    let statuses: Vec<ModelStatus> = models
        .iter()
        .map(|model| {
            let unreleased = loaded
                .releases
                .iter()
                .find(|release| &release.model == model)
                .filter(|release| {
                    at.is_none() && registry.release(model, &release.version).is_none()
                })
                .map(|release| release.version.to_string());
            let path = loaded
                .releases
                .iter()
                .find(|release| &release.model == model)
                .map(|release| release.stages.clone())
                .unwrap_or_default();
            status_of(&registry, model, unreleased, path)
        })
        .collect();

    let output = match args.format {
        Format::Json => {
            serde_json::to_string_pretty(&statuses).expect("JSON output always serializes")
        }
        Format::Text | Format::Markdown => render_table(&statuses, args.format),
    };
    print(&output);
    Ok(())
}

fn render_table(statuses: &[ModelStatus], format: Format) -> String {
    let mut table = Table::new(&[
        "model",
        "latest",
        "released",
        "by",
        "signed",
        "stages",
        "unreleased",
    ]);
    for status in statuses {
        let mut ordered: Vec<(&String, &StageStatus)> = status.stages.iter().collect();
        ordered.sort_by_key(|(stage, _)| {
            status
                .path
                .iter()
                .position(|known| known == *stage)
                .unwrap_or(usize::MAX)
        });
        let stages: Vec<String> = ordered
            .into_iter()
            .map(|(stage, held)| {
                let withdrawn = if held.deregistered {
                    "deregistered, "
                } else {
                    ""
                };
                match &held.since {
                    Some(since) => format!("{stage}={} ({withdrawn}since {since})", held.version),
                    None if held.deregistered => format!("{stage}={} (deregistered)", held.version),
                    None => format!("{stage}={}", held.version),
                }
            })
            .collect();
        let mut latest = status.latest.clone().unwrap_or_else(|| "—".into());
        if status.deprecated {
            latest.push_str(" (deprecated)");
        }
        let signed = match status.signed {
            Some(true) => "yes",
            Some(false) => "no",
            None => "",
        };
        table.push(vec![
            status.model.clone(),
            latest,
            status.released_at.clone().unwrap_or_default(),
            status.released_by.clone().unwrap_or_default(),
            signed.to_owned(),
            stages.join(", "),
            status.unreleased.clone().unwrap_or_default(),
        ]);
    }
    if format == Format::Markdown {
        table.to_markdown()
    } else {
        table.to_text()
    }
}

fn status_of(
    registry: &Registry,
    model: &str,
    unreleased: Option<String>,
    path: Vec<String>,
) -> ModelStatus {
    let latest: Option<&Event> = registry.latest(model).map(|(_, event)| event);

    let mut stage_names: Vec<&String> = registry
        .model_events(model)
        .filter_map(|event| match &event.name.kind {
            TagKind::Assign(stage) | TagKind::Unassign(stage) => Some(stage),
            _ => None,
        })
        .collect();
    stage_names.sort();
    stage_names.dedup();
    let stages = stage_names
        .into_iter()
        .filter_map(|stage| {
            let (event, version) = registry.in_stage(model, stage)?;
            Some((
                stage.clone(),
                StageStatus {
                    deregistered: !registry.is_active(model, version),
                    version: version.to_string(),
                    since: event.tagger.as_ref().map(|tagger| tagger.time.to_string()),
                    tag: event.tag.clone(),
                },
            ))
        })
        .collect();

    let deprecated = registry.is_deprecated(model);

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
        path,
    }
}
