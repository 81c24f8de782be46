//! `mrel hooks` and `mrel check --staged`: real `git commit` and `git push` runs, against a
//! local bare repository, with the hooks that mrel installs.

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use common::{MODEL, ModelFile, TestRepo, stderr_of, stdout_of};

/// A release file with an unknown field, which `mrel check` rejects.
const BROKEN: &str = "model: demo\nversion: 1.1.0\ncolour: blue\n";

/// A hook script that records that it ran, and its standard input, in `log`, then exits with
/// `status`.
fn recording_hook(log: &Path, status: i32) -> String {
    format!(
        "#!/bin/sh\necho \"ran with $#\" >> '{log}'\ncat >> '{log}'\nexit {status}\n",
        log = log.display()
    )
}

fn hooks_dir(repo: &TestRepo) -> PathBuf {
    repo.root().join(".git/hooks")
}

fn write_hook(path: &Path, content: &str) {
    std::fs::create_dir_all(path.parent().expect("a hook has a folder")).expect("create hooks");
    std::fs::write(path, content).expect("write the hook");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .expect("make the hook executable");
}

fn install(repo: &TestRepo) {
    repo.mrel(&["hooks", "install"]).assert().success();
}

/// Stages `content` as the release file and tries to commit it; returns git's output.
fn try_commit(repo: &TestRepo, content: &str) -> std::process::Output {
    repo.write("release.yaml", content);
    repo.git(&["add", "release.yaml"]);
    repo.git_output(&["commit", "--quiet", "--message", "Change the release file"])
}

/// Creates a bare repository in the scratch folder and adds it as remote `origin`.
fn add_remote(repo: &TestRepo) -> PathBuf {
    let remote = repo.scratch().join("remote.git");
    repo.git(&[
        "init",
        "--quiet",
        "--bare",
        remote.to_str().expect("UTF-8 path"),
    ]);
    repo.git(&[
        "remote",
        "add",
        "origin",
        remote.to_str().expect("UTF-8 path"),
    ]);
    remote
}

/// Lists the tags of the bare repository at `remote`.
fn remote_tags(repo: &TestRepo, remote: &Path) -> Vec<String> {
    let output = repo
        .git_command(&["--git-dir", remote.to_str().expect("UTF-8 path"), "tag"])
        .output()
        .expect("run git tag");
    stdout_of(&output).lines().map(str::to_owned).collect()
}

#[test]
fn install_writes_executable_hooks() {
    let repo = TestRepo::with_model(&ModelFile::new("1.0.0", 50));
    install(&repo);

    for hook in ["pre-commit", "pre-push"] {
        let path = hooks_dir(&repo).join(hook);
        let mode = std::fs::metadata(&path)
            .unwrap_or_else(|error| panic!("{hook}: {error}"))
            .permissions()
            .mode();
        assert_eq!(mode & 0o111, 0o111, "{hook} is not executable");
        let script = std::fs::read_to_string(&path).expect("read the hook");
        let mrel = assert_cmd::cargo::cargo_bin("mrel")
            .canonicalize()
            .expect("the mrel binary exists");
        assert!(
            script.contains(&format!("recorded='{}'", mrel.display())),
            "{hook} does not record the path of mrel:\n{script}"
        );
    }
}

#[test]
fn pre_commit_rejects_invalid_release_file() {
    let repo = TestRepo::with_model(&ModelFile::new("1.0.0", 50));
    install(&repo);
    let head = repo.git(&["rev-parse", "HEAD"]);

    let output = try_commit(&repo, BROKEN);
    assert!(!output.status.success(), "the commit went through");
    // git sends a pre-commit hook's stdout to its stderr.
    let stderr = stderr_of(&output);
    assert!(
        stderr.contains("release.yaml:3:1: field `colour`: unknown field"),
        "{stderr}"
    );
    assert_eq!(repo.git(&["rev-parse", "HEAD"]), head);
}

#[test]
fn pre_commit_accepts_valid_release_file() {
    let repo = TestRepo::with_model(&ModelFile::new("1.0.0", 50));
    install(&repo);

    let output = try_commit(&repo, &ModelFile::new("1.1.0", 60).to_yaml());
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert_eq!(
        repo.git(&["log", "--format=%s", "-1"]),
        "Change the release file"
    );
}

