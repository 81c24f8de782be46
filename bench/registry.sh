#!/usr/bin/env bash
# Times reading a large registry: `mrel status`, `mrel history MODEL` and `mrel latest MODEL`
# beside `gto show`, `gto history MODEL` and `git for-each-ref` with peeling, on a repository with
# N release tags and N stage tags (default 2000 each), with its refs packed as in a clone. Prints
# a table with ratios and the peak memory of each command.
#
#   bash bench/registry.sh [N]
#
# Needs hyperfine and /usr/bin/time (Debian packages hyperfine and time); installs gto from PyPI
# into a virtual environment under ~/.cache/mrel-bench.
set -euo pipefail

count="${1:-${MREL_BENCH_TAGS:-2000}}"
project=$(cd "$(dirname "$0")/.." && pwd)
cache="${XDG_CACHE_HOME:-$HOME/.cache}/mrel-bench"
mkdir -p "$cache"

cargo build --release --quiet --manifest-path "$project/Cargo.toml"
mrel="${CARGO_TARGET_DIR:-$project/target}/release/mrel"

venv="$cache/gto-venv"
if [[ ! -x "$venv/bin/gto" ]]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet gto
fi
gto="$venv/bin/gto"

repo="$cache/registry-$count"
if [[ ! -f "$repo/.complete" ]]; then
  rm -rf "$repo"
  mkdir -p "$repo"
  git -C "$repo" init --quiet --initial-branch=main
  # fast-import writes all commits and annotated tags in one process; a loop of `git tag` would
  # spawn thousands of processes.
  {
    for ((i = 1; i <= count; i++)); do
      time=$((1704067200 + i * 60))
      printf 'commit refs/heads/main\nmark :%d\ncommitter Bench <bench@example.com> %d +0000\ndata <<EOF\nCommit %d\nEOF\n' "$i" "$time" "$i"
      printf 'M 644 inline model.txt\ndata <<EOF\nweights %d\nEOF\n\n' "$i"
      printf 'tag churn@v1.%d.0\nfrom :%d\ntagger Bench <bench@example.com> %d +0000\ndata <<EOF\nRelease 1.%d.0\nEOF\n\n' "$i" "$i" "$time" "$i"
      stage=$([[ $((i % 2)) -eq 0 ]] && echo prod || echo staging)
      printf 'tag churn#%s#%d\nfrom :%d\ntagger Bench <bench@example.com> %d +0000\ndata <<EOF\nAssign 1.%d.0\nEOF\n\n' "$stage" "$i" "$i" $((time + 30)) "$i"
    done
  } | git -C "$repo" fast-import --quiet
  git -C "$repo" checkout --quiet main
  # A clone has its refs packed; so does this repository, for every tool alike.
  git -C "$repo" pack-refs --all
  touch "$repo/.complete"
fi

tags=$(git -C "$repo" tag --list | wc -l)
echo "repository: $repo ($tags tags)"
echo "machine: $(nproc) cores, $(uname -sr)"
echo

export DVC_NO_ANALYTICS=1 GTO_NO_ANALYTICS=1
results="$cache/registry-results.json"
cd "$repo"
hyperfine --style none -N --warmup 2 --runs 10 --export-json "$results.fast" \
  --command-name "mrel status" "$mrel status" \
  --command-name "mrel history" "$mrel history churn" \
  --command-name "mrel latest" "$mrel latest churn" \
  --command-name "git for-each-ref" "git for-each-ref --format='%(refname) %(*objectname) %(objectname)' refs/tags" \
  > /dev/null
hyperfine --style none --runs 3 --export-json "$results.gto" \
  --command-name "gto show" "$gto show" \
  --command-name "gto history" "$gto history churn" \
  > /dev/null

peak_kib() {
  /usr/bin/time -f '%M' "$@" 2>&1 >/dev/null | tail -1
}

python3 - "$results.fast" "$results.gto" \
  "$(peak_kib "$mrel" status)" "$(peak_kib "$mrel" history churn)" "$(peak_kib "$mrel" latest churn)" \
  "$(peak_kib git for-each-ref --format='%(refname) %(*objectname)' refs/tags)" \
  "$(peak_kib "$gto" show)" "$(peak_kib "$gto" history churn)" <<'PYTHON'
import json
import sys

fast, slow = (json.load(open(path))["results"] for path in sys.argv[1:3])
mean = {result["command"]: result["mean"] for result in fast + slow}
peak = dict(zip(["mrel status", "mrel history", "mrel latest", "git for-each-ref", "gto show", "gto history"],
                (int(value) / 1024 for value in sys.argv[3:9])))
pairs = [("mrel status", "gto show"), ("mrel history", "gto history"), ("mrel latest", "gto show")]

print(f"{'command':<18} {'mean':>10} {'peak memory':>12}")
for command in ["mrel status", "mrel history", "mrel latest", "git for-each-ref", "gto show", "gto history"]:
    print(f"{command:<18} {mean[command] * 1000:>8.1f}ms {peak[command]:>10.1f}MB")
print()
print(f"{'ratio':<34} {'value':>8}  target")
for ours, theirs in pairs:
    ratio = mean[theirs] / mean[ours]
    print(f"{theirs + ' / ' + ours:<34} {ratio:>7.0f}x  >= 500x: {'met' if ratio >= 500 else 'NOT met'}")
for ours in ["mrel status", "mrel history", "mrel latest"]:
    ratio = mean[ours] / mean["git for-each-ref"]
    print(f"{ours + ' / git for-each-ref':<34} {ratio:>7.2f}x  <= 3x: {'met' if ratio <= 3 else 'NOT met'}")
for ours in ["mrel status", "mrel history", "mrel latest"]:
    print(f"{ours + ' peak memory':<34} {peak[ours]:>6.1f}MB  < 50 MB: {'met' if peak[ours] < 50 else 'NOT met'}")
PYTHON
