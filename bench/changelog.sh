#!/usr/bin/env bash
# Times `mrel changelog` against git-cliff writing a changelog of the same repository, which has
# one commit and one release tag per version, and checks that both list the first and the last
# release.
#
# Usage: bench/changelog.sh [RELEASES]    (default 2000, or the MREL_BENCH_RELEASES variable)
#
# Needs the Rust toolchain, git, python3 with venv, and PyPI for git-cliff (its wheel ships the
# binary). Uses hyperfine where it is installed and a loop of timed runs otherwise. The virtualenv
# and the benchmark repositories are kept under ${XDG_CACHE_HOME:-$HOME/.cache}/mrel-bench and
# reused; delete that folder to start over.
set -euo pipefail

releases=${1:-${MREL_BENCH_RELEASES:-2000}}
if ! [[ $releases =~ ^[0-9]+$ ]] || ((releases < 2)); then
  echo "error: the number of releases must be an integer of at least 2, not '$releases'" >&2
  exit 2
fi
cliff_spec=${MREL_BENCH_GIT_CLIFF:-git-cliff==2.14.2}
model=bench
warmup=3
min_runs=10

project=$(cd "$(dirname "$0")/.." && pwd)
cache=${XDG_CACHE_HOME:-$HOME/.cache}/mrel-bench
venv=$cache/git-cliff-venv
repo=$cache/changelog-repo-$releases

step() { printf '\n==> %s\n' "$*" >&2; }

step "Building mrel in release mode"
cargo build --release --quiet --manifest-path "$project/Cargo.toml"
# A copy, so that another cargo build in the same target folder cannot replace the binary while
# the benchmark runs.
mkdir -p "$cache/bin"
install -m 755 "${CARGO_TARGET_DIR:-$project/target}/release/mrel" "$cache/bin/mrel"
mrel=$cache/bin/mrel

step "Installing $cliff_spec into $venv"
mkdir -p "$cache"
if [[ ! -x $venv/bin/python ]]; then
  python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -m pip show git-cliff >/dev/null 2>&1 ||
  ! "$venv/bin/python" - "$cliff_spec" <<'EOF'
# Exits 0 when the installed git-cliff satisfies the requirement given as the first argument.
import sys
from importlib.metadata import version
from pip._vendor.packaging.requirements import Requirement
sys.exit(0 if Requirement(sys.argv[1]).specifier.contains(version("git-cliff")) else 1)
EOF
then
  "$venv/bin/python" -m pip install --quiet "$cliff_spec"
fi
cliff=$venv/bin/git-cliff
cliff_version=$("$cliff" --version)

first=1.0.1
last=1.0.$releases

# Writes the release file of release number $1.
write_release_file() {
  cat >release.yaml <<EOF
model: $model
version: 1.0.$1
description: Synthetic model for the mrel changelog benchmark
train:
  command: sh train.sh
params:
  step: $1
  learning_rate: 0.01
metrics: out/metrics.json
gates:
  test.accuracy: {min: 0.4, max_decrease: 0.01}
  test.loss: {max_increase: 5%}
notes: |
  Release $1 of the benchmark model.
EOF
}

# Builds the repository in $1: one commit with a conventional-commit message (which git-cliff's
# default configuration keeps) and one unsigned release per version, 1.0.1 to 1.0.$releases.
build_repository() {
  local dir=$1 i
  rm -rf "$dir"
  mkdir -p "$dir"
  cd "$dir"
  git init --quiet --initial-branch=main
  git config user.name "Bench Releaser"
  git config user.email "bench@example.com"
  git config gc.auto 0

  # Training: metrics derived from the release number, the patch part of MREL_VERSION.
  cat >train.sh <<'EOF'
set -eu
i=${MREL_VERSION##*.}
mkdir -p out
awk -v i="$i" 'BEGIN {
  loss = 1 / (1 + 0.01 * i)
  printf "{\n  \"epoch\": %d,\n", i
  printf "  \"train\": {\"loss\": %.6f, \"accuracy\": %.6f},\n", loss, 1 - loss / 2
  printf "  \"test\": {\"loss\": %.6f, \"accuracy\": %.6f}\n}\n", 1.1 * loss, 0.98 - loss / 2
}' > out/metrics.json
EOF
  printf 'out/\n' >.gitignore
  write_release_file 1
  git add -A
  git commit --quiet -m "feat: add the benchmark model"
  "$mrel" --quiet release "$model" --no-sign >/dev/null

  for ((i = 2; i <= releases; i++)); do
    write_release_file "$i"
    git commit --quiet -am "feat: release 1.0.$i"
    "$mrel" --quiet release "$model" --no-sign >/dev/null
    if ((i % 250 == 0)); then
      printf '  %d of %d releases (%ds)\n' "$i" "$releases" "$SECONDS" >&2
    fi
  done

  # A cloned repository has its objects and tags packed, so the benchmark reads a packed one.
  git gc --quiet
}

