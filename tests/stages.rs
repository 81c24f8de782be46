//! Stage promotion, rollback, deprecation and history against real repositories.

mod common;

use common::{MODEL, ModelFile, TestRepo, release_record, stderr_of, stdout_of};

const STAGES: &[&str] = &["dev", "staging", "production"];

/// A repository with one unsigned release per version, each on its own commit.
fn released(versions: &[&str]) -> TestRepo {
    let model = |index: usize| {
        let epochs = 50 + u32::try_from(index).expect("few versions");
        ModelFile::new(versions[index], epochs).stages(STAGES)
    };
    let repo = TestRepo::with_model(&model(0));
    repo.release_unsigned();
    for index in 1..versions.len() {
        repo.commit_model(&model(index));
        repo.release_unsigned();
    }
    repo
}

fn promote(repo: &TestRepo, version: &str, stage: &str) -> std::process::Output {
    repo.mrel(&["promote", MODEL, version, stage, "--no-sign"])
        .output()
        .expect("mrel runs")
}

fn promoted(repo: &TestRepo, version: &str, stage: &str) -> String {
    let output = promote(repo, version, stage);
    assert!(output.status.success(), "{}", stderr_of(&output));
    stdout_of(&output).trim().to_owned()
}

fn in_stage(repo: &TestRepo, stage: &str) -> serde_json::Value {
    let output = repo
        .mrel(&["status", MODEL, "--format", "json"])
        .output()
        .expect("mrel runs");
    let json: serde_json::Value = serde_json::from_str(&stdout_of(&output)).expect("JSON output");
    json[0]["stages"][stage]["version"].clone()
}

#[test]
fn promotion_follows_declared_path() {
    let repo = released(&["1.0.0"]);
    let skipped = promote(&repo, "1.0.0", "staging");
    assert_eq!(skipped.status.code(), Some(1));
    assert!(
        stderr_of(&skipped).contains("has not been in dev"),
        "{}",
        stderr_of(&skipped)
    );
    assert_eq!(promoted(&repo, "1.0.0", "dev"), "demo#dev#1");
    assert_eq!(promoted(&repo, "1.0.0", "staging"), "demo#staging#2");
    assert_eq!(in_stage(&repo, "staging"), "1.0.0");
}

#[test]
fn forced_promotion_records_reason() {
    let repo = released(&["1.0.0"]);
    repo.mrel(&[
        "promote",
        MODEL,
        "1.0.0",
        "production",
        "--force",
        "--reason",
        "hotfix",
        "--no-sign",
    ])
    .assert()
    .success();
    let record = release_record(&repo.tag_object("demo#production#1"));
    assert_eq!(record["forced"], true);
    assert_eq!(record["reason"], "hotfix");
}

#[test]
fn stage_case_mismatch_names_declared() {
    let repo = released(&["1.0.0"]);
    let output = promote(&repo, "1.0.0", "Dev");
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr_of(&output).contains("did you mean `dev`"),
        "{}",
        stderr_of(&output)
    );
    assert!(
        repo.tags().iter().all(|tag| !tag.contains('#')),
        "{:?}",
        repo.tags()
    );
}

#[test]
fn rollback_uses_stage_history() {
    let repo = released(&["1.0.0", "1.1.0", "2.0.0"]);
    promoted(&repo, "1.0.0", "dev");
    promoted(&repo, "2.0.0", "dev");
    promoted(&repo, "1.1.0", "dev");
    repo.mrel(&[
        "rollback",
        MODEL,
        "dev",
        "--reason",
        "latency regression",
        "--no-sign",
    ])
    .assert()
    .success();
    // The holder before 1.1.0 was 2.0.0, although 1.0.0 is the greater version below 1.1.0.
    assert_eq!(in_stage(&repo, "dev"), "2.0.0");
}

