//! A pull request's release file is untrusted input, so the commands that read it without
//! releasing never run its training command. The release file here declares a command that
//! creates a marker file. Every such command runs and the marker never appears. Then `mrel train`
//! shows that the command does create it.

mod common;

use common::{MODEL, ModelFile, TestRepo, stderr_of};

/// Commands that exist only in some builds of mrel; each is included where `mrel NAME --help`
/// works.
const OPTIONAL: &[&str] = &["changelog", "verify"];

#[test]
fn read_only_commands_never_train() {
    let repo = TestRepo::with_model(&ModelFile::new("1.0.0", 50));
    repo.release_unsigned();
    let marker = repo.scratch().join("training-ran");
    let command = format!("touch '{}' && sh train.sh", marker.display());
    repo.git(&["checkout", "--quiet", "-b", "feature"]);
    repo.commit_model(&ModelFile::new("1.1.0", 60).command(&command));

    let tag = format!("{MODEL}@v1.0.0");
    let mut commands: Vec<Vec<&str>> = vec![
        vec!["review", "--base", "main", "--format", "markdown"],
        vec!["check"],
        vec!["diff", MODEL, "--from", &tag, "--to", "workspace"],
        vec!["notes", MODEL],
        vec!["status"],
        vec!["history", MODEL],
    ];
    for name in OPTIONAL {
        if repo
            .mrel(&[name, "--help"])
            .output()
            .expect("run mrel")
            .status
            .success()
        {
            commands.push(match *name {
                "verify" => vec!["verify", &tag],
                other => vec![other],
            });
        }
    }

    for args in &commands {
        let output = repo.mrel(args).output().expect("run mrel");
        assert!(
            output.status.code().is_some(),
            "mrel {args:?} was killed by a signal"
        );
        // verify fails on the unsigned tag; the others must succeed, so that each one read the
        // release file rather than stopping early.
        if args[0] != "verify" {
            assert!(
                output.status.success(),
                "mrel {args:?} failed: {}",
                stderr_of(&output)
            );
        }
        assert!(
            !marker.exists(),
            "mrel {args:?} ran the release file's training command"
        );
    }

    repo.mrel(&["train", MODEL]).assert().success();
    assert!(
        marker.exists(),
        "the training command did not create the marker, so the checks above prove nothing"
    );
}
