//! The changelog: every release of one model or of every model, newest first, read from the
//! registry's tags alone, with what changed against the release before each one.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::compare::{self, MetricRow, ParamRow};
use crate::gates::GateResult;
use crate::metrics::Metrics;
use crate::record::{self, RecordError, ReleaseRecord};
use crate::registry::{Event, Registry};
use crate::release_file::{self, Better, Gate, ReleaseFile};
use crate::repo::{Repo, RepoError};
use crate::signature::{Status, Verifier};
use crate::tags::TagKind;
use crate::workspace;

/// Reads the release files that HEAD's tree holds at the tracked `release.yaml` paths. A file
/// that does not parse is left out, with a warning, because the changelog comes from the tags.
pub fn declared_at_head(repo: &Repo) -> Result<(Vec<ReleaseFile>, Vec<String>), RepoError> {
    let head = match repo.head_commit() {
        Ok(head) => head,
        Err(RepoError::NoCommit) => return Ok((Vec::new(), Vec::new())),
        Err(error) => return Err(error),
    };
    let mut releases = Vec::new();
    let mut warnings = Vec::new();
    for path in workspace::tracked_release_files(repo)? {
        let Some(bytes) = repo.file_at(head, &path)? else {
            continue;
        };
        match release_file::parse(&path, &String::from_utf8_lossy(&bytes)) {
            Ok(release) => releases.push(release),
            Err(problems) => warnings.push(format!(
                "{path} at HEAD is invalid, so the changelog shows no unreleased version from it:\n{problems}"
            )),
        }
    }
    Ok((releases, warnings))
}

/// Scope of a changelog: the models and the versions it lists.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// One model, or every model when `None`.
    pub model: Option<String>,
    /// Adds stage assignments, rollbacks and unassignments to each release.
    pub with_stages: bool,
    /// Lowest version listed, inclusive.
    pub since: Option<semver::Version>,
    /// Highest version listed, inclusive.
    pub until: Option<semver::Version>,
}

/// The template context of `changelog.md.j2`, which `mrel changelog --format json` prints.
#[derive(Clone, Debug, Serialize)]
pub struct Changelog {
    pub since: Option<String>,
    pub until: Option<String>,
    pub with_stages: bool,
    /// Sorted by model name.
    pub models: Vec<ModelChangelog>,
}

/// The changelog of one model.
#[derive(Clone, Debug, Serialize)]
pub struct ModelChangelog {
    pub model: String,
    /// The deprecation in force: a `MODEL@deprecated` tag with no release after it.
    pub deprecated: Option<Mark>,
    /// The version that the release file at HEAD declares, where it has no tag yet.
    pub unreleased: Option<Unreleased>,
    /// Every release tag in range, deregistered ones too, newest first in SemVer order.
    pub releases: Vec<ReleaseEntry>,
    /// Stage events whose version has no release tag, oldest first (with `with_stages`).
    pub other_stage_events: Vec<StageEntry>,
}

/// A tag that marks a release or a model, such as a deregistration or a deprecation.
#[derive(Clone, Debug, Serialize)]
pub struct Mark {
    pub tag: String,
    /// Tagger time, RFC 3339 in UTC.
    pub time: Option<String>,
    /// Tagger date, `YYYY-MM-DD` in UTC.
    pub date: Option<String>,
    /// Tagger, `Name <email>`.
    pub by: Option<String>,
    pub reason: Option<String>,
}

/// One release in the changelog.
#[derive(Clone, Debug, Serialize)]
pub struct ReleaseEntry {
    pub version: String,
    pub tag: String,
    pub commit: String,
    pub time: Option<String>,
    pub date: Option<String>,
    pub released_by: Option<String>,
    /// The verdict on the tag's signature, checked as `git verify-tag` checks it: `good`,
    /// `bad`, `unknown_key`, `untrusted`, `unsigned` or `error`.
    pub signature: Status,
    /// Whether the tag carries an mrel release record. Tags that GTO wrote do not, and then
    /// `metrics` and `params` are empty.
    pub has_record: bool,
    /// The release compared with: the next lower version among the model's release tags.
    pub previous_version: Option<String>,
    /// The notes part of the tag message, without the record.
    pub notes: String,
    /// Metrics that changed against `previous_version`, or every metric on a first release.
    pub metrics: Vec<MetricRow>,
    /// Params that changed against `previous_version`, or every param on a first release.
    pub params: Vec<ParamRow>,
    pub deregistered: Option<Mark>,
    /// Stage events of this version, oldest first (with `with_stages`).
    pub stages: Vec<StageEntry>,
}

