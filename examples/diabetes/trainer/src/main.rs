//! Trains a linear regression model on the diabetes data set by full-batch
//! gradient descent and writes its metrics and weights as JSON.
//!
//! Run it from the folder that contains `data/diabetes.csv`:
//!
//! ```text
//! cargo run --quiet --release --manifest-path trainer/Cargo.toml
//! ```
//!
//! Inputs:
//! - `data/diabetes.csv`: header `age,sex,bmi,bp,s1,s2,s3,s4,s5,s6,target`,
//!   then one row per patient.
//! - `MREL_PARAMS_FILE` (optional): path of a flat JSON object with the keys
//!   `learning_rate`, `epochs` and `l2`. Missing keys take their defaults
//!   (0.05, 2000 and 0.0), and unknown keys are ignored.
//!
//! Outputs, each written to a temporary file in `out/` and then renamed:
//! - `out/metrics.json`: R², RMSE and MAE on the train and test rows.
//! - `out/model.json`: feature names, standardization means and standard
//!   deviations, weights, bias and the parameters used.
//!
//! Rows whose zero-based index is divisible by 5 form the test set, and the
//! other rows form the training set. The loss is the mean squared error plus
//! `l2 * ||w||²`, where the bias is not penalized.
//!
//! Exit status: 0 on success, 2 when the parameters are invalid or cannot be
//! read, 1 on any other error.

use std::collections::BTreeMap;
use std::env;
use std::fmt::Write as _;
use std::fs;
use std::io::{self, Write as _};
use std::path::Path;
use std::process::ExitCode;

const DATA_PATH: &str = "data/diabetes.csv";
const OUT_DIR: &str = "out";
const PARAMS_ENV: &str = "MREL_PARAMS_FILE";

const FEATURE_COUNT: usize = 10;
const FEATURE_NAMES: [&str; FEATURE_COUNT] = [
    "age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6",
];
const TARGET_NAME: &str = "target";

/// Every row whose zero-based index is a multiple of this value is a test row.
const TEST_EVERY: usize = 5;

/// Number of progress lines printed over a full run.
const PROGRESS_LINES: u32 = 10;

type Features = [f64; FEATURE_COUNT];

/// Error that ends the program, with the exit status it maps to.
#[derive(Debug)]
enum Failure {
    /// Invalid or unreadable parameters (exit status 2).
    Params(String),
    /// Any other error (exit status 1).
    Run(String),
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Params(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
        Err(Failure::Run(message)) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Failure> {
    let params = load_params().map_err(Failure::Params)?;

    let data = fs::read_to_string(DATA_PATH).map_err(|err| {
        Failure::Run(format!(
            "failed to read {DATA_PATH}: {err}. Run the trainer from the example folder that contains data/."
        ))
    })?;
    let dataset =
        parse_dataset(&data).map_err(|err| Failure::Run(format!("{DATA_PATH}: {err}")))?;
    let split = Split::from_dataset(&dataset).map_err(Failure::Run)?;

    let scaler = Standardizer::fit(&split.train_features).map_err(Failure::Run)?;
    let train_x = scaler.transform_all(&split.train_features);
    let test_x = scaler.transform_all(&split.test_features);

    println!(
        "training on {} rows, testing on {} rows: learning_rate={} epochs={} l2={}",
        train_x.len(),
        test_x.len(),
        params.learning_rate,
        params.epochs,
        params.l2
    );
    flush_stdout();

    let model = train(&train_x, &split.train_targets, &params, |epoch, rmse| {
        println!("epoch {epoch}/{} train_rmse={rmse:.3}", params.epochs);
        flush_stdout();
    })
    .map_err(Failure::Run)?;

    let train_pred = model.predict_all(&train_x);
    let test_pred = model.predict_all(&test_x);
    let metrics = Metrics {
        train_r2: r2(&split.train_targets, &train_pred).ok_or_else(|| {
            Failure::Run("R² is undefined because the training targets are constant".into())
        })?,
        train_rmse: rmse(&split.train_targets, &train_pred),
        test_r2: r2(&split.test_targets, &test_pred).ok_or_else(|| {
            Failure::Run("R² is undefined because the test targets are constant".into())
        })?,
        test_rmse: rmse(&split.test_targets, &test_pred),
        test_mae: mae(&split.test_targets, &test_pred),
        train_rows: train_x.len(),
        test_rows: test_x.len(),
    };

    let out_dir = Path::new(OUT_DIR);
    fs::create_dir_all(out_dir)
        .map_err(|err| Failure::Run(format!("failed to create {OUT_DIR}/: {err}")))?;
    let metrics_json = metrics.to_json().map_err(Failure::Run)?;
    write_atomically(out_dir, "metrics.json", &metrics_json).map_err(Failure::Run)?;
    let model_json = model_to_json(&model, &scaler, &params).map_err(Failure::Run)?;
    write_atomically(out_dir, "model.json", &model_json).map_err(Failure::Run)?;

    println!(
        "done: train_rmse={:.3} train_r2={:.4} test_rmse={:.3} test_r2={:.4} test_mae={:.3}",
        metrics.train_rmse, metrics.train_r2, metrics.test_rmse, metrics.test_r2, metrics.test_mae
    );
    println!("wrote {OUT_DIR}/metrics.json and {OUT_DIR}/model.json");
    flush_stdout();
    Ok(())
}

/// Flushes stdout so that a parent process receives each progress line at once.
/// A failed flush is ignored because progress output is informational.
fn flush_stdout() {
    let _ = io::stdout().flush();
}

// ---------------------------------------------------------------------------
// Parameters
// ---------------------------------------------------------------------------

/// Training hyperparameters.
#[derive(Debug, Clone, PartialEq)]
struct Params {
    learning_rate: f64,
    epochs: u32,
    l2: f64,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            learning_rate: 0.05,
            epochs: 2000,
            l2: 0.0,
        }
    }
}

