//! `mrel verify` and `mrel history` against real repositories: good SSH and OpenPGP releases,
//! tampered artifacts, tampered and re-signed tag objects, stages, artifacts kept elsewhere, and
//! the digest cache.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{
    MODEL, ModelFile, TestRepo, USER_EMAIL, is_installed, release_record, stderr_of, stdout_of,
    tag_message,
};
use sha2::{Digest, Sha256};

const TAG: &str = "demo@v1.0.0";
const ARTIFACT: &str = "out/model.bin";

/// Creates a repository with release 1.0.0 of the demo model, signed with a throwaway SSH key
/// that the allowed signers file lists.
fn ssh_release() -> TestRepo {
    let repo = TestRepo::with_model(&ModelFile::new("1.0.0", 62).stages(&["dev", "prod"]));
    repo.configure_ssh_signing();
    repo.mrel(&["release", MODEL]).assert().success();
    repo
}

fn verify(repo: &TestRepo, args: &[&str]) -> Output {
    let mut all = vec!["verify"];
    all.extend_from_slice(args);
    repo.mrel(&all).output().expect("mrel runs")
}

/// Runs `mrel verify ARGS --format json` and returns the exit code and the report.
fn verify_json(repo: &TestRepo, args: &[&str]) -> (Option<i32>, serde_json::Value) {
    let mut all = args.to_vec();
    all.extend_from_slice(&["--format", "json"]);
    let output = verify(repo, &all);
    let report = serde_json::from_str(&stdout_of(&output)).unwrap_or_else(|error| {
        panic!(
            "the report is not JSON ({error}):\n{}\n{}",
            stdout_of(&output),
            stderr_of(&output)
        )
    });
    (output.status.code(), report)
}

/// Returns the report's row of one artifact file.
fn file_row<'a>(report: &'a serde_json::Value, path: &str) -> &'a serde_json::Value {
    report["artifacts"]["files"]
        .as_array()
        .expect("a list of files")
        .iter()
        .find(|row| row["path"] == path)
        .unwrap_or_else(|| panic!("no row for {path} in {report:#}"))
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Writes `object` as a tag object with `git mktag` and points `refs/tags/TAG` at it, as someone
/// with write access to the repository could.
fn replace_tag(repo: &TestRepo, tag: &str, object: &str) {
    let path = repo.scratch().join("tag-object");
    std::fs::write(&path, format!("{object}\n")).expect("write the tag object");
    let file = std::fs::File::open(&path).expect("open the tag object");
    let output = repo
        .git_command(&["mktag"])
        .stdin(file)
        .output()
        .expect("run git mktag");
    assert!(
        output.status.success(),
        "git mktag failed: {}",
        stderr_of(&output)
    );
    let id = stdout_of(&output).trim().to_owned();
    repo.git(&["update-ref", &format!("refs/tags/{tag}"), &id]);
}

/// Rewrites the artifact's digest and size in `text` (a tag object or its message) to those of
/// `forged`, as someone who swapped the model file would.
fn forge_record(text: &str, forged: &[u8]) -> String {
    let record = release_record(text);
    let artifact = &record["artifacts"][0];
    let sha256 = artifact["sha256"].as_str().expect("a recorded digest");
    let size = artifact["size"].as_u64().expect("a recorded size");
    let forged_text = text.replace(sha256, &sha256_hex(forged)).replace(
        &format!("\"size\": {size}"),
        &format!("\"size\": {}", forged.len()),
    );
    assert_ne!(forged_text, text, "the record was edited");
    forged_text
}

/// Makes an SSH key that no allowed signers file lists and returns its private key file.
fn stranger_key(repo: &TestRepo) -> PathBuf {
    let key = repo.scratch().join("stranger-key");
    let output = std::process::Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "mallory@example.com",
            "-f",
        ])
        .arg(&key)
        .output()
        .expect("run ssh-keygen");
    assert!(output.status.success(), "{}", stderr_of(&output));
    key
}

/// Sleeps until the times of `path` lie far enough in the past for the digest cache to keep its
/// digest: 100 ms after its last change on file systems with sub-second timestamps, 3 s on
/// others, each with a margin on top.
fn wait_until_cacheable(path: &Path) {
    let metadata = std::fs::metadata(path).expect("read the file's metadata");
    let margin = if metadata.ctime_nsec() == 0 {
        Duration::from_millis(3500)
    } else {
        Duration::from_millis(500)
    };
    let changed = UNIX_EPOCH
        + Duration::new(
            u64::try_from(metadata.ctime()).expect("a time after 1970"),
            u32::try_from(metadata.ctime_nsec()).expect("nanoseconds"),
        );
    if let Ok(remaining) = (changed + margin).duration_since(SystemTime::now()) {
        std::thread::sleep(remaining);
    }
}

