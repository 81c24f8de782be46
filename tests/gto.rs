//! Interoperability with the `gto` command-line tool: a repository that GTO manages works with
//! mrel as it is, and GTO reads mrel's tags. The tests look for gto in `MREL_TEST_GTO` or on
//! PATH and are skipped with a message where it is not installed (`pip install gto`).

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{MODEL, ModelFile, TestRepo, stderr_of, stdout_of};

fn gto() -> Option<PathBuf> {
    let candidate = std::env::var_os("MREL_TEST_GTO")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("gto"));
    let found = Command::new(&candidate)
        .arg("--version")
        .output()
        .is_ok_and(|output| output.status.success());
    if found {
        Some(candidate)
    } else {
        eprintln!(
            "skipped: the gto command-line tool is not installed (pip install gto, or set MREL_TEST_GTO)"
        );
        None
    }
}

/// Runs gto in the repository with the test environment, panicking unless it succeeds.
fn run_gto(repo: &TestRepo, gto: &PathBuf, args: &[&str]) -> String {
    // Dulwich, which gto writes tags with, reads only git's raw date format.
    let output = repo
        .command(gto, args)
        .env("GIT_AUTHOR_DATE", "1704067200 +0000")
        .env("GIT_COMMITTER_DATE", "1704067200 +0000")
        .output()
        .expect("gto runs");
    assert!(
        output.status.success(),
        "gto {args:?} failed: {}",
        stderr_of(&output)
    );
    stdout_of(&output)
}

#[test]
fn mrel_reads_gto_repository() {
    let Some(gto) = gto() else { return };
    let repo = TestRepo::with_model(&ModelFile::new("0.1.0", 50));
    run_gto(&repo, &gto, &["register", "churn", "--version", "v1.0.0"]);
    repo.write("a", "a");
    repo.commit_all("Second commit");
    run_gto(&repo, &gto, &["register", "churn", "--version", "v1.1.0"]);
    run_gto(
        &repo,
        &gto,
        &["assign", "churn", "--version", "v1.0.0", "--stage", "prod"],
    );
    run_gto(
        &repo,
        &gto,
        &["assign", "churn", "--version", "v1.1.0", "--stage", "prod"],
    );
    run_gto(
        &repo,
        &gto,
        &["register", "models:fraud", "--version", "v0.1.0"],
    );
    run_gto(&repo, &gto, &["deprecate", "churn", "v1.0.0"]);

    let output = repo
        .mrel(&["status", "--format", "json"])
        .output()
        .expect("mrel runs");
    let json: serde_json::Value = serde_json::from_str(&stdout_of(&output)).expect("JSON output");
    let churn = json
        .as_array()
        .expect("models")
        .iter()
        .find(|model| model["model"] == "churn")
        .expect("churn listed")
        .clone();
    assert_eq!(churn["latest"], "1.1.0");
    assert_eq!(churn["stages"]["prod"]["version"], "1.1.0");
    assert!(
        json.as_array()
            .expect("models")
            .iter()
            .any(|model| model["model"] == "models:fraud")
    );

    let history = repo
        .mrel(&["history", "churn", "--format", "json"])
        .output()
        .expect("mrel runs");
    let events: serde_json::Value =
        serde_json::from_str(&stdout_of(&history)).expect("JSON output");
    let kinds: Vec<&str> = events
        .as_array()
        .expect("events")
        .iter()
        .map(|event| event["event"].as_str().expect("event name"))
        .collect();
    assert!(kinds.contains(&"deregister"), "{kinds:?}");
}

#[test]
fn gto_reads_mrel_tags() {
    let Some(gto) = gto() else { return };
    let repo = TestRepo::with_model(&ModelFile::new("1.0.0", 50).stages(&["dev", "prod"]));
    repo.release_unsigned();
    repo.mrel(&["promote", MODEL, "1.0.0", "dev", "--no-sign"])
        .assert()
        .success();

    let shown = run_gto(&repo, &gto, &["show", MODEL, "--json"]);
    let versions: serde_json::Value = serde_json::from_str(&shown).expect("gto prints JSON");
    let first = &versions.as_array().expect("versions")[0];
    assert_eq!(first["version"], "v1.0.0");
    assert!(shown.contains("\"dev\""), "{shown}");
}
