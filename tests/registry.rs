//! Reading the registry: SemVer ordering, GTO's tag forms, lightweight and nested tags,
//! `status --at`, `latest`, `check-ref`, and the stage rules of the release file.

mod common;

use common::{MODEL, ModelFile, TestRepo, stderr_of, stdout_of};

/// Tags `tag` as an annotated tag on HEAD, as GTO or a person with git would.
fn annotated(repo: &TestRepo, tag: &str) {
    repo.git(&[
        "tag",
        "--annotate",
        "--message",
        "made with git",
        tag,
        "HEAD",
    ]);
}

/// Commits a new file, so that the next tag lands on a commit of its own.
fn next_commit(repo: &TestRepo, name: &str) {
    repo.write(name, name);
    repo.commit_all(name);
}

fn repo_with_commit() -> TestRepo {
    TestRepo::with_model(&ModelFile::new("0.1.0", 50).stages(&["dev", "prod"]))
}

fn latest(repo: &TestRepo, model: &str) -> String {
    let output = repo.mrel(&["latest", model]).output().expect("mrel runs");
    assert!(output.status.success(), "{}", stderr_of(&output));
    stdout_of(&output).trim().to_owned()
}

fn status_json(repo: &TestRepo, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["status", "--format", "json"];
    all.extend_from_slice(args);
    let output = repo.mrel(&all).output().expect("mrel runs");
    assert!(output.status.success(), "{}", stderr_of(&output));
    serde_json::from_str(&stdout_of(&output)).expect("JSON output")
}

/// Returns the time `seconds` after the pinned date, in git's raw date format.
fn pinned_plus(seconds: i64) -> String {
    // 2024-01-01T00:00:00Z, the pinned date of the test repositories.
    let pinned = 1_704_067_200;
    format!("{} +0000", pinned + seconds)
}

#[test]
fn latest_prefers_greater_version() {
    let repo = repo_with_commit();
    annotated(&repo, "churn@v3.0.0");
    next_commit(&repo, "a");
    annotated(&repo, "churn@v2.5.2-bugfix");
    assert_eq!(latest(&repo, "churn"), "3.0.0");
}

#[test]
fn minor_ten_above_nine() {
    let repo = repo_with_commit();
    annotated(&repo, "churn@v0.10.0");
    next_commit(&repo, "a");
    annotated(&repo, "churn@v0.9.0");
    assert_eq!(latest(&repo, "churn"), "0.10.0");
}

#[test]
fn release_above_its_candidate() {
    let repo = repo_with_commit();
    annotated(&repo, "churn@v1.22.1-rc1");
    annotated(&repo, "churn@v1.22.1");
    assert_eq!(latest(&repo, "churn"), "1.22.1");
}

#[test]
fn deprecation_holds_until_later_event() {
    let repo = repo_with_commit();
    annotated(&repo, "churn@v1.0.0");
    let mut deprecate =
        repo.git_command(&["tag", "-a", "-m", "deprecate", "churn@deprecated", "HEAD"]);
    deprecate.env("GIT_COMMITTER_DATE", pinned_plus(10));
    assert!(deprecate.status().expect("git runs").success());
    assert_eq!(status_json(&repo, &["churn"])[0]["deprecated"], true);

    next_commit(&repo, "a");
    let mut release = repo.git_command(&["tag", "-a", "-m", "again", "churn@v1.1.0", "HEAD"]);
    release.env("GIT_COMMITTER_DATE", pinned_plus(20));
    assert!(release.status().expect("git runs").success());
    assert_eq!(status_json(&repo, &["churn"])[0]["deprecated"], false);
}

#[test]
fn second_version_on_commit_rejected() {
    let repo = TestRepo::with_model(&ModelFile::new("1.0.1", 50));
    // Another tool already released 1.0.0 on this very commit.
    annotated(&repo, "demo@v1.0.0");
    let output = repo
        .mrel(&["release", MODEL, "--no-sign"])
        .output()
        .expect("mrel runs");
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr_of(&output).contains("already has the release tag demo@v1.0.0"),
        "{}",
        stderr_of(&output)
    );
    assert!(!repo.tags().contains(&"demo@v1.0.1".to_owned()));
}

