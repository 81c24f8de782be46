//! Quality gates: limits on metrics, absolute or relative to the previous release.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::metrics::{MetricValue, Metrics, float_text};
use crate::release_file::{Better, Change, Gate};

/// The verdict of one check of one gate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Passed,
    Failed,
    /// A relative check with no previous value to compare with.
    Skipped,
}

/// One check of a gate, such as `min` of `test.r2`, with the values it compared.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateResult {
    pub metric: String,
    /// `min`, `max`, `max_increase` or `max_decrease`.
    pub check: String,
    /// The limit as written in the release file, such as `0.4` or `5%`.
    pub limit: String,
    /// The bound the value was held to, after applying a relative limit.
    pub bound: Option<f64>,
    pub previous: Option<serde_json::Value>,
    pub value: Option<serde_json::Value>,
    pub status: Status,
    /// Reason for a failure or a skip, empty when the check passed.
    pub reason: String,
    /// Direction in which the metric improves, from the gate's `better` or implied by its
    /// limits, and absent where neither gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub better: Option<Better>,
}

#[derive(Debug, thiserror::Error)]
pub enum GateError {
    #[error(
        "gate `{metric}.{check}: {limit}` is relative to the previous value, which is 0; \
         a percentage of 0 allows no change at all, so write an absolute limit instead"
    )]
    ZeroBase {
        metric: String,
        check: String,
        limit: String,
    },
}

/// Applies every gate to `current`, comparing with `previous` where a limit is relative.
pub fn evaluate(
    gates: &BTreeMap<String, Gate>,
    current: &Metrics,
    previous: Option<&Metrics>,
) -> Result<Vec<GateResult>, GateError> {
    let mut results = Vec::new();
    for (metric, gate) in gates {
        let value = current.get(metric);
        let old = previous.and_then(|previous| previous.get(metric));
        let mut check =
            |name: &str, limit: String, bound: Option<f64>, passes: fn(f64, f64) -> bool| {
                let mut result = judge(metric, name, limit, bound, old, value, passes);
                result.better = gate.better;
                results.push(result);
            };
        if let Some(min) = gate.min {
            check("min", float_text(min), Some(min), |value, bound| {
                value >= bound
            });
        }
        if let Some(max) = gate.max {
            check("max", float_text(max), Some(max), |value, bound| {
                value <= bound
            });
        }
        if let Some(change) = gate.max_increase {
            let bound = relative_bound(metric, "max_increase", change, old, 1.0)?;
            check("max_increase", change.to_string(), bound, |value, bound| {
                value <= bound
            });
        }
        if let Some(change) = gate.max_decrease {
            let bound = relative_bound(metric, "max_decrease", change, old, -1.0)?;
            check("max_decrease", change.to_string(), bound, |value, bound| {
                value >= bound
            });
        }
    }
    Ok(results)
}

/// Computes the bound of a relative check: the previous value moved by the limit in `direction`.
/// `None` when there is no usable previous value.
fn relative_bound(
    metric: &str,
    check: &str,
    change: Change,
    previous: Option<&MetricValue>,
    direction: f64,
) -> Result<Option<f64>, GateError> {
    let Some(previous) = previous
        .and_then(MetricValue::as_f64)
        .filter(|value| value.is_finite())
    else {
        return Ok(None);
    };
    let amount = match change {
        Change::Absolute(amount) => amount,
        Change::Percent(percent) => {
            if previous == 0.0 {
                return Err(GateError::ZeroBase {
                    metric: metric.to_owned(),
                    check: check.to_owned(),
                    limit: change.to_string(),
                });
            }
            previous.abs() * percent / 100.0
        }
    };
    Ok(Some(previous + direction * amount))
}

fn judge(
    metric: &str,
    check: &str,
    limit: String,
    bound: Option<f64>,
    previous: Option<&MetricValue>,
    value: Option<&MetricValue>,
    passes: fn(f64, f64) -> bool,
) -> GateResult {
    let relative = check.starts_with("max_");
    let (status, reason) = match (value, bound) {
        (None, _) => (
            Status::Failed,
            "the metric is missing from the metrics file".to_owned(),
        ),
        (Some(MetricValue::Number { value, .. }), _) if value.is_nan() => {
            (Status::Failed, "the value is NaN".to_owned())
        }
        (Some(MetricValue::Number { .. }), None) if relative => {
            let reason = match previous {
                None => "no previous value to compare with",
                Some(_) => "the previous value is not a finite number",
            };
            (Status::Skipped, reason.to_owned())
        }
        (Some(MetricValue::Number { value, .. }), Some(bound)) => {
            if passes(*value, bound) || within_rounding(*value, bound) {
                (Status::Passed, String::new())
            } else {
                let reason = match check {
                    "min" => format!(
                        "{} is below the minimum {}",
                        float_text(*value),
                        float_text(bound)
                    ),
                    "max" => format!(
                        "{} is above the maximum {}",
                        float_text(*value),
                        float_text(bound)
                    ),
                    "max_increase" => format!(
                        "{} rose above {} (previous {} plus {limit})",
                        float_text(*value),
                        float_text(bound),
                        previous.map_or_else(String::new, ToString::to_string)
                    ),
                    _ => format!(
                        "{} fell below {} (previous {} minus {limit})",
                        float_text(*value),
                        float_text(bound),
                        previous.map_or_else(String::new, ToString::to_string)
                    ),
                };
                (Status::Failed, reason)
            }
        }
        (Some(other), _) => (
            Status::Failed,
            format!("the value `{other}` is not a number"),
        ),
    };
    GateResult {
        metric: metric.to_owned(),
        check: check.to_owned(),
        limit,
        bound,
        previous: previous.map(MetricValue::to_json),
        value: value.map(MetricValue::to_json),
        status,
        reason,
        better: None,
    }
}

