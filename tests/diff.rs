//! `mrel diff` on every kind of metric value, in the three output formats.

use std::path::Path;
use std::process::Command as Process;

use assert_cmd::Command;

const OLD_METRICS: &str = r#"{
  "acc": 0.9,
  "loss": 1.48e-05,
  "big": 123456789012345678901234567890,
  "nan_same": NaN,
  "inf": Infinity,
  "label": "resnet",
  "flag": true,
  "gone": 1,
  "none": null,
  "per_class": [{"f1": 0.5}, {"f1": 0.6}],
  "unchanged": 3
}
"#;

const NEW_METRICS: &str = r#"{
  "acc": 0.85,
  "loss": 1.2e-05,
  "big": 123456789012345678901234567891,
  "nan_same": NaN,
  "inf": -Infinity,
  "label": "vit",
  "flag": false,
  "added": 2,
  "none": null,
  "per_class": [{"f1": 0.55}, {"f1": 0.6}],
  "unchanged": 3
}
"#;

const RELEASE_FILE: &str = "\
model: m
version: 1.0.0
params:
  optimizer: {name: adam, lr: 0.1}
  epochs: 10
metrics: metrics.json
gates:
  acc: {min: 0.8, max_decrease: 10%}
  loss: {max: 0.0001}
  label: {min: 1}
  missing: {max: 1}
";

/// A repository with pinned identity and dates, so that commit ids are stable.
struct Repo {
    dir: tempfile::TempDir,
}

impl Repo {
    fn new() -> Repo {
        let repo = Repo {
            dir: tempfile::tempdir().expect("temp folder"),
        };
        repo.git(&["init", "--quiet", "--initial-branch=main"]);
        repo
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.path().join(name), text).expect("write file");
    }

    fn git(&self, args: &[&str]) {
        let status = Process::new("git")
            .args(args)
            .current_dir(self.path())
            .envs(pinned_env(self.path()))
            .status()
            .expect("git runs");
        assert!(status.success(), "git {args:?} failed");
    }

    fn commit(&self, message: &str) {
        self.git(&["add", "-A"]);
        self.git(&["commit", "--quiet", "-m", message]);
    }

    fn mrel(&self, args: &[&str]) -> assert_cmd::assert::Assert {
        Command::cargo_bin("mrel")
            .expect("mrel binary")
            .args(args)
            .current_dir(self.path())
            .envs(pinned_env(self.path()))
            .assert()
    }

    /// Two commits whose tracked metrics and params differ.
    fn with_two_revisions() -> Repo {
        let repo = Repo::new();
        repo.write("release.yaml", RELEASE_FILE);
        repo.write("metrics.json", OLD_METRICS);
        repo.commit("First model");
        repo.write("release.yaml", &RELEASE_FILE.replace("lr: 0.1", "lr: 0.05"));
        repo.write("metrics.json", NEW_METRICS);
        repo.commit("Second model");
        repo
    }
}

fn pinned_env(home: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("HOME", home.display().to_string()),
        ("GIT_CONFIG_NOSYSTEM", "1".into()),
        ("GIT_CONFIG_GLOBAL", "/dev/null".into()),
        ("GIT_AUTHOR_NAME", "Test Author".into()),
        ("GIT_AUTHOR_EMAIL", "author@example.com".into()),
        ("GIT_COMMITTER_NAME", "Test Author".into()),
        ("GIT_COMMITTER_EMAIL", "author@example.com".into()),
        ("GIT_AUTHOR_DATE", "2026-01-02T03:04:05Z".into()),
        ("GIT_COMMITTER_DATE", "2026-01-02T03:04:05Z".into()),
    ]
}

fn stdout(assert: &assert_cmd::assert::Assert) -> String {
    String::from_utf8(assert.get_output().stdout.clone()).expect("UTF-8 output")
}

fn stderr(assert: &assert_cmd::assert::Assert) -> String {
    String::from_utf8(assert.get_output().stderr.clone()).expect("UTF-8 output")
}

#[test]
fn diff_text_snapshot() {
    let repo = Repo::with_two_revisions();
    let assert = repo
        .mrel(&["diff", "m", "--from", "HEAD~1", "--to", "HEAD"])
        .success();
    insta::assert_snapshot!(stdout(&assert));
}

#[test]
fn diff_markdown_snapshot() {
    let repo = Repo::with_two_revisions();
    let assert = repo
        .mrel(&[
            "diff", "m", "--from", "HEAD~1", "--to", "HEAD", "--format", "markdown",
        ])
        .success();
    insta::assert_snapshot!(stdout(&assert));
}