#[test]
fn ssh_release_verifies() {
    let repo = ssh_release();

    let output = verify(&repo, &[TAG]);

    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    let stdout = stdout_of(&output);
    assert!(stdout.contains("signature  good"), "{stdout}");
    assert!(stdout.contains("record     ok"), "{stdout}");
    assert!(stdout.contains("1 file matches"), "{stdout}");
    assert!(
        stderr_of(&output).contains("verified demo@v1.0.0"),
        "{}",
        stderr_of(&output)
    );
}

#[test]
fn ssh_release_json_names_signer() {
    let repo = ssh_release();

    let (code, report) = verify_json(&repo, &["demo@1.0.0"]);

    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(report["verified"], true);
    assert_eq!(report["tag"], TAG);
    assert_eq!(report["signature"]["status"], "good");
    assert_eq!(report["signature"]["format"], "ssh");
    assert_eq!(report["signature"]["signer"], USER_EMAIL);
    assert!(
        report["signature"]["key"]
            .as_str()
            .is_some_and(|key| key.starts_with("SHA256:")),
        "{report:#}"
    );
    assert_eq!(report["commit"], repo.git(&["rev-parse", "HEAD"]));
    assert_eq!(file_row(&report, ARTIFACT)["status"], "ok");
}

#[test]
fn gpg_release_verifies() {
    if !is_installed("gpg") || !is_installed("gpgconf") {
        println!("skipped: gpg or gpgconf is not installed");
        return;
    }
    let mut repo = TestRepo::with_model(&ModelFile::new("1.0.0", 62));
    repo.configure_gpg_signing();
    repo.mrel(&["release", MODEL]).assert().success();

    let (code, report) = verify_json(&repo, &[TAG]);

    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(report["signature"]["status"], "good");
    assert_eq!(report["signature"]["format"], "openpgp");
    assert_eq!(report["signature"]["signer"], "Test <test@example.com>");
}

#[test]
fn gpg_key_missing_from_keyring_fails() {
    if !is_installed("gpg") || !is_installed("gpgconf") {
        println!("skipped: gpg or gpgconf is not installed");
        return;
    }
    let mut repo = TestRepo::with_model(&ModelFile::new("1.0.0", 62));
    repo.configure_gpg_signing();
    repo.mrel(&["release", MODEL]).assert().success();
    let empty_home = tempfile::Builder::new()
        .prefix("mrel-gpg-empty")
        .tempdir_in("/tmp")
        .expect("create an empty GNUPGHOME");

    let output = repo
        .mrel(&["verify", TAG])
        .env("GNUPGHOME", empty_home.path())
        .output()
        .expect("mrel runs");

    assert_eq!(output.status.code(), Some(1), "{}", stderr_of(&output));
    assert!(
        stderr_of(&output).contains("unknown key: the signing key"),
        "{}",
        stderr_of(&output)
    );
    assert!(
        stderr_of(&output).contains("is not in the keyring"),
        "{}",
        stderr_of(&output)
    );
}

#[test]
fn artifact_changed_by_one_byte_fails() {
    let repo = ssh_release();
    let path = repo.root().join(ARTIFACT);
    let mut bytes = std::fs::read(&path).expect("read the artifact");
    bytes[0] ^= 1;
    std::fs::write(&path, &bytes).expect("write the artifact");

    let output = verify(&repo, &[TAG]);

    assert_eq!(output.status.code(), Some(1));
    let stderr = stderr_of(&output);
    assert!(
        stderr.contains("artifact out/model.bin changed: sha256"),
        "{stderr}"
    );
    assert!(stderr.contains(&sha256_hex(&bytes)), "{stderr}");
}

#[test]
fn missing_artifact_fails() {
    let repo = ssh_release();
    std::fs::remove_file(repo.root().join(ARTIFACT)).expect("delete the artifact");

    let output = verify(&repo, &[TAG]);

    assert_eq!(output.status.code(), Some(1));
    let stderr = stderr_of(&output);
    assert!(
        stderr.contains("artifact out/model.bin missing"),
        "{stderr}"
    );
    assert!(stderr.contains("does not exist"), "{stderr}");
}