/// A stage assignment or unassignment.
#[derive(Clone, Debug, Serialize)]
pub struct StageEntry {
    /// `promote` or `rollback` (mrel's assignments), `assign` (an assignment without an mrel
    /// record) or `unassign`.
    pub event: String,
    pub stage: String,
    pub version: Option<String>,
    pub tag: String,
    pub time: Option<String>,
    pub date: Option<String>,
    pub by: Option<String>,
    /// The verdict on the tag's signature, as for a release.
    pub signature: Status,
    /// Whether `--force` skipped the promotion path.
    pub forced: bool,
    pub reason: Option<String>,
    /// The version that held the stage before a rollback.
    pub replaces: Option<String>,
}

/// The version declared at HEAD that has no tag yet.
#[derive(Clone, Debug, Serialize)]
pub struct Unreleased {
    pub version: String,
    pub release_file: String,
    pub description: Option<String>,
    /// The author's words from the release file's `notes`.
    pub notes: Option<String>,
    /// The greatest active release below `version`, which `mrel release` would compare with.
    pub previous_version: Option<String>,
    /// Params that differ from `previous_version`'s record.
    pub params: Vec<ParamRow>,
}

#[derive(Debug, thiserror::Error)]
pub enum ChangelogError {
    #[error(
        "model `{model}` not found: no tag names it and no release file at HEAD declares it{}",
        known_models(.known)
    )]
    UnknownModel { model: String, known: Vec<String> },
    #[error(
        "--since {since} is above --until {until}; the range is inclusive, lowest version first"
    )]
    EmptyRange {
        since: semver::Version,
        until: semver::Version,
    },
}

fn known_models(known: &[String]) -> String {
    if known.is_empty() {
        " (the repository has no models yet)".to_owned()
    } else {
        format!(" (known models: {})", known.join(", "))
    }
}

/// A changelog and the problems met while reading tags, which do not stop it.
pub struct Built {
    pub changelog: Changelog,
    pub warnings: Vec<String>,
}

/// Builds the changelog from the registry and the release files at HEAD (`declared`), checking
/// each tag's signature with `verifier`.
pub fn build(
    registry: &Registry,
    declared: &[ReleaseFile],
    options: &Options,
    verifier: &Verifier<'_>,
) -> Result<Built, ChangelogError> {
    if let (Some(since), Some(until)) = (&options.since, &options.until)
        && since > until
    {
        return Err(ChangelogError::EmptyRange {
            since: since.clone(),
            until: until.clone(),
        });
    }

    let mut models = registry.models();
    models.extend(declared.iter().map(|release| release.model.clone()));
    models.sort();
    models.dedup();
    if let Some(model) = &options.model {
        if !models.contains(model) {
            return Err(ChangelogError::UnknownModel {
                model: model.clone(),
                known: models,
            });
        }
        models.retain(|known| known == model);
    }

    let mut warnings = Vec::new();
    let models = models
        .iter()
        .map(|model| {
            let release_file = declared.iter().find(|release| &release.model == model);
            model_changelog(
                registry,
                model,
                release_file,
                options,
                verifier,
                &mut warnings,
            )
        })
        .collect();
    Ok(Built {
        changelog: Changelog {
            since: options.since.as_ref().map(ToString::to_string),
            until: options.until.as_ref().map(ToString::to_string),
            with_stages: options.with_stages,
            models,
        },
        warnings,
    })
}

/// The events of one model, sorted into releases, marks and stage events.
#[derive(Default)]
struct Timeline<'a> {
    /// The release tag of each version. A version tagged twice keeps its latest tag.
    releases: BTreeMap<semver::Version, &'a Event>,
    deregistered: HashMap<semver::Version, Mark>,
    deprecated: Option<Mark>,
    /// Stage events, oldest first, with the version each names where it is known.
    stage_events: Vec<(Option<semver::Version>, StageEntry)>,
}

