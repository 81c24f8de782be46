#!/usr/bin/env bash
# Times `mrel diff --format json` against `dvc metrics diff --json` on the first and last release
# of a repository with many releases, and checks that both report the same values for one metric.
#
# Usage: bench/diff.sh [RELEASES]    (default 2000, or the MREL_BENCH_RELEASES variable)
#
# Needs the Rust toolchain, git, python3 with venv, and PyPI for DVC. Uses hyperfine where it is
# installed and a loop of timed runs otherwise. The virtualenv (dvc-venv) and the repository
# (diff-RELEASES) are kept under ${XDG_CACHE_HOME:-$HOME/.cache}/mrel-bench and reused; delete
# them to start over.
set -euo pipefail

releases=${1:-${MREL_BENCH_RELEASES:-2000}}
if ! [[ $releases =~ ^[0-9]+$ ]] || ((releases < 2)); then
  echo "error: the number of releases must be an integer of at least 2, not '$releases'" >&2
  exit 2
fi
dvc_spec=${MREL_BENCH_DVC:-dvc==3.67.1}
model=bench
metric=test.accuracy
target_ratio=20
warmup=3
min_runs=10

project=$(cd "$(dirname "$0")/.." && pwd)
cache=${XDG_CACHE_HOME:-$HOME/.cache}/mrel-bench
venv=$cache/dvc-venv
repo=$cache/diff-$releases
export DVC_NO_ANALYTICS=1

step() { printf '\n==> %s\n' "$*" >&2; }

step "Building mrel in release mode"
cargo build --release --quiet --manifest-path "$project/Cargo.toml"
mrel=${CARGO_TARGET_DIR:-$project/target}/release/mrel

step "Installing $dvc_spec into $venv"
mkdir -p "$cache"
if [[ ! -x $venv/bin/python ]]; then
  python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -m pip show dvc >/dev/null 2>&1 ||
  ! "$venv/bin/python" - "$dvc_spec" <<'EOF'
# Exits 0 when the installed dvc satisfies the requirement given as the first argument.
import sys
from importlib.metadata import version
from pip._vendor.packaging.requirements import Requirement
sys.exit(0 if Requirement(sys.argv[1]).specifier.contains(version("dvc")) else 1)
EOF
then
  "$venv/bin/python" -m pip install --quiet "$dvc_spec"
fi
dvc=$venv/bin/dvc
dvc_version=$("$dvc" --version)

first=1.0.1
last=1.0.$releases
first_tag=$model@v$first
last_tag=$model@v$last

