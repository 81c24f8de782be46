//! The run record, `mrel-run.json`: what a training run produced, written by `mrel train` or by
//! a job that trained elsewhere (a cluster), and checked by `mrel release --run` before it tags.
//!
//! Format `mrel.run/1`, a JSON object:
//!
//! | field | content |
//! | --- | --- |
//! | `format` | `"mrel.run/1"` |
//! | `model`, `version` | as in the release file |
//! | `commit` | the commit trained from, 40 hex digits |
//! | `params_digest` | [`params_digest`] of the params |
//! | `params` | optional: the params themselves, compared value by value when present |
//! | `metrics` | flattened metrics, as in the release record |
//! | `artifacts` | `path`, `size`, `sha256` of each artifact file, paths relative to the repository root |
//! | `command` | the training command, a string or a list |
//! | `host` | where it ran |
//! | `started` | RFC 3339 |
//! | `duration_seconds` | a number |
//! | `exit_status` | the training command's exit code; only 0 can be released |

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::digest::ArtifactDigest;

pub const RUN_FORMAT: &str = "mrel.run/1";

/// The file name of a run record next to the metrics file.
pub const FILE_NAME: &str = "mrel-run.json";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunRecord {
    pub format: String,
    pub model: String,
    pub version: String,
    pub commit: String,
    pub params_digest: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<serde_json::Map<String, serde_json::Value>>,
    pub metrics: serde_json::Map<String, serde_json::Value>,
    pub artifacts: Vec<ArtifactDigest>,
    pub command: serde_json::Value,
    pub host: Option<String>,
    pub started: String,
    pub duration_seconds: f64,
    pub exit_status: i32,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot read the run record {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the run record {} is invalid: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
    #[error("cannot write the run record {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// SHA-256 (lowercase hex) of the params as compact JSON with every object's keys sorted and
/// numbers as written in the release file, such as `{"epochs":200,"learning_rate":0.05}`.
pub fn params_digest(params: &serde_json::Map<String, serde_json::Value>) -> String {
    fn sorted(value: &serde_json::Value) -> serde_json::Value {
        match value {
            serde_json::Value::Object(map) => {
                let ordered: BTreeMap<&String, serde_json::Value> = map
                    .iter()
                    .map(|(key, value)| (key, sorted(value)))
                    .collect();
                serde_json::Value::Object(
                    ordered
                        .into_iter()
                        .map(|(key, value)| (key.clone(), value))
                        .collect(),
                )
            }
            serde_json::Value::Array(items) => {
                serde_json::Value::Array(items.iter().map(sorted).collect())
            }
            other => other.clone(),
        }
    }
    let canonical = sorted(&serde_json::Value::Object(params.clone()));
    let text = serde_json::to_string(&canonical).expect("params always serialize to JSON");
    crate::digest::hex(&Sha256::digest(text.as_bytes()))
}

/// Reads and checks the format of a run record.
pub fn read(path: &Path) -> Result<RunRecord, RunError> {
    let text = std::fs::read_to_string(path).map_err(|source| RunError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let invalid = |message: String| RunError::Invalid {
        path: path.to_path_buf(),
        message,
    };
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|error| invalid(error.to_string()))?;
    let format = value
        .get("format")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default();
    if format != RUN_FORMAT {
        return Err(invalid(format!(
            "its format is `{format}`, and this version of mrel reads `{RUN_FORMAT}`"
        )));
    }
    serde_json::from_value(value).map_err(|error| invalid(error.to_string()))
}

/// Writes a run record atomically: a reader never sees a half-written file, and an interrupted
/// write leaves none.
pub fn write(path: &Path, record: &RunRecord) -> Result<(), RunError> {
    let write_error = |source| RunError::Write {
        path: path.to_path_buf(),
        source,
    };
    let folder = path
        .parent()
        .filter(|folder| !folder.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(folder).map_err(write_error)?;
    let mut temporary = tempfile::NamedTempFile::new_in(folder).map_err(write_error)?;
    let json = serde_json::to_string_pretty(record).expect("a run record always serializes");
    std::io::Write::write_all(&mut temporary, format!("{json}\n").as_bytes())
        .map_err(write_error)?;
    temporary
        .persist(path)
        .map_err(|error| write_error(error.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_digest_ignores_key_order() {
        let a = serde_json::json!({"b": 1, "a": {"y": 2, "x": 0.05}});
        let b = serde_json::json!({"a": {"x": 0.05, "y": 2}, "b": 1});
        let digest = |value: &serde_json::Value| params_digest(value.as_object().expect("object"));
        assert_eq!(digest(&a), digest(&b));
    }

    #[test]
    fn params_digest_is_documented_form() {
        let params = serde_json::json!({"learning_rate": 0.05, "epochs": 200});
        let expected =
            crate::digest::hex(&Sha256::digest(br#"{"epochs":200,"learning_rate":0.05}"#));
        assert_eq!(params_digest(params.as_object().expect("object")), expected);
    }

    #[test]
    fn unknown_format_is_rejected() {
        let folder = tempfile::tempdir().expect("temp folder");
        let path = folder.path().join("run.json");
        std::fs::write(&path, r#"{"format": "mrel.run/9"}"#).expect("write");
        let error = read(&path).expect_err("future format");
        assert!(error.to_string().contains("mrel.run/9"), "{error}");
    }
}
