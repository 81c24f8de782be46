//! `mrel check`: every problem of a release file is reported with its file, line, column and
//! field, and the exit code is 2.

mod common;

use common::{TestRepo, stderr_of, stdout_of};

/// Writes `text` to `bad/release.yaml`, runs `mrel check` on it, asserts exit code 2, and
/// returns stdout.
fn check_file(text: &str) -> String {
    let repo = TestRepo::new();
    repo.write("bad/release.yaml", text);
    let assert = repo.mrel(&["check", "bad/release.yaml"]).assert().code(2);
    stdout_of(assert.get_output())
}

/// Asserts that one line of `output` starts with `prefix` and contains `message`.
fn assert_problem(output: &str, prefix: &str, message: &str) {
    let line = output
        .lines()
        .find(|line| line.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starts with `{prefix}` in:\n{output}"));
    assert!(
        line.contains(message),
        "`{line}` does not contain `{message}`"
    );
}

#[test]
fn check_reports_unknown_field() {
    let output = check_file("model: demo\nversion: 1.0.0\ncolour: blue\n");
    assert_problem(
        &output,
        "bad/release.yaml:3:1: field `colour`: ",
        "unknown field",
    );
}

#[test]
fn check_reports_duplicate_key() {
    let output = check_file("model: demo\nversion: 1.0.0\nversion: 1.1.0\n");
    assert_problem(
        &output,
        "bad/release.yaml:3:1: field `version`: ",
        "duplicate key",
    );
}

#[test]
fn check_reports_wrong_type() {
    let output = check_file("model: demo\nversion: 1.0.0\nstages: production\n");
    assert_problem(
        &output,
        "bad/release.yaml:3:9: field `stages`: ",
        "expected a list of strings, found a string",
    );
}

#[test]
fn check_reports_invalid_model_name() {
    let output = check_file("model: Bad Name\nversion: 1.0.0\n");
    assert_problem(
        &output,
        "bad/release.yaml:1:8: field `model`: ",
        "invalid model name `Bad Name`",
    );
}

#[test]
fn check_reports_invalid_version() {
    let output = check_file("model: demo\nversion: 1.0\n");
    assert_problem(
        &output,
        "bad/release.yaml:2:10: field `version`: ",
        "invalid version `1.0`",
    );
}

#[test]
fn check_reports_path_leaving_repository() {
    let output = check_file("model: demo\nversion: 1.0.0\nmetrics: ../../metrics.json\n");
    assert_problem(
        &output,
        "bad/release.yaml:3:10: field `metrics`: ",
        "leaves the repository",
    );
}

#[test]
fn check_reports_duplicate_model() {
    let repo = TestRepo::new();
    repo.write("first/release.yaml", "model: same\nversion: 1.0.0\n");
    repo.write("second/release.yaml", "version: 2.0.0\nmodel: same\n");
    repo.commit_all("Declare one model in two files");

    // Without paths, check reads every tracked release.yaml.
    let assert = repo.mrel(&["check"]).assert().code(2);
    let output = stdout_of(assert.get_output());
    assert_problem(
        &output,
        "second/release.yaml:2:8: field `model`: ",
        "also declared in first/release.yaml",
    );
}

#[test]
fn check_reports_all_three_problems() {
    let repo = TestRepo::new();
    repo.write(
        "bad/release.yaml",
        "model: Bad Name\nversion: v1.0.0\ncolour: blue\n",
    );

    let assert = repo.mrel(&["check", "bad/release.yaml"]).assert().code(2);
    let output = stdout_of(assert.get_output());
    assert_problem(
        &output,
        "bad/release.yaml:1:8: field `model`: ",
        "invalid model name",
    );
    assert_problem(
        &output,
        "bad/release.yaml:2:10: field `version`: ",
        "invalid version",
    );
    assert_problem(
        &output,
        "bad/release.yaml:3:1: field `colour`: ",
        "unknown field",
    );
    let stderr = stderr_of(assert.get_output());
    assert!(
        stderr.contains("3 problems found"),
        "problem count:\n{stderr}"
    );
}