#[test]
fn nested_annotated_tag_is_peeled() {
    let repo = repo_with_commit();
    let commit = repo.git(&["rev-parse", "HEAD"]);
    annotated(&repo, "inner");
    repo.git(&[
        "tag",
        "--annotate",
        "--message",
        "outer",
        "churn@v1.0.0",
        "inner",
    ]);
    let output = repo
        .mrel(&["latest", "churn", "--format", "json"])
        .output()
        .expect("mrel runs");
    let json: serde_json::Value = serde_json::from_str(&stdout_of(&output)).expect("JSON output");
    assert_eq!(json["commit"], commit);
}

#[test]
fn lightweight_tags_ignored_with_warning() {
    let repo = repo_with_commit();
    annotated(&repo, "churn@v1.0.0");
    repo.git(&["tag", "churn@v2.0.0"]);
    repo.git(&["tag", "churn#prod#5"]);
    let output = repo.mrel(&["status", "churn"]).output().expect("mrel runs");
    let warnings: Vec<&str> = std::str::from_utf8(&output.stderr)
        .expect("UTF-8")
        .lines()
        .filter(|line| line.starts_with("warning:"))
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("churn#prod#5, churn@v2.0.0"),
        "{}",
        warnings[0]
    );
    assert_eq!(latest(&repo, "churn"), "1.0.0");
}

#[test]
fn gto_folder_prefix_reads() {
    let repo = repo_with_commit();
    annotated(&repo, "models=fraud@v0.1.0");
    annotated(&repo, "models=fraud#prod");
    let json = status_json(&repo, &["models:fraud"]);
    assert_eq!(json[0]["latest"], "0.1.0");
    assert_eq!(json[0]["stages"]["prod"]["version"], "0.1.0");
}

#[test]
fn unassign_tag_empties_stage() {
    let repo = repo_with_commit();
    annotated(&repo, "churn@v1.0.0");
    annotated(&repo, "churn#prod#1");
    let mut unassign = repo.git_command(&["tag", "-a", "-m", "unassign", "churn#prod!#2", "HEAD"]);
    unassign.env("GIT_COMMITTER_DATE", pinned_plus(5));
    assert!(unassign.status().expect("git runs").success());
    let json = status_json(&repo, &["churn"]);
    assert!(json[0]["stages"].get("prod").is_none(), "{json}");
}

#[test]
fn status_at_past_moment() {
    let repo = repo_with_commit();
    annotated(&repo, "churn@v1.0.0");
    annotated(&repo, "churn#prod#1");
    next_commit(&repo, "a");
    let mut later = repo.git_command(&["tag", "-a", "-m", "later", "churn@v1.1.0", "HEAD"]);
    later.env("GIT_COMMITTER_DATE", pinned_plus(3 * 86_400));
    assert!(later.status().expect("git runs").success());
    let mut promote = repo.git_command(&["tag", "-a", "-m", "later", "churn#prod#2", "HEAD"]);
    promote.env("GIT_COMMITTER_DATE", pinned_plus(3 * 86_400));
    assert!(promote.status().expect("git runs").success());

    let now = status_json(&repo, &["churn"]);
    assert_eq!(now[0]["stages"]["prod"]["version"], "1.1.0");
    let past = status_json(&repo, &["churn", "--at", "2024-01-02"]);
    assert_eq!(past[0]["stages"]["prod"]["version"], "1.0.0");
    assert_eq!(past[0]["latest"], "1.0.0");
}