# Writes the release file of release number $1.
write_release_file() {
  cat >release.yaml <<EOF
model: $model
version: 1.0.$1
description: Synthetic model for the mrel diff benchmark
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

# Builds the repository in $1: one commit and one unsigned release per version, 1.0.1 to
# 1.0.$releases. The metrics file is committed with each release, as `dvc metrics diff` reads it
# from git, and `mrel release` then trains again, rewriting it with the same bytes, so the work
# tree stays clean.
build_repository() {
  local dir=$1 i
  rm -rf "$dir"
  mkdir -p "$dir"
  cd "$dir"
  git init --quiet --initial-branch=main
  git config user.name "Bench Releaser"
  git config user.email "bench@example.com"
  git config gc.auto 0

  # Training: nested metrics derived from the release number, the patch part of MREL_VERSION.
  # awk's printf makes the output the same bytes on every run.
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
  printf 'metrics:\n  - out/metrics.json\n' >dvc.yaml
  "$dvc" init --quiet
  "$dvc" config core.analytics false
  write_release_file 1
  MREL_VERSION=$first sh train.sh
  git add -A
  git commit --quiet -m "Add the benchmark model"
  "$mrel" --quiet release "$model" --no-sign >/dev/null

  for ((i = 2; i <= releases; i++)); do
    write_release_file "$i"
    MREL_VERSION=1.0.$i sh train.sh
    git commit --quiet -am "Release 1.0.$i"
    "$mrel" --quiet release "$model" --no-sign >/dev/null
    # mrel release reads every tag of the registry, which is faster from packed refs and
    # objects than from thousands of loose files, so the repository is packed as it grows.
    if ((i % 250 == 0)); then
      git repack -d -q
      git pack-refs --all
      printf '  %d of %d releases (%ds)\n' "$i" "$releases" "$SECONDS" >&2
    fi
  done

  # A cloned repository has its objects and tags packed, so the benchmark reads one pack, with
  # deltas computed afresh (-f) so that their chains do not depend on the packing above.
  git repack -a -d -f -q
  git pack-refs --all
}

# The marker names the release count and the layout of build_repository. Raise the layout number
# when build_repository changes, so that a repository built the old way is rebuilt.
marker=$repo/.git/mrel-bench-releases
layout="$releases releases, layout 2"
if [[ -f $marker && $(<"$marker") == "$layout" ]] &&
  git -C "$repo" rev-parse --quiet --verify "refs/tags/$last_tag" >/dev/null; then
  step "Reusing the repository with $releases releases at $repo"
else
  step "Building a repository with $releases releases at $repo"
  SECONDS=0
  (build_repository "$repo.partial")
  rm -rf "$repo"
  mv "$repo.partial" "$repo"
  echo "$layout" >"$marker"
  printf '  built in %ds\n' "$SECONDS" >&2
fi
cd "$repo"

mrel_command=("$mrel" diff "$model" --from "$first_tag" --to "$last_tag" --format json)
dvc_command=("$dvc" metrics diff "$first_tag" "$last_tag" --json)
results=$(mktemp -d "${TMPDIR:-/tmp}/mrel-bench.XXXXXX")
trap 'rm -rf "$results"' EXIT

step "Checking that both tools report the same $metric"
"${mrel_command[@]}" >"$results/mrel.json"
"${dvc_command[@]}" >"$results/dvc.json"
agreement=$("$venv/bin/python" - "$results/mrel.json" "$results/dvc.json" "$metric" <<'EOF'
# Prints the old and new values of one metric from each tool's JSON output, and whether they match.
import json, sys
mrel_path, dvc_path, metric = sys.argv[1:]
with open(mrel_path) as f:
    rows = {row["name"]: row for row in json.load(f)["metrics"]}
with open(dvc_path) as f:
    dvc = json.load(f)["out/metrics.json"]
mrel_row, dvc_row = rows[metric], dvc[metric]
print(f"  mrel: {metric} {mrel_row['old']} -> {mrel_row['new']}")
print(f"  dvc:  {metric} {dvc_row['old']} -> {dvc_row['new']}")
same = all(float(mrel_row[side]) == float(dvc_row[side]) for side in ("old", "new"))
print("  the values agree" if same else "  the values DIFFER")
sys.exit(0 if same else 1)
EOF
) || agree_failed=1
echo "$agreement"

# Prints "MEAN STDDEV RUNS" in seconds for the command given as arguments.
time_command() {
  local name=$1
  shift
  if command -v hyperfine >/dev/null; then
    local quoted
    quoted=$(printf '%q ' "$@")
    hyperfine --shell=none --style=none --warmup "$warmup" --min-runs "$min_runs" \
      --export-json "$results/$name.timing.json" "$quoted" >/dev/null
    "$venv/bin/python" -c '
import json, sys
result = json.load(open(sys.argv[1]))["results"][0]
print(result["mean"], result["stddev"] or 0, len(result["times"]))' "$results/$name.timing.json"
  else
    local run start end
    for ((run = 0; run < warmup; run++)); do "$@" >/dev/null; done
    : >"$results/$name.times"
    for ((run = 0; run < min_runs; run++)); do
      # EPOCHREALTIME (bash 5) is in seconds with six decimals, so without the separator it is µs.
      start=${EPOCHREALTIME/[.,]/}
      "$@" >/dev/null
      end=${EPOCHREALTIME/[.,]/}
      echo $((end - start)) >>"$results/$name.times"
    done
    awk '{ s += $1 / 1e6; q += ($1 / 1e6) ^ 2; n++ }
      END { m = s / n; v = n > 1 ? (q - n * m * m) / (n - 1) : 0; print m, sqrt(v > 0 ? v : 0), n }' \
      "$results/$name.times"
  fi
}

timer=$(command -v hyperfine >/dev/null && hyperfine --version || echo "a loop of timed runs")
step "Timing both commands with $timer ($warmup warmup runs, at least $min_runs runs)"
read -r mrel_mean mrel_sd mrel_runs < <(time_command mrel "${mrel_command[@]}")
read -r dvc_mean dvc_sd dvc_runs < <(time_command dvc "${dvc_command[@]}")

printf '\n%s releases, %s to %s; %s, dvc %s, %s\n\n' "$releases" "$first_tag" "$last_tag" \
  "$("$mrel" --version)" "$dvc_version" "$(git --version)"
awk -v mm="$mrel_mean" -v ms="$mrel_sd" -v mn="$mrel_runs" \
  -v dm="$dvc_mean" -v ds="$dvc_sd" -v dn="$dvc_runs" -v target="$target_ratio" 'BEGIN {
  printf "| tool | command | mean | ± σ | runs |\n| --- | --- | ---: | ---: | ---: |\n"
  printf "| mrel | mrel diff --format json | %.1f ms | %.1f ms | %d |\n", mm * 1000, ms * 1000, mn
  printf "| dvc | dvc metrics diff --json | %.1f ms | %.1f ms | %d |\n", dm * 1000, ds * 1000, dn
  ratio = dm / mm
  printf "\ndvc/mrel: %.1f times; target at least %d: %s\n", ratio, target, (ratio >= target ? "met" : "NOT met")
}'

if [[ -n ${agree_failed:-} ]]; then
  echo "error: mrel and dvc report different values for $metric (printed above)" >&2
  exit 1
fi
