//! `mrel schema`: the JSON Schema of release.yaml agrees with `mrel check` on the sample files
//! in tests/samples (good ones pass both, bad ones fail both), and names every field that
//! `mrel check` accepts.

mod common;

use std::path::{Path, PathBuf};

use common::{TestRepo, stdout_of};
use serde_json::Value;

fn samples(kind: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/samples")
        .join(kind);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("read {}: {error}", dir.display()))
        .map(|entry| entry.expect("a folder entry").path())
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "yaml")
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no samples in {}", dir.display());
    files
}

/// Returns the schema as `mrel schema` prints it.
fn printed_schema() -> Value {
    let repo = TestRepo::new();
    let assert = repo.mrel(&["schema"]).assert().success();
    serde_json::from_str(&stdout_of(assert.get_output())).expect("the schema is JSON")
}

/// Converts YAML to the JSON value that a schema validator checks, as editors do.
fn yaml_to_json(text: &str) -> Value {
    match mrel::yaml::parse(text).expect("the sample is YAML") {
        Some(node) => mrel::release_file::to_json(&node),
        None => Value::Null,
    }
}

/// Checks every sample of `kind` with `mrel check` and with the schema (as draft 2020-12 and as
/// draft 7), and returns one line per verdict that differs from `expected_valid`.
fn disagreements(kind: &str, expected_valid: bool) -> Vec<String> {
    let schema = printed_schema();
    // Editors whose YAML language server supports only draft 7 must reach the same verdicts.
    let validators = [
        (
            "draft 2020-12",
            jsonschema::draft202012::new(&schema).expect("the schema compiles"),
        ),
        (
            "draft 7",
            jsonschema::draft7::new(&schema).expect("the schema compiles as draft 7"),
        ),
    ];
    let repo = TestRepo::new();
    let mut found = Vec::new();
    for sample in samples(kind) {
        let name = sample
            .file_stem()
            .expect("a file name")
            .to_string_lossy()
            .into_owned();
        let text = std::fs::read_to_string(&sample).expect("read the sample");
        let relative = format!("samples/{name}/release.yaml");
        repo.write(&relative, &text);

        let output = repo
            .mrel(&["check", &relative])
            .output()
            .expect("run mrel check");
        let check_code = output.status.code();
        if (check_code == Some(0)) != expected_valid {
            found.push(format!(
                "{kind}/{name}.yaml: mrel check exit {check_code:?}: {}",
                stdout_of(&output).trim()
            ));
        }

        let instance = yaml_to_json(&text);
        for (draft, validator) in &validators {
            let errors: Vec<String> = validator
                .iter_errors(&instance)
                .map(|error| format!("{} at {}", error, error.instance_path()))
                .collect();
            if errors.is_empty() != expected_valid {
                found.push(format!(
                    "{kind}/{name}.yaml: the schema as {draft} finds {} error(s): {}",
                    errors.len(),
                    errors.join("; ")
                ));
            }
        }
    }
    found
}

#[test]
fn schema_is_draft_2020_12() {
    let schema = printed_schema();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    jsonschema::meta::validate(&schema).expect("the schema follows its meta-schema");
}

#[test]
fn schema_printed_equals_file() {
    let file = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/release.schema.json"),
    )
    .expect("read the schema file");
    let file: Value = serde_json::from_str(&file).expect("the schema file is JSON");
    assert_eq!(printed_schema(), file);
}

#[test]
fn good_samples_pass_schema_and_check() {
    let found = disagreements("good", true);
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn bad_samples_fail_schema_and_check() {
    let found = disagreements("bad", false);
    assert!(found.is_empty(), "{}", found.join("\n"));
}

/// Reads the field names from `mrel check`'s message about an unknown field in `text`.
fn fields_check_accepts(repo: &TestRepo, text: &str) -> Vec<String> {
    repo.write("fields/release.yaml", text);
    let output = repo
        .mrel(&["check", "fields/release.yaml", "--format", "json"])
        .output()
        .expect("run mrel check");
    let report: Value = serde_json::from_str(&stdout_of(&output)).expect("JSON output");
    let message = report["problems"]
        .as_array()
        .expect("a list of problems")
        .iter()
        .filter_map(|problem| problem["message"].as_str())
        .find_map(|message| message.strip_prefix("unknown field; expected one of: "))
        .unwrap_or_else(|| panic!("no unknown-field problem for:\n{text}\n{report:#}"))
        .to_owned();
    let mut fields: Vec<String> = message.split(", ").map(str::to_owned).collect();
    fields.sort();
    fields
}

fn schema_properties(schema: &Value, pointer: &str) -> Vec<String> {
    let mut fields: Vec<String> = schema
        .pointer(pointer)
        .and_then(Value::as_object)
        .unwrap_or_else(|| panic!("no properties at {pointer}"))
        .keys()
        .cloned()
        .collect();
    fields.sort();
    fields
}

#[test]
fn schema_names_every_field_check_accepts() {
    let schema = printed_schema();
    let repo = TestRepo::new();
    let sections = [
        ("model: a\nversion: 1.0.0\nzzz: 1\n", "/properties"),
        (
            "model: a\nversion: 1.0.0\ntrain: {command: x, zzz: 1}\n",
            "/properties/train/properties",
        ),
        (
            "model: a\nversion: 1.0.0\ngates: {m: {min: 1, zzz: 1}}\n",
            "/$defs/gate/properties",
        ),
        (
            "model: a\nversion: 1.0.0\ncard: {zzz: 1}\n",
            "/properties/card/properties",
        ),
        (
            "model: a\nversion: 1.0.0\ncard: {task: {type: t, zzz: 1}}\n",
            "/properties/card/properties/task/properties",
        ),
        (
            "model: a\nversion: 1.0.0\ncard: {dataset: {type: t, zzz: 1}}\n",
            "/properties/card/properties/dataset/properties",
        ),
        (
            "model: a\nversion: 1.0.0\nstages: [dev]\npromotion: {dev: {zzz: 1}}\n",
            "/properties/promotion/additionalProperties/properties",
        ),
    ];
    for (text, pointer) in sections {
        assert_eq!(
            schema_properties(&schema, pointer),
            fields_check_accepts(&repo, text),
            "the schema at {pointer} and mrel check accept different fields"
        );
    }
}