marker=$repo/.git/mrel-bench-releases
if [[ -f $marker && $(<"$marker") == "$releases" ]] &&
  git -C "$repo" rev-parse --quiet --verify "refs/tags/$model@v$last" >/dev/null; then
  step "Reusing the repository with $releases releases at $repo"
else
  step "Building a repository with $releases releases at $repo"
  SECONDS=0
  (build_repository "$repo.partial")
  rm -rf "$repo"
  mv "$repo.partial" "$repo"
  echo "$releases" >"$marker"
  printf '  built in %ds\n' "$SECONDS" >&2
fi
cd "$repo"

results=$(mktemp -d "${TMPDIR:-/tmp}/mrel-bench.XXXXXX")
trap 'rm -rf "$results"' EXIT
# git-cliff's own default configuration, written outside the repository.
(cd "$results" && "$cliff" --init >/dev/null 2>&1)

mrel_markdown=("$mrel" changelog "$model" --output "$results/mrel.md")
mrel_json=("$mrel" changelog "$model" --format json --output "$results/mrel.json")
cliff_command=("$cliff" --config "$results/cliff.toml" --tag-pattern "$model@v[0-9].*"
  --output "$results/cliff.md")

step "Checking that both changelogs list $first and $last"
"${mrel_markdown[@]}"
"${cliff_command[@]}" 2>/dev/null
for file in mrel.md cliff.md; do
  for version in "$first" "$last"; do
    if ! grep -q -F "$version" "$results/$file"; then
      echo "error: $file does not mention $version" >&2
      missing=1
    fi
  done
done
mrel_sections=$(grep -c '^### 1\.0\.' "$results/mrel.md" || true)
cliff_sections=$(grep -c '^## \[' "$results/cliff.md" || true)
printf '  mrel: %d release sections, %d bytes\n' "$mrel_sections" "$(wc -c <"$results/mrel.md")"
printf '  git-cliff: %d release sections, %d bytes\n' "$cliff_sections" \
  "$(wc -c <"$results/cliff.md")"

# Prints "MEAN STDDEV RUNS" in seconds for the command given as arguments.
time_command() {
  local name=$1
  shift
  if command -v hyperfine >/dev/null; then
    local quoted
    quoted=$(printf '%q ' "$@")
    hyperfine --shell=none --style=none --warmup "$warmup" --min-runs "$min_runs" \
      --export-json "$results/$name.timing.json" "$quoted" >/dev/null
    python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))["results"][0]
print(r["mean"], r["stddev"] or 0, len(r["times"]))' "$results/$name.timing.json"
  else
    local run start end
    for ((run = 0; run < warmup; run++)); do "$@" >/dev/null 2>&1; done
    : >"$results/$name.times"
    for ((run = 0; run < min_runs; run++)); do
      start=$(date +%s%N)
      "$@" >/dev/null 2>&1
      end=$(date +%s%N)
      echo $((end - start)) >>"$results/$name.times"
    done
    awk '{ s += $1 / 1e9; q += ($1 / 1e9) ^ 2; n++ }
      END { m = s / n; v = n > 1 ? (q - n * m * m) / (n - 1) : 0; print m, sqrt(v > 0 ? v : 0), n }' \
      "$results/$name.times"
  fi
}

timer=$(command -v hyperfine >/dev/null && hyperfine --version || echo "a loop of timed runs")
step "Timing the three commands with $timer ($warmup warmup runs, at least $min_runs runs)"
read -r md_mean md_sd md_runs < <(time_command mrel-markdown "${mrel_markdown[@]}")
read -r json_mean json_sd json_runs < <(time_command mrel-json "${mrel_json[@]}")
read -r cliff_mean cliff_sd cliff_runs < <(time_command git-cliff "${cliff_command[@]}")

printf '\n%s releases, %s to %s, %s, %s\n\n' "$releases" "$first" "$last" \
  "$("$mrel" --version)" "$cliff_version"
awk -v mm="$md_mean" -v ms="$md_sd" -v mn="$md_runs" \
  -v jm="$json_mean" -v js="$json_sd" -v jn="$json_runs" \
  -v cm="$cliff_mean" -v cs="$cliff_sd" -v cn="$cliff_runs" 'BEGIN {
  printf "| tool | command | mean | ± σ | runs |\n| --- | --- | ---: | ---: | ---: |\n"
  printf "| mrel | mrel changelog --output FILE | %.1f ms | %.1f ms | %d |\n", mm * 1000, ms * 1000, mn
  printf "| mrel | mrel changelog --format json --output FILE | %.1f ms | %.1f ms | %d |\n", jm * 1000, js * 1000, jn
  printf "| git-cliff | git-cliff --output FILE | %.1f ms | %.1f ms | %d |\n", cm * 1000, cs * 1000, cn
  printf "\ngit-cliff/mrel (markdown): %.2f times; target above 1: %s\n", cm / mm, (cm > mm ? "met" : "NOT met")
}'

if [[ -n ${missing:-} ]]; then
  exit 1
fi
