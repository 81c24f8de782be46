//! Hugging Face model cards: the context of `card.md.j2`, built from a release record and the
//! `card:` section of a release file, with YAML front matter whose `model-index` follows the
//! Hub's metadata rules.
//!
//! The Hub reads `model-index` as a list of models, each with a `name` and `results`. A result has
//! `task` (`type` required, `name` optional), `dataset` (`type` and `name` required, `split`
//! optional) and `metrics`, a list of `type`, `value` and `name`.

use std::time::Duration;

use serde::Serialize;
use yaml_rust2::{Yaml, YamlEmitter, yaml};

use crate::changelog::tagger_fields;
use crate::compare::flatten_json;
use crate::digest::ArtifactDigest;
use crate::record::ReleaseRecord;
use crate::registry::Event;
use crate::release_file::{Card, ReleaseFile};
use crate::signature::Status;
use crate::training::humanize;

#[derive(Debug, thiserror::Error)]
pub enum CardError {
    #[error(
        "{file} has no `card` section; add one with `license`, `task` and `dataset` \
         (see the README's release file example)"
    )]
    MissingCard { file: String },
    #[error("{file}: `card.{field}` is missing; the Hub's model card metadata needs it")]
    MissingField { file: String, field: &'static str },
    #[error(
        "{file}: invalid `card.license` `{license}`; the Hub expects a license identifier in \
         lowercase, such as `mit`, `apache-2.0` or `other`"
    )]
    InvalidLicense { file: String, license: String },
    #[error(
        "{tag} records no numeric metric{}, so the card's model-index would have no result",
        split.as_ref().map(|split| format!(" for the `{split}` split")).unwrap_or_default()
    )]
    NoMetrics { tag: String, split: Option<String> },
}

