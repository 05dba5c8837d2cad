#!/usr/bin/env bash
# bench/run-echo.sh: netmond-echo's UDP echo throughput against the floor.
#
# For each round: start bench's udp_echo_floor on 127.0.0.1:<free port>, run
# udp_echo_load against it, stop it by PID; then the same for netmond-echo (rate
# limit raised out of the way). Reports the median echoed datagrams/s of each,
# the server's CPU time per datagram, and the ratio netmond-echo/floor (target
# >= 0.80), as a table, as one "BENCH echo ..." line, and as
# BUILD_DIR/bench/echo.{md,json}.
#
# Usage: bench/run-echo.sh [--build-dir DIR] [--rounds N] [--count N] [--window N]
#                          [--sockets N] [--size BYTES] [--pin SERVER_CPU,LOAD_CPU|none]
#                          [--echo-bin PATH]   (default BUILD_DIR/echo/netmond-echo)
# Environment: ECHO_ARGS overrides the extra netmond-echo flags; BENCH_STRICT=1
# makes a result below target exit 3.
# Exit: 0 measured (whatever the ratio), 1 a server failed, 2 usage, 3 strict and below target.
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
source "$here/lib.sh"

build_dir=build/default
rounds=5
count=200000
window=128
sockets=4
size=64
pin=none
target=0.80
echo_bin=

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
  exit "${1:-2}"
}
while (($#)); do
  case $1 in
    --build-dir) build_dir=$2 ;;
    --rounds) rounds=$2 ;;
    --count) count=$2 ;;
    --window) window=$2 ;;
    --sockets) sockets=$2 ;;
    --size) size=$2 ;;
    --pin) pin=$2 ;;
    --echo-bin) echo_bin=$2 ;;
    -h | --help) usage 0 ;;
    *) usage 2 ;;
  esac
  (($# >= 2)) || usage 2
  shift 2
done
[[ $rounds =~ ^[1-9][0-9]?$ ]] || bench_die "--rounds must be 1..99"

floor_bin=$build_dir/bench/udp_echo_floor
load_bin=$build_dir/bench/udp_echo_load
echo_bin=${echo_bin:-$build_dir/echo/netmond-echo}
for b in "$floor_bin" "$load_bin" "$echo_bin"; do
  [[ -x $b ]] || bench_die "$b not built (run: cmake --preset default && cmake --build --preset default)"
done
out=$build_dir/bench
mkdir -p "$out/logs"

# Raise netmond-echo's per-source rate limit out of the way (every datagram here
# comes from 127.0.0.1 and a handful of ports).
if [[ -z ${ECHO_ARGS+x} ]]; then
  ECHO_ARGS=""
  help=$("$echo_bin" --help 2>&1 || true)
  grep -q -- '--rate' <<<"$help" && ECHO_ARGS+=" --rate 10000000"
  grep -q -- '--burst' <<<"$help" && ECHO_ARGS+=" --burst 10000000"
fi
read -r -a echo_args <<<"$ECHO_ARGS"

server_pin=() load_pin=()
if [[ $pin != none ]]; then
  [[ $pin =~ ^([0-9]+),([0-9]+)$ ]] || bench_die "--pin wants SERVER_CPU,LOAD_CPU or none"
  server_pin=(taskset -c "${BASH_REMATCH[1]}")
  load_pin=(taskset -c "${BASH_REMATCH[2]}")
fi

# bench_wait_echo PID ADDR:PORT: waits up to 5 s for the server PID to answer a
# ping on ADDR:PORT; gives up early when PID has exited.
bench_wait_echo() {
  local i
  for ((i = 0; i < 50; i++)); do
    kill -0 "$1" 2>/dev/null || return 1
    "$load_bin" --count 1 --window 1 --sockets 1 --drain-ms 0 --ready-ms 100 "$2" >/dev/null && return 0
  done
  return 1
}

# run_one NAME ROUND CMD...: starts the server CMD (it must take --listen
# 127.0.0.1:PORT as its last two arguments, appended here), runs the load against
# it, stops it. Sets RUN_PPS, RUN_LOSS (%), RUN_CPU (server CPU µs per echoed
# datagram) and RUN_OTHER (% of a core used by anything else meanwhile), or
# returns 1. Runs in this shell (not a subshell) so the EXIT trap
# knows every PID it started.
run_one() {
  local name=$1 round=$2
  shift 2
  local port pid lpid log result rc=0 cpu0 cpu1 busy0 busy1 wall0 wall1 echoed
  local attempt
  log=$out/logs/echo-$round-$name.log
  # The load waits (up to 5 s) for a first echo, so no sleep is needed here, but
  # the CPU baseline is taken after the server answered: start-up is not counted.
  # A second attempt on another port covers a port taken between the check and
  # the bind.
  for attempt in 1 2; do
    port=$(bench_free_udp_port)
    bench_start pid "$log" "${server_pin[@]}" "$@" --listen "127.0.0.1:$port"
    if bench_wait_echo "$pid" "127.0.0.1:$port" 2>>"$log"; then
      break
    fi
    bench_stop "$pid" || true
    bench_log "bench: $name did not answer on 127.0.0.1:$port (attempt $attempt; log: $log):"
    tail -n 5 "$log" | sed 's/^/    /' >&2
    ((attempt < 2)) || return 1
    mv "$log" "$log.failed"
  done
  cpu0=$(bench_cpu_ns "$pid")
  busy0=$(bench_busy_ns)
  wall0=$(date +%s%N)
  # In the background and waited for, so a signal's trap runs at once.
  bench_start lpid "$log.result" "${load_pin[@]}" "$load_bin" --count "$count" --window "$window" \
    --sockets "$sockets" --size "$size" "127.0.0.1:$port"
  wait "$lpid" || rc=$?
  bench_forget "$lpid"
  grep '^udp_echo_load' "$log.result" >>"$log" || true
  result=$(grep '^RESULT ' "$log.result" || true)
  rm -f "$log.result"
  cpu1=$(bench_cpu_ns "$pid")
  busy1=$(bench_busy_ns)
  wall1=$(date +%s%N)
  if ! kill -0 "$pid" 2>/dev/null; then
    bench_stop "$pid" || true
    bench_log "bench: $name exited during the run (log: $log)"
    return 1
  fi
  bench_stop "$pid" || bench_log "bench: $name did not exit cleanly on SIGTERM (log: $log)"
  ((rc == 0)) || {
    bench_log "bench: load against $name failed ($rc; log: $log)"
    return 1
  }
  echoed=$(bench_field "$result" echoed)
  RUN_PPS=$(bench_field "$result" pps)
  RUN_LOSS=$(awk -v lost="$(bench_field "$result" lost)" -v sent="$(bench_field "$result" sent)" \
    'BEGIN { printf "%.3f", (sent > 0 ? 100 * lost / sent : 0) }')
  RUN_CPU=$(awk -v e="$echoed" -v c0="$cpu0" -v c1="$cpu1" \
    'BEGIN { printf "%.3f", (e > 0 ? (c1 - c0) / e / 1000 : 0) }')
  # CPU that neither the server nor the load used during the run, in % of one
  # core: other processes (or steal) competing for the 2 CPUs.
  RUN_OTHER=$(awk -v b0="$busy0" -v b1="$busy1" -v c0="$cpu0" -v c1="$cpu1" -v w0="$wall0" -v w1="$wall1" \
    -v l="$(bench_field "$result" load_cpu_s)" \
    'BEGIN { o = (b1 - b0) - (c1 - c0) - l * 1e9; if (o < 0) o = 0; printf "%.0f", 100 * o / (w1 - w0) }')
}

pin_desc=$([[ $pin == none ]] && echo "not pinned" || echo "server on CPU ${pin%,*}, load on CPU ${pin#*,}")
bench_log "bench echo: $rounds rounds, $count x $size-byte datagrams per run, window $window, $sockets source sockets, $pin_desc"
bench_log "bench echo: netmond-echo flags:${ECHO_ARGS:- (none)}"

floor_pps=() floor_loss=() floor_cpu=() floor_other=() echo_pps=() echo_loss=() echo_cpu=() echo_other=()
round_ratio=()
echo_ok=1
for ((r = 1; r <= rounds; r++)); do
  run_one floor "$r" "$floor_bin" || bench_die "the floor failed"
  p=$RUN_PPS
  floor_pps+=("$RUN_PPS") floor_loss+=("$RUN_LOSS") floor_cpu+=("$RUN_CPU")
  floor_other+=("$RUN_OTHER")
  line="round $r: floor $RUN_PPS/s (loss $RUN_LOSS%, $RUN_CPU µs CPU/datagram, other $RUN_OTHER%)"
  if ((echo_ok)); then
    if run_one netmond-echo "$r" "$echo_bin" "${echo_args[@]}"; then
      echo_pps+=("$RUN_PPS") echo_loss+=("$RUN_LOSS") echo_cpu+=("$RUN_CPU")
      round_ratio+=("$(awk -v a="$RUN_PPS" -v b="$p" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }')")
      echo_other+=("$RUN_OTHER")
      line+="; netmond-echo $RUN_PPS/s (loss $RUN_LOSS%, $RUN_CPU µs CPU/datagram, other $RUN_OTHER%)"
    else
      echo_ok=0
      line+="; netmond-echo FAILED"
    fi
  fi
  bench_log "bench echo: $line"
done

# Thousands separators without locale dependence.
fmt() {
  local v=$1
  [[ $v == nan || -z $v ]] && { echo "—"; return; }
  printf '%.0f\n' "$v" | sed ':a; s/\B[0-9]\{3\}\>/,&/; ta'
}
range() { printf '%s\n' "$@" | sort -g | sed -n '1p;$p' | xargs | awk '{print $1 "–" $2}'; }

max() { printf '%s\n' "$@" | sort -g | tail -n 1; }
null_if_nan() { if [[ $1 == nan ]]; then echo null; else echo "$1"; fi; }
json_array() {
  local IFS=,
  echo "[$*]"
}

fm=$(bench_median "${floor_pps[@]}")
fl=$(printf '%.3f' "$(bench_median "${floor_loss[@]}")")
fc=$(printf '%.2f' "$(bench_median "${floor_cpu[@]}")")
fo=$(max "${floor_other[@]}")
if ((echo_ok)); then
  em=$(bench_median "${echo_pps[@]}")
  el=$(printf '%.3f' "$(bench_median "${echo_loss[@]}")")
  ec=$(printf '%.2f' "$(bench_median "${echo_cpu[@]}")")
  eo=$(max "${echo_other[@]}")
  ratio=$(awk -v a="$em" -v b="$fm" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }')
  rr=$(printf '%.3f' "$(bench_median "${round_ratio[@]}")")
  pass=$(awk -v r="$ratio" -v t="$target" 'BEGIN { print ((r >= t) ? 1 : 0) }')
else
  em=nan el=nan ec=nan eo=nan ratio=nan rr=nan pass=0
fi
contended=$(awk -v a="$fo" -v b="${eo/nan/0}" 'BEGIN { print ((a > 25 || b > 25) ? 1 : 0) }')

table=$(
  echo "UDP echo on loopback: $count x $size-byte datagrams per run, window $window, $sockets source ports, $pin_desc; median of $rounds rounds"
  echo
  echo "| server | echoed/s (median) | range | server CPU µs/datagram | loss % | other CPU % (max) |"
  echo "|---|---:|---:|---:|---:|---:|"
  echo "| udp_echo_floor (recvmmsg/sendmmsg) | $(fmt "$fm") | $(range "${floor_pps[@]}") | $fc | $fl | $fo |"
  if ((echo_ok)); then
    echo "| netmond-echo | $(fmt "$em") | $(range "${echo_pps[@]}") | $ec | $el | $eo |"
    echo
    echo "netmond-echo / floor = $ratio (median of per-round ratios: $rr); target >= $target: $([[ $pass == 1 ]] && echo met || echo NOT MET)"
  else
    echo "| netmond-echo | FAILED (see $out/logs) | | | | |"
  fi
  if ((contended)); then
    echo
    echo "WARNING: other processes used more than 25% of a core during some runs; the figures are noisy, run again on a quiet machine."
  fi
)
machine="BENCH echo floor_pps=$(printf '%.0f' "$fm") echo_pps=$([[ $em == nan ]] && echo nan || printf '%.0f' "$em") ratio=$ratio round_ratio=$rr target=$target pass=$pass floor_cpu_us=$fc echo_cpu_us=$ec floor_loss_pct=$fl echo_loss_pct=$el contended=$contended rounds=$rounds count=$count size=$size window=$window sockets=$sockets pin=$pin"

printf '%s\n' "$table" >"$out/echo.md"
cat >"$out/echo.json" <<EOF
{
  "benchmark": "echo",
  "date": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
  "host": {"cpus": $(nproc), "kernel": "$(uname -r)"},
  "params": {"rounds": $rounds, "count": $count, "size": $size, "window": $window, "sockets": $sockets, "pin": "$pin", "echo_args": "${echo_args[*]}"},
  "floor": {"pps_median": $fm, "pps": $(json_array "${floor_pps[@]}"), "cpu_us_per_datagram": $fc, "loss_pct": $fl, "other_cpu_pct": $(json_array "${floor_other[@]}")},
  "netmond_echo": {"ok": $([[ $echo_ok == 1 ]] && echo true || echo false), "pps_median": $(null_if_nan "$em"), "pps": $(json_array "${echo_pps[@]}"), "cpu_us_per_datagram": $(null_if_nan "$ec"), "loss_pct": $(null_if_nan "$el"), "other_cpu_pct": $(json_array "${echo_other[@]}")},
  "ratio": $(null_if_nan "$ratio"),
  "round_ratios": $(json_array "${round_ratio[@]}"),
  "target": $target,
  "pass": $([[ $pass == 1 ]] && echo true || echo false),
  "contended": $([[ $contended == 1 ]] && echo true || echo false)
}
EOF

echo
printf '%s\n' "$table"
echo
echo "$machine"
((echo_ok)) || exit 1
if [[ ${BENCH_STRICT:-0} == 1 && $pass != 1 ]]; then exit 3; fi
exit 0
