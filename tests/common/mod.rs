//! Shared setup for the integration tests: a throwaway git repository with pinned identity and
//! dates, a demo model whose training script really reads its params, and throwaway SSH and
//! OpenPGP signing keys.

// Each test crate uses only some of these helpers.
#![allow(dead_code)]

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;
use tempfile::TempDir;

/// The model that [`TestRepo::write_model`] declares.
pub const MODEL: &str = "demo";

/// Author, committer and tagger date of every commit and tag, so that runs are reproducible.
pub const PINNED_DATE: &str = "2024-01-01T00:00:00Z";
pub const USER_NAME: &str = "Test";
pub const USER_EMAIL: &str = "test@example.com";

/// Variables of the outer environment that would change how git, gpg or ssh behave.
const CLEARED_VARIABLES: &[&str] = &[
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_CONFIG",
    "GIT_CONFIG_COUNT",
    "GIT_CONFIG_PARAMETERS",
    "GIT_AUTHOR_NAME",
    "GIT_AUTHOR_EMAIL",
    "GIT_COMMITTER_NAME",
    "GIT_COMMITTER_EMAIL",
    "EMAIL",
    "GNUPGHOME",
    "SSH_AUTH_SOCK",
    "RUST_LOG",
];

/// Training script of the demo model. It reads `epochs` from the params file, reports
/// `accuracy = epochs / 100` and the MREL_* variables as metrics, and writes a model file whose
/// bytes depend on the params.
const TRAINING_SCRIPT: &str = r#"#!/bin/sh
set -eu
epochs=$(sed -n 's/^ *"epochs": *\([0-9][0-9]*\).*$/\1/p' "$MREL_PARAMS_FILE")
if [ -z "$epochs" ]; then
  echo "no epochs in $MREL_PARAMS_FILE" >&2
  exit 1
fi
accuracy=$(awk -v epochs="$epochs" 'BEGIN { printf "%.2f", epochs / 100 }')
echo "training for $epochs epochs"
mkdir -p out
printf '{"accuracy": %s, "env": {"model": "%s", "version": "%s", "previous_version": "%s"}}\n' \
  "$accuracy" "$MREL_MODEL" "$MREL_VERSION" "$MREL_PREVIOUS_VERSION" > out/metrics.json
printf 'weights after %s epochs\n' "$epochs" > out/model.bin
"#;

/// The release file of the demo model, rendered by [`ModelFile::to_yaml`].
#[derive(Clone, Debug)]
pub struct ModelFile {
    pub version: String,
    /// The `epochs` param; training reports an accuracy of `epochs / 100`.
    pub epochs: u32,
    /// The training command, run under `sh -c`.
    pub command: String,
    /// `train.timeout`, such as `1s`.
    pub timeout: Option<String>,
    /// Entries of `gates`, one YAML line each, such as `accuracy: {min: 0.45}`.
    pub gates: Vec<String>,
    /// The promotion path, `stages`.
    pub stages: Vec<String>,
}

impl ModelFile {
    pub fn new(version: &str, epochs: u32) -> ModelFile {
        ModelFile {
            version: version.to_owned(),
            epochs,
            command: "sh train.sh".to_owned(),
            timeout: None,
            gates: Vec::new(),
            stages: Vec::new(),
        }
    }

    pub fn stages(mut self, stages: &[&str]) -> ModelFile {
        self.stages = stages.iter().map(|stage| (*stage).to_owned()).collect();
        self
    }

    pub fn command(mut self, command: &str) -> ModelFile {
        self.command = command.to_owned();
        self
    }

    pub fn timeout(mut self, timeout: &str) -> ModelFile {
        self.timeout = Some(timeout.to_owned());
        self
    }

    pub fn gate(mut self, entry: &str) -> ModelFile {
        self.gates.push(entry.to_owned());
        self
    }

    pub fn to_yaml(&self) -> String {
        let mut yaml = format!(
            "model: {MODEL}\nversion: {}\ndescription: The demo model of the mrel integration tests.\n",
            self.version
        );
        // A single-quoted YAML scalar keeps `#`, `:` and `"` of a shell command literal.
        yaml.push_str(&format!(
            "train:\n  command: '{}'\n",
            self.command.replace('\'', "''")
        ));
        if let Some(timeout) = &self.timeout {
            yaml.push_str(&format!("  timeout: {timeout}\n"));
        }
        yaml.push_str(&format!(
            "params:\n  epochs: {}\nmetrics: out/metrics.json\nartifacts: [out/model.bin]\n",
            self.epochs
        ));
        if !self.stages.is_empty() {
            yaml.push_str(&format!("stages: [{}]\n", self.stages.join(", ")));
        }
        if !self.gates.is_empty() {
            yaml.push_str("gates:\n");
            for entry in &self.gates {
                yaml.push_str(&format!("  {entry}\n"));
            }
        }
        yaml
    }
}