/// Reads the parameters from the file named by `MREL_PARAMS_FILE`, or returns
/// the defaults when the variable is unset.
fn load_params() -> Result<Params, String> {
    let path = match env::var_os(PARAMS_ENV) {
        None => return Ok(Params::default()),
        Some(path) if path.is_empty() => {
            return Err(format!(
            "{PARAMS_ENV} is set but empty. Unset it to use the defaults, or set it to the path of a JSON file."
        ))
        }
        Some(path) => path,
    };
    let path_text = Path::new(&path).display().to_string();
    let text = fs::read_to_string(&path)
        .map_err(|err| format!("failed to read params file {path_text} ({PARAMS_ENV}): {err}"))?;
    let object = parse_flat_object(&text)
        .map_err(|err| format!("invalid params file {path_text}: {err}"))?;
    params_from_object(&object).map_err(|err| format!("invalid params in {path_text}: {err}"))
}

/// Builds `Params` from a parsed JSON object. Missing keys take their
/// defaults and unknown keys are ignored.
fn params_from_object(object: &BTreeMap<String, JsonValue>) -> Result<Params, String> {
    let mut params = Params::default();

    if let Some(value) = object.get("learning_rate") {
        let rate = expect_number("learning_rate", value)?;
        if rate <= 0.0 {
            return Err(format!("learning_rate must be greater than 0, got {rate}"));
        }
        params.learning_rate = rate;
    }

    if let Some(value) = object.get("epochs") {
        let epochs = expect_number("epochs", value)?;
        if epochs.fract() != 0.0 || epochs < 1.0 || epochs > f64::from(u32::MAX) {
            return Err(format!(
                "epochs must be an integer from 1 to {}, got {epochs}",
                u32::MAX
            ));
        }
        // The checks above make this conversion exact.
        params.epochs = epochs as u32;
    }

    if let Some(value) = object.get("l2") {
        let l2 = expect_number("l2", value)?;
        if l2 < 0.0 {
            return Err(format!("l2 must be 0 or greater, got {l2}"));
        }
        params.l2 = l2;
    }

    Ok(params)
}

fn expect_number(key: &str, value: &JsonValue) -> Result<f64, String> {
    match value {
        JsonValue::Number(number) => Ok(*number),
        other => Err(format!("{key} must be a number, got {}", other.type_name())),
    }
}

// ---------------------------------------------------------------------------
// Flat JSON object parser
// ---------------------------------------------------------------------------

/// Value of one key in a flat JSON object.
#[derive(Debug, Clone, PartialEq)]
enum JsonValue {
    Number(f64),
    String(String),
    Bool(bool),
}

impl JsonValue {
    fn type_name(&self) -> &'static str {
        match self {
            JsonValue::Number(_) => "a number",
            JsonValue::String(_) => "a string",
            JsonValue::Bool(_) => "a boolean",
        }
    }
}

/// Parses a JSON object (RFC 8259) whose values are numbers, strings or
/// booleans. Nested objects, arrays, `null`, duplicate keys and numbers
/// outside the range of `f64` are rejected. Errors name the line and column.
fn parse_flat_object(text: &str) -> Result<BTreeMap<String, JsonValue>, String> {
    let mut parser = JsonParser {
        text,
        bytes: text.as_bytes(),
        pos: 0,
    };
    parser.parse_object()
}

