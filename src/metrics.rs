//! Metrics files (JSON, YAML or TOML), flattened to dotted names.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use crate::yaml::{self, Node, Position, Resolved, Value};

/// One metric value. Numbers keep the text they were written with, so that output in JSON
/// carries the exact value.
#[derive(Clone, Debug, PartialEq)]
pub enum MetricValue {
    Number { value: f64, text: String },
    Text(String),
    Bool(bool),
    Null,
}

impl MetricValue {
    pub fn number(value: f64) -> Self {
        MetricValue::Number {
            value,
            text: float_text(value),
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            MetricValue::Number { value, .. } => Some(*value),
            _ => None,
        }
    }

    /// Compares values as a reviewer reads them: NaN equals NaN, `1.0` equals `1`, and integers beyond the
    /// precision of a float compare digit by digit.
    pub fn same_as(&self, other: &MetricValue) -> bool {
        match (self, other) {
            (
                MetricValue::Number { value: a, text: x },
                MetricValue::Number { value: b, text: y },
            ) => match (integer_digits(x), integer_digits(y)) {
                (Some(x), Some(y)) => x == y,
                _ => a == b || (a.is_nan() && b.is_nan()),
            },
            _ => self == other,
        }
    }

    /// `other - self` where both are numbers. Integers are subtracted exactly where they fit in
    /// 128 bits, so that a change beyond a float's precision is not lost.
    pub fn change_to(&self, other: &MetricValue) -> Option<f64> {
        let (MetricValue::Number { value: a, text: x }, MetricValue::Number { value: b, text: y }) =
            (self, other)
        else {
            return None;
        };
        if let (Ok(x), Ok(y)) = (x.parse::<i128>(), y.parse::<i128>()) {
            return y.checked_sub(x).map(|change| change as f64);
        }
        Some(b - a)
    }

    /// Converts the value to JSON. JSON has no NaN or infinity, so those are the strings `NaN`,
    /// `Infinity` and `-Infinity`, which [`MetricValue::from_json`] reads back as numbers.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            MetricValue::Number { value, text } if value.is_finite() => {
                let number = text
                    .parse::<serde_json::Number>()
                    .ok()
                    .or_else(|| float_text(*value).parse().ok());
                number.map_or(serde_json::Value::Null, serde_json::Value::Number)
            }
            MetricValue::Number { value, .. } => serde_json::Value::String(float_text(*value)),
            MetricValue::Text(text) => serde_json::Value::String(text.clone()),
            MetricValue::Bool(value) => serde_json::Value::Bool(*value),
            MetricValue::Null => serde_json::Value::Null,
        }
    }

    /// Reads a value written by [`MetricValue::to_json`].
    pub fn from_json(value: &serde_json::Value) -> Self {
        match value {
            serde_json::Value::Number(number) => MetricValue::Number {
                value: number.as_f64().unwrap_or(f64::NAN),
                text: number.to_string(),
            },
            serde_json::Value::String(text) => match special_float(text) {
                Some(value) => MetricValue::number(value),
                None => MetricValue::Text(text.clone()),
            },
            serde_json::Value::Bool(value) => MetricValue::Bool(*value),
            _ => MetricValue::Null,
        }
    }
}

impl fmt::Display for MetricValue {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetricValue::Number { text, .. } => formatter.write_str(text),
            MetricValue::Text(text) => formatter.write_str(text),
            MetricValue::Bool(value) => write!(formatter, "{value}"),
            MetricValue::Null => formatter.write_str("null"),
        }
    }
}

/// Returns the digits of an integer written without a fraction or exponent, without a leading `+`.
fn integer_digits(text: &str) -> Option<&str> {
    let digits = text.strip_prefix('+').unwrap_or(text);
    let body = digits.strip_prefix('-').unwrap_or(digits);
    (!body.is_empty() && body.bytes().all(|byte| byte.is_ascii_digit())).then_some(digits)
}

/// Spells a float the way JSON and Python do.
pub fn float_text(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value == f64::INFINITY {
        "Infinity".into()
    } else if value == f64::NEG_INFINITY {
        "-Infinity".into()
    } else {
        format!("{value}")
    }
}

/// Reads the non-finite spellings of Python's json module and of YAML.
fn special_float(text: &str) -> Option<f64> {
    match text {
        "NaN" | "nan" | ".nan" | ".NaN" | ".NAN" => Some(f64::NAN),
        "Infinity" | "inf" | ".inf" | ".Inf" | ".INF" | "+.inf" => Some(f64::INFINITY),
        "-Infinity" | "-inf" | "-.inf" | "-.Inf" | "-.INF" => Some(f64::NEG_INFINITY),
        _ => None,
    }
}

/// Flattened metrics, sorted by name.
pub type Metrics = BTreeMap<String, MetricValue>;

/// Reads the flattened metrics that a release record or a run record stores as JSON.
pub fn from_record(stored: &serde_json::Map<String, serde_json::Value>) -> Metrics {
    stored
        .iter()
        .map(|(name, value)| (name.clone(), MetricValue::from_json(value)))
        .collect()
}

