//! Training elsewhere: run records written by `mrel train`, releases from them with
//! `mrel release --run`, and interrupted training.

mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{MODEL, ModelFile, TestRepo, release_record, stderr_of};

/// A clone that trained the model (`mrel train`) and one that releases from its run record.
struct TwoClones {
    trained: TestRepo,
    releasing: TestRepo,
}

impl TwoClones {
    fn new() -> TwoClones {
        let trained = TestRepo::with_model(&ModelFile::new("1.0.0", 70));
        trained.mrel(&["train", MODEL]).assert().success();
        let releasing = TestRepo::new();
        let source = trained.root().display().to_string();
        releasing.git(&["pull", "--quiet", &source, "main"]);
        TwoClones { trained, releasing }
    }

    fn record(&self) -> String {
        self.trained
            .root()
            .join("out/mrel-run.json")
            .display()
            .to_string()
    }

    fn artifacts(&self) -> String {
        self.trained.root().display().to_string()
    }

    fn release(&self, extra: &[&str]) -> std::process::Output {
        let record = self.record();
        let artifacts = self.artifacts();
        let mut args = vec![
            "release",
            MODEL,
            "--no-sign",
            "--run",
            &record,
            "--artifacts",
            &artifacts,
        ];
        args.extend_from_slice(extra);
        self.releasing.mrel(&args).output().expect("mrel runs")
    }
}

#[test]
fn train_writes_run_record() {
    let repo = TestRepo::with_model(&ModelFile::new("1.0.0", 70));
    repo.mrel(&["train", MODEL]).assert().success();
    let text =
        std::fs::read_to_string(repo.root().join("out/mrel-run.json")).expect("run record written");
    let record: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(record["format"], "mrel.run/1");
    assert_eq!(record["commit"], repo.git(&["rev-parse", "HEAD"]));
    assert_eq!(record["metrics"]["accuracy"].as_f64(), Some(0.7));
    assert_eq!(record["exit_status"], 0);
    assert_eq!(record["artifacts"][0]["path"], "out/model.bin");
}

#[test]
fn run_from_other_clone_releases() {
    let clones = TwoClones::new();
    let output = clones.release(&[]);
    assert!(output.status.success(), "{}", stderr_of(&output));
    let record = release_record(&clones.releasing.tag_object("demo@v1.0.0"));
    assert_eq!(record["metrics"]["accuracy"].as_f64(), Some(0.7));
    assert_eq!(record["training"]["run"]["record"], clones.record());
}

#[test]
fn other_commit_is_refused() {
    let clones = TwoClones::new();
    clones.releasing.write("notes.txt", "a later change");
    clones.releasing.commit_all("Change after training");
    let output = clones.release(&[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr_of(&output).contains("commit: the run trained from"),
        "{}",
        stderr_of(&output)
    );
    assert!(clones.releasing.tags().is_empty());

    let allowed = clones.trained.git(&["rev-parse", "HEAD"]);
    let output = clones.release(&["--allow-commit", &allowed]);
    assert!(output.status.success(), "{}", stderr_of(&output));
}

#[test]
fn changed_params_are_refused() {
    let clones = TwoClones::new();
    clones.releasing.commit_model(&ModelFile::new("1.0.0", 80));
    let allowed = clones.trained.git(&["rev-parse", "HEAD"]);
    let output = clones.release(&["--allow-commit", &allowed]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr_of(&output).contains("params.epochs: the run has 70, the release file has 80"),
        "{}",
        stderr_of(&output)
    );
    assert!(clones.releasing.tags().is_empty());
}

#[test]
fn changed_artifact_is_refused() {
    let clones = TwoClones::new();
    std::fs::write(
        clones.trained.root().join("out/model.bin"),
        "weights after 71 epochs\n",
    )
    .expect("change the artifact");
    let output = clones.release(&[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr_of(&output).contains("artifact out/model.bin: the run recorded sha256"),
        "{}",
        stderr_of(&output)
    );
    assert!(clones.releasing.tags().is_empty());
}

#[test]
fn missing_artifact_is_refused() {
    let clones = TwoClones::new();
    std::fs::remove_file(clones.trained.root().join("out/model.bin")).expect("remove the artifact");
    let output = clones.release(&[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr_of(&output).contains("artifact out/model.bin: missing at"),
        "{}",
        stderr_of(&output)
    );
    assert!(clones.releasing.tags().is_empty());
}

/// Starts `mrel release` with a training command that sleeps, sends `signal` to mrel once the
/// sleep runs, and checks that mrel exits 130, tags nothing and leaves no training process.
fn interrupt_training(signal: &str) {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .subsec_nanos();
    let sleep_command_line = format!("sleep 41.{nanos:09}");
    let find_sleep = || {
        std::process::Command::new("pgrep")
            .args(["--full", "--exact", &sleep_command_line])
            .output()
            .expect("run pgrep")
    };
    let model = ModelFile::new("1.0.0", 50).command(&format!(
        "{sleep_command_line} >/dev/null 2>&1; echo finished"
    ));
    let repo = TestRepo::with_model(&model);
    let mrel = repo
        .command(
            assert_cmd::cargo::cargo_bin("mrel"),
            &["release", MODEL, "--no-sign"],
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start mrel");

    // Waits for training to start; the sleep's own command line is the signal that it runs.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !find_sleep().status.success() {
        assert!(Instant::now() < deadline, "training never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &mrel.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    let output = mrel.wait_with_output().expect("mrel exits");

    let left = find_sleep();
    for pid in String::from_utf8_lossy(&left.stdout).split_whitespace() {
        // Only a sleep with this run's unique argument matches, so this ends nothing else.
        let _ = std::process::Command::new("kill").arg(pid).status();
    }
    assert_eq!(output.status.code(), Some(130), "{}", stderr_of(&output));
    assert!(
        stderr_of(&output).contains("interrupted"),
        "{}",
        stderr_of(&output)
    );
    assert!(repo.tags().is_empty());
    assert!(!left.status.success(), "the training sleep outlived mrel");
}

#[test]
fn sigint_stops_training_group() {
    interrupt_training("INT");
}

#[test]
fn sigterm_stops_training_group() {
    interrupt_training("TERM");
}

#[test]
fn leftover_background_process_stopped() {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .subsec_nanos();
    let sleep_command_line = format!("sleep 43.{nanos:09}");
    let model = ModelFile::new("1.0.0", 50).command(&format!(
        "sh train.sh && ({sleep_command_line} &) && echo started"
    ));
    let repo = TestRepo::with_model(&model);
    repo.mrel(&["train", MODEL]).assert().success();
    let left = std::process::Command::new("pgrep")
        .args(["--full", "--exact", &sleep_command_line])
        .output()
        .expect("run pgrep");
    for pid in String::from_utf8_lossy(&left.stdout).split_whitespace() {
        // Only a sleep with this run's unique argument matches, so this ends nothing else.
        let _ = std::process::Command::new("kill").arg(pid).status();
    }
    assert!(
        !left.status.success(),
        "the background sleep outlived training"
    );
}