struct JsonParser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl JsonParser<'_> {
    fn parse_object(&mut self) -> Result<BTreeMap<String, JsonValue>, String> {
        let mut object = BTreeMap::new();
        self.skip_whitespace();
        self.expect_byte(b'{', "'{' at the start of the object")?;
        self.skip_whitespace();

        if self.peek() == Some(b'}') {
            self.pos += 1;
        } else {
            loop {
                self.skip_whitespace();
                let key_pos = self.pos;
                if self.peek() != Some(b'"') {
                    return Err(self.error_at(key_pos, "expected a string key"));
                }
                let key = self.parse_string()?;
                self.skip_whitespace();
                self.expect_byte(b':', "':' after the key")?;
                self.skip_whitespace();
                let value = self.parse_value(&key)?;
                if object.insert(key.clone(), value).is_some() {
                    return Err(self.error_at(key_pos, &format!("duplicate key \"{key}\"")));
                }
                self.skip_whitespace();
                match self.peek() {
                    Some(b',') => self.pos += 1,
                    Some(b'}') => {
                        self.pos += 1;
                        break;
                    }
                    _ => return Err(self.error_here("expected ',' or '}' after a value")),
                }
            }
        }

        self.skip_whitespace();
        if self.pos < self.bytes.len() {
            return Err(self.error_here("unexpected text after the end of the object"));
        }
        Ok(object)
    }

    fn parse_value(&mut self, key: &str) -> Result<JsonValue, String> {
        match self.peek() {
            Some(b'"') => Ok(JsonValue::String(self.parse_string()?)),
            Some(b't') => self.parse_literal("true", JsonValue::Bool(true)),
            Some(b'f') => self.parse_literal("false", JsonValue::Bool(false)),
            Some(b'-' | b'0'..=b'9') => self.parse_number(),
            Some(b'{' | b'[') => Err(self.error_here(&format!(
                "the value of \"{key}\" is an object or array, but only numbers, strings and booleans are supported"
            ))),
            Some(b'n') => Err(self.error_here(&format!(
                "the value of \"{key}\" is null, but only numbers, strings and booleans are supported"
            ))),
            _ => Err(self.error_here(&format!("expected a value for \"{key}\""))),
        }
    }

    fn parse_literal(&mut self, literal: &str, value: JsonValue) -> Result<JsonValue, String> {
        if self.bytes[self.pos..].starts_with(literal.as_bytes()) {
            self.pos += literal.len();
            Ok(value)
        } else {
            Err(self.error_here(&format!("invalid literal, expected {literal}")))
        }
    }

    /// Parses a number with the JSON grammar
    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    fn parse_number(&mut self) -> Result<JsonValue, String> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => {
                self.pos += 1;
                if matches!(self.peek(), Some(b'0'..=b'9')) {
                    return Err(
                        self.error_at(start, "invalid number: leading zeros are not allowed")
                    );
                }
            }
            Some(b'1'..=b'9') => self.skip_digits(),
            _ => return Err(self.error_at(start, "invalid number: expected a digit")),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.error_at(start, "invalid number: expected a digit after '.'"));
            }
            self.skip_digits();
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(
                    self.error_at(start, "invalid number: expected a digit in the exponent")
                );
            }
            self.skip_digits();
        }

        let literal = &self.text[start..self.pos];
        let number: f64 = literal
            .parse()
            .map_err(|err| self.error_at(start, &format!("invalid number {literal}: {err}")))?;
        if !number.is_finite() {
            return Err(self.error_at(start, &format!("number {literal} is out of range")));
        }
        Ok(JsonValue::Number(number))
    }

    fn skip_digits(&mut self) {
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
    }

    /// Parses a string that starts at the current `"` and decodes its escapes.
    fn parse_string(&mut self) -> Result<String, String> {
        let start = self.pos;
        self.pos += 1;
        let mut decoded = String::new();
        loop {
            // Runs of plain bytes are copied as text. The loop stops only at
            // ASCII bytes, which never occur inside a multi-byte UTF-8
            // sequence, so each slice boundary is a char boundary.
            let run_start = self.pos;
            while let Some(byte) = self.peek() {
                if byte == b'"' || byte == b'\\' || byte < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            decoded.push_str(&self.text[run_start..self.pos]);

            match self.peek() {
                None => return Err(self.error_at(start, "unterminated string")),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(decoded);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let ch = self.parse_escape()?;
                    decoded.push(ch);
                }
                Some(_) => {
                    return Err(self.error_here("control characters must be escaped inside strings"))
                }
            }
        }
    }

    /// Decodes the escape sequence after a backslash.
    fn parse_escape(&mut self) -> Result<char, String> {
        let escape_pos = self.pos - 1;
        let Some(byte) = self.peek() else {
            return Err(self.error_at(escape_pos, "unterminated escape sequence"));
        };
        self.pos += 1;
        let ch = match byte {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => return self.parse_unicode_escape(escape_pos),
            _ => return Err(self.error_at(escape_pos, "invalid escape sequence")),
        };
        Ok(ch)
    }

    /// Decodes `\uXXXX`, including a UTF-16 surrogate pair written as two
    /// consecutive escapes.
    fn parse_unicode_escape(&mut self, escape_pos: usize) -> Result<char, String> {
        let first = self.parse_hex4(escape_pos)?;
        let code = match first {
            0xD800..=0xDBFF => {
                if !self.bytes[self.pos..].starts_with(b"\\u") {
                    return Err(self.error_at(escape_pos, "high surrogate without a low surrogate"));
                }
                self.pos += 2;
                let second = self.parse_hex4(escape_pos)?;
                if !(0xDC00..=0xDFFF).contains(&second) {
                    return Err(self.error_at(escape_pos, "high surrogate without a low surrogate"));
                }
                0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
            }
            0xDC00..=0xDFFF => {
                return Err(self.error_at(escape_pos, "low surrogate without a high surrogate"))
            }
            _ => first,
        };
        char::from_u32(code).ok_or_else(|| self.error_at(escape_pos, "invalid unicode escape"))
    }

    fn parse_hex4(&mut self, escape_pos: usize) -> Result<u32, String> {
        let digits = self
            .bytes
            .get(self.pos..self.pos + 4)
            .ok_or_else(|| self.error_at(escape_pos, "\\u must be followed by 4 hex digits"))?;
        let mut value = 0;
        for &digit in digits {
            let nibble = (digit as char)
                .to_digit(16)
                .ok_or_else(|| self.error_at(escape_pos, "\\u must be followed by 4 hex digits"))?;
            value = value * 16 + nibble;
        }
        self.pos += 4;
        Ok(value)
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn expect_byte(&mut self, expected: u8, description: &str) -> Result<(), String> {
        if self.peek() == Some(expected) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error_here(&format!("expected {description}")))
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn error_here(&self, message: &str) -> String {
        self.error_at(self.pos, message)
    }

    /// Formats `message` with the 1-based line and column of byte `pos`.
    fn error_at(&self, pos: usize, message: &str) -> String {
        let before = &self.bytes[..pos.min(self.bytes.len())];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let column = String::from_utf8_lossy(&before[line_start..])
            .chars()
            .count()
            + 1;
        format!("line {line}, column {column}: {message}")
    }
}

// ---------------------------------------------------------------------------
// Data set
// ---------------------------------------------------------------------------

#[derive(Debug)]
struct Dataset {
    features: Vec<Features>,
    targets: Vec<f64>,
}

