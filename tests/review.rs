//! `mrel review`: reports on the release files that a branch changes since its merge base with
//! the base branch, in real repositories with real branches.

mod common;

use common::{MODEL, ModelFile, TestRepo, stdout_of};
use serde_json::Value;

/// Creates a repository with the demo model released as 1.0.0 on `main`, checked out on a new
/// branch `feature`.
fn released_repo(model: &ModelFile) -> TestRepo {
    let repo = TestRepo::with_model(model);
    repo.release_unsigned();
    repo.git(&["checkout", "--quiet", "-b", "feature"]);
    repo
}

/// Runs `mrel review --base main --format json` with `extra` arguments, asserts the exit code,
/// and returns the parsed report.
fn review_json(repo: &TestRepo, extra: &[&str], code: i32) -> Value {
    let mut args = vec!["review", "--base", "main", "--format", "json"];
    args.extend_from_slice(extra);
    let assert = repo.mrel(&args).assert().code(code);
    serde_json::from_str(&stdout_of(assert.get_output())).expect("the report is JSON")
}

/// Returns the review of the only changed file.
fn only_file(report: &Value) -> &Value {
    let files = report["files"].as_array().expect("files is a list");
    assert_eq!(files.len(), 1, "one changed file expected in {report:#}");
    &files[0]
}

fn review_markdown(repo: &TestRepo, code: i32) -> String {
    let assert = repo
        .mrel(&["review", "--base", "main", "--format", "markdown"])
        .assert()
        .code(code);
    stdout_of(assert.get_output())
}

#[test]
fn review_summarizes_version_and_params() {
    let repo = released_repo(&ModelFile::new("1.0.0", 50));
    repo.commit_model(&ModelFile::new("1.1.0", 60));

    let report = review_json(&repo, &[], 0);
    let file = only_file(&report);
    assert_eq!(file["change"], "modified");
    assert_eq!(file["summary"]["version"]["old"], "1.0.0");
    assert_eq!(file["summary"]["version"]["new"], "1.1.0");
    assert_eq!(
        file["summary"]["params"],
        serde_json::json!([{"name": "epochs", "old": 50, "new": 60}])
    );
    assert_eq!(file["release"]["tag"], "demo@v1.1.0");
    assert_eq!(file["release"]["exists"], false);
    assert_eq!(file["release"]["latest"], "1.0.0");
    assert_eq!(file["passed"], true);
}

#[test]
fn review_classifies_gate_changes() {
    let before = ModelFile::new("1.0.0", 50)
        .gate("accuracy: {min: 0.4, max_decrease: 0.05}")
        .gate("loss: {max: 2}");
    // No release: training would fail the gate on `loss`, which the demo model does not report.
    let repo = TestRepo::with_model(&before);
    repo.git(&["checkout", "--quiet", "-b", "feature"]);
    let after = ModelFile::new("1.1.0", 50)
        .gate("accuracy: {min: 0.3, max_decrease: 0.01}")
        .gate("latency: {max: 10}");
    repo.commit_model(&after);

    let report = review_json(&repo, &[], 0);
    let gates = only_file(&report)["summary"]["gates"]
        .as_array()
        .expect("gates is a list")
        .iter()
        .map(|change| {
            format!(
                "{} {} {}",
                change["metric"].as_str().expect("metric"),
                change["check"].as_str().expect("check"),
                change["effect"].as_str().expect("effect")
            )
        })
        .collect::<Vec<_>>();
    assert_eq!(
        gates,
        [
            "accuracy min loosened",
            "accuracy max_decrease tightened",
            "latency max tightened",
            "loss max loosened",
        ]
    );
}