#[test]
fn check_staged_sees_broken_index_despite_fixed_worktree() {
    let repo = TestRepo::with_model(&ModelFile::new("1.0.0", 50));
    repo.write("release.yaml", BROKEN);
    repo.git(&["add", "release.yaml"]);
    // The work tree is fixed after staging; the commit would still take the staged content.
    repo.write("release.yaml", &ModelFile::new("1.1.0", 60).to_yaml());

    repo.mrel(&["check"]).assert().success();
    let assert = repo.mrel(&["check", "--staged"]).assert().code(2);
    let stdout = stdout_of(assert.get_output());
    assert!(stdout.contains("field `colour`: unknown field"), "{stdout}");
}

#[test]
fn pre_commit_rejects_broken_index_despite_fixed_worktree() {
    let repo = TestRepo::with_model(&ModelFile::new("1.0.0", 50));
    install(&repo);
    repo.write("release.yaml", BROKEN);
    repo.git(&["add", "release.yaml"]);
    repo.write("release.yaml", &ModelFile::new("1.1.0", 60).to_yaml());

    let output = repo.git_output(&["commit", "--quiet", "--message", "Sneak it in"]);
    assert!(
        !output.status.success(),
        "the broken staged file was committed"
    );
}

#[test]
fn pre_commit_checks_commit_all_content() {
    let repo = TestRepo::with_model(&ModelFile::new("1.0.0", 50));
    install(&repo);
    // The index is valid, but `git commit --all` stages the broken work tree into a temporary
    // index that git names in GIT_INDEX_FILE.
    repo.write("release.yaml", BROKEN);

    let output = repo.git_output(&["commit", "--quiet", "--all", "--message", "Commit all"]);
    assert!(!output.status.success(), "the broken file was committed");
    assert!(stderr_of(&output).contains("field `colour`"));
}

#[test]
fn hooks_honour_core_hooks_path() {
    let repo = TestRepo::with_model(&ModelFile::new("1.0.0", 50));
    repo.git(&["config", "core.hooksPath", "ci/hooks"]);
    install(&repo);

    assert!(repo.root().join("ci/hooks/pre-commit").exists());
    assert!(!hooks_dir(&repo).join("pre-commit").exists());
    let output = try_commit(&repo, BROKEN);
    assert!(
        !output.status.success(),
        "the hook in core.hooksPath did not run"
    );
}

#[test]
fn install_chains_existing_hook() {
    let repo = TestRepo::with_model(&ModelFile::new("1.0.0", 50));
    let log = repo.scratch().join("chained.log");
    let existing = recording_hook(&log, 0);
    write_hook(&hooks_dir(&repo).join("pre-commit"), &existing);

    let assert = repo.mrel(&["hooks", "install"]).assert().success();
    assert!(stdout_of(assert.get_output()).contains("pre-commit.mrel-chained, runs first"));
    let chained = hooks_dir(&repo).join("pre-commit.mrel-chained");
    assert_eq!(
        std::fs::read_to_string(&chained).expect("the chained hook"),
        existing
    );

    let output = try_commit(&repo, BROKEN);
    assert!(!output.status.success(), "mrel's check did not run");
    assert!(log.exists(), "the chained hook did not run");
}

#[test]
fn failing_chained_hook_stops_commit() {
    let repo = TestRepo::with_model(&ModelFile::new("1.0.0", 50));
    let log = repo.scratch().join("chained.log");
    write_hook(
        &hooks_dir(&repo).join("pre-commit"),
        &recording_hook(&log, 3),
    );
    install(&repo);

    let output = try_commit(&repo, &ModelFile::new("1.1.0", 60).to_yaml());
    assert!(
        !output.status.success(),
        "the chained hook's failure was ignored"
    );
}