/// Parses the CSV text of the data set. The header must list the columns in
/// the order of `FEATURE_NAMES` followed by `TARGET_NAME`, and every value must
/// be a finite number. Blank lines are skipped.
fn parse_dataset(text: &str) -> Result<Dataset, String> {
    let mut lines = text.lines().enumerate();
    let expected_header = format!("{},{TARGET_NAME}", FEATURE_NAMES.join(","));
    match lines.next() {
        Some((_, header)) if header.trim() == expected_header => {}
        Some((_, header)) => {
            return Err(format!(
                "invalid header \"{}\", expected \"{expected_header}\"",
                header.trim()
            ))
        }
        None => return Err("the file is empty".into()),
    }

    let mut features = Vec::new();
    let mut targets = Vec::new();
    for (index, line) in lines {
        let line_number = index + 1;
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if fields.len() != FEATURE_COUNT + 1 {
            return Err(format!(
                "line {line_number}: expected {} fields, found {}",
                FEATURE_COUNT + 1,
                fields.len()
            ));
        }
        let mut values = [0.0; FEATURE_COUNT + 1];
        for (column, (value, field)) in values.iter_mut().zip(&fields).enumerate() {
            *value = field
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| {
                    let name = FEATURE_NAMES.get(column).copied().unwrap_or(TARGET_NAME);
                    format!("line {line_number}: invalid number \"{field}\" in column {name}")
                })?;
        }
        let mut row = [0.0; FEATURE_COUNT];
        row.copy_from_slice(&values[..FEATURE_COUNT]);
        features.push(row);
        targets.push(values[FEATURE_COUNT]);
    }
    Ok(Dataset { features, targets })
}

/// Deterministic train/test split of a data set.
#[derive(Debug)]
struct Split {
    train_features: Vec<Features>,
    train_targets: Vec<f64>,
    test_features: Vec<Features>,
    test_targets: Vec<f64>,
}

impl Split {
    /// Puts every row whose zero-based index is divisible by `TEST_EVERY` in
    /// the test set and the other rows in the training set.
    fn from_dataset(dataset: &Dataset) -> Result<Split, String> {
        let mut split = Split {
            train_features: Vec::new(),
            train_targets: Vec::new(),
            test_features: Vec::new(),
            test_targets: Vec::new(),
        };
        for (index, (row, &target)) in dataset.features.iter().zip(&dataset.targets).enumerate() {
            if index % TEST_EVERY == 0 {
                split.test_features.push(*row);
                split.test_targets.push(target);
            } else {
                split.train_features.push(*row);
                split.train_targets.push(target);
            }
        }
        // A standard deviation needs at least 2 training rows, and the metrics
        // need at least 1 test row. Row 0 is always a test row.
        if split.train_features.len() < 2 || split.test_features.is_empty() {
            return Err(format!(
                "the data set has {} rows, but at least 3 are needed (2 training rows and 1 test row)",
                dataset.features.len()
            ));
        }
        Ok(split)
    }
}

/// Per-feature mean and population standard deviation of the training rows,
/// used to scale every row to zero mean and unit variance.
#[derive(Debug)]
struct Standardizer {
    means: Features,
    stds: Features,
}

impl Standardizer {
    fn fit(rows: &[Features]) -> Result<Standardizer, String> {
        let count = rows.len() as f64;
        let mut means = [0.0; FEATURE_COUNT];
        let mut stds = [0.0; FEATURE_COUNT];
        for j in 0..FEATURE_COUNT {
            means[j] = rows.iter().map(|row| row[j]).sum::<f64>() / count;
            let variance = rows
                .iter()
                .map(|row| (row[j] - means[j]).powi(2))
                .sum::<f64>()
                / count;
            stds[j] = variance.sqrt();
            if stds[j] == 0.0 {
                return Err(format!(
                    "feature {} is constant in the training rows and cannot be standardized",
                    FEATURE_NAMES[j]
                ));
            }
        }
        Ok(Standardizer { means, stds })
    }

    fn transform_all(&self, rows: &[Features]) -> Vec<Features> {
        rows.iter()
            .map(|row| std::array::from_fn(|j| (row[j] - self.means[j]) / self.stds[j]))
            .collect()
    }
}

// ---------------------------------------------------------------------------
// Model and training
// ---------------------------------------------------------------------------

#[derive(Debug)]
struct LinearModel {
    weights: Features,
    bias: f64,
}

impl LinearModel {
    fn predict(&self, x: &Features) -> f64 {
        self.bias + self.weights.iter().zip(x).map(|(w, v)| w * v).sum::<f64>()
    }

    fn predict_all(&self, rows: &[Features]) -> Vec<f64> {
        rows.iter().map(|row| self.predict(row)).collect()
    }
}