#[test]
fn review_classifies_promotion_changes() {
    let model = |version: &str, soak: &str, min: &str| {
        let mut text = ModelFile::new(version, 50)
            .stages(&["dev", "production"])
            .to_yaml();
        text.push_str(&format!(
            "promotion:\n  production:\n    soak: {soak}\n    gates:\n      accuracy: {{min: {min}}}\n"
        ));
        text
    };
    let repo = TestRepo::new();
    repo.write_model(&ModelFile::new("1.0.0", 50));
    repo.write("release.yaml", &model("1.0.0", "2d", "0.4"));
    repo.commit_all("Add the demo model");
    repo.git(&["checkout", "--quiet", "-b", "feature"]);
    repo.write("release.yaml", &model("1.1.0", "1h", "0.5"));
    repo.commit_all("Change the promotion rule");

    let report = review_json(&repo, &[], 0);
    let summary = &only_file(&report)["summary"];
    assert_eq!(
        summary["soak"],
        serde_json::json!([{"stage": "production", "old": "2d", "new": "1h", "effect": "loosened"}])
    );
    let gate = &summary["gates"][0];
    assert_eq!(gate["scope"], "promotion");
    assert_eq!(gate["stage"], "production");
    assert_eq!(gate["metric"], "accuracy");
    assert_eq!(gate["effect"], "tightened");
}

#[test]
fn review_reports_stage_changes() {
    let repo = released_repo(&ModelFile::new("1.0.0", 50).stages(&["dev", "production"]));
    repo.commit_model(&ModelFile::new("1.1.0", 50).stages(&["dev", "staging", "production"]));

    let report = review_json(&repo, &[], 0);
    let stages = &only_file(&report)["summary"]["stages"];
    assert_eq!(stages["old"], serde_json::json!(["dev", "production"]));
    assert_eq!(
        stages["new"],
        serde_json::json!(["dev", "staging", "production"])
    );
}

#[test]
fn review_flags_training_command_first() {
    let repo = released_repo(&ModelFile::new("1.0.0", 50));
    repo.commit_model(&ModelFile::new("1.1.0", 50).command("sh train.sh && curl example.com"));

    let markdown = review_markdown(&repo, 0);
    let warning = markdown
        .find("The training command changed")
        .unwrap_or_else(|| panic!("no warning in:\n{markdown}"));
    let validation = markdown.find("**Validation:**").expect("a validation line");
    assert!(
        warning < validation,
        "the warning comes after the validation in:\n{markdown}"
    );
    assert!(markdown.contains("after: `sh train.sh && curl example.com`"));
}

#[test]
fn review_markdown_starts_with_marker() {
    let repo = released_repo(&ModelFile::new("1.0.0", 50));
    repo.commit_model(&ModelFile::new("1.1.0", 60));

    let markdown = review_markdown(&repo, 0);
    assert_eq!(markdown.lines().next(), Some("<!-- mrel-review -->"));
}

#[test]
fn review_markdown_folds_long_diff() {
    let repo = released_repo(&ModelFile::new("1.0.0", 50));
    let mut model = ModelFile::new("1.1.0", 60);
    for index in 0..30 {
        model = model.gate(&format!("metric_{index}: {{min: 0.{index}}}"));
    }
    repo.commit_model(&model);

    let markdown = review_markdown(&repo, 0);
    let details = markdown
        .find("<details><summary>Diff (+")
        .unwrap_or_else(|| panic!("no folded diff in:\n{markdown}"));
    let fence = markdown.find("```diff").expect("a diff block");
    assert!(
        details < fence,
        "the diff is outside <details>:\n{markdown}"
    );
}

#[test]
fn review_markdown_shows_short_diff_unfolded() {
    let repo = released_repo(&ModelFile::new("1.0.0", 50));
    repo.commit_model(&ModelFile::new("1.1.0", 60));

    let markdown = review_markdown(&repo, 0);
    assert!(!markdown.contains("<details>"), "folded:\n{markdown}");
    assert!(markdown.contains("-version: 1.0.0\n+version: 1.1.0\n"));
}

#[test]
fn review_reports_invalid_file_with_line() {
    let repo = released_repo(&ModelFile::new("1.0.0", 50));
    let mut text = ModelFile::new("1.1.0", 60).to_yaml();
    let colour_line = text.lines().count() + 1;
    text.push_str("colour: blue\n");
    repo.write("release.yaml", &text);
    repo.commit_all("Break the release file");

    let report = review_json(&repo, &[], 1);
    let file = only_file(&report);
    assert_eq!(file["valid"], false);
    let problem = &file["problems"][0];
    assert_eq!(problem["field"], "colour");
    assert_eq!(problem["line"], colour_line);
    assert_eq!(problem["column"], 1);
    assert_eq!(report["passed"], false);
}

