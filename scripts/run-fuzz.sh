#!/bin/sh
# Runs every libFuzzer target of the fuzz build (fuzz/, the "fuzz" CMake preset) for
# SECONDS each, one after the other: `make fuzz` (FUZZ_SECONDS, 60 by default) and
# `make test` (a few seconds each, so that a regression shows in CI).
#
#   scripts/run-fuzz.sh SECONDS [TARGET...]     TARGET: config, dns_answer, ... (default all)
#
# Each target starts from its checked-in seeds (fuzz/corpus/TARGET), copied into
# build/fuzz/corpus/TARGET, where what it finds accumulates from run to run without
# touching the repository; fuzz/dict/TARGET.dict is its dictionary when there is one. A
# crash, a leak, a sanitizer report or a timeout fails the target: the input is saved in
# build/fuzz/crashes/TARGET/ (reproduce with build/fuzz/fuzz/TARGET_fuzz FILE) and the
# output in build/fuzz/logs/TARGET.log. Exits 1 when any target failed.
set -eu

[ $# -ge 1 ] || { echo "usage: $0 SECONDS [TARGET...]" >&2; exit 2; }
seconds=$1
shift
root=$(cd "$(dirname "$0")/.." && pwd)
build=${FUZZ_BUILD_DIR:-$root/build/fuzz}

targets="$*"
if [ -z "$targets" ]; then
  for f in "$build"/fuzz/*_fuzz; do
    [ -x "$f" ] && targets="$targets $(basename "$f" _fuzz)"
  done
fi
[ -n "$targets" ] || { echo "run-fuzz: no fuzz targets in $build/fuzz (cmake --build --preset fuzz)" >&2; exit 2; }

# halt_on_error and abort: a sanitizer report is a crash libFuzzer saves the input of.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:abort_on_error=1}"

failed=""
for t in $targets; do
  bin="$build/fuzz/${t}_fuzz"
  [ -x "$bin" ] || { echo "run-fuzz: no target $bin" >&2; exit 2; }
  corpus="$build/corpus/$t"
  crashes="$build/crashes/$t"
  log="$build/logs/$t.log"
  mkdir -p "$corpus" "$crashes" "$build/logs"
  cp "$root/fuzz/corpus/$t"/* "$corpus"/ 2>/dev/null || true
  set -- -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$crashes/"
  [ -f "$root/fuzz/dict/$t.dict" ] && set -- "$@" -dict="$root/fuzz/dict/$t.dict"
  if "$bin" "$@" "$corpus" >"$log" 2>&1; then
    # libFuzzer's final stats: "stat::number_of_executed_units: N", then the line of the
    # last coverage ("#N DONE cov: C ft: F corp: K/..."), for a one-line summary.
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1)
    echo "fuzz $t: ok, ${runs:-?} runs in ${seconds}s ($(( ${runs:-0} / seconds )) exec/s), $cov"
  else
    failed="$failed $t"
    echo "fuzz $t: FAILED (log: $log; inputs: $crashes/)" >&2
    grep -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error|.*Test unit written)' "$log" | head -n 10 >&2 || true
  fi
done
if [ -n "$failed" ]; then
  echo "run-fuzz: failed:$failed" >&2
  exit 1
fi