/// Trains a linear model from zero weights and zero bias by full-batch
/// gradient descent on `mean((x·w + b - y)²) + l2 * ||w||²`.
///
/// `on_progress(epoch, train_rmse)` runs after every `epochs / 10` epochs
/// (at least every epoch) and after the last epoch, with the RMSE after that
/// epoch's update. Returns an error when the weights stop being finite, which
/// happens when the learning rate is too high for the data.
fn train(
    x: &[Features],
    y: &[f64],
    params: &Params,
    mut on_progress: impl FnMut(u32, f64),
) -> Result<LinearModel, String> {
    let count = x.len() as f64;
    let progress_every = (params.epochs / PROGRESS_LINES).max(1);
    let mut model = LinearModel {
        weights: [0.0; FEATURE_COUNT],
        bias: 0.0,
    };

    for epoch in 1..=params.epochs {
        let mut weight_grad = [0.0; FEATURE_COUNT];
        let mut bias_grad = 0.0;
        for (row, &target) in x.iter().zip(y) {
            let residual = model.predict(row) - target;
            for (grad, value) in weight_grad.iter_mut().zip(row) {
                *grad += residual * value;
            }
            bias_grad += residual;
        }

        for (weight, grad) in model.weights.iter_mut().zip(&weight_grad) {
            let gradient = 2.0 * grad / count + 2.0 * params.l2 * *weight;
            *weight -= params.learning_rate * gradient;
        }
        model.bias -= params.learning_rate * 2.0 * bias_grad / count;

        if !model.bias.is_finite() || model.weights.iter().any(|w| !w.is_finite()) {
            return Err(format!(
                "training diverged at epoch {epoch} because the weights are no longer finite. Lower learning_rate (now {}).",
                params.learning_rate
            ));
        }

        if epoch % progress_every == 0 || epoch == params.epochs {
            on_progress(epoch, rmse(y, &model.predict_all(x)));
        }
    }
    Ok(model)
}

// ---------------------------------------------------------------------------
// Metrics
// ---------------------------------------------------------------------------

/// Coefficient of determination, `1 - SS_res / SS_tot`. Returns `None` when the
/// targets are constant (or empty), because R² is undefined there.
fn r2(actual: &[f64], predicted: &[f64]) -> Option<f64> {
    assert_eq!(actual.len(), predicted.len(), "r2: length mismatch");
    if actual.is_empty() {
        return None;
    }
    let mean = actual.iter().sum::<f64>() / actual.len() as f64;
    let total: f64 = actual.iter().map(|a| (a - mean).powi(2)).sum();
    if total == 0.0 {
        return None;
    }
    let residual: f64 = actual
        .iter()
        .zip(predicted)
        .map(|(a, p)| (a - p).powi(2))
        .sum();
    Some(1.0 - residual / total)
}

/// Root mean squared error. The inputs must be non-empty and of equal length.
fn rmse(actual: &[f64], predicted: &[f64]) -> f64 {
    assert_eq!(actual.len(), predicted.len(), "rmse: length mismatch");
    assert!(!actual.is_empty(), "rmse: empty input");
    let sum: f64 = actual
        .iter()
        .zip(predicted)
        .map(|(a, p)| (a - p).powi(2))
        .sum();
    (sum / actual.len() as f64).sqrt()
}

/// Mean absolute error. The inputs must be non-empty and of equal length.
fn mae(actual: &[f64], predicted: &[f64]) -> f64 {
    assert_eq!(actual.len(), predicted.len(), "mae: length mismatch");
    assert!(!actual.is_empty(), "mae: empty input");
    let sum: f64 = actual
        .iter()
        .zip(predicted)
        .map(|(a, p)| (a - p).abs())
        .sum();
    sum / actual.len() as f64
}

struct Metrics {
    train_r2: f64,
    train_rmse: f64,
    test_r2: f64,
    test_rmse: f64,
    test_mae: f64,
    train_rows: usize,
    test_rows: usize,
}

impl Metrics {
    fn to_json(&self) -> Result<String, String> {
        Ok(format!(
            concat!(
                "{{\n",
                "  \"train\": {{\"r2\": {}, \"rmse\": {}}},\n",
                "  \"test\": {{\"r2\": {}, \"rmse\": {}, \"mae\": {}}},\n",
                "  \"rows\": {{\"train\": {}, \"test\": {}}}\n",
                "}}\n"
            ),
            json_number(self.train_r2)?,
            json_number(self.train_rmse)?,
            json_number(self.test_r2)?,
            json_number(self.test_rmse)?,
            json_number(self.test_mae)?,
            self.train_rows,
            self.test_rows
        ))
    }
}

// ---------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------

/// Formats a finite number as a JSON number. Rust's `Display` for `f64` writes
/// the shortest decimal that parses back to the same value, without an
/// exponent, which is valid JSON.
fn json_number(value: f64) -> Result<String, String> {
    if value.is_finite() {
        Ok(value.to_string())
    } else {
        Err(format!("cannot write {value} as a JSON number"))
    }
}

fn json_number_array(values: &[f64]) -> Result<String, String> {
    let numbers = values
        .iter()
        .map(|&v| json_number(v))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(format!("[{}]", numbers.join(", ")))
}

fn model_to_json(
    model: &LinearModel,
    scaler: &Standardizer,
    params: &Params,
) -> Result<String, String> {
    // The feature names are fixed ASCII identifiers, so they need no escaping.
    let names: Vec<String> = FEATURE_NAMES
        .iter()
        .map(|name| format!("\"{name}\""))
        .collect();
    let mut json = String::from("{\n");
    let _ = writeln!(json, "  \"type\": \"linear_regression\",");
    let _ = writeln!(json, "  \"features\": [{}],", names.join(", "));
    let _ = writeln!(json, "  \"target\": \"{TARGET_NAME}\",");
    let _ = writeln!(json, "  \"means\": {},", json_number_array(&scaler.means)?);
    let _ = writeln!(json, "  \"stds\": {},", json_number_array(&scaler.stds)?);
    let _ = writeln!(
        json,
        "  \"weights\": {},",
        json_number_array(&model.weights)?
    );
    let _ = writeln!(json, "  \"bias\": {},", json_number(model.bias)?);
    let _ = writeln!(
        json,
        "  \"params\": {{\"learning_rate\": {}, \"epochs\": {}, \"l2\": {}}}",
        json_number(params.learning_rate)?,
        params.epochs,
        json_number(params.l2)?
    );
    json.push_str("}\n");
    Ok(json)
}