/// The template context of `card.md.j2`.
#[derive(Clone, Debug, Serialize)]
pub struct CardContext {
    pub model: String,
    pub version: String,
    pub tag: String,
    pub commit: String,
    pub time: Option<String>,
    pub date: Option<String>,
    pub released_by: Option<String>,
    /// The verdict on the tag's signature: `good`, `bad`, `unknown_key`, `untrusted`,
    /// `unsigned` or `error`.
    pub signature: Status,
    pub previous_version: Option<String>,
    pub description: Option<String>,
    /// The author's words from the release file's `notes`.
    pub notes: Option<String>,
    pub license: String,
    pub tags: Vec<String>,
    pub task: Task,
    pub dataset: Dataset,
    /// Every metric of the record in its order, strings and booleans too.
    pub metrics: Vec<NamedValue>,
    /// The `model-index` list of the front matter, as data.
    pub model_index: Vec<ModelIndex>,
    /// Params flattened to dotted names.
    pub params: Vec<NamedValue>,
    pub artifacts: Vec<ArtifactDigest>,
    pub training: TrainingSummary,
    /// The YAML front matter without its `---` lines, ending with a newline.
    pub front_matter: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Task {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Dataset {
    #[serde(rename = "type")]
    pub kind: String,
    /// The `name` of the card section, or its `type` where it has none.
    pub name: String,
    pub split: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct NamedValue {
    pub name: String,
    pub value: serde_json::Value,
}

/// One entry of `model-index`.
#[derive(Clone, Debug, Serialize)]
pub struct ModelIndex {
    pub name: String,
    pub results: Vec<IndexResult>,
}

#[derive(Clone, Debug, Serialize)]
pub struct IndexResult {
    pub task: Task,
    pub dataset: Dataset,
    pub metrics: Vec<IndexMetric>,
}

/// A metric of `model-index`: `type` is the last part of the dotted name (`r2` of `test.r2`),
/// `name` the whole name.
#[derive(Clone, Debug, Serialize)]
pub struct IndexMetric {
    #[serde(rename = "type")]
    pub kind: String,
    pub value: serde_json::Number,
    pub name: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct TrainingSummary {
    pub command: String,
    /// Human-readable duration such as `3m 05s`.
    pub duration: String,
    /// RFC 3339 start time.
    pub started: String,
}

/// Builds the card of the release `event` with `record` and the verdict on its signature, taking
/// the `card:` section from `release` (the release file it was read from).
pub fn build(
    event: &Event,
    record: &ReleaseRecord,
    signature: Status,
    release: &ReleaseFile,
) -> Result<CardContext, CardError> {
    let file = release.path.clone();
    let card = release
        .card
        .as_ref()
        .ok_or_else(|| CardError::MissingCard { file: file.clone() })?;
    let (license, task, dataset) = required_fields(&file, card)?;
    let index_metrics = index_metrics(record, dataset.split.as_deref());
    if index_metrics.is_empty() {
        return Err(CardError::NoMetrics {
            tag: event.tag.clone(),
            split: dataset.split.clone(),
        });
    }
    let model_index = vec![ModelIndex {
        name: record.model.clone(),
        results: vec![IndexResult {
            task: task.clone(),
            dataset: dataset.clone(),
            metrics: index_metrics,
        }],
    }];
    let front_matter = front_matter(&license, &card.tags, &model_index);

    let (time, date, released_by) = tagger_fields(event);
    let command = match &record.training.command {
        serde_json::Value::String(text) => text.clone(),
        serde_json::Value::Array(arguments) => arguments
            .iter()
            .map(|argument| {
                argument
                    .as_str()
                    .map_or_else(|| argument.to_string(), str::to_owned)
            })
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    };
    let duration = Duration::try_from_secs_f64(record.training.duration_seconds)
        .map_or_else(|_| "unknown".to_owned(), humanize);
    Ok(CardContext {
        model: record.model.clone(),
        version: record.version.clone(),
        tag: event.tag.clone(),
        commit: record.commit.clone(),
        time,
        date,
        released_by,
        signature,
        previous_version: record.previous_version.clone(),
        description: release.description.clone(),
        notes: release.notes.clone(),
        license,
        tags: card.tags.clone(),
        task,
        dataset,
        metrics: record
            .metrics
            .iter()
            .map(|(name, value)| NamedValue {
                name: name.clone(),
                value: value.clone(),
            })
            .collect(),
        model_index,
        params: flatten_json(&record.params)
            .into_iter()
            .map(|(name, value)| NamedValue { name, value })
            .collect(),
        artifacts: record.artifacts.clone(),
        training: TrainingSummary {
            command,
            duration,
            started: record.training.started.clone(),
        },
        front_matter,
    })
}

/// Checks the fields that the Hub requires: a license identifier, a task and a dataset.
fn required_fields(file: &str, card: &Card) -> Result<(String, Task, Dataset), CardError> {
    let missing = |field| CardError::MissingField {
        file: file.to_owned(),
        field,
    };
    let license = card.license.clone().ok_or_else(|| missing("license"))?;
    if !crate::release_file::is_license_identifier(&license) {
        return Err(CardError::InvalidLicense {
            file: file.to_owned(),
            license,
        });
    }
    let task = card.task.as_ref().ok_or_else(|| missing("task"))?;
    if task.kind.trim().is_empty() {
        return Err(missing("task.type"));
    }
    let dataset = card.dataset.as_ref().ok_or_else(|| missing("dataset"))?;
    if dataset.kind.trim().is_empty() {
        return Err(missing("dataset.type"));
    }
    Ok((
        license,
        Task {
            kind: task.kind.clone(),
            name: task.name.clone(),
        },
        Dataset {
            kind: dataset.kind.clone(),
            name: dataset.name.clone().unwrap_or_else(|| dataset.kind.clone()),
            split: dataset.split.clone(),
        },
    ))
}

/// Selects the record's finite numeric metrics. Where the dataset names a split and some metric
/// names start with `SPLIT.`, it selects only those, because the card reports that split.
fn index_metrics(record: &ReleaseRecord, split: Option<&str>) -> Vec<IndexMetric> {
    let numeric: Vec<IndexMetric> = record
        .metrics
        .iter()
        .filter_map(|(name, value)| {
            let number = value.as_number()?;
            number.as_f64().filter(|value| value.is_finite())?;
            Some(IndexMetric {
                kind: metric_type(name),
                value: number.clone(),
                name: name.clone(),
            })
        })
        .collect();
    let Some(prefix) = split.map(|split| format!("{split}.")) else {
        return numeric;
    };
    if numeric
        .iter()
        .any(|metric| metric.name.starts_with(&prefix))
    {
        numeric
            .into_iter()
            .filter(|metric| metric.name.starts_with(&prefix))
            .collect()
    } else {
        numeric
    }
}

/// Returns the last part of a dotted metric name that is not a list index: `r2` of `test.r2`.
fn metric_type(name: &str) -> String {
    name.rsplit('.')
        .find(|part| !part.is_empty() && !part.bytes().all(|byte| byte.is_ascii_digit()))
        .unwrap_or(name)
        .to_owned()
}

/// Writes the front matter with a YAML emitter, which quotes every string that needs it.
fn front_matter(license: &str, tags: &[String], model_index: &[ModelIndex]) -> String {
    let text = |value: &str| Yaml::String(value.to_owned());
    let mut root = yaml::Hash::new();
    root.insert(text("license"), text(license));
    root.insert(
        text("tags"),
        Yaml::Array(tags.iter().map(|tag| text(tag)).collect()),
    );
    let models = model_index
        .iter()
        .map(|model| {
            let results = model.results.iter().map(index_result).collect();
            let mut entry = yaml::Hash::new();
            entry.insert(text("name"), text(&model.name));
            entry.insert(text("results"), Yaml::Array(results));
            Yaml::Hash(entry)
        })
        .collect();
    root.insert(text("model-index"), Yaml::Array(models));

    let mut out = String::new();
    YamlEmitter::new(&mut out)
        .dump(&Yaml::Hash(root))
        .expect("emitting YAML into a String cannot fail");
    let mut body = out
        .strip_prefix("---\n")
        .unwrap_or(&out)
        .trim_end()
        .to_owned();
    body.push('\n');
    body
}

fn index_result(result: &IndexResult) -> Yaml {
    let text = |value: &str| Yaml::String(value.to_owned());
    let mut task = yaml::Hash::new();
    task.insert(text("type"), text(&result.task.kind));
    if let Some(name) = &result.task.name {
        task.insert(text("name"), text(name));
    }
    let mut dataset = yaml::Hash::new();
    dataset.insert(text("type"), text(&result.dataset.kind));
    dataset.insert(text("name"), text(&result.dataset.name));
    if let Some(split) = &result.dataset.split {
        dataset.insert(text("split"), text(split));
    }
    let metrics = result
        .metrics
        .iter()
        .map(|metric| {
            let mut entry = yaml::Hash::new();
            entry.insert(text("type"), text(&metric.kind));
            entry.insert(text("value"), yaml_number(&metric.value));
            entry.insert(text("name"), text(&metric.name));
            Yaml::Hash(entry)
        })
        .collect();
    let mut entry = yaml::Hash::new();
    entry.insert(text("task"), Yaml::Hash(task));
    entry.insert(text("dataset"), Yaml::Hash(dataset));
    entry.insert(text("metrics"), Yaml::Array(metrics));
    Yaml::Hash(entry)
}

/// Converts a JSON number to a YAML number, keeping the digits it was recorded with.
fn yaml_number(number: &serde_json::Number) -> Yaml {
    match number.as_i64() {
        Some(integer) => Yaml::Integer(integer),
        None => Yaml::Real(number.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_type_skips_list_indexes() {
        assert_eq!(metric_type("test.r2"), "r2");
        assert_eq!(metric_type("per_class.0.f1"), "f1");
        assert_eq!(metric_type("scores.0"), "scores");
        assert_eq!(metric_type("accuracy"), "accuracy");
    }

    #[test]
    fn front_matter_quotes_strings_that_look_like_numbers() {
        let model_index = vec![ModelIndex {
            name: "demo".into(),
            results: vec![IndexResult {
                task: Task {
                    kind: "tabular-regression".into(),
                    name: Some("Yes: a task # with marks".into()),
                },
                dataset: Dataset {
                    kind: "diabetes".into(),
                    name: "1.5".into(),
                    split: None,
                },
                metrics: vec![IndexMetric {
                    kind: "r2".into(),
                    value: serde_json::Number::from_f64(0.5).expect("finite"),
                    name: "test.r2".into(),
                }],
            }],
        }];
        let text = front_matter("mit", &["no".into()], &model_index);
        let parsed = yaml_rust2::YamlLoader::load_from_str(&text).expect("valid YAML");
        let root = &parsed[0];
        assert_eq!(root["tags"][0].as_str(), Some("no"));
        let result = &root["model-index"][0]["results"][0];
        assert_eq!(result["dataset"]["name"].as_str(), Some("1.5"));
        assert_eq!(
            result["task"]["name"].as_str(),
            Some("Yes: a task # with marks")
        );
        assert_eq!(result["metrics"][0]["value"].as_f64(), Some(0.5));
    }
}