/// A temporary OpenPGP home with one signing key. Dropping it stops the gpg-agent of that home
/// only.
pub struct GnupgHome {
    dir: TempDir,
    pub fingerprint: String,
}

impl GnupgHome {
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for GnupgHome {
    fn drop(&mut self) {
        let _ = std::process::Command::new("gpgconf")
            .args(["--kill", "gpg-agent"])
            .env("GNUPGHOME", self.dir.path())
            .output();
    }
}

/// A git repository in a temporary folder, with HOME, global config and dates of its own.
pub struct TestRepo {
    temp: TempDir,
    root: PathBuf,
    gnupg: Option<GnupgHome>,
}

impl TestRepo {
    /// Creates an empty repository on branch `main` with a pinned user name and email.
    pub fn new() -> TestRepo {
        let temp = tempfile::Builder::new()
            .prefix("mrel-test")
            .tempdir()
            .expect("create a temporary folder");
        let home = temp.path().join("home");
        std::fs::create_dir_all(&home).expect("create the home folder");
        std::fs::write(home.join(".gitconfig"), "").expect("write an empty global git config");
        let root = temp.path().join("repo");
        std::fs::create_dir_all(&root).expect("create the repository folder");
        let repo = TestRepo {
            temp,
            root,
            gnupg: None,
        };
        repo.git(&["init", "--quiet", "--initial-branch=main"]);
        repo.git(&["config", "user.name", USER_NAME]);
        repo.git(&["config", "user.email", USER_EMAIL]);
        repo
    }

    /// Creates a repository holding the demo model described by `model`, committed.
    pub fn with_model(model: &ModelFile) -> TestRepo {
        let repo = TestRepo::new();
        repo.write_model(model);
        repo.commit_all("Add the demo model");
        repo
    }

    /// Returns the root of the work tree.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Returns a folder outside the repository for keys and other files.
    pub fn scratch(&self) -> &Path {
        self.temp.path()
    }

    fn environment(&self) -> Vec<(&'static str, OsString)> {
        let home = self.temp.path().join("home");
        let mut variables = vec![
            ("HOME", home.clone().into_os_string()),
            ("XDG_CONFIG_HOME", home.join(".config").into_os_string()),
            ("GIT_CONFIG_NOSYSTEM", "1".into()),
            (
                "GIT_CONFIG_GLOBAL",
                home.join(".gitconfig").into_os_string(),
            ),
            ("GIT_AUTHOR_DATE", PINNED_DATE.into()),
            ("GIT_COMMITTER_DATE", PINNED_DATE.into()),
            ("GIT_TERMINAL_PROMPT", "0".into()),
            ("LC_ALL", "C".into()),
        ];
        if let Some(gnupg) = &self.gnupg {
            variables.push(("GNUPGHOME", gnupg.path().as_os_str().to_owned()));
        }
        variables
    }

    /// Builds a command of any program that runs in the repository with the test environment.
    pub fn command(
        &self,
        program: impl AsRef<std::ffi::OsStr>,
        args: &[&str],
    ) -> std::process::Command {
        let mut command = std::process::Command::new(program);
        command.args(args).current_dir(&self.root);
        for name in CLEARED_VARIABLES {
            command.env_remove(name);
        }
        for (name, value) in self.environment() {
            command.env(name, value);
        }
        command
    }

    /// Builds a `git` command that runs in the repository with the test environment.
    pub fn git_command(&self, args: &[&str]) -> std::process::Command {
        self.command("git", args)
    }

    /// Runs git and returns its output, whatever its exit status.
    pub fn git_output(&self, args: &[&str]) -> Output {
        self.git_command(args).output().expect("run git")
    }

    /// Runs git, panics unless it succeeds, and returns its stdout without the final newline.
    pub fn git(&self, args: &[&str]) -> String {
        let output = self.git_output(args);
        assert!(
            output.status.success(),
            "git {args:?} failed: {}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout)
            .expect("git output is UTF-8")
            .trim_end_matches('\n')
            .to_owned()
    }

    /// Builds an `mrel` command that runs in the repository with the test environment.
    pub fn mrel(&self, args: &[&str]) -> Command {
        let mut command = Command::cargo_bin("mrel").expect("the mrel binary is built");
        command.args(args).current_dir(&self.root);
        for name in CLEARED_VARIABLES {
            command.env_remove(name);
        }
        for (name, value) in self.environment() {
            command.env(name, value);
        }
        command
    }

    /// Writes `contents` to `relative`, creating folders as needed.
    pub fn write(&self, relative: &str, contents: &str) {
        let path = self.root.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create the parent folder");
        }
        std::fs::write(&path, contents).expect("write the file");
    }

    /// Writes the demo model's release file, training script and `.gitignore` (for `out/`).
    pub fn write_model(&self, model: &ModelFile) {
        self.write("release.yaml", &model.to_yaml());
        self.write("train.sh", TRAINING_SCRIPT);
        self.write(".gitignore", "out/\n");
    }

