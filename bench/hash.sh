#!/usr/bin/env bash
# Measures how fast mrel hashes artifacts and how much memory it takes, against sha256sum:
#
#   1. one 2 GiB file, by sha256sum and by `mrel digest --no-cache`;
#   2. eight 256 MiB files, by mrel on every core and on one core (`taskset -c 0`);
#   3. the 2 GiB file again through the digest cache, after one run filled it.
#
# Each time is the median of RUNS runs (default 5, or the MREL_BENCH_RUNS variable) with the files
# in the page cache, so the numbers are hashing speed, not disk speed. Peak memory is the maximum
# resident set size that `/usr/bin/time -v` reports for one more run, and the CPU share (100 % per
# busy core) comes from that run too: on a machine that other processes keep busy, a parallel
# run gets less than one core per worker and cannot reach its speedup.
#
# Usage: bench/hash.sh [RUNS]
#
# Needs the Rust toolchain, git, sha256sum, taskset and GNU time (/usr/bin/time), and 4 GiB free
# in ${TMPDIR:-/tmp}. The files live in a temporary folder that is deleted on exit.
set -euo pipefail

runs=${1:-${MREL_BENCH_RUNS:-5}}
if ! [[ $runs =~ ^[0-9]+$ ]] || ((runs < 1)); then
  echo "error: the number of runs must be a positive integer, not '$runs'" >&2
  exit 2
fi
for program in git sha256sum taskset /usr/bin/time; do
  if ! command -v "$program" >/dev/null; then
    echo "error: $program is not installed; the benchmark needs it" >&2
    exit 2
  fi
done

mib=$((1024 * 1024))
big_size=$((2048 * mib))
small_size=$((256 * mib))
small_count=8

project=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/mrel-hash-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT

step() { printf '==> %s\n' "$*" >&2; }

load_before=$(cut -d' ' -f1 /proc/loadavg)

step "Building mrel in release mode"
cargo build --release --quiet --manifest-path "$project/Cargo.toml"
mrel=${CARGO_TARGET_DIR:-$project/target}/release/mrel

step "Writing one 2 GiB file and eight 256 MiB files of random bytes to $work"
cd "$work"
# A repository, so that `mrel digest` keeps its digest cache in .git/mrel.
git init --quiet .
head -c "$big_size" /dev/urandom >big.bin
mkdir small
for ((i = 1; i <= small_count; i++)); do
  head -c "$small_size" /dev/urandom >"small/part-$i.bin"
