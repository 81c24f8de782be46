//! `mrel release` end to end: training, gates, the tag and its message, and the checks that stop
//! a release before anything is tagged.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::{MODEL, ModelFile, TestRepo, release_record, stderr_of, stdout_of, tag_message};
use predicates::prelude::*;

#[test]
fn second_release_compares_with_first() {
    let repo = TestRepo::with_model(&ModelFile::new("1.0.0", 62));
    repo.release_unsigned();
    repo.commit_model(&ModelFile::new("1.1.0", 75));
    repo.release_unsigned();

    let tag = repo.tag_object("demo@v1.1.0");
    let message = tag_message(&tag);
    assert!(
        message.contains("Compared with 1.0.0."),
        "the notes name the previous version:\n{message}"
    );
    assert!(
        message.contains("| accuracy | 0.62 | 0.75 |"),
        "the notes show the old and new accuracy:\n{message}"
    );
    assert!(
        message.contains("| epochs | 62 | 75 |"),
        "the notes show the changed param:\n{message}"
    );
    let record = release_record(&tag);
    assert_eq!(record["previous_version"], "1.0.0");
}

#[test]
fn failing_gate_stops_release() {
    let gate = "accuracy: {min: 0.45}";
    let repo = TestRepo::with_model(&ModelFile::new("1.0.0", 62).gate(gate));
    repo.release_unsigned();
    repo.commit_model(&ModelFile::new("1.1.0", 37).gate(gate));

    let assert = repo.mrel(&["release", MODEL, "--no-sign"]).assert().code(1);
    let stderr = stderr_of(assert.get_output());
    let gate_line = stderr
        .lines()
        .find(|line| line.contains("gate failed"))
        .unwrap_or_else(|| panic!("no line reports the failed gate:\n{stderr}"));
    assert!(gate_line.contains("accuracy"), "metric name: {gate_line}");
    assert!(gate_line.contains("0.37"), "new value: {gate_line}");
    assert!(gate_line.contains("0.62"), "previous value: {gate_line}");
    assert!(gate_line.contains("0.45"), "limit: {gate_line}");
    assert_eq!(repo.git(&["tag", "--list", "demo@v1.1.0"]), "");
    assert_eq!(repo.tags(), ["demo@v1.0.0"]);
}