#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("cannot read metrics file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}:{position}: invalid metrics file: {message}")]
    Syntax {
        path: String,
        position: Position,
        message: String,
    },
    #[error("{path}: metrics file must hold a mapping at the top, found {found}")]
    NotMapping { path: String, found: String },
    #[error(
        "{path}: metric names collide: `{first}` and `{second}` both flatten to `{name}`; rename one of them"
    )]
    Collision {
        path: String,
        name: String,
        first: String,
        second: String,
    },
}

/// The format of a metrics file, from its extension; YAML for any other extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    Yaml,
    Toml,
}

impl Format {
    pub fn from_path(path: &str) -> Self {
        let extension = Path::new(path)
            .extension()
            .map(|extension| extension.to_string_lossy().to_ascii_lowercase());
        match extension.as_deref() {
            Some("json") => Format::Json,
            Some("toml") => Format::Toml,
            _ => Format::Yaml,
        }
    }
}

/// Reads and flattens the metrics file at `file`; `shown` is the path used in messages.
pub fn load(file: &Path, shown: &str) -> Result<Metrics, MetricsError> {
    let text = std::fs::read_to_string(file).map_err(|source| MetricsError::Read {
        path: shown.to_owned(),
        source,
    })?;
    parse(&text, shown, Format::from_path(shown))
}

/// Parses and flattens metrics text.
pub fn parse(text: &str, shown: &str, format: Format) -> Result<Metrics, MetricsError> {
    let mut flat = Flattener {
        path: shown,
        json: format == Format::Json,
        names: BTreeMap::new(),
        metrics: Metrics::new(),
    };
    match format {
        Format::Toml => {
            let table: toml::Table = text.parse().map_err(|error: toml::de::Error| {
                let offset = error.span().map_or(0, |span| span.start);
                MetricsError::Syntax {
                    path: shown.to_owned(),
                    position: position_of(text, offset),
                    message: error.message().to_owned(),
                }
            })?;
            for (key, value) in &table {
                flat.toml_value(key, key, value)?;
            }
        }
        Format::Json | Format::Yaml => {
            if format == Format::Json {
                check_json_syntax(text).map_err(|error| MetricsError::Syntax {
                    path: shown.to_owned(),
                    position: Position {
                        line: error.line(),
                        column: error.column(),
                    },
                    message: without_position(&error.to_string()),
                })?;
            }
            let root = yaml::parse(text).map_err(|error| MetricsError::Syntax {
                path: shown.to_owned(),
                position: error.position,
                message: error.message,
            })?;
            let Some(root) = root else {
                return Ok(Metrics::new());
            };
            let Value::Mapping(entries) = &root.value else {
                return Err(MetricsError::NotMapping {
                    path: shown.to_owned(),
                    found: root.kind_name().to_owned(),
                });
            };
            for entry in entries {
                flat.node(&entry.key, &entry.key, &entry.value)?;
            }
        }
    }
    Ok(flat.metrics)
}

/// Checks JSON syntax strictly, since YAML would also accept text that is not JSON. The
/// non-finite numbers of Python's json module are blanked to `0` and spaces first, which keeps
/// every position unchanged.
fn check_json_syntax(text: &str) -> Result<(), serde_json::Error> {
    let mut blanked = String::with_capacity(text.len());
    let mut in_string = false;
    let mut escaped = false;
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
        } else if c == '"' {
            in_string = true;
        } else if let Some(token) = ["-Infinity", "Infinity", "NaN"]
            .iter()
            .find(|token| rest.starts_with(**token))
        {
            blanked.push('0');
            blanked.push_str(&" ".repeat(token.len() - 1));
            rest = &rest[token.len()..];
            continue;
        }
        blanked.push(c);
        rest = &rest[c.len_utf8()..];
    }
    serde_json::from_str::<serde::de::IgnoredAny>(&blanked).map(|_| ())
}

/// serde_json ends its messages with the position, which the error shows already.
fn without_position(message: &str) -> String {
    message
        .rfind(" at line ")
        .map_or(message, |at| &message[..at])
        .to_owned()
}

fn position_of(text: &str, offset: usize) -> Position {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map_or(0, |tail| tail.chars().count())
        + 1;
    Position { line, column }
}

struct Flattener<'a> {
    path: &'a str,
    json: bool,
    /// For each flattened name, the key path it came from, to name both sides of a collision.
    names: BTreeMap<String, String>,
    metrics: Metrics,
}