/// Returns whether `value` equals `bound` up to the rounding of float arithmetic, so that a relative
/// limit such as 10% of 0.2 is not missed by the last bit (0.22 against 0.22000000000000003).
fn within_rounding(value: f64, bound: f64) -> bool {
    let scale = value.abs().max(bound.abs()).max(f64::MIN_POSITIVE);
    (value - bound).abs() <= scale * 1e-12
}

/// Returns whether any check failed.
pub fn any_failed(results: &[GateResult]) -> bool {
    results.iter().any(|result| result.status == Status::Failed)
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

    fn gates(metric: &str, gate: Gate) -> BTreeMap<String, Gate> {
        BTreeMap::from([(metric.to_owned(), gate)])
    }

    #[test]
    fn min_fails_below() {
        let gate = Gate {
            min: Some(0.5),
            ..Gate::default()
        };
        let results = evaluate(&gates("r2", gate), &metrics(&[("r2", 0.4)]), None).expect("gates");
        assert_eq!(results[0].status, Status::Failed);
        assert!(
            results[0].reason.contains("below the minimum 0.5"),
            "{}",
            results[0].reason
        );
    }

    #[test]
    fn percent_increase_uses_previous() {
        let gate = Gate {
            max_increase: Some(Change::Percent(10.0)),
            ..Gate::default()
        };
        let previous = metrics(&[("rmse", 50.0)]);
        let passing = evaluate(
            &gates("rmse", gate.clone()),
            &metrics(&[("rmse", 54.0)]),
            Some(&previous),
        );
        assert_eq!(passing.expect("gates")[0].status, Status::Passed);
        let failing = evaluate(
            &gates("rmse", gate),
            &metrics(&[("rmse", 56.0)]),
            Some(&previous),
        );
        assert_eq!(failing.expect("gates")[0].bound, Some(55.0));
    }

    #[test]
    fn relative_without_previous_is_skipped() {
        let gate = Gate {
            max_decrease: Some(Change::Absolute(0.1)),
            ..Gate::default()
        };
        let results = evaluate(&gates("r2", gate), &metrics(&[("r2", 0.4)]), None).expect("gates");
        assert_eq!(results[0].status, Status::Skipped);
    }

    #[test]
    fn bound_on_limit_passes_despite_rounding() {
        let gate = Gate {
            max_increase: Some(Change::Percent(10.0)),
            ..Gate::default()
        };
        let previous = metrics(&[("loss", 0.2)]);
        let results = evaluate(
            &gates("loss", gate),
            &metrics(&[("loss", 0.22)]),
            Some(&previous),
        )
        .expect("gates");
        assert_eq!(results[0].status, Status::Passed, "{}", results[0].reason);
    }

    #[test]
    fn missing_metric_fails() {
        let gate = Gate {
            max: Some(1.0),
            ..Gate::default()
        };
        let results = evaluate(&gates("loss", gate), &Metrics::new(), None).expect("gates");
        assert_eq!(results[0].status, Status::Failed);
        assert!(results[0].reason.contains("missing"));
    }

    #[test]
    fn nan_fails() {
        let gate = Gate {
            max: Some(1.0),
            ..Gate::default()
        };
        let results =
            evaluate(&gates("loss", gate), &metrics(&[("loss", f64::NAN)]), None).expect("gates");
        assert_eq!(results[0].reason, "the value is NaN");
    }

    #[test]
    fn percent_of_zero_is_config_error() {
        let gate = Gate {
            max_increase: Some(Change::Percent(5.0)),
            ..Gate::default()
        };
        let previous = metrics(&[("errors", 0.0)]);
        let result = evaluate(
            &gates("errors", gate),
            &metrics(&[("errors", 1.0)]),
            Some(&previous),
        );
        assert!(matches!(result, Err(GateError::ZeroBase { .. })));
    }
}