fn timeline<'a>(
    registry: &'a Registry,
    model: &'a str,
    with_stages: bool,
    verifier: &Verifier<'_>,
) -> Timeline<'a> {
    let mut timeline = Timeline::default();
    // An assignment without a record names its version by the commit it points at.
    let mut released_on: HashMap<gix::ObjectId, &semver::Version> = HashMap::new();
    for event in registry.model_events(model) {
        if let TagKind::Register(version) = &event.name.kind {
            let greatest = released_on.entry(event.commit).or_insert(version);
            if version > *greatest {
                *greatest = version;
            }
        }
    }

    let mut holders: HashMap<&str, Option<semver::Version>> = HashMap::new();
    for event in registry.model_events(model) {
        match &event.name.kind {
            TagKind::Register(version) => {
                timeline.releases.insert(version.clone(), event);
                timeline.deregistered.remove(version);
                timeline.deprecated = None;
            }
            TagKind::Deregister(version) => {
                timeline
                    .deregistered
                    .insert(version.clone(), mark(event, event_reason(event)));
            }
            TagKind::Deprecate => timeline.deprecated = Some(mark(event, event_reason(event))),
            TagKind::Assign(stage) | TagKind::Unassign(stage) if with_stages => {
                let details = record::parse_event(&event.tag, &event.message).ok();
                let recorded = details
                    .as_ref()
                    .and_then(|details| details.version.as_deref())
                    .and_then(|text| semver::Version::parse(text).ok());
                let assigned = matches!(event.name.kind, TagKind::Assign(_));
                let version = match recorded {
                    Some(version) => Some(version),
                    None if assigned => released_on.get(&event.commit).map(|v| (*v).clone()),
                    None => holders.get(stage.as_str()).cloned().flatten(),
                };
                holders.insert(stage, assigned.then(|| version.clone()).flatten());
                let kind = match (&details, assigned) {
                    (_, false) => "unassign".to_owned(),
                    (Some(details), true) => details.event.clone(),
                    (None, true) => "assign".to_owned(),
                };
                let (time, date, by) = tagger_fields(event);
                let entry = StageEntry {
                    event: kind,
                    stage: stage.clone(),
                    version: version.as_ref().map(ToString::to_string),
                    tag: event.tag.clone(),
                    time,
                    date,
                    by,
                    signature: verifier.verify_event(event).status,
                    forced: details.as_ref().is_some_and(|details| details.forced),
                    replaces: details
                        .as_ref()
                        .and_then(|details| details.replaces.clone()),
                    reason: details.and_then(|details| details.reason),
                };
                timeline.stage_events.push((version, entry));
            }
            _ => {}
        }
    }
    timeline
}

fn model_changelog(
    registry: &Registry,
    model: &str,
    declared: Option<&ReleaseFile>,
    options: &Options,
    verifier: &Verifier<'_>,
    warnings: &mut Vec<String>,
) -> ModelChangelog {
    let timeline = timeline(registry, model, options.with_stages, verifier);
    let in_range = |version: &semver::Version| {
        options.since.as_ref().is_none_or(|since| version >= since)
            && options.until.as_ref().is_none_or(|until| version <= until)
    };

    // Newest first, so each release is compared with the one after it in this list.
    let versions: Vec<&semver::Version> = timeline.releases.keys().rev().collect();
    let mut records = RecordCache::default();
    let mut releases = Vec::new();
    for (index, version) in versions.iter().enumerate() {
        if !in_range(version) {
            continue;
        }
        let event = timeline.releases[*version];
        let previous = versions.get(index + 1).copied();
        let current = records.get(event, warnings);
        let before =
            previous.and_then(|previous| records.get(timeline.releases[previous], warnings));
        let (metrics, params) = match &current {
            Some(current) => changes(before.as_ref(), current),
            None => (Vec::new(), Vec::new()),
        };
        let stages = timeline
            .stage_events
            .iter()
            .filter(|(named, _)| named.as_ref() == Some(*version))
            .map(|(_, entry)| entry.clone())
            .collect();
        let (time, date, released_by) = tagger_fields(event);
        releases.push(ReleaseEntry {
            version: version.to_string(),
            tag: event.tag.clone(),
            commit: event.commit.to_string(),
            time,
            date,
            released_by,
            signature: verifier.verify_event(event).status,
            has_record: current.is_some(),
            previous_version: previous.map(ToString::to_string),
            notes: record::split_message(&event.message).0.trim().to_owned(),
            metrics,
            params,
            deregistered: timeline.deregistered.get(*version).cloned(),
            stages,
        });
    }

    let other_stage_events = timeline
        .stage_events
        .iter()
        .filter(|(named, _)| {
            named
                .as_ref()
                .is_none_or(|version| !timeline.releases.contains_key(version))
        })
        .map(|(_, entry)| entry.clone())
        .collect();
    let unreleased = declared
        .filter(|release| {
            !timeline.releases.contains_key(&release.version) && in_range(&release.version)
        })
        .map(|release| unreleased(release, &timeline, &mut records, warnings));
    ModelChangelog {
        model: model.to_owned(),
        deprecated: timeline.deprecated,
        unreleased,
        releases,
        other_stage_events,
    }
}

fn unreleased(
    release: &ReleaseFile,
    timeline: &Timeline<'_>,
    records: &mut RecordCache,
    warnings: &mut Vec<String>,
) -> Unreleased {
    let previous = timeline.releases.iter().rev().find(|(version, _)| {
        **version < release.version && !timeline.deregistered.contains_key(*version)
    });
    let previous_params = previous
        .and_then(|(_, event)| records.get(event, warnings))
        .map(|record| record.params)
        .unwrap_or_default();
    Unreleased {
        version: release.version.to_string(),
        release_file: release.path.clone(),
        description: release.description.clone(),
        notes: release.notes.clone(),
        previous_version: previous.map(|(version, _)| version.to_string()),
        params: compare::param_rows(&previous_params, &release.params, false),
    }
}

