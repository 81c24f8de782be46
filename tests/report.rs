//! `mrel diff` and `mrel status` over real releases.

mod common;

use common::{MODEL, ModelFile, TestRepo, stdout_of};

/// Creates a repository with releases 1.0.0 (accuracy 0.62) and 1.1.0 (accuracy 0.75).
fn two_releases() -> TestRepo {
    let repo = TestRepo::with_model(&ModelFile::new("1.0.0", 62));
    repo.release_unsigned();
    repo.commit_model(&ModelFile::new("1.1.0", 75));
    repo.release_unsigned();
    repo
}

#[test]
fn diff_json_has_changed_metric() {
    let repo = two_releases();

    let assert = repo
        .mrel(&["diff", MODEL, "--format", "json"])
        .assert()
        .success();
    let diff: serde_json::Value =
        serde_json::from_str(&stdout_of(assert.get_output())).expect("diff output is JSON");
    assert_eq!(diff["from"], "demo@v1.0.0");
    assert_eq!(diff["to"], "demo@v1.1.0");
    let rows = diff["metrics"].as_array().expect("metrics is a list");
    let accuracy = rows
        .iter()
        .find(|row| row["name"] == "accuracy")
        .unwrap_or_else(|| panic!("no accuracy row in {rows:?}"));
    assert_eq!(accuracy["old"].as_f64(), Some(0.62));
    assert_eq!(accuracy["new"].as_f64(), Some(0.75));
    assert_eq!(accuracy["verdict"], "changed");
}

#[test]
fn diff_markdown_ends_with_blank_line() {
    let repo = two_releases();

    let assert = repo
        .mrel(&["diff", MODEL, "--format", "markdown"])
        .assert()
        .success();
    let output = stdout_of(assert.get_output());
    assert!(
        output.contains("| accuracy | 0.62 | 0.75 |"),
        "metrics table:\n{output}"
    );
    assert!(
        output.ends_with("|\n\n"),
        "the last table is not followed by a blank line: {output:?}"
    );
}

#[test]
fn status_orders_versions_by_semver() {
    let repo = TestRepo::with_model(&ModelFile::new("1.2.0", 40));
    repo.release_unsigned();
    repo.commit_model(&ModelFile::new("1.10.0", 50));
    repo.release_unsigned();

    let assert = repo
        .mrel(&["status", "--format", "json"])
        .assert()
        .success();
    let status: serde_json::Value =
        serde_json::from_str(&stdout_of(assert.get_output())).expect("status output is JSON");
    let models = status.as_array().expect("status is a list");
    assert_eq!(models.len(), 1);
    assert_eq!(models[0]["model"], MODEL);
    assert_eq!(models[0]["latest"], "1.10.0");
    assert_eq!(models[0]["tag"], "demo@v1.10.0");
}