#[test]
fn check_ref_describes_release() {
    let repo = repo_with_commit();
    annotated(&repo, "churn@v1.0.0");
    let output = repo
        .mrel(&["check-ref", "refs/tags/churn@v1.0.0", "--format", "json"])
        .output()
        .expect("mrel runs");
    let json: serde_json::Value = serde_json::from_str(&stdout_of(&output)).expect("JSON output");
    assert_eq!(json["model"], "churn");
    assert_eq!(json["version"], "1.0.0");
    assert_eq!(json["event"], "release");
}

#[test]
fn check_ref_describes_stage() {
    let repo = repo_with_commit();
    annotated(&repo, "churn@v1.0.0");
    annotated(&repo, "churn#prod#3");
    let output = repo
        .mrel(&["check-ref", "churn#prod#3", "--format", "json"])
        .output()
        .expect("mrel runs");
    let json: serde_json::Value = serde_json::from_str(&stdout_of(&output)).expect("JSON output");
    assert_eq!(json["event"], "assign");
    assert_eq!(json["stage"], "prod");
    assert_eq!(json["version"], "1.0.0");
}

#[test]
fn check_ref_ignores_foreign_tag() {
    let repo = repo_with_commit();
    annotated(&repo, "v1.0.0");
    let output = repo
        .mrel(&["check-ref", "v1.0.0", "--format", "json"])
        .output()
        .expect("mrel runs");
    assert!(output.status.success());
    assert!(output.stdout.is_empty());
}

#[test]
fn check_ref_rejects_lightweight_release() {
    let repo = repo_with_commit();
    repo.git(&["tag", "churn@v1.0.0"]);
    let output = repo
        .mrel(&["check-ref", "churn@v1.0.0", "--format", "json"])
        .output()
        .expect("mrel runs");
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr_of(&output).contains("git fetch --tags --force"),
        "{}",
        stderr_of(&output)
    );
}

fn staged_repo(rules: &str) -> TestRepo {
    let model = ModelFile::new("1.0.0", 50).stages(&["dev", "prod"]);
    let repo = TestRepo::new();
    repo.write_model(&model);
    let yaml = format!("{}{rules}", model.to_yaml());
    repo.write("release.yaml", &yaml);
    repo.commit_all("Add the demo model");
    repo.release_unsigned();
    repo
}

#[test]
fn soak_time_blocks_early_promotion() {
    let repo = staged_repo("promotion:\n  prod: {soak: 24h}\n");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    repo.mrel(&["promote", MODEL, "1.0.0", "dev", "--no-sign"])
        .env("GIT_COMMITTER_DATE", format!("{now} +0000"))
        .assert()
        .success();
    let output = repo
        .mrel(&["promote", MODEL, "1.0.0", "prod", "--no-sign"])
        .output()
        .expect("mrel runs");
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr_of(&output).contains("must soak 24h"),
        "{}",
        stderr_of(&output)
    );
    repo.mrel(&[
        "promote",
        MODEL,
        "1.0.0",
        "prod",
        "--no-sign",
        "--force",
        "--reason",
        "incident",
    ])
    .assert()
    .success();
}

#[test]
fn soak_time_passed_allows_promotion() {
    let repo = staged_repo("promotion:\n  prod: {soak: 24h}\n");
    repo.mrel(&["promote", MODEL, "1.0.0", "dev", "--no-sign"])
        .assert()
        .success();
    // The dev assignment carries the pinned date of 2024, long past.
    repo.mrel(&["promote", MODEL, "1.0.0", "prod", "--no-sign"])
        .assert()
        .success();
}

#[test]
fn stage_gate_blocks_promotion() {
    let repo = staged_repo("promotion:\n  prod:\n    gates:\n      accuracy: {min: 0.9}\n");
    repo.mrel(&["promote", MODEL, "1.0.0", "dev", "--no-sign"])
        .assert()
        .success();
    let output = repo
        .mrel(&["promote", MODEL, "1.0.0", "prod", "--no-sign"])
        .output()
        .expect("mrel runs");
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr_of(&output).contains("accuracy min 0.9"),
        "{}",
        stderr_of(&output)
    );
    assert!(
        !repo.tags().iter().any(|tag| tag.contains("#prod")),
        "{:?}",
        repo.tags()
    );
}