/// Release records read so far, by tag, so that each tag is parsed once.
#[derive(Default)]
struct RecordCache {
    records: HashMap<gix::ObjectId, Option<ReleaseRecord>>,
}

impl RecordCache {
    /// Returns the record of a release tag; `None` for a tag without one, with a warning where the
    /// record is there but cannot be read.
    fn get(&mut self, event: &Event, warnings: &mut Vec<String>) -> Option<ReleaseRecord> {
        self.records
            .entry(event.tag_id)
            .or_insert_with(|| match record::parse_release(&event.tag, &event.message) {
                Ok(record) => Some(record),
                Err(RecordError::Missing { .. }) => None,
                Err(error) => {
                    warnings.push(format!("{error}; listing the release without metrics"));
                    None
                }
            })
            .clone()
    }
}

/// Metric rows and param rows of `current` against `previous`.
fn changes(
    previous: Option<&ReleaseRecord>,
    current: &ReleaseRecord,
) -> (Vec<MetricRow>, Vec<ParamRow>) {
    let old = previous.map(record_metrics).unwrap_or_default();
    let new = record_metrics(current);
    let metrics = compare::metric_rows(
        &old,
        &new,
        &gate_directions(&current.gates),
        &current.gates,
        false,
    );
    let no_params = serde_json::Map::new();
    let params = compare::param_rows(
        previous.map_or(&no_params, |previous| &previous.params),
        &current.params,
        false,
    );
    (metrics, params)
}

fn record_metrics(record: &ReleaseRecord) -> Metrics {
    crate::metrics::from_record(&record.metrics)
}

/// Collects the direction in which each gated metric improves, from the `better` that the record
/// stores with each check. Records without it fall back to what the limits imply: higher for
/// `min` and `max_decrease`, lower for `max` and `max_increase`, and none where both kinds meet.
fn gate_directions(results: &[GateResult]) -> BTreeMap<String, Gate> {
    let mut directions: BTreeMap<String, Option<Better>> = BTreeMap::new();
    for result in results {
        let implied = result.better.or(match result.check.as_str() {
            "min" | "max_decrease" => Some(Better::Higher),
            "max" | "max_increase" => Some(Better::Lower),
            _ => None,
        });
        directions
            .entry(result.metric.clone())
            .and_modify(|known| {
                if *known != implied {
                    *known = None;
                }
            })
            .or_insert(implied);
    }
    directions
        .into_iter()
        .map(|(metric, better)| {
            let gate = Gate {
                better,
                ..Gate::default()
            };
            (metric, gate)
        })
        .collect()
}

fn mark(event: &Event, reason: Option<String>) -> Mark {
    let (time, date, by) = tagger_fields(event);
    Mark {
        tag: event.tag.clone(),
        time,
        date,
        by,
        reason,
    }
}

fn event_reason(event: &Event) -> Option<String> {
    record::parse_event(&event.tag, &event.message)
        .ok()
        .and_then(|details| details.reason)
}

/// Returns the tagger's time (RFC 3339), date (`YYYY-MM-DD`) and `Name <email>`, all in UTC.
pub fn tagger_fields(event: &Event) -> (Option<String>, Option<String>, Option<String>) {
    match &event.tagger {
        Some(tagger) => (
            Some(tagger.time.to_string()),
            Some(tagger.time.strftime("%Y-%m-%d").to_string()),
            Some(format!("{} <{}>", tagger.name, tagger.email)),
        ),
        None => (None, None, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gates::Status;

    fn result(metric: &str, check: &str) -> GateResult {
        GateResult {
            metric: metric.into(),
            check: check.into(),
            limit: "1".into(),
            bound: Some(1.0),
            previous: None,
            value: None,
            status: Status::Passed,
            reason: String::new(),
            better: None,
        }
    }

    #[test]
    fn recorded_direction_wins() {
        let mut loss = result("loss", "min");
        loss.better = Some(Better::Lower);
        let directions = gate_directions(&[loss]);
        assert_eq!(directions["loss"].better, Some(Better::Lower));
    }

    #[test]
    fn gate_directions_follow_checks() {
        let directions = gate_directions(&[
            result("r2", "min"),
            result("r2", "max_decrease"),
            result("rmse", "max_increase"),
            result("both", "min"),
            result("both", "max"),
        ]);
        assert_eq!(directions["r2"].better, Some(Better::Higher));
        assert_eq!(directions["rmse"].better, Some(Better::Lower));
        assert_eq!(directions["both"].better, None);
    }
}