#[test]
fn diff_json_snapshot() {
    let repo = Repo::with_two_revisions();
    let assert = repo
        .mrel(&[
            "diff", "m", "--from", "HEAD~1", "--to", "HEAD", "--format", "json",
        ])
        .success();
    insta::assert_snapshot!(stdout(&assert));
}

#[test]
fn value_kinds_table() {
    let repo = Repo::with_two_revisions();
    let assert = repo
        .mrel(&[
            "diff", "m", "--from", "HEAD~1", "--to", "HEAD", "--format", "json", "--all",
        ])
        .success();
    let json: serde_json::Value = serde_json::from_str(&stdout(&assert)).expect("JSON output");
    let rows = json["metrics"].as_array().expect("metric rows");
    let row = |name: &str| {
        rows.iter()
            .find(|row| row["name"] == name)
            .unwrap_or_else(|| panic!("row {name} missing"))
            .clone()
    };
    // (metric, expected verdict, whether a numeric change is shown)
    let cases = [
        ("acc", "regressed", true),
        ("loss", "improved", true),
        ("big", "changed", true),
        ("nan_same", "unchanged", false),
        ("inf", "changed", true),
        ("label", "changed", false),
        ("flag", "changed", false),
        ("gone", "removed", false),
        ("added", "added", false),
        ("none", "unchanged", false),
        ("per_class.0.f1", "changed", true),
        ("per_class.1.f1", "unchanged", false),
        ("unchanged", "unchanged", false),
    ];
    for (name, verdict, has_change) in cases {
        let row = row(name);
        assert_eq!(row["verdict"], verdict, "verdict of {name}");
        assert_eq!(
            !row["change"].is_null(),
            has_change,
            "change column of {name}"
        );
    }
}

#[test]
fn json_keeps_exact_values() {
    let repo = Repo::with_two_revisions();
    let assert = repo
        .mrel(&[
            "diff", "m", "--from", "HEAD~1", "--to", "HEAD", "--format", "json",
        ])
        .success();
    let text = stdout(&assert);
    assert!(text.contains("123456789012345678901234567891"), "{text}");
    assert!(
        text.contains("1.2e-05") || text.contains("0.000012"),
        "{text}"
    );
}

#[test]
fn small_numbers_never_print_as_zero() {
    let repo = Repo::with_two_revisions();
    let assert = repo
        .mrel(&["diff", "m", "--from", "HEAD~1", "--to", "HEAD"])
        .success();
    assert!(stdout(&assert).contains("1.48e-05"), "{}", stdout(&assert));
}

#[test]
fn precision_option_rounds() {
    let repo = Repo::with_two_revisions();
    let assert = repo
        .mrel(&[
            "diff",
            "m",
            "--from",
            "HEAD~1",
            "--to",
            "HEAD",
            "--precision",
            "2",
        ])
        .success();
    assert!(
        stdout(&assert).contains("-0.05 (-5.56%)"),
        "{}",
        stdout(&assert)
    );
}

#[test]
fn unchanged_rows_only_with_all() {
    let repo = Repo::with_two_revisions();
    let without = repo
        .mrel(&["diff", "m", "--from", "HEAD~1", "--to", "HEAD"])
        .success();
    assert!(!stdout(&without).contains("nan_same"));
    let with = repo
        .mrel(&["diff", "m", "--from", "HEAD~1", "--to", "HEAD", "--all"])
        .success();
    assert!(stdout(&with).contains("nan_same"));
}

#[test]
fn nested_params_diff() {
    let repo = Repo::with_two_revisions();
    let assert = repo
        .mrel(&["diff", "m", "--from", "HEAD~1", "--to", "HEAD"])
        .success();
    let text = stdout(&assert);
    assert!(text.contains("optimizer.lr"), "{text}");
    assert!(!text.contains("optimizer.name"), "{text}");
}

#[test]
fn every_gate_verdict_listed() {
    let repo = Repo::with_two_revisions();
    let assert = repo
        .mrel(&[
            "diff", "m", "--from", "HEAD~1", "--to", "HEAD", "--format", "json",
        ])
        .success();
    let json: serde_json::Value = serde_json::from_str(&stdout(&assert)).expect("JSON output");
    let gates = json["gates"].as_array().expect("gate rows");
    let verdict = |metric: &str, check: &str| {
        gates
            .iter()
            .find(|gate| gate["metric"] == metric && gate["check"] == check)
            .map(|gate| (gate["status"].clone(), gate["reason"].clone()))
            .unwrap_or_else(|| panic!("gate {metric} {check} missing"))
    };
    assert_eq!(verdict("acc", "min").0, "passed");
    assert_eq!(verdict("acc", "max_decrease").0, "passed");
    assert_eq!(verdict("loss", "max").0, "passed");
    assert_eq!(verdict("label", "min").1, "the value `vit` is not a number");
    assert_eq!(
        verdict("missing", "max").1,
        "the metric is missing from the metrics file"
    );
}

