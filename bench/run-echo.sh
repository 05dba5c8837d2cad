#!/usr/bin/env bash
# bench/run-echo.sh: netmond-echo's UDP echo throughput against the floor.
#
# Each round: start udp_echo_floor on 127.0.0.1:<free port>, run udp_echo_load
# against it, stop it by PID; and the same for netmond-echo (per-source rate
# limit raised out of the way); odd rounds run the floor first, even rounds
# netmond-echo first. A round during which other processes used more
# than 25% of a core is run again (--retries times at most). Reports the median
# echoed datagrams/s of each server, the ratio netmond-echo/floor (target >=
# 0.80), and the servers' CPU time per datagram, as a table, as one
# "BENCH echo key=value ..." line, and as BUILD_DIR/bench/echo.{md,json}.
#
# Usage: bench/run-echo.sh [--build-dir DIR] [--rounds N] [--retries N] [--count N]
#          [--window N] [--sockets N] [--size BYTES] [--pin SERVER_CPU,LOAD_CPU|none]
#          [--echo-bin PATH]   (default BUILD_DIR/echo/netmond-echo)
# Environment: ECHO_ARGS replaces the extra netmond-echo flags (default
# "--rate 10000000 --burst 10000000"); BENCH_STRICT=1 makes a ratio below target exit 3.
# Exit: 0 measured (whatever the ratio), 1 a server failed, 2 usage, 3 strict and below target.
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
source "$here/lib.sh"

build_dir=build/default
rounds=5
retries=2
count=200000
window=128
sockets=4
size=64
pin=none
echo_bin=
target=0.80
busy_limit=25 # % of a core used by other processes during a run: contended

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
  exit "${1:-2}"
}
while (($#)); do
  case $1 in
    -h | --help) usage 0 ;;
  esac
  (($# >= 2)) || usage 2
  case $1 in
    --build-dir) build_dir=$2 ;;
    --rounds) rounds=$2 ;;
    --retries) retries=$2 ;;
    --count) count=$2 ;;
    --window) window=$2 ;;
    --sockets) sockets=$2 ;;
    --size) size=$2 ;;
    --pin) pin=$2 ;;
    --echo-bin) echo_bin=$2 ;;
    *) usage 2 ;;
  esac
  shift 2
done
[[ $rounds =~ ^[1-9][0-9]?$ ]] || bench_die "--rounds must be 1..99"
[[ $retries =~ ^[0-9]$ ]] || bench_die "--retries must be 0..9"

floor_bin=$build_dir/bench/udp_echo_floor
load_bin=$build_dir/bench/udp_echo_load
echo_bin=${echo_bin:-$build_dir/echo/netmond-echo}
for b in "$floor_bin" "$load_bin" "$echo_bin"; do
  [[ -x $b ]] || bench_die "$b not built (run: cmake --preset default && cmake --build --preset default)"
done
out=$build_dir/bench
mkdir -p "$out/logs"
rm -f "$out"/logs/echo-*

# Raise netmond-echo's per-source rate limit far above what the load sends, so
# its code runs but never drops (every datagram comes from 127.0.0.1).
if [[ -z ${ECHO_ARGS+x} ]]; then
  ECHO_ARGS=""
  help=$("$echo_bin" --help 2>&1 || true)
  if grep -q -- '--rate' <<<"$help"; then ECHO_ARGS+=" --rate 10000000"; fi
  if grep -q -- '--burst' <<<"$help"; then ECHO_ARGS+=" --burst 10000000"; fi
fi
read -r -a echo_args <<<"$ECHO_ARGS"

server_pin=() load_pin=()
if [[ $pin != none ]]; then
  [[ $pin =~ ^([0-9]+),([0-9]+)$ ]] || bench_die "--pin wants SERVER_CPU,LOAD_CPU or none"
  server_pin=(taskset -c "${BASH_REMATCH[1]}")
  load_pin=(taskset -c "${BASH_REMATCH[2]}")
fi

# wait_echo PID ADDR:PORT: waits up to 5 s for the server PID to answer a ping
# on ADDR:PORT; gives up early when PID has exited.
wait_echo() {
  local i
  for ((i = 0; i < 50; i++)); do
    kill -0 "$1" 2>/dev/null || return 1
    "$load_bin" --count 1 --window 1 --sockets 1 --drain-ms 0 --ready-ms 100 "$2" >/dev/null && return 0
  done
  return 1
}

