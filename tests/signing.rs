//! Signed release tags, checked by `git verify-tag` with throwaway SSH and OpenPGP keys.

mod common;

use common::{MODEL, ModelFile, TestRepo, is_installed, stderr_of};
use predicates::prelude::*;

#[test]
fn ssh_signed_tag_verifies() {
    let repo = TestRepo::with_model(&ModelFile::new("1.0.0", 62));
    repo.configure_ssh_signing();

    repo.mrel(&["release", MODEL])
        .assert()
        .success()
        .stderr(predicate::str::contains("created signed tag demo@v1.0.0"));

    let tag = repo.tag_object("demo@v1.0.0");
    assert!(
        tag.contains("-----BEGIN SSH SIGNATURE-----"),
        "SSH signature block:\n{tag}"
    );
    let verified = repo.git_output(&["verify-tag", "demo@v1.0.0"]);
    assert!(
        verified.status.success(),
        "git verify-tag rejected the tag: {}",
        stderr_of(&verified)
    );
}

#[test]
fn gpg_signed_tag_verifies() {
    if !is_installed("gpg") || !is_installed("gpgconf") {
        println!("skipped: gpg or gpgconf is not installed");
        return;
    }
    let mut repo = TestRepo::with_model(&ModelFile::new("1.0.0", 62));
    repo.configure_gpg_signing();

    repo.mrel(&["release", MODEL])
        .assert()
        .success()
        .stderr(predicate::str::contains("created signed tag demo@v1.0.0"));

    let tag = repo.tag_object("demo@v1.0.0");
    assert!(
        tag.contains("-----BEGIN PGP SIGNATURE-----"),
        "OpenPGP signature block:\n{tag}"
    );
    let verified = repo.git_output(&["verify-tag", "demo@v1.0.0"]);
    assert!(
        verified.status.success(),
        "git verify-tag rejected the tag: {}",
        stderr_of(&verified)
    );
}

#[test]
fn missing_signing_key_is_rejected() {
    let repo = TestRepo::with_model(&ModelFile::new("1.0.0", 62));
    repo.git(&["config", "gpg.format", "ssh"]);

    repo.mrel(&["release", MODEL])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("git config user.signingKey"));

    assert_eq!(repo.tags(), Vec::<String>::new());
    // Signing is checked before training, so no training output exists.
    assert!(!repo.root().join("out/metrics.json").exists());
}