#[test]
fn review_reports_every_problem() {
    let repo = released_repo(&ModelFile::new("1.0.0", 50));
    repo.write(
        "release.yaml",
        "model: Bad Name\nversion: v2\ncolour: blue\n",
    );
    repo.commit_all("Break the release file");

    let markdown = review_markdown(&repo, 1);
    assert!(
        markdown.contains("**Validation:** 3 problems"),
        "{markdown}"
    );
    assert!(markdown.contains("- line 1, column 8, field `model`: invalid model name"));
    assert!(markdown.contains("- line 2, column 10, field `version`: invalid version"));
    assert!(markdown.contains("- line 3, column 1, field `colour`: unknown field"));
}

#[test]
fn review_rejects_existing_tag() {
    let repo = released_repo(&ModelFile::new("1.0.0", 50));
    repo.commit_model(&ModelFile::new("1.0.0", 60));

    let report = review_json(&repo, &[], 1);
    let release = &only_file(&report)["release"];
    assert_eq!(release["exists"], true);
    let problem = release["problems"][0].as_str().expect("a problem");
    assert!(
        problem.contains("tag demo@v1.0.0 already exists"),
        "{problem}"
    );
}

#[test]
fn review_rejects_version_below_latest() {
    let repo = TestRepo::with_model(&ModelFile::new("1.0.0", 50));
    repo.release_unsigned();
    repo.commit_model(&ModelFile::new("2.0.0", 50));
    repo.release_unsigned();
    repo.git(&["checkout", "--quiet", "-b", "feature"]);
    repo.commit_model(&ModelFile::new("1.5.0", 60));

    let report = review_json(&repo, &[], 1);
    let problem = only_file(&report)["release"]["problems"][0]
        .as_str()
        .expect("a problem")
        .to_owned();
    assert!(
        problem.contains("1.5.0 is not greater than the latest release 2.0.0"),
        "{problem}"
    );
}

#[test]
fn review_rejects_deregistered_version() {
    let repo = TestRepo::with_model(&ModelFile::new("1.0.0", 50));
    repo.release_unsigned();
    repo.commit_model(&ModelFile::new("1.1.0", 60));
    repo.release_unsigned();
    repo.mrel(&["deprecate", MODEL, "1.1.0", "--no-sign"])
        .assert()
        .success();
    repo.git(&["checkout", "--quiet", "-b", "feature"]);
    repo.commit_model(&ModelFile::new("1.1.0", 70));

    let report = review_json(&repo, &[], 1);
    let release = &only_file(&report)["release"];
    assert_eq!(release["deregistered"], true);
    assert_eq!(release["latest"], "1.0.0");
    let problem = release["problems"][0].as_str().expect("a problem");
    assert!(problem.contains("was deregistered"), "{problem}");
}

