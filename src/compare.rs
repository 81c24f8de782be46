//! Comparing two sets of metrics and params: the rows of a diff, with change and verdict.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::gates::{GateResult, Status};
use crate::metrics::{MetricValue, Metrics};
use crate::release_file::{Better, Gate};

/// Movement of a metric, judged in the direction that its gate or `better` setting declares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Improved,
    Regressed,
    Unchanged,
    /// Changed, with no declared direction to judge it by.
    Changed,
    Added,
    Removed,
}

/// One metric in a diff.
#[derive(Clone, Debug, Serialize)]
pub struct MetricRow {
    pub name: String,
    #[serde(serialize_with = "serialize_value")]
    pub old: Option<MetricValue>,
    #[serde(serialize_with = "serialize_value")]
    pub new: Option<MetricValue>,
    /// `new - old` where both are numbers; JSON spells an infinite change as a string.
    #[serde(serialize_with = "serialize_float")]
    pub change: Option<f64>,
    /// `(new - old) / |old|` where both are numbers and old is not zero.
    #[serde(serialize_with = "serialize_float")]
    pub relative: Option<f64>,
    pub verdict: Verdict,
    /// The worst verdict among the gate's checks, where the metric has a gate.
    pub gate: Option<Status>,
}

fn serialize_value<S: serde::Serializer>(
    value: &Option<MetricValue>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    value
        .as_ref()
        .map(MetricValue::to_json)
        .serialize(serializer)
}

fn serialize_float<S: serde::Serializer>(
    value: &Option<f64>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    value
        .map(|value| MetricValue::number(value).to_json())
        .serialize(serializer)
}

/// One parameter in a diff, flattened like metrics.
#[derive(Clone, Debug, Serialize)]
pub struct ParamRow {
    pub name: String,
    pub old: Option<serde_json::Value>,
    pub new: Option<serde_json::Value>,
}

/// Builds the metric rows; unchanged rows only with `all`.
pub fn metric_rows(
    old: &Metrics,
    new: &Metrics,
    gates: &BTreeMap<String, Gate>,
    results: &[GateResult],
    all: bool,
) -> Vec<MetricRow> {
    let names: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    let mut rows = Vec::new();
    for name in names {
        let before = old.get(name);
        let after = new.get(name);
        let gate = gate_status(name, results);
        let change = match (before, after) {
            (Some(a), Some(b)) if !a.same_as(b) => a.change_to(b),
            _ => None,
        };
        let relative = change.and_then(|change| {
            let base = before.and_then(MetricValue::as_f64)?;
            (base != 0.0 && base.is_finite() && change.is_finite()).then(|| change / base.abs())
        });
        let direction = gates.get(name.as_str()).and_then(|gate| gate.better);
        let verdict = match (before, after) {
            (None, Some(_)) => Verdict::Added,
            (Some(_), None) => Verdict::Removed,
            (Some(a), Some(b)) if a.same_as(b) => Verdict::Unchanged,
            _ => match (change, direction) {
                (Some(change), Some(Better::Higher)) if !change.is_nan() => {
                    if change > 0.0 {
                        Verdict::Improved
                    } else {
                        Verdict::Regressed
                    }
                }
                (Some(change), Some(Better::Lower)) if !change.is_nan() => {
                    if change < 0.0 {
                        Verdict::Improved
                    } else {
                        Verdict::Regressed
                    }
                }
                _ => Verdict::Changed,
            },
        };
        if verdict == Verdict::Unchanged && !all && gate != Some(Status::Failed) {
            continue;
        }
        rows.push(MetricRow {
            name: name.clone(),
            old: before.cloned(),
            new: after.cloned(),
            change,
            relative,
            verdict,
            gate,
        });
    }
    rows
}

fn gate_status(metric: &str, results: &[GateResult]) -> Option<Status> {
    let statuses: Vec<Status> = results
        .iter()
        .filter(|result| result.metric == metric)
        .map(|result| result.status)
        .collect();
    if statuses.is_empty() {
        None
    } else if statuses.contains(&Status::Failed) {
        Some(Status::Failed)
    } else if statuses.contains(&Status::Passed) {
        Some(Status::Passed)
    } else {
        Some(Status::Skipped)
    }
}

/// Builds the rows of params that differ (all of them with `all`), nested keys flattened.
pub fn param_rows(
    old: &serde_json::Map<String, serde_json::Value>,
    new: &serde_json::Map<String, serde_json::Value>,
    all: bool,
) -> Vec<ParamRow> {
    let old = flatten_json(old);
    let new = flatten_json(new);
    let names: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    names
        .into_iter()
        .filter_map(|name| {
            let before = old.get(name).cloned();
            let after = new.get(name).cloned();
            (all || before != after).then(|| ParamRow {
                name: name.clone(),
                old: before,
                new: after,
            })
        })
        .collect()
}

/// Flattens a JSON object to dotted names; lists flatten with their index.
pub fn flatten_json(
    map: &serde_json::Map<String, serde_json::Value>,
) -> BTreeMap<String, serde_json::Value> {
    fn walk(
        prefix: &str,
        value: &serde_json::Value,
        out: &mut BTreeMap<String, serde_json::Value>,
    ) {
        match value {
            serde_json::Value::Object(map) if !map.is_empty() => {
                for (key, child) in map {
                    walk(&format!("{prefix}.{key}"), child, out);
                }
            }
            serde_json::Value::Array(items) if !items.is_empty() => {
                for (index, child) in items.iter().enumerate() {
                    walk(&format!("{prefix}.{index}"), child, out);
                }
            }
            _ => {
                out.insert(prefix.to_owned(), value.clone());
            }
        }
    }
    let mut out = BTreeMap::new();
    for (key, value) in map {
        walk(key, value, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(pairs: &[(&str, f64)]) -> Metrics {
        pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), MetricValue::number(*value)))
            .collect()
    }

    #[test]
    fn higher_is_better_improves() {
        let gates = BTreeMap::from([(
            "r2".to_owned(),
            Gate {
                better: Some(Better::Higher),
                ..Gate::default()
            },
        )]);
        let rows = metric_rows(
            &metrics(&[("r2", 0.4)]),
            &metrics(&[("r2", 0.5)]),
            &gates,
            &[],
            false,
        );
        assert_eq!(rows[0].verdict, Verdict::Improved);
        assert!((rows[0].relative.expect("relative") - 0.25).abs() < 1e-12);
    }

    #[test]
    fn unchanged_rows_hidden_unless_all() {
        let same = metrics(&[("a", 1.0)]);
        assert!(metric_rows(&same, &same, &BTreeMap::new(), &[], false).is_empty());
        assert_eq!(
            metric_rows(&same, &same, &BTreeMap::new(), &[], true).len(),
            1
        );
    }

    #[test]
    fn added_and_removed_metrics() {
        let rows = metric_rows(
            &metrics(&[("a", 1.0)]),
            &metrics(&[("b", 1.0)]),
            &BTreeMap::new(),
            &[],
            false,
        );
        assert_eq!(rows[0].verdict, Verdict::Removed);
        assert_eq!(rows[1].verdict, Verdict::Added);
    }

    #[test]
    fn nested_params_flatten() {
        let old = serde_json::json!({"opt": {"lr": 0.1, "beta": 0.9}});
        let new = serde_json::json!({"opt": {"lr": 0.2, "beta": 0.9}});
        let rows = param_rows(
            old.as_object().expect("object"),
            new.as_object().expect("object"),
            false,
        );
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].name, "opt.lr");
    }
}