#[test]
fn record_resigned_by_unknown_key_fails() {
    let repo = ssh_release();
    // Swap the model, then write the release tag anew with a record whose digest matches the
    // swapped file, signed by a key that the allowed signers file does not list.
    let forged = b"forged weights\n";
    std::fs::write(repo.root().join(ARTIFACT), forged).expect("swap the artifact");
    let tag_object = repo.tag_object(TAG);
    let message = tag_message(&tag_object);
    let unsigned = &message[..message
        .find("-----BEGIN SSH SIGNATURE-----")
        .expect("a signed tag")];
    let message = forge_record(unsigned, forged);
    let message_file = repo.scratch().join("forged-message");
    std::fs::write(&message_file, message).expect("write the message");
    let key = stranger_key(&repo);
    repo.git(&[
        "-c",
        &format!("user.signingKey={}", key.display()),
        "tag",
        "--force",
        "--sign",
        "--cleanup=verbatim",
        "--file",
        message_file.to_str().expect("UTF-8 path"),
        TAG,
        "HEAD",
    ]);

    let (code, report) = verify_json(&repo, &[TAG]);

    assert_eq!(code, Some(1), "{report:#}");
    assert!(!repo.git_output(&["verify-tag", TAG]).status.success());
    assert_eq!(report["signature"]["status"], "unknown_key");
    assert_eq!(report["record"]["ok"], true, "{report:#}");
    assert_eq!(file_row(&report, ARTIFACT)["status"], "ok", "{report:#}");
    let output = verify(&repo, &[TAG]);
    assert!(
        stderr_of(&output).contains("is not in the allowed signers file"),
        "{}",
        stderr_of(&output)
    );
}

#[test]
fn record_edited_after_signing_fails() {
    let repo = ssh_release();
    let forged = b"forged weights\n";
    std::fs::write(repo.root().join(ARTIFACT), forged).expect("swap the artifact");
    let edited = forge_record(&repo.tag_object(TAG), forged);
    replace_tag(&repo, TAG, &edited);

    let (code, report) = verify_json(&repo, &[TAG]);

    assert_eq!(code, Some(1), "{report:#}");
    assert!(!repo.git_output(&["verify-tag", TAG]).status.success());
    assert_eq!(report["signature"]["status"], "bad");
    assert_eq!(file_row(&report, ARTIFACT)["status"], "ok", "{report:#}");
    let output = verify(&repo, &[TAG]);
    assert!(
        stderr_of(&output).contains("signature of demo@v1.0.0: bad"),
        "{}",
        stderr_of(&output)
    );
}

#[test]
fn record_of_other_version_fails() {
    let repo = ssh_release();
    let message = tag_message(&repo.tag_object(TAG)).to_owned();
    let message = &message[..message
        .find("-----BEGIN SSH SIGNATURE-----")
        .expect("a signed tag")];
    let message_file = repo.scratch().join("copied-message");
    std::fs::write(&message_file, message).expect("write the message");
    repo.git(&[
        "tag",
        "--sign",
        "--cleanup=verbatim",
        "--file",
        message_file.to_str().expect("UTF-8 path"),
        "demo@v2.0.0",
        "HEAD",
    ]);

    let output = verify(&repo, &["demo@v2.0.0"]);

    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr_of(&output)
            .contains("record: it names version 1.0.0, but the tag demo@v2.0.0 is version 2.0.0"),
        "{}",
        stderr_of(&output)
    );
}

#[test]
fn unsigned_release_fails() {
    let repo = TestRepo::with_model(&ModelFile::new("1.0.0", 62));
    repo.release_unsigned();

    let output = verify(&repo, &[TAG]);

    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr_of(&output).contains("signature of demo@v1.0.0: unsigned"),
        "{}",
        stderr_of(&output)
    );
}

#[test]
fn unknown_tag_is_usage_error() {
    let repo = ssh_release();

    let output = verify(&repo, &["demo@v9.9.9"]);

    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr_of(&output).contains("tag demo@v9.9.9 not found (releases of demo: demo@v1.0.0)"),
        "{}",
        stderr_of(&output)
    );
}