#[test]
fn rollback_record_names_replaced_version() {
    let repo = released(&["1.0.0", "1.1.0"]);
    promoted(&repo, "1.0.0", "dev");
    promoted(&repo, "1.1.0", "dev");
    let output = repo
        .mrel(&[
            "rollback",
            MODEL,
            "dev",
            "--reason",
            "accuracy dropped",
            "--no-sign",
        ])
        .output()
        .expect("mrel runs");
    let tag = stdout_of(&output).trim().to_owned();
    let record = release_record(&repo.tag_object(&tag));
    assert_eq!(record["event"], "rollback");
    assert_eq!(record["version"], "1.0.0");
    assert_eq!(record["replaces"], "1.1.0");
    assert_eq!(record["reason"], "accuracy dropped");
}

#[test]
fn rollback_without_previous_holder_fails() {
    let repo = released(&["1.0.0"]);
    promoted(&repo, "1.0.0", "dev");
    let tags_before = repo.tags();
    let output = repo
        .mrel(&["rollback", MODEL, "dev", "--reason", "none", "--no-sign"])
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
fn counter_follows_highest_of_model() {
    let repo = released(&["1.0.0"]);
    repo.git(&["tag", "-a", "-m", "made by GTO", "demo#dev#7", "HEAD"]);
    assert_eq!(promoted(&repo, "1.0.0", "staging"), "demo#staging#8");
}

#[test]
fn deregistered_version_is_not_latest() {
    let repo = released(&["1.0.0", "1.1.0"]);
    repo.mrel(&["deprecate", MODEL, "1.1.0", "--no-sign"])
        .assert()
        .success();
    assert!(
        repo.tags().contains(&"demo@v1.1.0!".to_owned()),
        "{:?}",
        repo.tags()
    );
    let output = repo
        .mrel(&["status", MODEL, "--format", "json"])
        .output()
        .expect("mrel runs");
    let json: serde_json::Value = serde_json::from_str(&stdout_of(&output)).expect("JSON output");
    assert_eq!(json[0]["latest"], "1.0.0");
}

#[test]
fn deprecated_model_is_marked() {
    let repo = released(&["1.0.0"]);
    repo.mrel(&["deprecate", MODEL, "--no-sign"])
        .assert()
        .success();
    let output = repo
        .mrel(&["status", MODEL, "--format", "json"])
        .output()
        .expect("mrel runs");
    let json: serde_json::Value = serde_json::from_str(&stdout_of(&output)).expect("JSON output");
    assert_eq!(json[0]["deprecated"], true);
}

#[test]
fn history_lists_events_oldest_first() {
    let repo = released(&["1.0.0"]);
    promoted(&repo, "1.0.0", "dev");
    let output = repo
        .mrel(&["history", MODEL, "--format", "json"])
        .output()
        .expect("mrel runs");
    let json: serde_json::Value = serde_json::from_str(&stdout_of(&output)).expect("JSON output");
    let events: Vec<&str> = json
        .as_array()
        .expect("event list")
        .iter()
        .map(|event| event["event"].as_str().expect("event name"))
        .collect();
    assert_eq!(events, ["release", "assign"]);
    assert_eq!(json[1]["signature"], "unsigned");
    assert_eq!(json[1]["version"], "1.0.0");
}

#[test]
fn signed_promotion_verifies() {
    let repo = released(&["1.0.0"]);
    repo.configure_ssh_signing();
    repo.mrel(&["promote", MODEL, "1.0.0", "dev"])
        .assert()
        .success();
    let verified = repo.git_output(&["verify-tag", "demo#dev#1"]);
    assert!(verified.status.success(), "{}", stderr_of(&verified));
}

#[test]
fn deregistered_holder_is_flagged() {
    let repo = released(&["1.0.0", "1.1.0"]);
    promoted(&repo, "1.0.0", "dev");
    repo.mrel(&["deprecate", MODEL, "1.0.0", "--no-sign"])
        .assert()
        .success();
    let output = repo
        .mrel(&["status", MODEL, "--format", "json"])
        .output()
        .expect("mrel runs");
    let json: serde_json::Value = serde_json::from_str(&stdout_of(&output)).expect("JSON output");
    assert_eq!(json[0]["stages"]["dev"]["deregistered"], true);

    let verified = repo
        .mrel(&["verify", "demo#dev"])
        .output()
        .expect("mrel runs");
    assert_eq!(verified.status.code(), Some(1));
    assert!(
        stderr_of(&verified).contains("was deregistered"),
        "{}",
        stderr_of(&verified)
    );
}
