#!/usr/bin/env bash
# bench/run-log.sh: what logging one result costs netmond, apart from any probe.
#
# Runs log_bench (bench/report/log_bench.cpp: the daemon's LogReporter with a udp_echo
# result and its 16 details, stdout flushed once per --batch results as the daemon flushes
# once per loop turn) --rounds times for each of:
#   json file      --log-format json, one line per result to a file in a temp dir
#   text file      the text format, to a file
#   json journal   under systemd with log.target journal: one sd_journal_sendv entry per
#   text journal   result, with netmond's fields (the line is MESSAGE=), to a socket
#                  log_bench binds at /run/systemd/journal/socket inside a private mount
#                  namespace (unshare; needs root) and drains from its own thread
# and reports the median CPU µs per result of the logging thread. Issue 10: logging every
# result must cost less than the probe (udp: 11 µs per run, docs/performance.md). Writes
# BUILD_DIR/bench/log.{md,json}. Bounded by --results per run; nothing uses the network.
#
# Usage: bench/run-log.sh [--build-dir DIR] [--rounds N] [--results N]
# Exit: 0 measured; 1 a run failed; 2 usage.
# shellcheck disable=SC2154 # variables set by bench_options
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
BENCH_NAME=log
BENCH_CONTENDED=0 BENCH_RERUNS=0

bench_options "${BASH_SOURCE[0]}" build-dir=build/default rounds=5:1..99 \
  results=200000:1000..10000000 -- "$@"
bin=$build_dir/bench/log_bench
[[ -x $bin ]] || bench_die "$bin not built (cmake --build --preset default)"
out=${BENCH_OUT_DIR:-$build_dir/bench}
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

journal_ok=1
unshare --mount true 2>/dev/null || journal_ok=0
((journal_ok)) || bench_log "bench log: no mount namespace here (needs root): journal rows left out"

# one FORMAT TARGET: one log_bench run, prints its CPU µs per result.
one() {
  local line
  if [[ $2 == file ]]; then
    line=$("$bin" --format "$1" --results "$results" --out "$tmp/$1.log")
  else
    line=$(unshare --mount --propagation private sh -c \
      "mount -t tmpfs netmond-bench /run && mkdir -p /run/systemd/journal && exec '$bin' --format $1 --journal --results $results")
  fi
  bench_field "$line" cpu_us_per_result
}

declare -A BR=()
rows=("json file" "text file")
((journal_ok)) && rows+=("json journal" "text journal")
for ((r = 1; r <= rounds; r++)); do
  for row in "${rows[@]}"; do
    # shellcheck disable=SC2086 # two words: format and target
    v=$(one $row) || bench_die "log_bench failed: $row"
    BR[$row cpu]="${BR[$row cpu]:+${BR[$row cpu]} }$v"
  done
done

table="| format | target | CPU µs per result (median of $rounds) | range |
|---|---|---:|---:|"
line="BENCH log"
members=""
for row in "${rows[@]}"; do
  read -r f t <<<"$row"
  med=$(bench_med "$row" cpu %.2f)
  table+=$'\n'"| $f | $t | $med | $(bench_range "$row" cpu) |"
  line+=" ${f}_${t}_cpu_us=$med"
  members+="  \"${f}_${t}_cpu_us_per_result\": $med,"$'\n'
done
members+="  \"results_per_run\": $results,"
bench_report 1 0 "$table" "$line" "$members"