#[test]
fn lightweight_tag_fails() {
    let repo = ssh_release();
    repo.git(&["tag", "demo@v2.0.0"]);

    let output = verify(&repo, &["demo@v2.0.0"]);

    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr_of(&output).contains("tag demo@v2.0.0 is a lightweight tag"),
        "{}",
        stderr_of(&output)
    );
}

#[test]
fn stage_tag_name_is_usage_error() {
    let repo = ssh_release();
    repo.mrel(&["promote", MODEL, "1.0.0", "dev"])
        .assert()
        .success();

    let output = verify(&repo, &["demo#dev#1"]);

    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr_of(&output).contains("tag demo#dev#1 is not a release tag"),
        "{}",
        stderr_of(&output)
    );
}

#[test]
fn empty_stage_is_usage_error() {
    let repo = ssh_release();

    let output = verify(&repo, &["demo#prod"]);

    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr_of(&output).contains("no version of model `demo` is in stage `prod`"),
        "{}",
        stderr_of(&output)
    );
}

#[test]
fn stage_resolves_to_its_version() {
    let repo = ssh_release();
    repo.mrel(&["promote", MODEL, "1.0.0", "dev"])
        .assert()
        .success();
    // Training 1.1.0 overwrites the work tree's model file, so 1.0.0's is kept aside.
    let store = repo.scratch().join("store-1.0.0");
    std::fs::create_dir_all(store.join("out")).expect("create the store");
    std::fs::copy(repo.root().join(ARTIFACT), store.join(ARTIFACT)).expect("keep the artifact");
    repo.commit_model(&ModelFile::new("1.1.0", 70).stages(&["dev", "prod"]));
    repo.mrel(&["release", MODEL]).assert().success();

    let (code, report) = verify_json(
        &repo,
        &[
            "demo#dev",
            "--artifacts",
            store.to_str().expect("UTF-8 path"),
        ],
    );

    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(report["tag"], TAG);
    assert_eq!(report["version"], "1.0.0");
    assert_eq!(report["stage"]["tag"], "demo#dev#1");
    assert_eq!(report["stage"]["signature"]["status"], "good");
}

#[test]
fn unsigned_stage_assignment_fails() {
    let repo = ssh_release();
    repo.mrel(&["promote", MODEL, "1.0.0", "dev", "--no-sign"])
        .assert()
        .success();

    let output = verify(&repo, &["demo#dev"]);

    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr_of(&output).contains("signature of the stage tag demo#dev#1: unsigned"),
        "{}",
        stderr_of(&output)
    );
}

#[test]
fn artifacts_folder_elsewhere_verifies() {
    let repo = ssh_release();
    let store = repo.scratch().join("store");
    std::fs::create_dir_all(store.join("out")).expect("create the store");
    std::fs::rename(repo.root().join(ARTIFACT), store.join(ARTIFACT)).expect("move the artifact");

    let (in_work_tree, _) = verify_json(&repo, &[TAG]);
    let (code, report) = verify_json(
        &repo,
        &[TAG, "--artifacts", store.to_str().expect("UTF-8 path")],
    );

    assert_eq!(in_work_tree, Some(1), "the work tree no longer has it");
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(report["artifacts"]["root"], store.to_str().expect("UTF-8"));
    assert_eq!(file_row(&report, ARTIFACT)["status"], "ok");
}

#[test]
fn missing_artifacts_folder_is_usage_error() {
    let repo = ssh_release();

    let output = verify(&repo, &[TAG, "--artifacts", "no-such-folder"]);

    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr_of(&output).contains("no-such-folder does not exist"),
        "{}",
        stderr_of(&output)
    );
}

#[test]
fn file_added_to_artifact_folder_fails() {
    let model = ModelFile::new("1.0.0", 62)
        .command("sh train.sh && mkdir -p out/weights && echo 1 > out/weights/a.bin");
    let mut yaml = model.to_yaml();
    yaml = yaml.replace("artifacts: [out/model.bin]", "artifacts: [out/weights]");
    let repo = TestRepo::with_model(&model);
    repo.write("release.yaml", &yaml);
    repo.commit_all("Release a folder");
    repo.configure_ssh_signing();
    repo.mrel(&["release", MODEL]).assert().success();
    std::fs::write(repo.root().join("out/weights/b.bin"), "2").expect("add a file");

    let (code, report) = verify_json(&repo, &[TAG]);

    assert_eq!(code, Some(1), "{report:#}");
    assert_eq!(file_row(&report, "out/weights/a.bin")["status"], "ok");
    assert_eq!(file_row(&report, "out/weights/b.bin")["status"], "added");
}

