#!/usr/bin/env bash
# Times `mrel check --staged`, the pre-commit hook's command, beside `git diff --cached
# --name-only` in the same repository: 100 release files among 20,000 tracked files, with one
# release file changed and staged, as at a commit.
#
# Usage: bench/check-staged.sh [MODELS] [FILES]    (defaults 100 and 20000)
#
# Needs the Rust toolchain and git. Uses hyperfine where it is installed and a loop of timed runs
# otherwise. The repository is kept under ${XDG_CACHE_HOME:-$HOME/.cache}/mrel-bench and reused;
# delete it to start over.
set -euo pipefail

models=${1:-100}
files=${2:-20000}
if ! [[ $models =~ ^[0-9]+$ && $files =~ ^[0-9]+$ ]] || ((models < 1 || files < models)); then
  echo "error: expected MODELS >= 1 and FILES >= MODELS, got '$models' and '$files'" >&2
  exit 2
fi
target_ratio=5
warmup=3
min_runs=20

project=$(cd "$(dirname "$0")/.." && pwd)
cache=${XDG_CACHE_HOME:-$HOME/.cache}/mrel-bench
repo=$cache/staged-$models-$files

step() { printf '\n==> %s\n' "$*" >&2; }

step "Building mrel in release mode"
cargo build --release --quiet --manifest-path "$project/Cargo.toml"
mrel=${CARGO_TARGET_DIR:-$project/target}/release/mrel

# Writes the release file of model $1 with version $2 into models/m$1/release.yaml.
write_release_file() {
  cat >"models/m$1/release.yaml" <<EOF
model: m$1
version: $2
description: Synthetic model $1 of the check --staged benchmark
stages: [dev, staging, production]
train:
  command: python3 train.py
  timeout: 2h
  env: {SEED: "$1"}
params:
  learning_rate: 0.05
  epochs: $((100 + $1))
metrics: out/metrics.json
artifacts: [out/model.bin]
gates:
  test.accuracy: {min: 0.8, max_decrease: 0.01}
  test.loss: {max_increase: 5%}
notes: |
  Release of synthetic model $1.
EOF
}

# Builds the repository in $1: MODELS folders with a release file each, and source files spread
# over them until FILES files are tracked.
build_repository() {
  local dir=$1 i j per_model rest
  rm -rf "$dir"
  mkdir -p "$dir"
  cd "$dir"
  git init --quiet --initial-branch=main
  git config user.name "Bench"
  git config user.email "bench@example.com"
  git config gc.auto 0
  per_model=$(((files - models) / models))
  rest=$(((files - models) % models))
  for ((i = 1; i <= models; i++)); do
    mkdir -p "models/m$i/src"
    write_release_file "$i" 1.0.0
    local count=$per_model
    if ((i <= rest)); then count=$((count + 1)); fi
    for ((j = 1; j <= count; j++)); do
      printf 'value_%d_%d = %d\n' "$i" "$j" "$j" >"models/m$i/src/file$j.py"
    done
  done
  git add -A
  git commit --quiet -m "Add $models models and $files files"
  git gc --quiet
}

marker=$repo/.git/mrel-bench-files
if [[ -f $marker && $(<"$marker") == "$models $files" ]]; then
  step "Reusing the repository at $repo"
else
  step "Building a repository with $models release files among $files tracked files at $repo"
  SECONDS=0
  (build_repository "$repo.partial")
  rm -rf "$repo"
  mv "$repo.partial" "$repo"
  echo "$models $files" >"$marker"
  printf '  built in %ds\n' "$SECONDS" >&2
fi
cd "$repo"

# One staged change, as at a commit; checking it out again first makes reruns start the same.
git checkout --quiet -- models/m1/release.yaml
git reset --quiet
write_release_file 1 1.1.0
git add models/m1/release.yaml
tracked=$(git ls-files | wc -l)

step "Checking that both commands work"
"$mrel" check --staged
git diff --cached --name-only

results=$(mktemp -d "${TMPDIR:-/tmp}/mrel-bench.XXXXXX")
trap 'rm -rf "$results"' EXIT

# Prints "MEAN STDDEV RUNS" in seconds for the command given as arguments.
time_command() {
  local name=$1
  shift
  if command -v hyperfine >/dev/null; then
    local quoted
    quoted=$(printf '%q ' "$@")
    hyperfine --shell=none --style=none --warmup "$warmup" --min-runs "$min_runs" \
      --export-json "$results/$name.json" "$quoted" >/dev/null
    python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))["results"][0]
print(r["mean"], r["stddev"] or 0, len(r["times"]))' "$results/$name.json"
  else
    local run start end
    for ((run = 0; run < warmup; run++)); do "$@" >/dev/null; done
    : >"$results/$name.times"
    for ((run = 0; run < min_runs; run++)); do
      start=$(date +%s%N)
      "$@" >/dev/null
      end=$(date +%s%N)
      echo $((end - start)) >>"$results/$name.times"
    done
    awk '{ s += $1 / 1e9; q += ($1 / 1e9) ^ 2; n++ }
      END { m = s / n; v = n > 1 ? (q - n * m * m) / (n - 1) : 0; print m, sqrt(v > 0 ? v : 0), n }' \
      "$results/$name.times"
  fi
}

timer=$(command -v hyperfine >/dev/null && hyperfine --version || echo "a loop of timed runs")
step "Timing both commands with $timer ($warmup warmup runs, at least $min_runs runs)"
read -r mrel_mean mrel_sd mrel_runs < <(time_command mrel "$mrel" --quiet check --staged)
read -r git_mean git_sd git_runs < <(time_command git git diff --cached --name-only)

printf '\n%s release files among %s tracked files, one staged change, %s, %s\n\n' \
  "$models" "$tracked" "$("$mrel" --version)" "$(git --version)"
awk -v mm="$mrel_mean" -v ms="$mrel_sd" -v mn="$mrel_runs" \
  -v gm="$git_mean" -v gs="$git_sd" -v gn="$git_runs" -v target="$target_ratio" 'BEGIN {
  printf "| command | mean | ± σ | runs |\n| --- | ---: | ---: | ---: |\n"
  printf "| mrel check --staged | %.1f ms | %.1f ms | %d |\n", mm * 1000, ms * 1000, mn
  printf "| git diff --cached --name-only | %.1f ms | %.1f ms | %d |\n", gm * 1000, gs * 1000, gn
  ratio = mm / gm
  printf "\nmrel/git: %.1f times; target at most %d: %s\n", ratio, target, (ratio <= target ? "met" : "NOT met")
}'