calc() { awk "BEGIN { printf \"$1\", ($2) }"; }

# run_one NAME LOG CMD...: starts the server CMD with "--listen 127.0.0.1:PORT"
# appended, waits until it answers, runs the load against it, stops it by PID.
# Runs in this shell (not a subshell), so the EXIT trap knows every PID. Sets
#   RUN_PPS    echoed datagrams/s
#   RUN_LOSS   % of datagrams without an echo
#   RUN_CPU    server CPU µs per echoed datagram
#   RUN_SRV    server CPU, % of one core, over the run
#   RUN_LOAD   load generator CPU, % of one core
#   RUN_OTHER  CPU used by anything else, % of one core (other processes, steal)
# or returns 1.
run_one() {
  local name=$1 log=$2
  shift 2
  local attempt port pid lpid result rc=0 cpu0 cpu1 busy0 busy1 wall0 wall1
  # A second attempt on another port covers a port taken between the check and
  # the bind.
  for attempt in 1 2; do
    port=$(bench_free_port udp)
    bench_start pid "$log" "${server_pin[@]}" "$@" --listen "127.0.0.1:$port"
    wait_echo "$pid" "127.0.0.1:$port" 2>>"$log" && break
    bench_stop "$pid" || true
    bench_log "bench: $name did not answer on 127.0.0.1:$port (attempt $attempt; log: $log):"
    tail -n 5 "$log" | sed 's/^/    /' >&2
    ((attempt < 2)) || return 1
    mv "$log" "$log.failed"
  done
  # Baselines after the server answered: start-up is not counted.
  cpu0=$(bench_cpu_ns "$pid") busy0=$(bench_busy_ns) wall0=$(date +%s%N)
  # In the background and waited for, so a signal's trap runs at once.
  bench_start lpid "$log.result" "${load_pin[@]}" "$load_bin" --count "$count" --window "$window" \
    --sockets "$sockets" --size "$size" "127.0.0.1:$port"
  wait "$lpid" || rc=$?
  bench_forget "$lpid"
  cpu1=$(bench_cpu_ns "$pid") busy1=$(bench_busy_ns) wall1=$(date +%s%N)
  grep '^udp_echo_load' "$log.result" >>"$log" || true
  result=$(grep '^RESULT ' "$log.result" || true)
  rm -f "$log.result"
  if ! kill -0 "$pid" 2>/dev/null; then
    bench_stop "$pid" || true
    bench_log "bench: $name exited during the run (log: $log)"
    return 1
  fi
  bench_stop "$pid" || bench_log "bench: $name did not exit cleanly on SIGTERM (log: $log)"
  if ((rc != 0)) || [[ -z $result ]]; then
    bench_log "bench: load against $name failed ($rc; log: $log)"
    return 1
  fi
  local echoed sent lost load_s wall_ns srv_ns
  echoed=$(bench_field "$result" echoed) sent=$(bench_field "$result" sent)
  lost=$(bench_field "$result" lost) load_s=$(bench_field "$result" load_cpu_s)
  wall_ns=$((wall1 - wall0)) srv_ns=$((cpu1 - cpu0))
  RUN_PPS=$(bench_field "$result" pps)
  RUN_LOSS=$(calc %.3f "($sent > 0 ? 100 * $lost / $sent : 0)")
  RUN_CPU=$(calc %.3f "($echoed > 0 ? $srv_ns / $echoed / 1000 : 0)")
  RUN_SRV=$(calc %.0f "100 * $srv_ns / $wall_ns")
  RUN_LOAD=$(calc %.0f "100 * $load_s * 1e9 / $wall_ns")
  RUN_OTHER=$(calc %.0f "(o = ($busy1 - $busy0) - $srv_ns - $load_s * 1e9) > 0 ? 100 * o / $wall_ns : 0")
}

pin_desc=$([[ $pin == none ]] && echo "not pinned" || echo "server on CPU ${pin%,*}, load on CPU ${pin#*,}")
bench_log "bench echo: $rounds rounds, $count x $size-byte datagrams per run, window $window, $sockets source sockets, $pin_desc"
bench_log "bench echo: netmond-echo flags:${ECHO_ARGS:- (none)}"