#[test]
fn cache_serves_unchanged_file() {
    let repo = ssh_release();
    let artifact = repo.root().join(ARTIFACT);
    wait_until_cacheable(&artifact);

    let (first_code, first) = verify_json(&repo, &[TAG]);
    let (second_code, second) = verify_json(&repo, &[TAG]);

    assert_eq!(first_code, Some(0), "{first:#}");
    assert_eq!(second_code, Some(0), "{second:#}");
    assert_eq!(file_row(&first, ARTIFACT)["cached"], false);
    assert_eq!(file_row(&second, ARTIFACT)["cached"], true);
    let cache: serde_json::Value = serde_json::from_slice(
        &std::fs::read(repo.root().join(".git/mrel/digest-cache.json"))
            .expect("read the cache file"),
    )
    .expect("the cache is JSON");
    let key = artifact.to_str().expect("UTF-8 path");
    assert_eq!(
        cache["files"][key]["sha256"],
        release_record(&repo.tag_object(TAG))["artifacts"][0]["sha256"]
    );
}

#[test]
fn cache_misses_rewritten_file_of_same_size() {
    let repo = ssh_release();
    let artifact = repo.root().join(ARTIFACT);
    wait_until_cacheable(&artifact);
    verify_json(&repo, &[TAG]);
    let (_, cached) = verify_json(&repo, &[TAG]);
    assert_eq!(file_row(&cached, ARTIFACT)["cached"], true);

    // One byte changes, the size stays and the modification time is put back, so only the
    // change time differs.
    let modified = std::fs::metadata(&artifact)
        .and_then(|metadata| metadata.modified())
        .expect("read the modification time");
    let mut bytes = std::fs::read(&artifact).expect("read the artifact");
    bytes[0] ^= 1;
    std::fs::write(&artifact, &bytes).expect("write the artifact");
    std::fs::File::options()
        .write(true)
        .open(&artifact)
        .and_then(|file| file.set_modified(modified))
        .expect("restore the modification time");

    let (code, report) = verify_json(&repo, &[TAG]);

    assert_eq!(code, Some(1), "{report:#}");
    assert_eq!(file_row(&report, ARTIFACT)["status"], "changed");
    assert_eq!(file_row(&report, ARTIFACT)["cached"], false);
}

#[test]
fn no_cache_bypasses_stale_entry() {
    let repo = ssh_release();
    let artifact = repo.root().join(ARTIFACT);
    wait_until_cacheable(&artifact);
    verify_json(&repo, &[TAG]);
    // A wrong digest in the cache shows that verify trusts the cache for an unchanged file, and
    // that --no-cache reads the file instead.
    let cache_file = repo.root().join(".git/mrel/digest-cache.json");
    let recorded = release_record(&repo.tag_object(TAG))["artifacts"][0]["sha256"]
        .as_str()
        .expect("a recorded digest")
        .to_owned();
    let cache = std::fs::read_to_string(&cache_file).expect("read the cache file");
    assert!(cache.contains(&recorded), "{cache}");
    std::fs::write(&cache_file, cache.replace(&recorded, &"0".repeat(64)))
        .expect("write the cache file");

    let with_cache = verify(&repo, &[TAG]);
    let (code, report) = verify_json(&repo, &[TAG, "--no-cache"]);

    assert_eq!(with_cache.status.code(), Some(1));
    assert!(
        stderr_of(&with_cache).contains("--no-cache reads the file again"),
        "{}",
        stderr_of(&with_cache)
    );
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(file_row(&report, ARTIFACT)["cached"], false);
}

#[test]
fn min_trust_level_above_ssh_trust_fails() {
    let repo = ssh_release();
    repo.git(&["config", "gpg.minTrustLevel", "ultimate"]);

    let (code, report) = verify_json(&repo, &[TAG]);

    assert_eq!(code, Some(1), "{report:#}");
    assert!(!repo.git_output(&["verify-tag", TAG]).status.success());
    assert_eq!(report["signature"]["status"], "untrusted");
}

#[test]
fn invalid_min_trust_level_is_error() {
    let repo = ssh_release();
    repo.git(&["config", "gpg.minTrustLevel", "total"]);

    let output = verify(&repo, &[TAG]);

    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr_of(&output).contains("gpg.minTrustLevel has the invalid value `total`"),
        "{}",
        stderr_of(&output)
    );
}