done
# Reading everything once puts it in the page cache, where every run finds it.
cat big.bin small/*.bin >/dev/null

# Prints the median wall time of $runs runs of the command, in nanoseconds.
median_ns() {
  local times=() start end
  for ((run = 0; run < runs; run++)); do
    start=$(date +%s%N)
    "$@" >/dev/null
    end=$(date +%s%N)
    times+=($((end - start)))
  done
  printf '%s\n' "${times[@]}" | sort -n | sed -n "$(((runs + 1) / 2))p"
}

# Prints the maximum resident set size in KiB and the CPU share in percent of one run of the
# command, separated by a space.
profile() {
  /usr/bin/time -v "$@" 2>&1 >/dev/null | awk -F': ' '
    /Maximum resident set size/ { kib = $2 }
    /Percent of CPU this job got/ { share = $2; sub(/%/, "", share) }
    END { print kib, share }'
}

# Formats nanoseconds as seconds with three decimals.
seconds() { awk -v ns="$1" 'BEGIN { printf "%.3f", ns / 1e9 }'; }
# Formats a throughput in MiB/s from bytes and nanoseconds.
throughput() { awk -v bytes="$1" -v ns="$2" 'BEGIN { printf "%.0f", bytes / 1048576 / (ns / 1e9) }'; }
# Formats KiB as MiB with one decimal.
mebibytes() { awk -v kib="$1" 'BEGIN { printf "%.1f", kib / 1024 }'; }
# Prints the ratio of two numbers with two decimals.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
# Prints "met" when the condition given to awk holds, "missed" otherwise.
verdict() { awk "BEGIN { exit !($1) }" && echo met || echo missed; }

small_files=(small/*.bin)
small_total=$((small_size * small_count))

step "Timing sha256sum on the 2 GiB file"
sum_ns=$(median_ns sha256sum big.bin)
read -r sum_kib sum_cpu < <(profile sha256sum big.bin)

step "Timing mrel on the 2 GiB file"
big_ns=$(median_ns "$mrel" digest --no-cache big.bin)
read -r big_kib big_cpu < <(profile "$mrel" digest --no-cache big.bin)

step "Timing mrel on eight 256 MiB files, every core and one core"
all_ns=$(median_ns "$mrel" digest --no-cache "${small_files[@]}")
read -r all_kib all_cpu < <(profile "$mrel" digest --no-cache "${small_files[@]}")
one_ns=$(median_ns taskset -c 0 "$mrel" digest --no-cache "${small_files[@]}")
read -r one_kib one_cpu < <(profile taskset -c 0 "$mrel" digest --no-cache "${small_files[@]}")

step "Timing mrel on the 2 GiB file through the digest cache"
# The first run fills the cache; the file was written long enough ago for its entry to be kept.
"$mrel" digest big.bin >/dev/null
cached_ns=$(median_ns "$mrel" digest big.bin)
read -r cached_kib cached_cpu < <(profile "$mrel" digest big.bin)

# Checks that every way of hashing agrees before printing any number.
expected=$(sha256sum big.bin | cut -d' ' -f1)
for args in "--no-cache big.bin" "big.bin"; do
  # shellcheck disable=SC2086 # the arguments are split on purpose
  found=$("$mrel" digest $args | cut -d' ' -f1)
  if [[ $found != "$expected" ]]; then
    echo "error: mrel digest $args printed $found, sha256sum printed $expected" >&2
    exit 1
  fi
done

cores=$(nproc)
cpu=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)
sha_ni=$(grep -qw sha_ni /proc/cpuinfo && echo yes || echo no)
max_kib=$((64 * 1024))

echo
load_after=$(cut -d' ' -f1 /proc/loadavg)
echo "$(date -u +%Y-%m-%d), $cpu, $cores cores, SHA extensions: $sha_ni, median of $runs runs,"
echo "one-minute load average $load_before before and $load_after after (other processes share the cores)"
echo
echo "| case | time (s) | MiB/s | CPU | peak RSS (MiB) | target | result |"
echo "| --- | ---: | ---: | ---: | ---: | --- | --- |"
echo "| sha256sum, 1 × 2 GiB | $(seconds "$sum_ns") | $(throughput "$big_size" "$sum_ns") | $sum_cpu % | $(mebibytes "$sum_kib") | reference | |"
echo "| mrel, 1 × 2 GiB | $(seconds "$big_ns") | $(throughput "$big_size" "$big_ns") | $big_cpu % | $(mebibytes "$big_kib") | ≥ 0.9 × sha256sum's MiB/s: $(ratio "$sum_ns" "$big_ns") × | $(verdict "$sum_ns / $big_ns >= 0.9") |"
echo "| mrel, 8 × 256 MiB, one core | $(seconds "$one_ns") | $(throughput "$small_total" "$one_ns") | $one_cpu % | $(mebibytes "$one_kib") | reference | |"
echo "| mrel, 8 × 256 MiB, $cores cores | $(seconds "$all_ns") | $(throughput "$small_total" "$all_ns") | $all_cpu % | $(mebibytes "$all_kib") | ≥ 1.6 × faster than one core: $(ratio "$one_ns" "$all_ns") × | $(verdict "$one_ns / $all_ns >= 1.6") |"
echo "| mrel, 1 × 2 GiB, cached | $(seconds "$cached_ns") | | $cached_cpu % | $(mebibytes "$cached_kib") | < 1 % of the full hash: $(awk -v a="$cached_ns" -v b="$big_ns" 'BEGIN { printf "%.2f", 100 * a / b }') % | $(verdict "$cached_ns < $big_ns / 100") |"
echo "| peak RSS of mrel | | | | $(mebibytes "$(printf '%s\n' "$big_kib" "$all_kib" "$one_kib" "$cached_kib" | sort -n | tail -1)") | < 64 MiB | $(verdict "$big_kib < $max_kib && $all_kib < $max_kib && $one_kib < $max_kib && $cached_kib < $max_kib") |"
