//! The machine-readable release record at the end of a release tag's message.
//!
//! The message is the rendered notes, a blank line, then a fenced block:
//!
//! ````text
//! ```json mrel-record
//! { "format": "mrel.release/1", ... }
//! ```
//! ````
//!
//! The block sits inside the signed tag object, so the signature covers it. `format` names the
//! record's version; readers reject a major version they do not know.

use serde::{Deserialize, Serialize};

use crate::digest::ArtifactDigest;
use crate::gates::GateResult;

/// The record format this version of mrel writes.
pub const RELEASE_FORMAT: &str = "mrel.release/1";

const FENCE_OPEN: &str = "```json mrel-record";
const FENCE_CLOSE: &str = "```";

/// Release record: enough to compare the next release with it and to verify it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseRecord {
    pub format: String,
    pub model: String,
    pub version: String,
    /// The commit the tag points at, as hex.
    pub commit: String,
    pub previous_version: Option<String>,
    /// Path of the release file relative to the repository root.
    pub release_file: String,
    pub params: serde_json::Map<String, serde_json::Value>,
    /// Flattened metrics; NaN and infinities are the strings `NaN`, `Infinity`, `-Infinity`.
    pub metrics: serde_json::Map<String, serde_json::Value>,
    pub gates: Vec<GateResult>,
    pub artifacts: Vec<ArtifactDigest>,
    pub training: Training,
}

/// Training command, folder, start and duration of a release.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Training {
    pub command: serde_json::Value,
    pub workdir: String,
    /// Start time, RFC 3339 in UTC.
    pub started: String,
    pub duration_seconds: f64,
    pub host: Option<String>,
    /// Set when the release came from a run record made elsewhere (`mrel release --run`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<crate::notes::RunOrigin>,
}

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("tag {tag} carries no mrel record; it was not written by `mrel release`")]
    Missing { tag: String },
    #[error("the record in tag {tag} is invalid: {message}")]
    Invalid { tag: String, message: String },
    #[error(
        "the record in tag {tag} has format `{format}`, which this version of mrel cannot read; upgrade mrel"
    )]
    UnknownFormat { tag: String, format: String },
}

/// Joins rendered notes (or a summary line) and a record into a tag message.
pub fn compose_message(notes: &str, record: &impl Serialize) -> String {
    let json = serde_json::to_string_pretty(record).expect("a record always serializes to JSON");
    format!(
        "{}\n\n{FENCE_OPEN}\n{json}\n{FENCE_CLOSE}\n",
        notes.trim_end()
    )
}

/// Splits a tag message into the notes and the record's JSON text, if it has one.
pub fn split_message(message: &str) -> (&str, Option<&str>) {
    let Some(open) = message.rfind(&format!("\n{FENCE_OPEN}\n")) else {
        return (message, None);
    };
    let body = &message[open + FENCE_OPEN.len() + 2..];
    let Some(close) = body.rfind(&format!("\n{FENCE_CLOSE}")) else {
        return (message, None);
    };
    (message[..open].trim_end(), Some(&body[..close]))
}

/// Reads the release record from the message of `tag`.
pub fn parse_release(tag: &str, message: &str) -> Result<ReleaseRecord, RecordError> {
    parse(tag, message, RELEASE_FORMAT)
}

/// Reads the record of a stage or lifecycle event from the message of `tag`.
pub fn parse_event(tag: &str, message: &str) -> Result<EventRecord, RecordError> {
    parse(tag, message, EVENT_FORMAT)
}

fn parse<T: serde::de::DeserializeOwned>(
    tag: &str,
    message: &str,
    expected: &str,
) -> Result<T, RecordError> {
    let (_, json) = split_message(message);
    let json = json.ok_or_else(|| RecordError::Missing {
        tag: tag.to_owned(),
    })?;
    let value: serde_json::Value =
        serde_json::from_str(json).map_err(|error| RecordError::Invalid {
            tag: tag.to_owned(),
            message: error.to_string(),
        })?;
    let format = value
        .get("format")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if format != expected {
        return Err(RecordError::UnknownFormat {
            tag: tag.to_owned(),
            format,
        });
    }
    serde_json::from_value(value).map_err(|error| RecordError::Invalid {
        tag: tag.to_owned(),
        message: error.to_string(),
    })
}

/// The record format of stage assignments, rollbacks, deregistrations and deprecations.
pub const EVENT_FORMAT: &str = "mrel.event/1";

/// Record of a stage or lifecycle tag, beyond what its name encodes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventRecord {
    pub format: String,
    pub model: String,
    /// `promote`, `rollback`, `deregister` or `deprecate`.
    pub event: String,
    pub version: Option<String>,
    pub stage: Option<String>,
    /// The version that held the stage before this event.
    pub replaces: Option<String>,
    /// Whether `--force` skipped the promotion path and the soak time.
    pub forced: bool,
    pub reason: Option<String>,
    /// The stage gates' verdicts, for a promotion.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gates: Vec<GateResult>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> ReleaseRecord {
        ReleaseRecord {
            format: RELEASE_FORMAT.into(),
            model: "m".into(),
            version: "1.0.0".into(),
            commit: "0".repeat(40),
            previous_version: None,
            release_file: "release.yaml".into(),
            params: serde_json::Map::new(),
            metrics: serde_json::Map::new(),
            gates: Vec::new(),
            artifacts: Vec::new(),
            training: Training {
                command: serde_json::json!("true"),
                workdir: String::new(),
                started: "2026-01-01T00:00:00Z".into(),
                duration_seconds: 1.5,
                host: None,
                run: None,
            },
        }
    }

    #[test]
    fn message_round_trips() {
        let message = compose_message("# Notes\n\nText with ``` inside\n", &record());
        let (notes, _) = split_message(&message);
        assert_eq!(notes, "# Notes\n\nText with ``` inside");
        assert_eq!(
            parse_release("m@v1.0.0", &message).expect("record"),
            record()
        );
    }

    #[test]
    fn message_without_record_is_missing() {
        let error = parse_release("t", "just notes").expect_err("no record");
        assert!(matches!(error, RecordError::Missing { .. }));
    }

    #[test]
    fn unknown_format_is_rejected() {
        let message = compose_message("n", &record()).replace(RELEASE_FORMAT, "mrel.release/9");
        let error = parse_release("t", &message).expect_err("future format");
        assert!(matches!(error, RecordError::UnknownFormat { .. }));
    }
}