#[test]
fn install_rejects_taken_chain_name() {
    let repo = TestRepo::with_model(&ModelFile::new("1.0.0", 50));
    let dir = hooks_dir(&repo);
    write_hook(&dir.join("pre-commit"), "#!/bin/sh\nexit 0\n");
    write_hook(&dir.join("pre-commit.mrel-chained"), "#!/bin/sh\nexit 0\n");

    let assert = repo.mrel(&["hooks", "install"]).assert().code(2);
    let stderr = stderr_of(assert.get_output());
    assert!(stderr.contains("cannot chain to it"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(dir.join("pre-commit")).expect("the hook"),
        "#!/bin/sh\nexit 0\n"
    );
    assert!(
        !dir.join("pre-push").exists(),
        "a rejected installation wrote the pre-push hook"
    );
}

#[test]
fn install_force_replaces_hook() {
    let repo = TestRepo::with_model(&ModelFile::new("1.0.0", 50));
    let dir = hooks_dir(&repo);
    write_hook(&dir.join("pre-commit"), "#!/bin/sh\nexit 0\n");

    repo.mrel(&["hooks", "install", "--force"])
        .assert()
        .success();
    let script = std::fs::read_to_string(dir.join("pre-commit")).expect("the hook");
    assert!(script.contains("check --staged"), "{script}");
    assert!(!dir.join("pre-commit.mrel-chained").exists());
    let kept = std::fs::read_to_string(dir.join("pre-commit.mrel-replaced"))
        .expect("the replaced hook is kept");
    assert_eq!(kept, "#!/bin/sh\nexit 0\n");
}

#[test]
fn install_twice_keeps_chain() {
    let repo = TestRepo::with_model(&ModelFile::new("1.0.0", 50));
    let dir = hooks_dir(&repo);
    write_hook(&dir.join("pre-commit"), "#!/bin/sh\nexit 0\n");
    install(&repo);

    let assert = repo.mrel(&["hooks", "install"]).assert().success();
    assert!(stdout_of(assert.get_output()).contains("updated the pre-commit hook"));
    assert_eq!(
        std::fs::read_to_string(dir.join("pre-commit.mrel-chained")).expect("the chained hook"),
        "#!/bin/sh\nexit 0\n"
    );
}

#[test]
fn uninstall_restores_chained_hook() {
    let repo = TestRepo::with_model(&ModelFile::new("1.0.0", 50));
    let dir = hooks_dir(&repo);
    write_hook(&dir.join("pre-commit"), "#!/bin/sh\nexit 0\n");
    install(&repo);

    repo.mrel(&["hooks", "uninstall"]).assert().success();
    assert_eq!(
        std::fs::read_to_string(dir.join("pre-commit")).expect("the restored hook"),
        "#!/bin/sh\nexit 0\n"
    );
    assert!(!dir.join("pre-commit.mrel-chained").exists());
    assert!(!dir.join("pre-push").exists());
}

#[test]
fn uninstall_leaves_foreign_hook() {
    let repo = TestRepo::with_model(&ModelFile::new("1.0.0", 50));
    let dir = hooks_dir(&repo);
    write_hook(&dir.join("pre-push"), "#!/bin/sh\nexit 0\n");

    let assert = repo.mrel(&["hooks", "uninstall"]).assert().success();
    assert!(stderr_of(assert.get_output()).contains("was not written by mrel"));
    assert!(dir.join("pre-push").exists());
}

#[test]
fn hook_falls_back_to_path() {
    let repo = TestRepo::with_model(&ModelFile::new("1.0.0", 50));
    install(&repo);
    let hook = hooks_dir(&repo).join("pre-commit");
    let script = std::fs::read_to_string(&hook).expect("the hook");
    let mrel = assert_cmd::cargo::cargo_bin("mrel")
        .canonicalize()
        .expect("the mrel binary exists");
    write_hook(
        &hook,
        &script.replace(&mrel.display().to_string(), "/nonexistent/mrel"),
    );
    repo.write("release.yaml", BROKEN);
    repo.git(&["add", "release.yaml"]);

    let bin_dir = mrel.parent().expect("the binary has a folder");
    let path = format!("{}:/usr/bin:/bin", bin_dir.display());
    let output = repo
        .git_command(&["commit", "--quiet", "--message", "Through PATH"])
        .env("PATH", &path)
        .output()
        .expect("run git");
    assert!(!output.status.success(), "mrel on PATH did not run");
    assert!(stderr_of(&output).contains("field `colour`"));

    let output = repo
        .git_command(&["commit", "--quiet", "--message", "Without mrel"])
        .env("PATH", "/usr/bin:/bin")
        .output()
        .expect("run git");
    assert!(!output.status.success());
    assert!(stderr_of(&output).contains("mrel is neither at /nonexistent/mrel nor on PATH"));
}

#[test]
fn pre_push_rejects_unsigned_tag() {
    let repo = TestRepo::with_model(&ModelFile::new("1.0.0", 50));
    let remote = add_remote(&repo);
    install(&repo);
    repo.release_unsigned();

    let output = repo.git_output(&["push", "--quiet", "origin", "main", "demo@v1.0.0"]);
    assert!(!output.status.success(), "the unsigned tag was pushed");
    let stderr = stderr_of(&output);
    assert!(stderr.contains("demo@v1.0.0: it is unsigned"), "{stderr}");
    assert!(remote_tags(&repo, &remote).is_empty());
}

#[test]
fn pre_push_accepts_signed_tag() {
    let repo = TestRepo::with_model(&ModelFile::new("1.0.0", 50));
    repo.configure_ssh_signing();
    let remote = add_remote(&repo);
    install(&repo);
    repo.mrel(&["release", MODEL]).assert().success();

    let output = repo.git_output(&["push", "--quiet", "origin", "main", "demo@v1.0.0"]);
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert_eq!(remote_tags(&repo, &remote), ["demo@v1.0.0"]);
}

#[test]
fn pre_push_accepts_branch_push() {
    let repo = TestRepo::with_model(&ModelFile::new("1.0.0", 50));
    add_remote(&repo);
    install(&repo);

    let output = repo.git_output(&["push", "--quiet", "origin", "main"]);
    assert!(output.status.success(), "{}", stderr_of(&output));
}

#[test]
fn pre_push_rejects_unparsable_record() {
    let repo = TestRepo::with_model(&ModelFile::new("1.0.0", 50));
    repo.configure_ssh_signing();
    let remote = add_remote(&repo);
    install(&repo);
    repo.git(&[
        "tag",
        "--sign",
        "--message",
        "Notes of demo 1.0.0\n\n```json mrel-record\n{\"format\": \"mrel.release/1\"}\n```",
        "demo@v1.0.0",
    ]);

    let output = repo.git_output(&["push", "--quiet", "origin", "demo@v1.0.0"]);
    assert!(
        !output.status.success(),
        "the tag with a broken record was pushed"
    );
    let stderr = stderr_of(&output);
    assert!(
        stderr.contains("demo@v1.0.0: its record does not parse"),
        "{stderr}"
    );
    assert!(remote_tags(&repo, &remote).is_empty());
}

#[test]
fn pre_push_rejects_tampered_signature() {
    let repo = TestRepo::with_model(&ModelFile::new("1.0.0", 50));
    repo.configure_ssh_signing();
    add_remote(&repo);
    install(&repo);
    repo.mrel(&["release", MODEL]).assert().success();
    // The notes are changed after signing, so the signature no longer matches the bytes.
    let tampered = repo
        .tag_object("demo@v1.0.0")
        .replacen("# demo 1.0.0", "# demo 1.0.0, approved", 1)
        .replace("tag demo@v1.0.0\n", "tag demo@v1.0.1\n");
    let mut hash = repo
        .git_command(&["hash-object", "-t", "tag", "-w", "--stdin"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run git hash-object");
    {
        use std::io::Write as _;
        let mut stdin = hash.stdin.take().expect("stdin is piped");
        stdin
            .write_all(format!("{tampered}\n").as_bytes())
            .expect("write the tag object");
    }
    let output = hash.wait_with_output().expect("wait for git hash-object");
    let id = stdout_of(&output).trim().to_owned();
    repo.git(&["update-ref", "refs/tags/demo@v1.0.1", &id]);

    let output = repo.git_output(&["push", "--quiet", "origin", "demo@v1.0.1"]);
    assert!(!output.status.success(), "the tampered tag was pushed");
    let stderr = stderr_of(&output);
    assert!(
        stderr.contains("demo@v1.0.1: it is badly signed"),
        "{stderr}"
    );
}

#[test]
fn pre_push_rejects_lightweight_registry_tag() {
    let repo = TestRepo::with_model(&ModelFile::new("1.0.0", 50));
    add_remote(&repo);
    install(&repo);
    repo.git(&["tag", "demo@v1.0.0"]);

    let output = repo.git_output(&["push", "--quiet", "origin", "demo@v1.0.0"]);
    assert!(!output.status.success(), "the lightweight tag was pushed");
    assert!(stderr_of(&output).contains("demo@v1.0.0: it is a lightweight tag"));
}

#[test]
fn pre_push_passes_refs_to_chained_hook() {
    let repo = TestRepo::with_model(&ModelFile::new("1.0.0", 50));
    let log = repo.scratch().join("chained.log");
    write_hook(&hooks_dir(&repo).join("pre-push"), &recording_hook(&log, 0));
    add_remote(&repo);
    install(&repo);

    let output = repo.git_output(&["push", "--quiet", "origin", "main"]);
    assert!(output.status.success(), "{}", stderr_of(&output));
    let head = repo.git(&["rev-parse", "HEAD"]);
    let logged = std::fs::read_to_string(&log).expect("the chained hook ran");
    assert!(logged.starts_with("ran with 2\n"), "{logged}");
    assert!(
        logged.contains(&format!("refs/heads/main {head} refs/heads/main ")),
        "{logged}"
    );
}
