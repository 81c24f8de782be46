#!/usr/bin/env bash
# Releases the bundled diabetes model twice in a fresh temporary repository, with a throwaway SSH
# signing key, then shows the metrics diff, the notes and git's verdict on the signed tag.
# Needs only the Rust toolchain, git and OpenSSH.
set -euo pipefail

project=$(cd "$(dirname "$0")/.." && pwd)
step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "Building mrel"
cargo build --release --quiet --manifest-path "$project/Cargo.toml"
mrel="${CARGO_TARGET_DIR:-$project/target}/release/mrel"

work=$(mktemp -d "${TMPDIR:-/tmp}/mrel-demo.XXXXXX")
repo="$work/repo"
step "Copying examples/diabetes into a new repository at $repo"
mkdir -p "$repo"
(cd "$project/examples/diabetes" && tar --exclude=./out --exclude=./trainer/target -cf - .) | tar -xf - -C "$repo"
cd "$repo"
git init --quiet --initial-branch=main
git config user.name "Demo Releaser"
git config user.email "demo@example.com"

step "Making a throwaway SSH signing key"
ssh-keygen -q -t ed25519 -N '' -C demo@example.com -f "$work/signing-key"
printf 'demo@example.com namespaces="git" %s\n' "$(cat "$work/signing-key.pub")" > "$work/allowed_signers"
git config gpg.format ssh
git config user.signingKey "$work/signing-key"
git config gpg.ssh.allowedSignersFile "$work/allowed_signers"

git add .
git commit --quiet -m "Add the diabetes model"

step "mrel check"
"$mrel" check

step "mrel release diabetes (1.0.0: 20 epochs)"
"$mrel" release diabetes > /dev/null

step "Changing a parameter: 300 epochs, version 1.1.0"
sed -i.bak -e 's/^version: 1.0.0/version: 1.1.0/' -e 's/^  epochs: 20$/  epochs: 300/' \
  -e 's/First release of the diabetes model: a short gradient-descent run./Trained for 300 epochs instead of 20./' release.yaml
rm release.yaml.bak
git commit --quiet -am "Train the diabetes model for 300 epochs"

step "mrel release diabetes (1.1.0)"
"$mrel" release diabetes > /dev/null

step "mrel diff diabetes"
"$mrel" diff diabetes

step "The notes and record in tag diabetes@v1.1.0 (git cat-file tag)"
git cat-file tag diabetes@v1.1.0

step "git verify-tag diabetes@v1.1.0"
git verify-tag diabetes@v1.1.0

step "mrel status"
"$mrel" status

printf '\nThe demo repository is kept at %s\n' "$repo"