/// Writes `contents` to `dir/name` by writing a temporary file in `dir`,
/// syncing it and renaming it over the target, so readers never see a
/// partially written file.
fn write_atomically(dir: &Path, name: &str, contents: &str) -> Result<(), String> {
    let target = dir.join(name);
    let temp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| -> io::Result<()> {
        let mut file = fs::File::create(&temp)?;
        file.write_all(contents.as_bytes())?;
        file.sync_all()?;
        fs::rename(&temp, &target)
    })();
    result.map_err(|err| {
        let _ = fs::remove_file(&temp);
        format!("failed to write {}: {err}", target.display())
    })
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(text: &str) -> BTreeMap<String, JsonValue> {
        parse_flat_object(text).unwrap_or_else(|err| panic!("{text:?} failed to parse: {err}"))
    }

    fn parse_err(text: &str) -> String {
        match parse_flat_object(text) {
            Ok(object) => panic!("{text:?} parsed as {object:?}, expected an error"),
            Err(err) => err,
        }
    }

    fn assert_close(actual: f64, expected: f64, tolerance: f64) {
        assert!(
            (actual - expected).abs() <= tolerance,
            "expected {expected} ± {tolerance}, got {actual}"
        );
    }

    #[test]
    fn parser_reads_all_value_types() {
        let object = parse_ok(
            r#"{"learning_rate": 0.05, "epochs": 2000, "l2": 0, "name": "run", "verbose": true, "debug": false}"#,
        );
        assert_eq!(object.len(), 6);
        assert_eq!(object["learning_rate"], JsonValue::Number(0.05));
        assert_eq!(object["epochs"], JsonValue::Number(2000.0));
        assert_eq!(object["l2"], JsonValue::Number(0.0));
        assert_eq!(object["name"], JsonValue::String("run".into()));
        assert_eq!(object["verbose"], JsonValue::Bool(true));
        assert_eq!(object["debug"], JsonValue::Bool(false));
    }

    #[test]
    fn parser_accepts_empty_object_and_whitespace() {
        assert!(parse_ok("{}").is_empty());
        assert!(parse_ok(" \n\t{ \r\n } \n").is_empty());
        let object = parse_ok("{\n  \"epochs\" :\n 10\n}\n");
        assert_eq!(object["epochs"], JsonValue::Number(10.0));
    }

    #[test]
    fn parser_reads_number_forms() {
        let cases = [
            ("0", 0.0),
            ("-0.5", -0.5),
            ("12.25", 12.25),
            ("1e3", 1000.0),
            ("2E-2", 0.02),
            ("-1.5e+2", -150.0),
        ];
        for (literal, expected) in cases {
            let object = parse_ok(&format!("{{\"x\": {literal}}}"));
            assert_eq!(
                object["x"],
                JsonValue::Number(expected),
                "literal {literal}"
            );
        }
    }

    #[test]
    fn parser_rejects_invalid_numbers() {
        for literal in [
            "01", "1.", ".5", "-", "+1", "1e", "1e+", "0x10", "1e999", "NaN", "Infinity",
        ] {
            let text = format!("{{\"x\": {literal}}}");
            assert!(
                parse_flat_object(&text).is_err(),
                "{text} should be rejected"
            );
        }
    }

    #[test]
    fn parser_decodes_string_escapes() {
        let object = parse_ok(r#"{"s": "a\"b\\c\/d\n\t\u00e9\ud83d\ude00 é"}"#);
        assert_eq!(object["s"], JsonValue::String("a\"b\\c/d\n\té😀 é".into()));
    }

    #[test]
    fn parser_rejects_bad_strings() {
        assert!(parse_err(r#"{"s": "abc}"#).contains("unterminated string"));
        assert!(parse_err(r#"{"s": "\q"}"#).contains("invalid escape"));
        assert!(parse_err(r#"{"s": "\u12"}"#).contains("4 hex digits"));
        assert!(parse_err(r#"{"s": "\ud83d"}"#).contains("low surrogate"));
        assert!(parse_err(r#"{"s": "\ude00"}"#).contains("high surrogate"));
        assert!(parse_err("{\"s\": \"a\nb\"}").contains("control characters"));
    }

    #[test]
    fn parser_rejects_malformed_objects() {
        let cases = [
            ("", "expected '{'"),
            ("[]", "expected '{'"),
            ("{", "expected a string key"),
            (r#"{"a" 1}"#, "expected ':'"),
            (r#"{"a": 1,}"#, "expected a string key"),
            (r#"{"a": 1 "b": 2}"#, "expected ',' or '}'"),
            (r#"{a: 1}"#, "expected a string key"),
            (r#"{"a": }"#, "expected a value"),
            (r#"{"a": 1} x"#, "unexpected text"),
            (r#"{"a": tru}"#, "invalid literal"),
            (r#"{"a": 1, "a": 2}"#, "duplicate key \"a\""),
            (r#"{"a": {"b": 1}}"#, "object or array"),
            (r#"{"a": [1]}"#, "object or array"),
            (r#"{"a": null}"#, "null"),
        ];
        for (text, expected) in cases {
            let err = parse_err(text);
            assert!(
                err.contains(expected),
                "{text:?}: error {err:?} should contain {expected:?}"
            );
        }
    }

    #[test]
    fn parser_error_names_line_and_column() {
        let err = parse_err("{\n  \"a\": 1,\n  \"b\" 2\n}");
        assert!(err.starts_with("line 3, column 7:"), "got {err:?}");
    }

    #[test]
    fn params_default_when_keys_missing() {
        let params = params_from_object(&parse_ok("{}")).unwrap();
        assert_eq!(params, Params::default());
        assert_eq!(params.learning_rate, 0.05);
        assert_eq!(params.epochs, 2000);
        assert_eq!(params.l2, 0.0);
    }

    #[test]
    fn params_read_values_and_ignore_unknown_keys() {
        let object =
            parse_ok(r#"{"learning_rate": 0.1, "epochs": 300, "l2": 0.01, "seed": 7, "tag": "x"}"#);
        let params = params_from_object(&object).unwrap();
        assert_eq!(
            params,
            Params {
                learning_rate: 0.1,
                epochs: 300,
                l2: 0.01
            }
        );
    }

    #[test]
    fn params_reject_invalid_values() {
        let cases = [
            (
                r#"{"learning_rate": 0}"#,
                "learning_rate must be greater than 0",
            ),
            (
                r#"{"learning_rate": -0.1}"#,
                "learning_rate must be greater than 0",
            ),
            (
                r#"{"learning_rate": "0.1"}"#,
                "learning_rate must be a number, got a string",
            ),
            (r#"{"epochs": 0}"#, "epochs must be an integer"),
            (r#"{"epochs": -5}"#, "epochs must be an integer"),
            (r#"{"epochs": 10.5}"#, "epochs must be an integer"),
            (r#"{"epochs": 1e10}"#, "epochs must be an integer"),
            (
                r#"{"epochs": true}"#,
                "epochs must be a number, got a boolean",
            ),
            (r#"{"l2": -1}"#, "l2 must be 0 or greater"),
        ];
        for (text, expected) in cases {
            let err = params_from_object(&parse_ok(text)).unwrap_err();
            assert!(
                err.contains(expected),
                "{text}: error {err:?} should contain {expected:?}"
            );
        }
    }

    #[test]
    fn r2_of_perfect_and_mean_predictions() {
        let actual = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(r2(&actual, &actual), Some(1.0));
        assert_eq!(r2(&actual, &[2.5; 4]), Some(0.0));
    }

    #[test]
    fn r2_of_known_values() {
        // SS_res = 0.25 + 0 + 0.25 + 1 = 1.5 and SS_tot = 5, so R² = 0.7.
        let r2 = r2(&[1.0, 2.0, 3.0, 4.0], &[1.5, 2.0, 2.5, 5.0]).unwrap();
        assert_close(r2, 0.7, 1e-12);
    }

    #[test]
    fn r2_undefined_for_constant_or_empty_targets() {
        assert_eq!(r2(&[3.0, 3.0], &[1.0, 2.0]), None);
        assert_eq!(r2(&[], &[]), None);
    }

    #[test]
    fn rmse_and_mae_of_known_values() {
        let actual = [1.0, 2.0, 3.0, 4.0];
        let predicted = [1.5, 2.0, 2.5, 5.0];
        // Squared errors 0.25, 0, 0.25, 1 have mean 0.375.
        assert_close(rmse(&actual, &predicted), 0.375_f64.sqrt(), 1e-12);
        // Absolute errors 0.5, 0, 0.5, 1 have mean 0.5.
        assert_close(mae(&actual, &predicted), 0.5, 1e-12);
        assert_eq!(rmse(&actual, &actual), 0.0);
        assert_eq!(rmse(&[0.0, 0.0], &[3.0, -4.0]), 12.5_f64.sqrt());
    }

    #[test]
    fn dataset_parses_valid_rows() {
        let header = "age,sex,bmi,bp,s1,s2,s3,s4,s5,s6,target";
        let text = format!("{header}\n1,2,3,4,5,6,7,8,9,10,11\n\n0.5,1,1,1,1,1,1,1,1,1,-2\n");
        let dataset = parse_dataset(&text).unwrap();
        assert_eq!(dataset.features.len(), 2);
        assert_eq!(
            dataset.features[0],
            [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]
        );
        assert_eq!(dataset.targets, vec![11.0, -2.0]);
    }

    #[test]
    fn dataset_rejects_bad_input() {
        let header = "age,sex,bmi,bp,s1,s2,s3,s4,s5,s6,target";
        assert!(parse_dataset("").unwrap_err().contains("empty"));
        assert!(parse_dataset("a,b\n")
            .unwrap_err()
            .contains("invalid header"));
        let short_row = format!("{header}\n1,2,3\n");
        assert!(parse_dataset(&short_row)
            .unwrap_err()
            .contains("line 2: expected 11 fields, found 3"));
        let bad_value = format!("{header}\n1,2,x,4,5,6,7,8,9,10,11\n");
        assert!(parse_dataset(&bad_value)
            .unwrap_err()
            .contains("\"x\" in column bmi"));
    }

    #[test]
    fn split_puts_every_fifth_row_in_test() {
        let dataset = Dataset {
            features: (0..12).map(|i| [i as f64; FEATURE_COUNT]).collect(),
            targets: (0..12).map(|i| i as f64).collect(),
        };
        let split = Split::from_dataset(&dataset).unwrap();
        assert_eq!(split.test_targets, vec![0.0, 5.0, 10.0]);
        assert_eq!(split.train_targets.len(), 9);
        assert!(!split.train_targets.contains(&5.0));
    }

    #[test]
    fn standardizer_uses_population_std() {
        let rows: Vec<Features> = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]
            .iter()
            .map(|&v| std::array::from_fn(|j| v + j as f64))
            .collect();
        let scaler = Standardizer::fit(&rows).unwrap();
        assert_close(scaler.means[0], 5.0, 1e-12);
        assert_close(scaler.stds[0], 2.0, 1e-12);
        assert_close(scaler.means[9], 14.0, 1e-12);
        let scaled = scaler.transform_all(&rows);
        assert_close(scaled[0][0], -1.5, 1e-12);
        assert_close(scaled[7][3], 2.0, 1e-12);
    }

    #[test]
    fn standardizer_rejects_constant_feature() {
        let rows = vec![[1.0; FEATURE_COUNT], [1.0; FEATURE_COUNT]];
        assert!(Standardizer::fit(&rows)
            .unwrap_err()
            .contains("feature age is constant"));
    }

    #[test]
    fn training_recovers_a_linear_function() {
        // y = 3 * x0 - 2 * x5 + 10 on points spread over two features.
        let x: Vec<Features> = (0..40)
            .map(|i| {
                let mut row = [0.0; FEATURE_COUNT];
                row[0] = (i % 8) as f64 - 3.5;
                row[5] = (i / 8) as f64 - 2.0;
                row
            })
            .collect();
        let y: Vec<f64> = x
            .iter()
            .map(|row| 3.0 * row[0] - 2.0 * row[5] + 10.0)
            .collect();
        let params = Params {
            learning_rate: 0.05,
            epochs: 2000,
            l2: 0.0,
        };
        let mut progress = Vec::new();
        let model = train(&x, &y, &params, |epoch, rmse| progress.push((epoch, rmse))).unwrap();

        assert_close(model.weights[0], 3.0, 1e-6);
        assert_close(model.weights[5], -2.0, 1e-6);
        assert_close(model.bias, 10.0, 1e-6);
        assert_close(model.weights[1], 0.0, 1e-12);
        assert_eq!(progress.len(), 10);
        assert_eq!(progress[0].0, 200);
        assert_eq!(progress[9].0, 2000);
        assert!(progress[9].1 < 1e-6, "final rmse {}", progress[9].1);
    }

    #[test]
    fn training_with_l2_shrinks_weights() {
        let x: Vec<Features> = (0..20)
            .map(|i| [i as f64 / 10.0 - 1.0; FEATURE_COUNT])
            .collect();
        let y: Vec<f64> = x.iter().map(|row| 4.0 * row[0]).collect();
        let plain = Params {
            learning_rate: 0.01,
            epochs: 3000,
            l2: 0.0,
        };
        let ridge = Params {
            l2: 1.0,
            ..plain.clone()
        };
        let norm = |m: &LinearModel| m.weights.iter().map(|w| w * w).sum::<f64>();
        let plain_model = train(&x, &y, &plain, |_, _| {}).unwrap();
        let ridge_model = train(&x, &y, &ridge, |_, _| {}).unwrap();
        assert!(norm(&ridge_model) < norm(&plain_model));
    }

    #[test]
    fn training_reports_divergence() {
        let x: Vec<Features> = (0..10).map(|i| [i as f64; FEATURE_COUNT]).collect();
        let y: Vec<f64> = (0..10).map(|i| i as f64).collect();
        let params = Params {
            learning_rate: 100.0,
            epochs: 5000,
            l2: 0.0,
        };
        let err = train(&x, &y, &params, |_, _| {}).unwrap_err();
        assert!(err.contains("diverged"), "got {err:?}");
    }

    #[test]
    fn progress_runs_every_epoch_for_short_runs() {
        let x = vec![[1.0; FEATURE_COUNT], [2.0; FEATURE_COUNT]];
        let y = vec![1.0, 2.0];
        let params = Params {
            learning_rate: 0.01,
            epochs: 3,
            l2: 0.0,
        };
        let mut epochs = Vec::new();
        train(&x, &y, &params, |epoch, _| epochs.push(epoch)).unwrap();
        assert_eq!(epochs, vec![1, 2, 3]);
    }

    #[test]
    fn metrics_json_has_expected_shape() {
        let metrics = Metrics {
            train_r2: 0.5,
            train_rmse: 53.25,
            test_r2: 0.125,
            test_rmse: 1.0 / 3.0,
            test_mae: 2.0,
            train_rows: 353,
            test_rows: 89,
        };
        let expected = concat!(
            "{\n",
            "  \"train\": {\"r2\": 0.5, \"rmse\": 53.25},\n",
            "  \"test\": {\"r2\": 0.125, \"rmse\": 0.3333333333333333, \"mae\": 2},\n",
            "  \"rows\": {\"train\": 353, \"test\": 89}\n",
            "}\n"
        );
        assert_eq!(metrics.to_json().unwrap(), expected);
    }

    #[test]
    fn json_number_rejects_non_finite() {
        assert_eq!(json_number(1.5).unwrap(), "1.5");
        assert_eq!(json_number(-0.001).unwrap(), "-0.001");
        assert!(json_number(f64::NAN).is_err());
        assert!(json_number(f64::INFINITY).is_err());
    }

    #[test]
    fn write_atomically_replaces_file() {
        let dir = env::temp_dir().join(format!("diabetes-trainer-test-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        write_atomically(&dir, "a.json", "first").unwrap();
        write_atomically(&dir, "a.json", "second").unwrap();
        assert_eq!(fs::read_to_string(dir.join("a.json")).unwrap(), "second");
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("a.json")]);
        fs::remove_dir_all(&dir).unwrap();
    }
}