#[test]
fn promotion_rule_for_unknown_stage_rejected() {
    let repo = TestRepo::new();
    let model = ModelFile::new("1.0.0", 50).stages(&["dev"]);
    repo.write_model(&model);
    repo.write(
        "release.yaml",
        &format!("{}promotion:\n  prod: {{soak: 1h}}\n", model.to_yaml()),
    );
    repo.commit_all("Add the demo model");
    let output = repo.mrel(&["check"]).output().expect("mrel runs");
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stdout_of(&output).contains("field `promotion.prod`"),
        "{}",
        stdout_of(&output)
    );
}

#[test]
fn many_tags_read_in_order() {
    let repo = repo_with_commit();
    // More tags than one thread reads alone, so that the parallel path runs.
    for minor in 0..300 {
        annotated(&repo, &format!("churn@v1.{minor}.0"));
    }
    annotated(&repo, "churn#prod#1");
    assert_eq!(latest(&repo, "churn"), "1.299.0");
    let json = status_json(&repo, &["churn"]);
    assert_eq!(json[0]["stages"]["prod"]["version"], "1.299.0");
}

fn diff_sides(repo: &TestRepo) -> (String, String) {
    let output = repo
        .mrel(&["diff", MODEL, "--format", "json"])
        .output()
        .expect("mrel runs");
    assert!(output.status.success(), "{}", stderr_of(&output));
    let json: serde_json::Value = serde_json::from_str(&stdout_of(&output)).expect("JSON output");
    (
        json["from"].as_str().expect("from label").to_owned(),
        json["to"].as_str().expect("to label").to_owned(),
    )
}

fn three_releases() -> TestRepo {
    let repo = TestRepo::with_model(&ModelFile::new("1.0.0", 50));
    repo.release_unsigned();
    for (version, epochs) in [("1.1.0", 60), ("1.2.0", 70)] {
        repo.commit_model(&ModelFile::new(version, epochs));
        repo.release_unsigned();
    }
    repo
}

#[test]
fn diff_default_skips_deregistered() {
    let repo = three_releases();
    repo.mrel(&["deprecate", MODEL, "1.2.0", "--no-sign"])
        .assert()
        .success();
    assert_eq!(
        diff_sides(&repo),
        ("demo@v1.0.0".to_owned(), "demo@v1.1.0".to_owned())
    );
}

#[test]
fn diff_default_skips_lightweight() {
    let repo = three_releases();
    repo.git(&["tag", "demo@v9.0.0"]);
    assert_eq!(
        diff_sides(&repo),
        ("demo@v1.1.0".to_owned(), "demo@v1.2.0".to_owned())
    );
}

#[test]
fn diff_default_sees_reregistration() {
    let repo = three_releases();
    let mut deregister = repo.git_command(&["tag", "-a", "-m", "gone", "demo@v1.2.0!", "HEAD"]);
    deregister.env("GIT_COMMITTER_DATE", pinned_plus(10));
    assert!(deregister.status().expect("git runs").success());
    let mut again = repo.git_command(&["tag", "-a", "-m", "back", "demo@v1.2.0#5", "HEAD"]);
    again.env("GIT_COMMITTER_DATE", pinned_plus(20));
    assert!(again.status().expect("git runs").success());
    assert_eq!(diff_sides(&repo).1, "demo@v1.2.0");
}

#[test]
fn status_at_time_without_zone_rejected() {
    let repo = repo_with_commit();
    for moment in ["2026-12-04T00:00:00", "2026-12-04 22:14:55", "yesterday"] {
        let output = repo
            .mrel(&["status", "--at", moment])
            .output()
            .expect("mrel runs");
        assert_eq!(output.status.code(), Some(2), "--at {moment}");
        assert!(
            stderr_of(&output).contains("with a time zone"),
            "--at {moment}: {}",
            stderr_of(&output)
        );
    }
}