#[test]
fn configured_ssh_program_runs() {
    let repo = ssh_release();
    let log = repo.scratch().join("verifier.log");
    let wrapper = repo.scratch().join("ssh-keygen-wrapper");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\necho \"$@\" >> '{}'\nexec ssh-keygen \"$@\"\n",
            log.display()
        ),
    )
    .expect("write the wrapper");
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("make the wrapper executable");
    repo.git(&[
        "config",
        "gpg.ssh.program",
        wrapper.to_str().expect("UTF-8"),
    ]);

    let output = verify(&repo, &[TAG]);

    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    let calls = std::fs::read_to_string(&log).expect("the wrapper ran");
    assert!(calls.contains("-Y verify"), "{calls}");
}

/// Returns each history row's tag and signature status.
fn history_signatures(repo: &TestRepo) -> Vec<(String, String)> {
    let output = repo
        .mrel(&["history", MODEL, "--format", "json"])
        .output()
        .expect("mrel runs");
    assert!(output.status.success(), "{}", stderr_of(&output));
    let rows: serde_json::Value = serde_json::from_str(&stdout_of(&output)).expect("JSON rows");
    rows.as_array()
        .expect("a list of rows")
        .iter()
        .map(|row| {
            (
                row["tag"].as_str().expect("a tag").to_owned(),
                row["signature"].as_str().expect("a status").to_owned(),
            )
        })
        .collect()
}

#[test]
fn history_shows_signature_status() {
    let repo = ssh_release();
    repo.commit_model(&ModelFile::new("1.1.0", 70).stages(&["dev", "prod"]));
    repo.mrel(&["release", MODEL, "--no-sign"])
        .assert()
        .success();
    let own_key = repo.git(&["config", "user.signingKey"]);
    let stranger = stranger_key(&repo);
    repo.git(&[
        "config",
        "user.signingKey",
        stranger.to_str().expect("UTF-8"),
    ]);
    repo.mrel(&["promote", MODEL, "1.1.0", "dev"])
        .assert()
        .success();
    repo.git(&["config", "user.signingKey", &own_key]);
    let tag_object = repo.tag_object(TAG);
    let tampered = tag_object.replace("\"epochs\": 62", "\"epochs\": 63");
    assert_ne!(tampered, tag_object, "the record was edited");
    replace_tag(&repo, TAG, &tampered);
    repo.commit_model(&ModelFile::new("1.2.0", 80).stages(&["dev", "prod"]));
    repo.mrel(&["release", MODEL]).assert().success();

    let signatures = history_signatures(&repo);

    let expected = [
        ("demo@v1.0.0", "bad"),
        ("demo@v1.1.0", "unsigned"),
        ("demo#dev#1", "unknown_key"),
        ("demo@v1.2.0", "good"),
    ];
    for (tag, status) in expected {
        let found = signatures.iter().find(|(name, _)| name == tag);
        assert_eq!(
            found.map(|(_, found)| found.as_str()),
            Some(status),
            "{tag} in {signatures:?}"
        );
    }
}

#[test]
fn history_text_shows_signature_status() {
    let repo = ssh_release();

    let output = repo.mrel(&["history", MODEL]).output().expect("mrel runs");

    assert!(output.status.success(), "{}", stderr_of(&output));
    let line = stdout_of(&output)
        .lines()
        .find(|line| line.contains("release"))
        .map(str::to_owned)
        .expect("a release row");
    assert!(line.contains(" good"), "{line}");
}

#[test]
fn history_reports_verifier_error() {
    let repo = ssh_release();
    repo.git(&["config", "--unset", "gpg.ssh.allowedSignersFile"]);

    assert_eq!(
        history_signatures(&repo),
        [("demo@v1.0.0".to_owned(), "error".to_owned())]
    );
    let history = repo.mrel(&["history", MODEL]).output().expect("mrel runs");
    assert!(
        stderr_of(&history).contains(
            "warning: signatures could not be checked: gpg.ssh.allowedSignersFile is not configured"
        ),
        "{}",
        stderr_of(&history)
    );
    let output = verify(&repo, &[TAG]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr_of(&output).contains("gpg.ssh.allowedSignersFile is not configured"),
        "{}",
        stderr_of(&output)
    );
}