    /// Stages every change and commits it.
    pub fn commit_all(&self, message: &str) {
        self.git(&["add", "--all"]);
        self.git(&["commit", "--quiet", "--message", message]);
    }

    /// Replaces the release file with `model` and commits it, as a new version would be.
    pub fn commit_model(&self, model: &ModelFile) {
        self.write("release.yaml", &model.to_yaml());
        self.commit_all(&format!("Release the demo model {}", model.version));
    }

    /// Releases the committed model without a signature and panics unless it succeeds.
    pub fn release_unsigned(&self) {
        self.mrel(&["release", MODEL, "--no-sign"])
            .assert()
            .success();
    }

    /// Lists the names of all tags, sorted by git.
    pub fn tags(&self) -> Vec<String> {
        self.git(&["tag", "--list"])
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Returns the raw tag object, as `git cat-file tag` prints it.
    pub fn tag_object(&self, tag: &str) -> String {
        self.git(&["cat-file", "tag", tag])
    }

    /// Configures signing with a new SSH key, and the allowed signers file that
    /// `git verify-tag` reads.
    pub fn configure_ssh_signing(&self) {
        let key = self.scratch().join("signing-key");
        let output = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", USER_EMAIL, "-f"])
            .arg(&key)
            .output()
            .expect("run ssh-keygen");
        assert!(
            output.status.success(),
            "ssh-keygen failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let public_key =
            std::fs::read_to_string(key.with_extension("pub")).expect("read the public key");
        let allowed_signers = self.scratch().join("allowed_signers");
        std::fs::write(
            &allowed_signers,
            format!("{USER_EMAIL} namespaces=\"git\" {public_key}"),
        )
        .expect("write the allowed signers file");
        self.git(&["config", "gpg.format", "ssh"]);
        self.git(&["config", "user.signingKey", path_text(&key)]);
        self.git(&[
            "config",
            "gpg.ssh.allowedSignersFile",
            path_text(&allowed_signers),
        ]);
    }

    /// Configures signing with a new OpenPGP key in a GNUPGHOME of its own, which every later
    /// git and mrel command of this repository uses.
    pub fn configure_gpg_signing(&mut self) {
        // gpg-agent's socket path has a length limit, so the home sits directly under /tmp.
        let dir = tempfile::Builder::new()
            .prefix("mrel-gpg")
            .tempdir_in("/tmp")
            .expect("create the GNUPGHOME folder");
        let generated = std::process::Command::new("gpg")
            .args(["--batch", "--passphrase", "", "--quick-gen-key"])
            .arg(format!("{USER_NAME} <{USER_EMAIL}>"))
            .args(["ed25519", "sign", "never"])
            .env("GNUPGHOME", dir.path())
            .output()
            .expect("run gpg");
        // From here on, dropping `gnupg` stops the agent that key generation started.
        let mut gnupg = GnupgHome {
            dir,
            fingerprint: String::new(),
        };
        assert!(
            generated.status.success(),
            "gpg --quick-gen-key failed: {}",
            String::from_utf8_lossy(&generated.stderr)
        );
        let listed = std::process::Command::new("gpg")
            .args(["--batch", "--with-colons", "--list-secret-keys"])
            .env("GNUPGHOME", gnupg.path())
            .output()
            .expect("run gpg");
        let listing = String::from_utf8_lossy(&listed.stdout);
        gnupg.fingerprint = listing
            .lines()
            .find(|line| line.starts_with("fpr:"))
            .and_then(|line| line.split(':').nth(9))
            .expect("the new key has a fingerprint")
            .to_owned();
        self.git(&["config", "user.signingKey", &gnupg.fingerprint]);
        self.gnupg = Some(gnupg);
    }
}

/// Checks whether `program` can be started.
pub fn is_installed(program: &str) -> bool {
    std::process::Command::new(program)
        .arg("--version")
        .output()
        .is_ok()
}

fn path_text(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}

/// Decodes the text a command wrote to stdout.
pub fn stdout_of(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("stdout is UTF-8")
}

/// Decodes the text a command wrote to stderr.
pub fn stderr_of(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).expect("stderr is UTF-8")
}

/// Returns the message of a tag object, which follows the blank line that ends its header.
pub fn tag_message(tag_object: &str) -> &str {
    tag_object
        .split_once("\n\n")
        .map(|(_, message)| message)
        .expect("a tag object has a header and a message")
}

/// Parses the JSON record in the fenced `json mrel-record` block of a tag message.
pub fn release_record(tag_object: &str) -> serde_json::Value {
    const OPEN: &str = "\n```json mrel-record\n";
    let start = tag_object
        .rfind(OPEN)
        .unwrap_or_else(|| panic!("no mrel-record block in:\n{tag_object}"))
        + OPEN.len();
    let body = &tag_object[start..];
    let end = body
        .find("\n```")
        .unwrap_or_else(|| panic!("the mrel-record block is not closed in:\n{tag_object}"));
    serde_json::from_str(&body[..end]).expect("the record is valid JSON")
}