#[test]
fn existing_tag_is_left_unchanged() {
    let repo = TestRepo::with_model(&ModelFile::new("1.0.0", 62));
    repo.git(&[
        "tag",
        "--annotate",
        "demo@v1.0.0",
        "--message",
        "Tagged by hand",
    ]);
    let before = repo.git(&["rev-parse", "refs/tags/demo@v1.0.0"]);

    repo.mrel(&["release", MODEL, "--no-sign"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("tag demo@v1.0.0 already exists"));

    let after = repo.git(&["rev-parse", "refs/tags/demo@v1.0.0"]);
    assert_eq!(before, after);
}

#[test]
fn no_sign_creates_unsigned_tag() {
    let repo = TestRepo::with_model(&ModelFile::new("1.0.0", 62));
    // Signing is configured, so only the flag can leave the tag unsigned.
    repo.configure_ssh_signing();

    repo.mrel(&["release", MODEL, "--no-sign"])
        .assert()
        .success()
        .stderr(predicate::str::contains("created unsigned tag demo@v1.0.0"));

    assert_eq!(repo.git(&["cat-file", "-t", "demo@v1.0.0"]), "tag");
    let tag = repo.tag_object("demo@v1.0.0");
    assert!(
        !tag.contains("-----BEGIN"),
        "the tag has a signature block:\n{tag}"
    );
}

#[test]
fn failing_training_keeps_its_log() {
    let model = ModelFile::new("1.0.0", 62)
        .command("echo mrel-test stdout line; echo mrel-test stderr line >&2; exit 3");
    let repo = TestRepo::with_model(&model);

    let assert = repo.mrel(&["release", MODEL, "--no-sign"]).assert().code(1);
    let stderr = stderr_of(assert.get_output());
    assert!(stderr.contains("exit code 3"), "exit code named:\n{stderr}");
    assert_eq!(repo.tags(), Vec::<String>::new());

    let (_, after) = stderr
        .split_once("see the log at ")
        .unwrap_or_else(|| panic!("stderr names no log:\n{stderr}"));
    let log_path = repo
        .root()
        .join(after.split_whitespace().next().expect("a path follows"));
    assert!(
        log_path.starts_with(repo.root().join(".git/mrel/logs")),
        "log outside .git/mrel/logs: {}",
        log_path.display()
    );
    let log = std::fs::read_to_string(&log_path)
        .unwrap_or_else(|error| panic!("cannot read the log {}: {error}", log_path.display()));
    assert!(
        log.contains("mrel-test stdout line"),
        "stdout in log:\n{log}"
    );
    assert!(
        log.contains("mrel-test stderr line"),
        "stderr in log:\n{log}"
    );
}

#[test]
fn training_timeout_stops_process_group() {
    // A fraction of a second unique to this run lets pgrep find exactly this test's sleep.
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .subsec_nanos();
    let sleep_argument = format!("31.{nanos:09}");
    let sleep_command_line = format!("sleep {sleep_argument}");
    let find_sleep = || {
        std::process::Command::new("pgrep")
            .args(["--full", "--exact"])
            .arg(&sleep_command_line)
            .output()
            .expect("run pgrep")
    };

    // The pattern must find such a process, or the final check could never fail.
    let mut own_sleep = std::process::Command::new("sleep")
        .arg(&sleep_argument)
        .spawn()
        .expect("start sleep");
    let found = find_sleep();
    own_sleep.kill().expect("stop the sleep this test started");
    own_sleep.wait().expect("reap the sleep this test started");
    assert!(
        found.status.success(),
        "pgrep does not find `{sleep_command_line}`"
    );

    // The sleep runs as a child of `sh`, so stopping only the shell would leave it behind. Its
    // output goes to /dev/null, so a sleep left behind does not hold mrel's pipes open.
    let model = ModelFile::new("1.0.0", 62)
        .command(&format!(
            "{sleep_command_line} >/dev/null 2>&1; echo finished"
        ))
        .timeout("1s");
    let repo = TestRepo::with_model(&model);

    repo.mrel(&["release", MODEL, "--no-sign"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("timed out"));

    assert_eq!(repo.tags(), Vec::<String>::new());
    let left = find_sleep();
    let left_pids = String::from_utf8_lossy(&left.stdout).into_owned();
    for pid in left_pids.split_whitespace() {
        // Only a sleep with this run's unique argument matches, so this ends nothing else.
        let _ = std::process::Command::new("kill").arg(pid).status();
    }
    assert!(
        !left.status.success(),
        "the training sleep was still running after mrel returned: pids {left_pids}"
    );
}

#[test]
fn dirty_tree_is_rejected() {
    let repo = TestRepo::with_model(&ModelFile::new("1.0.0", 62));
    repo.write("train.sh", "#!/bin/sh\nexit 0\n");

    repo.mrel(&["release", MODEL, "--no-sign"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("commit or stash"));

    assert_eq!(repo.tags(), Vec::<String>::new());
}

#[test]
fn untracked_file_does_not_block() {
    let repo = TestRepo::with_model(&ModelFile::new("1.0.0", 62));
    repo.write("scratch.txt", "not tracked, not ignored\n");
    let status = repo.git(&["status", "--porcelain"]);
    assert_eq!(status, "?? scratch.txt");

    repo.mrel(&["release", MODEL, "--no-sign"])
        .assert()
        .success();

    assert_eq!(repo.tags(), ["demo@v1.0.0"]);
}

#[test]
fn dry_run_prints_notes_without_tag() {
    let repo = TestRepo::with_model(&ModelFile::new("1.0.0", 62));

    let assert = repo
        .mrel(&["release", MODEL, "--dry-run"])
        .assert()
        .success();
    let stdout = stdout_of(assert.get_output());
    assert!(
        stdout.starts_with("# demo 1.0.0\n"),
        "notes heading:\n{stdout}"
    );
    assert!(
        stdout.contains("| accuracy | — | 0.62 |"),
        "metrics table:\n{stdout}"
    );
    assert_eq!(repo.tags(), Vec::<String>::new());
}

#[test]
fn tag_message_has_notes_and_record() {
    let repo = TestRepo::with_model(&ModelFile::new("1.0.0", 62));
    repo.release_unsigned();

    let tag = repo.tag_object("demo@v1.0.0");
    let message = tag_message(&tag);
    assert!(
        message.starts_with("# demo 1.0.0\n"),
        "heading first:\n{message}"
    );
    assert!(
        message.contains("\n```json mrel-record\n"),
        "record block:\n{message}"
    );
    let record = release_record(&tag);
    assert_eq!(record["model"], MODEL);
    assert_eq!(record["version"], "1.0.0");
    assert_eq!(record["commit"], repo.git(&["rev-parse", "HEAD"]).as_str());
    let subject = repo.git(&[
        "for-each-ref",
        "--format=%(contents:subject)",
        "refs/tags/demo@v1.0.0",
    ]);
    assert_eq!(subject, "# demo 1.0.0");
}

#[test]
fn training_receives_mrel_variables() {
    let repo = TestRepo::with_model(&ModelFile::new("1.0.0", 62));
    repo.release_unsigned();
    repo.commit_model(&ModelFile::new("1.1.0", 75));
    repo.release_unsigned();

    let first = release_record(&repo.tag_object("demo@v1.0.0"));
    let second = release_record(&repo.tag_object("demo@v1.1.0"));
    assert_eq!(first["metrics"]["env.model"], MODEL);
    assert_eq!(first["metrics"]["env.version"], "1.0.0");
    assert_eq!(first["metrics"]["env.previous_version"], "");
    assert_eq!(second["metrics"]["env.version"], "1.1.0");
    assert_eq!(second["metrics"]["env.previous_version"], "1.0.0");
    // The accuracy is epochs / 100, which training read from MREL_PARAMS_FILE.
    assert_eq!(first["metrics"]["accuracy"].as_f64(), Some(0.62));
    assert_eq!(second["metrics"]["accuracy"].as_f64(), Some(0.75));
}

#[test]
fn empty_artifact_folder_is_released() {
    let model = ModelFile::new("1.0.0", 50).command("sh train.sh && mkdir -p out/empty");
    let repo = TestRepo::new();
    repo.write_model(&model);
    repo.write(
        "release.yaml",
        &model.to_yaml().replace(
            "artifacts: [out/model.bin]",
            "artifacts: [out/model.bin, out/empty]",
        ),
    );
    repo.commit_all("Add the demo model");
    repo.release_unsigned();
    let tag_object = repo.tag_object("demo@v1.0.0");
    assert!(
        tag_object.contains("| out/empty/ |  | (empty folder) |"),
        "{tag_object}"
    );
    let record = release_record(&tag_object);
    assert_eq!(record["artifacts"][1]["path"], "out/empty/");
}

#[test]
fn template_error_found_before_training() {
    let model = ModelFile::new("1.0.0", 50).command("touch trained-marker && sh train.sh");
    let repo = TestRepo::new();
    repo.write_model(&model);
    repo.write(
        ".mrel/templates/notes.md.j2",
        "# {{ model }}\n{{ entry.model }}\n",
    );
    repo.commit_all("Add the demo model with a broken notes template");
    let output = repo
        .mrel(&["release", MODEL, "--no-sign"])
        .output()
        .expect("mrel runs");
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr_of(&output).contains("undefined variable `entry`"),
        "{}",
        stderr_of(&output)
    );
    assert!(
        !repo.root().join("trained-marker").exists(),
        "training ran before the template was checked"
    );
}

#[test]
fn backport_below_latest_warns() {
    let repo = TestRepo::with_model(&ModelFile::new("2.0.0", 50));
    repo.release_unsigned();
    repo.commit_model(&ModelFile::new("1.5.0", 55));
    let output = repo
        .mrel(&["release", MODEL, "--no-sign"])
        .output()
        .expect("mrel runs");
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert!(
        stderr_of(&output).contains("1.5.0 is below the latest release 2.0.0"),
        "{}",
        stderr_of(&output)
    );
    assert!(repo.tags().contains(&"demo@v1.5.0".to_owned()));
}

#[test]
fn bad_previous_signature_warns() {
    let repo = TestRepo::with_model(&ModelFile::new("1.0.0", 50));
    repo.configure_ssh_signing();
    repo.mrel(&["release", MODEL]).assert().success();

    // Rewrites the released record after signing, keeping the old signature.
    let forged = repo
        .tag_object("demo@v1.0.0")
        .replace("\"accuracy\": 0.50", "\"accuracy\": 0.99");
    let mut mktag = repo.git_command(&["mktag"]);
    mktag
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = mktag.spawn().expect("start git mktag");
    std::io::Write::write_all(
        child.stdin.as_mut().expect("mktag stdin"),
        format!("{forged}\n").as_bytes(),
    )
    .expect("write the forged tag");
    let output = child.wait_with_output().expect("git mktag runs");
    assert!(output.status.success(), "{}", stderr_of(&output));
    let id = stdout_of(&output).trim().to_owned();
    repo.git(&["update-ref", "refs/tags/demo@v1.0.0", &id]);

    repo.commit_model(&ModelFile::new("1.1.0", 60));
    let release = repo.mrel(&["release", MODEL]).output().expect("mrel runs");
    assert!(release.status.success(), "{}", stderr_of(&release));
    assert!(
        stderr_of(&release).contains(
            "the signature of demo@v1.0.0, the release this one is compared with, is bad"
        ),
        "{}",
        stderr_of(&release)
    );
}
