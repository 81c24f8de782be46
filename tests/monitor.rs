//! `mrel monitor`: live metrics judged against the release record of the version in a stage.

mod common;

use common::{MODEL, ModelFile, TestRepo, release_record, stderr_of, stdout_of};

const MONITOR: &str = "monitor:\n  accuracy: {min: 0.4, max_decrease: 10%}\n";

/// Releases 1.0.0 (accuracy 0.5) and 1.1.0 (accuracy 0.6), both put in `prod` in that order.
fn production_repo() -> TestRepo {
    let first = ModelFile::new("1.0.0", 50).stages(&["prod"]);
    let repo = TestRepo::new();
    repo.write_model(&first);
    repo.write("release.yaml", &format!("{}{MONITOR}", first.to_yaml()));
    repo.commit_all("Add the demo model");
    repo.release_unsigned();
    let second = ModelFile::new("1.1.0", 60).stages(&["prod"]);
    repo.write("release.yaml", &format!("{}{MONITOR}", second.to_yaml()));
    repo.commit_all("Train longer");
    repo.release_unsigned();
    for version in ["1.0.0", "1.1.0"] {
        repo.mrel(&["promote", MODEL, version, "prod", "--no-sign"])
            .assert()
            .success();
    }
    repo
}

fn live_metrics(repo: &TestRepo, accuracy: f64) -> String {
    let path = repo.scratch().join("live.json");
    std::fs::write(
        &path,
        format!("{{\"accuracy\": {accuracy}, \"latency_ms\": 12}}"),
    )
    .expect("write live metrics");
    path.display().to_string()
}

fn in_prod(repo: &TestRepo) -> serde_json::Value {
    let output = repo
        .mrel(&["status", MODEL, "--format", "json"])
        .output()
        .expect("mrel runs");
    let json: serde_json::Value = serde_json::from_str(&stdout_of(&output)).expect("JSON output");
    json[0]["stages"]["prod"]["version"].clone()
}

#[test]
fn passing_check_exits_zero() {
    let repo = production_repo();
    let live = live_metrics(&repo, 0.58);
    let output = repo
        .mrel(&[
            "monitor",
            MODEL,
            "--stage",
            "prod",
            "--metrics",
            &live,
            "--format",
            "json",
        ])
        .output()
        .expect("mrel runs");
    assert!(output.status.success(), "{}", stderr_of(&output));
    let json: serde_json::Value = serde_json::from_str(&stdout_of(&output)).expect("JSON output");
    assert_eq!(json["version"], "1.1.0");
    assert_eq!(json["passed"], true);
    assert_eq!(json["unrecorded"], serde_json::json!(["latency_ms"]));
}

#[test]
fn failing_check_changes_nothing() {
    let repo = production_repo();
    let tags_before = repo.tags();
    // 0.5 is more than 10% below the 0.6 recorded at release.
    let live = live_metrics(&repo, 0.5);
    let output = repo
        .mrel(&["monitor", MODEL, "--stage", "prod", "--metrics", &live])
        .output()
        .expect("mrel runs");
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stdout_of(&output).contains("FAILED"),
        "{}",
        stdout_of(&output)
    );
    assert_eq!(repo.tags(), tags_before);
    assert_eq!(in_prod(&repo), "1.1.0");
}

#[test]
fn failing_check_rolls_back() {
    let repo = production_repo();
    repo.configure_ssh_signing();
    let live = live_metrics(&repo, 0.5);
    let output = repo
        .mrel(&[
            "monitor",
            MODEL,
            "--stage",
            "prod",
            "--metrics",
            &live,
            "--rollback",
        ])
        .output()
        .expect("mrel runs");
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(in_prod(&repo), "1.0.0");

    let tag = "demo#prod#3";
    let verified = repo.git_output(&["verify-tag", tag]);
    assert!(verified.status.success(), "{}", stderr_of(&verified));
    let record = release_record(&repo.tag_object(tag));
    assert_eq!(record["event"], "rollback");
    assert_eq!(record["replaces"], "1.1.0");
    let reason = record["reason"].as_str().expect("a reason");
    assert!(
        reason.contains("accuracy live 0.5 against release 0.6"),
        "{reason}"
    );
    assert!(reason.contains("max_decrease 10%"), "{reason}");
}

#[test]
fn missing_live_metric_fails_gate() {
    let repo = production_repo();
    let path = repo.scratch().join("live.json");
    std::fs::write(&path, "{\"latency_ms\": 12}").expect("write live metrics");
    let output = repo
        .mrel(&[
            "monitor",
            MODEL,
            "--stage",
            "prod",
            "--metrics",
            &path.display().to_string(),
        ])
        .output()
        .expect("mrel runs");
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stdout_of(&output).contains("missing"),
        "{}",
        stdout_of(&output)
    );
}

#[test]
fn no_previous_holder_creates_no_tag() {
    let model = ModelFile::new("1.0.0", 50).stages(&["prod"]);
    let repo = TestRepo::new();
    repo.write_model(&model);
    repo.write("release.yaml", &format!("{}{MONITOR}", model.to_yaml()));
    repo.commit_all("Add the demo model");
    repo.release_unsigned();
    repo.mrel(&["promote", MODEL, "1.0.0", "prod", "--no-sign"])
        .assert()
        .success();
    let tags_before = repo.tags();
    let live = live_metrics(&repo, 0.1);
    let output = repo
        .mrel(&[
            "monitor",
            MODEL,
            "--stage",
            "prod",
            "--metrics",
            &live,
            "--rollback",
            "--no-sign",
        ])
        .output()
        .expect("mrel runs");
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr_of(&output).contains("to roll back to"),
        "{}",
        stderr_of(&output)
    );
    assert_eq!(repo.tags(), tags_before);
}

#[test]
fn second_failure_keeps_rolled_back_version_out() {
    let repo = production_repo();
    let failing = live_metrics(&repo, 0.5);
    repo.mrel(&[
        "monitor",
        MODEL,
        "--stage",
        "prod",
        "--metrics",
        &failing,
        "--rollback",
        "--no-sign",
    ])
    .assert()
    .code(1);
    assert_eq!(in_prod(&repo), "1.0.0");

    // A broken export fails every gate again; 1.1.0, which the first rollback took out, must
    // not come back.
    let empty = repo.scratch().join("empty.json");
    std::fs::write(&empty, "{}").expect("write live metrics");
    let output = repo
        .mrel(&[
            "monitor",
            MODEL,
            "--stage",
            "prod",
            "--metrics",
            &empty.display().to_string(),
            "--rollback",
            "--no-sign",
        ])
        .output()
        .expect("mrel runs");
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr_of(&output).contains("skipping 1.1.0"),
        "{}",
        stderr_of(&output)
    );
    assert_eq!(in_prod(&repo), "1.0.0");
}