impl Flattener<'_> {
    fn insert(&mut self, name: &str, origin: &str, value: MetricValue) -> Result<(), MetricsError> {
        if let Some(first) = self.names.get(name) {
            return Err(MetricsError::Collision {
                path: self.path.to_owned(),
                name: name.to_owned(),
                first: first.clone(),
                second: origin.to_owned(),
            });
        }
        self.names.insert(name.to_owned(), origin.to_owned());
        self.metrics.insert(name.to_owned(), value);
        Ok(())
    }

    fn node(&mut self, name: &str, origin: &str, node: &Node) -> Result<(), MetricsError> {
        match &node.value {
            Value::Mapping(entries) => {
                for entry in entries {
                    let child = format!("{name}.{}", entry.key);
                    let origin = format!("{origin} → {}", entry.key);
                    self.node(&child, &origin, &entry.value)?;
                }
                Ok(())
            }
            Value::Sequence(items) => {
                for (index, item) in items.iter().enumerate() {
                    let child = format!("{name}.{index}");
                    let origin = format!("{origin} → [{index}]");
                    self.node(&child, &origin, item)?;
                }
                Ok(())
            }
            Value::Scalar(scalar) => {
                let value = match scalar.resolve() {
                    Resolved::Null => MetricValue::Null,
                    Resolved::Bool(value) => MetricValue::Bool(value),
                    Resolved::Integer(text) => MetricValue::Number {
                        value: text.parse().unwrap_or(f64::NAN),
                        text: text.trim_start_matches('+').to_owned(),
                    },
                    Resolved::Float(value) if value.is_finite() => MetricValue::Number {
                        value,
                        text: json_number_text(&scalar.text, value),
                    },
                    Resolved::Float(value) => MetricValue::number(value),
                    Resolved::String(text) => match special_float(text) {
                        Some(value) if self.json && !scalar.quoted => MetricValue::number(value),
                        _ => MetricValue::Text(text.to_owned()),
                    },
                };
                self.insert(name, origin, value)
            }
        }
    }

    fn toml_value(
        &mut self,
        name: &str,
        origin: &str,
        value: &toml::Value,
    ) -> Result<(), MetricsError> {
        let metric = match value {
            toml::Value::Table(table) => {
                for (key, child) in table {
                    self.toml_value(
                        &format!("{name}.{key}"),
                        &format!("{origin} → {key}"),
                        child,
                    )?;
                }
                return Ok(());
            }
            toml::Value::Array(items) => {
                for (index, child) in items.iter().enumerate() {
                    self.toml_value(
                        &format!("{name}.{index}"),
                        &format!("{origin} → [{index}]"),
                        child,
                    )?;
                }
                return Ok(());
            }
            toml::Value::Integer(value) => MetricValue::Number {
                value: *value as f64,
                text: value.to_string(),
            },
            toml::Value::Float(value) => MetricValue::number(*value),
            toml::Value::Boolean(value) => MetricValue::Bool(*value),
            toml::Value::String(text) => MetricValue::Text(text.clone()),
            toml::Value::Datetime(datetime) => MetricValue::Text(datetime.to_string()),
        };
        self.insert(name, origin, metric)
    }
}

/// Returns the written text where it is already a valid JSON number, otherwise the shortest text that
/// reads back as the same float.
fn json_number_text(written: &str, value: f64) -> String {
    let trimmed = written.trim_start_matches('+');
    if trimmed.parse::<serde_json::Number>().is_ok() {
        trimmed.to_owned()
    } else {
        float_text(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(text: &str) -> Metrics {
        parse(text, "metrics.json", Format::Json).expect("valid metrics")
    }

    #[test]
    fn nested_keys_flatten() {
        let metrics = json(r#"{"test": {"r2": 0.5, "per_class": [{"f1": 1}]}}"#);
        let names: Vec<&str> = metrics.keys().map(String::as_str).collect();
        assert_eq!(names, ["test.per_class.0.f1", "test.r2"]);
    }

    #[test]
    fn python_nan_reads_as_number() {
        let metrics = json(r#"{"a": NaN, "b": -Infinity}"#);
        assert!(metrics["a"].as_f64().expect("number").is_nan());
        assert_eq!(metrics["b"].as_f64(), Some(f64::NEG_INFINITY));
    }

    #[test]
    fn big_integer_keeps_digits() {
        let metrics = json(r#"{"n": 123456789012345678901234567890}"#);
        assert_eq!(metrics["n"].to_string(), "123456789012345678901234567890");
    }

    #[test]
    fn collision_names_both_keys() {
        let error = parse("a.b: 1\na:\n  b: 2\n", "m.yaml", Format::Yaml).expect_err("collision");
        let message = error.to_string();
        assert!(message.contains("`a.b` and `a → b`"), "{message}");
    }

    #[test]
    fn syntax_error_has_line() {
        let error = parse("{\"a\": 1,\n \"b\": }\n", "m.json", Format::Json).expect_err("bad JSON");
        assert!(matches!(
            error,
            MetricsError::Syntax {
                position: Position { line: 2, .. },
                ..
            }
        ));
    }

    #[test]
    fn json_with_tabs_parses() {
        let metrics = json("{\n\t\"a\": 1,\n\t\"b\": {\n\t\t\"c\": 2\n\t}\n}\n");
        assert_eq!(metrics.len(), 2);
    }

    #[test]
    fn toml_flattens() {
        let metrics = parse("[test]\nr2 = 0.5\n", "m.toml", Format::Toml).expect("valid TOML");
        assert_eq!(metrics["test.r2"].as_f64(), Some(0.5));
    }

    #[test]
    fn json_round_trip_keeps_nan() {
        let value = MetricValue::number(f64::NAN);
        assert!(MetricValue::from_json(&value.to_json()).same_as(&value));
    }
}