#[test]
fn review_gate_failure_exits_1() {
    let repo = released_repo(&ModelFile::new("1.0.0", 50).gate("accuracy: {min: 0.45}"));
    repo.commit_model(&ModelFile::new("1.1.0", 40).gate("accuracy: {min: 0.45}"));
    let metrics = repo.scratch().join("metrics.json");
    std::fs::write(&metrics, r#"{"accuracy": 0.4}"#).expect("write the metrics file");

    let report = review_json(
        &repo,
        &["--metrics", metrics.to_str().expect("UTF-8 path")],
        1,
    );
    let review = &only_file(&report)["metrics"];
    assert_eq!(review["compared_with"], "demo@v1.0.0");
    assert_eq!(review["gates"][0]["status"], "failed");
    assert_eq!(review["rows"][0]["name"], "accuracy");
    assert_eq!(review["rows"][0]["old"], 0.5);
    assert_eq!(review["rows"][0]["new"], 0.4);
}

#[test]
fn review_gate_pass_exits_0() {
    let repo = released_repo(&ModelFile::new("1.0.0", 50).gate("accuracy: {min: 0.45}"));
    repo.commit_model(&ModelFile::new("1.1.0", 60).gate("accuracy: {min: 0.45}"));
    let metrics = repo.scratch().join("metrics.json");
    std::fs::write(&metrics, r#"{"accuracy": 0.6}"#).expect("write the metrics file");

    let report = review_json(
        &repo,
        &["--metrics", &format!("{MODEL}={}", metrics.display())],
        0,
    );
    assert_eq!(
        only_file(&report)["metrics"]["gates"][0]["status"],
        "passed"
    );
}

#[test]
fn review_reads_tracked_metrics_at_head() {
    let repo = released_repo(&ModelFile::new("1.0.0", 50).gate("accuracy: {min: 0.45}"));
    repo.commit_model(&ModelFile::new("1.1.0", 40).gate("accuracy: {min: 0.45}"));
    repo.write("out/metrics.json", r#"{"accuracy": 0.4}"#);
    repo.git(&["add", "--force", "out/metrics.json"]);
    repo.git(&["commit", "--quiet", "--message", "Track the metrics"]);
    // The work tree contains other metrics; the review reads the committed ones.
    repo.write("out/metrics.json", r#"{"accuracy": 0.9}"#);

    let report = review_json(&repo, &[], 1);
    let review = &only_file(&report)["metrics"];
    assert_eq!(review["source"], "out/metrics.json at HEAD");
    assert_eq!(review["rows"][0]["new"], 0.4);
}

#[test]
fn review_without_metrics_notes_it() {
    let repo = released_repo(&ModelFile::new("1.0.0", 50));
    repo.commit_model(&ModelFile::new("1.1.0", 60));

    let report = review_json(&repo, &[], 0);
    let file = only_file(&report);
    assert_eq!(file["metrics"], Value::Null);
    let note = file["notes"][0].as_str().expect("a note");
    assert!(note.contains("out/metrics.json is not tracked"), "{note}");
}

#[test]
fn review_uses_merge_base() {
    let repo = TestRepo::new();
    repo.write(
        "models/a/release.yaml",
        "model: a\nversion: 1.0.0\nparams: {epochs: 1}\n",
    );
    repo.write(
        "models/b/release.yaml",
        "model: b\nversion: 1.0.0\nparams: {epochs: 1}\n",
    );
    repo.commit_all("Add two models");
    repo.git(&["checkout", "--quiet", "-b", "feature"]);
    repo.write(
        "models/a/release.yaml",
        "model: a\nversion: 1.1.0\nparams: {epochs: 2}\n",
    );
    repo.commit_all("Raise a");
    // main moves on after the branch point; the review must not show main's change.
    repo.git(&["checkout", "--quiet", "main"]);
    repo.write(
        "models/b/release.yaml",
        "model: b\nversion: 1.1.0\nparams: {epochs: 2}\n",
    );
    repo.commit_all("Raise b");
    repo.git(&["checkout", "--quiet", "feature"]);

    let report = review_json(&repo, &[], 0);
    assert_eq!(only_file(&report)["path"], "models/a/release.yaml");
    let merge_base = repo.git(&["merge-base", "main", "feature"]);
    assert_eq!(report["merge_base"], merge_base.as_str());
}

#[test]
fn review_lists_added_and_removed_files() {
    let repo = TestRepo::new();
    repo.write("models/old/release.yaml", "model: old\nversion: 1.0.0\n");
    repo.commit_all("Add a model");
    repo.git(&["checkout", "--quiet", "-b", "feature"]);
    repo.git(&["rm", "--quiet", "models/old/release.yaml"]);
    repo.write(
        "models/new/release.yaml",
        "model: new\nversion: 0.1.0\ntrain: {command: python3 train.py}\n",
    );
    repo.commit_all("Replace the model");

    let report = review_json(&repo, &[], 0);
    let files = report["files"].as_array().expect("files is a list");
    let changes: Vec<(&str, &str)> = files
        .iter()
        .map(|file| {
            (
                file["path"].as_str().expect("path"),
                file["change"].as_str().expect("change"),
            )
        })
        .collect();
    assert_eq!(
        changes,
        [
            ("models/new/release.yaml", "added"),
            ("models/old/release.yaml", "removed")
        ]
    );
    assert_eq!(
        files[0]["summary"]["training_command"],
        serde_json::json!({"old": null, "new": "python3 train.py"})
    );
    assert_eq!(files[1]["model"], "old");
}

#[test]
fn review_rejects_duplicate_model() {
    let repo = TestRepo::new();
    repo.write("models/a/release.yaml", "model: a\nversion: 1.0.0\n");
    repo.commit_all("Add a model");
    repo.git(&["checkout", "--quiet", "-b", "feature"]);
    repo.write("models/copy/release.yaml", "model: a\nversion: 2.0.0\n");
    repo.commit_all("Copy the model");

    let report = review_json(&repo, &[], 1);
    let problem = &only_file(&report)["problems"][0];
    assert_eq!(problem["field"], "model");
    let message = problem["message"].as_str().expect("a message");
    assert!(
        message.contains("also declared in models/a/release.yaml"),
        "{message}"
    );
}

#[test]
fn review_without_changes_passes() {
    let repo = released_repo(&ModelFile::new("1.0.0", 50));
    repo.write("README.md", "A change that is not a release file.\n");
    repo.commit_all("Add a readme");

    let report = review_json(&repo, &[], 0);
    assert_eq!(report["files"], serde_json::json!([]));
    let markdown = review_markdown(&repo, 0);
    assert!(markdown.contains("## mrel review: no release file changed"));
}

#[test]
fn review_unknown_base_exits_2() {
    let repo = released_repo(&ModelFile::new("1.0.0", 50));
    let assert = repo
        .mrel(&["review", "--base", "no-such-branch"])
        .assert()
        .code(2);
    let stderr = common::stderr_of(assert.get_output());
    assert!(stderr.contains("no-such-branch"), "{stderr}");
}

#[test]
fn review_ambiguous_metrics_exits_2() {
    let repo = TestRepo::new();
    repo.write("models/a/release.yaml", "model: a\nversion: 1.0.0\n");
    repo.write("models/b/release.yaml", "model: b\nversion: 1.0.0\n");
    repo.commit_all("Add two models");
    repo.git(&["checkout", "--quiet", "-b", "feature"]);
    repo.write("models/a/release.yaml", "model: a\nversion: 1.1.0\n");
    repo.write("models/b/release.yaml", "model: b\nversion: 1.1.0\n");
    repo.commit_all("Raise both");

    let assert = repo
        .mrel(&["review", "--base", "main", "--metrics", "metrics.json"])
        .assert()
        .code(2);
    let stderr = common::stderr_of(assert.get_output());
    assert!(stderr.contains("name the model"), "{stderr}");
}

#[test]
fn review_missing_metrics_file_exits_2() {
    let repo = released_repo(&ModelFile::new("1.0.0", 50));
    repo.commit_model(&ModelFile::new("1.1.0", 60));

    let assert = repo
        .mrel(&["review", "--base", "main", "--metrics", "missing.json"])
        .assert()
        .code(2);
    assert!(stdout_of(assert.get_output()).is_empty());
}

#[test]
fn review_text_flags_training_command() {
    let repo = released_repo(&ModelFile::new("1.0.0", 50));
    repo.commit_model(&ModelFile::new("1.1.0", 50).command("sh train.sh --fast"));

    let assert = repo.mrel(&["review", "--base", "main"]).assert().success();
    let text = stdout_of(assert.get_output());
    let lines: Vec<&str> = text.lines().collect();
    let heading = lines
        .iter()
        .position(|line| line.starts_with("release.yaml (modified): demo 1.0.0 → 1.1.0"))
        .unwrap_or_else(|| panic!("no heading in:\n{text}"));
    assert_eq!(
        lines[heading + 1],
        "  WARNING: The training command changed, and CI runs the new one on release:"
    );
    assert_eq!(lines[heading + 3], "    after: sh train.sh --fast");
}

#[test]
fn review_shallow_clone_exits_2() {
    let repo = TestRepo::with_model(&ModelFile::new("1.0.0", 50));
    repo.git(&["checkout", "--quiet", "-b", "feature"]);
    repo.commit_model(&ModelFile::new("1.1.0", 60));
    repo.write("notes.txt", "a second commit on the branch\n");
    repo.commit_all("Add notes");
    let clone = repo.scratch().join("shallow");
    let source = format!("file://{}", repo.root().display());
    repo.git(&[
        "clone",
        "--quiet",
        "--depth",
        "1",
        "--no-single-branch",
        "--branch",
        "feature",
        &source,
        clone.to_str().expect("UTF-8 path"),
    ]);

    let clone_dir = clone.to_str().expect("UTF-8 path");
    let assert = repo
        .mrel(&["-C", clone_dir, "review", "--base", "origin/main"])
        .assert()
        .code(2);
    let stderr = common::stderr_of(assert.get_output());
    assert!(stderr.contains("git fetch --unshallow"), "{stderr}");
}