#[test]
fn markdown_ends_with_blank_line() {
    let repo = Repo::with_two_revisions();
    let assert = repo
        .mrel(&[
            "diff", "m", "--from", "HEAD~1", "--to", "HEAD", "--format", "markdown",
        ])
        .success();
    assert!(stdout(&assert).ends_with("|\n\n"), "{}", stdout(&assert));
    for block in stdout(&assert).split("\n\n") {
        if block.starts_with('|') {
            assert!(block.lines().all(|line| line.starts_with('|')), "{block}");
        }
    }
}

#[test]
fn percent_of_zero_is_config_error() {
    let repo = Repo::new();
    repo.write(
        "release.yaml",
        "model: m\nversion: 1.0.0\nmetrics: metrics.json\ngates:\n  errors: {max_increase: 5%}\n",
    );
    repo.write("metrics.json", r#"{"errors": 0}"#);
    repo.commit("Zero errors");
    repo.write("metrics.json", r#"{"errors": 1}"#);
    repo.commit("One error");
    let assert = repo
        .mrel(&["diff", "m", "--from", "HEAD~1", "--to", "HEAD"])
        .code(2);
    assert!(
        stderr(&assert).contains("previous value, which is 0"),
        "{}",
        stderr(&assert)
    );
}

#[test]
fn unparsable_metrics_name_line_column() {
    let repo = Repo::new();
    repo.write(
        "release.yaml",
        "model: m\nversion: 1.0.0\nmetrics: metrics.json\n",
    );
    repo.write("metrics.json", "{\"a\": 1,\n \"b\": }\n");
    repo.commit("Broken metrics");
    repo.write("metrics.json", "{\"a\": 1}\n");
    let assert = repo
        .mrel(&["diff", "m", "--from", "HEAD", "--to", "workspace"])
        .code(2);
    assert!(
        stderr(&assert).contains("metrics.json@HEAD:2:7: invalid metrics file"),
        "{}",
        stderr(&assert)
    );
}

#[test]
fn colliding_names_are_error() {
    let repo = Repo::new();
    repo.write(
        "release.yaml",
        "model: m\nversion: 1.0.0\nmetrics: metrics.yaml\n",
    );
    repo.write("metrics.yaml", "a.b: 1\na:\n  b: 2\n");
    repo.commit("Colliding metrics");
    let assert = repo
        .mrel(&["diff", "m", "--from", "HEAD", "--to", "workspace"])
        .code(2);
    let message = stderr(&assert);
    assert!(message.contains("`a.b` and `a → b`"), "{message}");
}

#[test]
fn yaml_and_toml_metrics_compare() {
    let repo = Repo::new();
    repo.write(
        "release.yaml",
        "model: m\nversion: 1.0.0\nmetrics: metrics.yaml\n",
    );
    repo.write("metrics.yaml", "loss: .nan\nscore: .inf\nacc: 0.5\n");
    repo.commit("YAML metrics");
    repo.write(
        "release.yaml",
        "model: m\nversion: 1.0.0\nmetrics: metrics.toml\n",
    );
    repo.write("metrics.toml", "loss = nan\nscore = inf\nacc = 0.75\n");
    repo.commit("TOML metrics");
    let assert = repo
        .mrel(&[
            "diff", "m", "--from", "HEAD~1", "--to", "HEAD", "--format", "json",
        ])
        .success();
    let json: serde_json::Value = serde_json::from_str(&stdout(&assert)).expect("JSON output");
    let names: Vec<&str> = json["metrics"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|row| row["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["acc"]);
}

#[test]
fn workspace_side_reads_work_tree() {
    let repo = Repo::with_two_revisions();
    repo.write("metrics.json", &NEW_METRICS.replace("0.85", "0.95"));
    let assert = repo
        .mrel(&[
            "diff",
            "m",
            "--from",
            "HEAD",
            "--to",
            "workspace",
            "--format",
            "json",
        ])
        .success();
    let json: serde_json::Value = serde_json::from_str(&stdout(&assert)).expect("JSON output");
    let acc = json["metrics"]
        .as_array()
        .expect("rows")
        .iter()
        .find(|row| row["name"] == "acc")
        .expect("acc row")
        .clone();
    assert_eq!(acc["new"], serde_json::json!(0.95));
}
