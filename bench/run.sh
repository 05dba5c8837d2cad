#!/usr/bin/env bash
# bench/run.sh: the `make bench` driver.
#
# Runs the benchmarks bench/run-NAME.sh one after another (all of them, or the
# NAMEs given), each bounded by a timeout, and collects what they report: every
# benchmark prints a table and one machine-readable "BENCH NAME key=value ..."
# line, and writes BUILD_DIR/bench/NAME.md and NAME.json. This driver joins the
# tables into BUILD_DIR/bench/bench.md and the BENCH lines into
# BUILD_DIR/bench/bench.txt, and prints the BENCH lines again at the end.
#
# Usage: bench/run.sh [--build-dir DIR] [--timeout SECONDS] [NAME...] [-- ARGS...]
#   ARGS are passed to every benchmark (e.g. -- --rounds 3).
# Exit: 0 when every benchmark ran, 1 when one failed (the others still run).
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build_dir=build/default
per_bench_timeout=600
names=()
args=()
while (($#)); do
  case $1 in
    --build-dir) build_dir=$2; shift 2 ;;
    --timeout) per_bench_timeout=$2; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    --) shift; args=("$@"); break ;;
    -*) echo "bench/run.sh: unknown option $1" >&2; exit 2 ;;
    *) names+=("$1"); shift ;;
  esac
done
if ((${#names[@]} == 0)); then
  for f in "$here"/run-*.sh; do
    n=${f##*/run-}
    names+=("${n%.sh}")
  done
fi

out=$build_dir/bench
mkdir -p "$out"
: >"$out/bench.md"
: >"$out/bench.txt"
failed=()
child=""
trap '[[ -n $child ]] && kill -TERM "$child" 2>/dev/null; wait; exit 143' TERM
trap '[[ -n $child ]] && kill -TERM "$child" 2>/dev/null; wait; exit 130' INT
start=$(date +%s)
for n in "${names[@]}"; do
  script=$here/run-$n.sh
  [[ -x $script ]] || { echo "bench/run.sh: no benchmark '$n' ($script)" >&2; failed+=("$n"); continue; }
  echo "=== bench: $n"
  rm -f "$out/$n.md" "$out/$n.json" "$out/$n.out"
  rc=0
  # The benchmark tears down its own processes on SIGTERM (its EXIT trap), which
  # timeout sends when the benchmark overruns and this script forwards when it is
  # stopped itself. --foreground keeps Ctrl-C reaching the benchmark directly.
  timeout --foreground --kill-after=10 "$per_bench_timeout" \
    "$script" --build-dir "$build_dir" "${args[@]}" > >(tee "$out/$n.out") &
  child=$!
  wait "$child" || rc=$?
  wait "$child" 2>/dev/null || true # after a forwarded signal: until it has cleaned up
  grep '^BENCH ' "$out/$n.out" >>"$out/bench.txt" || true
  if [[ -f $out/$n.md ]]; then
    { echo "## $n"; echo; cat "$out/$n.md"; echo; } >>"$out/bench.md"
  fi
  ((rc == 0)) || { echo "bench: $n failed (exit $rc)" >&2; failed+=("$n"); }
done

echo
echo "=== bench: done in $(($(date +%s) - start)) s; tables in $out/bench.md, JSON in $out/<name>.json"
cat "$out/bench.txt"
if ((${#failed[@]})); then
  echo "bench: FAILED: ${failed[*]}" >&2
  exit 1
fi