# Per-round results, floor (f_) and netmond-echo (e_).
f_pps=() f_loss=() f_cpu=() f_srv=() f_load=() f_other=()
e_pps=() e_loss=() e_cpu=() e_srv=() e_load=() e_other=()
round_ratio=()
echo_ok=1 contended=0 reruns=0
describe() { echo "$RUN_PPS/s, $RUN_CPU µs CPU/datagram, server $RUN_SRV% load $RUN_LOAD% other $RUN_OTHER% of a core, loss $RUN_LOSS%"; }
# measure_floor / measure_echo ROUND: one run each; set F / E (and FLINE / ELINE).
measure_floor() {
  run_one floor "$out/logs/echo-$1-floor.log" "$floor_bin" || bench_die "the floor failed"
  F=("$RUN_PPS" "$RUN_LOSS" "$RUN_CPU" "$RUN_SRV" "$RUN_LOAD" "$RUN_OTHER")
  FLINE="floor $(describe)"
}
measure_echo() {
  E=() ELINE="netmond-echo FAILED"
  ((echo_ok)) || return 0
  if run_one netmond-echo "$out/logs/echo-$1-netmond-echo.log" "$echo_bin" "${echo_args[@]}"; then
    E=("$RUN_PPS" "$RUN_LOSS" "$RUN_CPU" "$RUN_SRV" "$RUN_LOAD" "$RUN_OTHER")
    ELINE="netmond-echo $(describe)"
  else
    echo_ok=0
  fi
}
for ((r = 1; r <= rounds; r++)); do
  for ((try = 0; try <= retries; try++)); do
    # Odd rounds run the floor first, even rounds netmond-echo first: the second
    # run of a pair is a few % slower (the floor against itself shows it), and
    # alternating cancels that out of the medians.
    if ((r % 2)); then
      measure_floor "$r"
      measure_echo "$r"
      line="round $r: $FLINE; $ELINE"
    else
      measure_echo "$r"
      measure_floor "$r"
      line="round $r: $ELINE; $FLINE"
    fi
    busy=${F[5]}
    if ((${#E[@]})) && ((E[5] > busy)); then busy=${E[5]}; fi
    if ((busy > busy_limit)); then
      if ((try < retries)); then
        bench_log "bench echo: $line — other processes busy, round run again"
        reruns=$((reruns + 1))
        continue
      fi
      contended=1
      line+=" — CONTENDED"
    fi
    break
  done
  bench_log "bench echo: $line"
  f_pps+=("${F[0]}") f_loss+=("${F[1]}") f_cpu+=("${F[2]}") f_srv+=("${F[3]}") f_load+=("${F[4]}") f_other+=("${F[5]}")
  if ((echo_ok)); then
    e_pps+=("${E[0]}") e_loss+=("${E[1]}") e_cpu+=("${E[2]}") e_srv+=("${E[3]}") e_load+=("${E[4]}") e_other+=("${E[5]}")
    round_ratio+=("$(calc %.3f "(${F[0]} > 0 ? ${E[0]} / ${F[0]} : 0)")")
  fi
done

# Thousands separators without locale dependence.
fmt() { printf '%.0f\n' "$1" | sed ':a; s/\B[0-9]\{3\}\>/,&/; ta'; }
range() { printf '%s\n' "$@" | sort -g | sed -n '1p;$p' | xargs | awk '{print $1 "–" $2}'; }
max() { printf '%s\n' "$@" | sort -g | tail -n 1; }
median() { bench_median "$@"; }
json_array() {
  local IFS=,
  echo "[$*]"
}
json_bool() { if (($1)); then echo true; else echo false; fi; }

fm=$(median "${f_pps[@]}")
fc=$(calc %.2f "$(median "${f_cpu[@]}")")
fl=$(calc %.3f "$(median "${f_loss[@]}")")
fs=$(median "${f_srv[@]}") fd=$(median "${f_load[@]}") fo=$(max "${f_other[@]}")
pass=0
if ((echo_ok)); then
  em=$(median "${e_pps[@]}")
  ec=$(calc %.2f "$(median "${e_cpu[@]}")")
  el=$(calc %.3f "$(median "${e_loss[@]}")")
  es=$(median "${e_srv[@]}") ed=$(median "${e_load[@]}") eo=$(max "${e_other[@]}")
  ratio=$(calc %.3f "($fm > 0 ? $em / $fm : 0)")
  rr=$(calc %.3f "$(median "${round_ratio[@]}")")
  cpu_ratio=$(calc %.3f "($ec > 0 ? $fc / $ec : 0)")
  pass=$(calc %d "($ratio >= $target)")
fi

table=$(
  echo "UDP echo on loopback: $count x $size-byte datagrams per run, window $window, $sockets source ports, $pin_desc; median of $rounds rounds"
  echo
  echo "| server | echoed/s | range | server CPU µs/datagram | server / load CPU % | loss % | other CPU % (max) |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  echo "| udp_echo_floor (recvmmsg/sendmmsg) | $(fmt "$fm") | $(range "${f_pps[@]}") | $fc | $fs / $fd | $fl | $fo |"
  if ((echo_ok)); then
    echo "| netmond-echo | $(fmt "$em") | $(range "${e_pps[@]}") | $ec | $es / $ed | $el | $eo |"
    echo
    echo "netmond-echo / floor, echoed/s: $ratio (median of per-round ratios: $rr); target >= $target: $( ((pass)) && echo met || echo NOT MET)"
    echo "netmond-echo / floor, CPU per datagram (floor µs / netmond-echo µs): $cpu_ratio"
  else
    echo "| netmond-echo | FAILED (see $out/logs) | | | | | |"
  fi
  if (($(calc %d "($fl > 1) || (${el:-0} > 1)"))); then
    echo
    echo "WARNING: more than 1% of the datagrams were not echoed: the window is too large for the server, or it dropped them (its log in $out/logs has the drop counters)."
  fi
  if ((contended)); then
    echo
    echo "WARNING: other processes used more than $busy_limit% of a core during some runs even after $retries retries; the figures are noisy, run again on a quiet machine."
  fi
)
num() { if [[ -z ${1:-} ]]; then echo nan; else echo "$1"; fi; }
machine="BENCH echo floor_pps=$(printf "%.0f" "$fm") echo_pps=$(num "$([[ -n ${em:-} ]] && printf "%.0f" "$em")") ratio=$(num "${ratio:-}") round_ratio=$(num "${rr:-}") cpu_ratio=$(num "${cpu_ratio:-}") target=$target pass=$pass floor_cpu_us=$fc echo_cpu_us=$(num "${ec:-}") floor_loss_pct=$fl echo_loss_pct=$(num "${el:-}") contended=$contended reruns=$reruns rounds=$rounds count=$count size=$size window=$window sockets=$sockets pin=$pin"

printf '%s\n' "$table" >"$out/echo.md"
jnum() { if [[ -z ${1:-} ]]; then echo null; else echo "$1"; fi; }
cat >"$out/echo.json" <<EOF
{
  "benchmark": "echo",
  "date": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
  "host": {"cpus": $(nproc), "kernel": "$(uname -r)"},
  "params": {"rounds": $rounds, "retries": $retries, "count": $count, "size": $size, "window": $window, "sockets": $sockets, "pin": "$pin", "echo_args": "${echo_args[*]}"},
  "floor": {"pps_median": $fm, "pps": $(json_array "${f_pps[@]}"), "cpu_us_per_datagram": $(json_array "${f_cpu[@]}"), "server_cpu_pct": $(json_array "${f_srv[@]}"), "load_cpu_pct": $(json_array "${f_load[@]}"), "other_cpu_pct": $(json_array "${f_other[@]}"), "loss_pct": $(json_array "${f_loss[@]}")},
  "netmond_echo": {"ok": $(json_bool "$echo_ok"), "pps_median": $(jnum "${em:-}"), "pps": $(json_array "${e_pps[@]}"), "cpu_us_per_datagram": $(json_array "${e_cpu[@]}"), "server_cpu_pct": $(json_array "${e_srv[@]}"), "load_cpu_pct": $(json_array "${e_load[@]}"), "other_cpu_pct": $(json_array "${e_other[@]}"), "loss_pct": $(json_array "${e_loss[@]}")},
  "ratio": $(jnum "${ratio:-}"),
  "round_ratios": $(json_array "${round_ratio[@]}"),
  "cpu_ratio": $(jnum "${cpu_ratio:-}"),
  "target": $target,
  "pass": $(json_bool "$pass"),
  "contended": $(json_bool "$contended"),
  "reruns": $reruns
}
EOF

echo
printf '%s\n' "$table"
echo
echo "$machine"
((echo_ok)) || exit 1
if [[ ${BENCH_STRICT:-0} == 1 ]] && ((!pass)); then exit 3; fi
exit 0
