#!/usr/bin/env bash
# bench/run-udp.sh: netmond's CPU time per udp probe (one datagram, one reply) against the
# floor, and against monitoring-plugins' check_udp as a process per probe when that is
# installed.
#
# Starts one netmond-echo (bench_start_echo, bench/lib.sh: its rate limit out of the way)
# on 127.0.0.1:<free port>; every request is an 8-byte datagram it sends back. Then each
# round measures, in an order that rotates from round to round:
#   floor      udp_floor: --runs requests with --concurrency in flight on one connected
#              non-blocking UDP socket and epoll (send, recv, match); CPU = its getrusage
#   netmond    udp_probe_bench: netmond's udp probe (make_probe on the daemon's loop,
#              payload "netmond!": one datagram per run from the check's connected socket,
#              kept between runs that succeed),
#              --concurrency probes, --runs runs; CPU = the process's getrusage from
#              first start to last result
#   echo       udp_echo_probe_bench: netmond's udp_echo probe (the daemon's defaults: one
#              request per run, "netmond echo check" and its 52-byte nonce trailer, 70
#              bytes, from the check's kept connected socket, the echo checked byte for byte), as
#              netmond does; the same floor is its floor (issue 10: ≤ 2× for udp_echo too)
#   floorsock  the floor with a fresh connected socket per request, as the probes opened
#              before they kept theirs: what that design costs by itself
#   floor1     the floor, one request at a time
#   netmond1   the netmond probe, one run at a time
#   check      check_udp -H 127.0.0.1 -p PORT -s netmond! -e netmond! run --check-runs
#              times one after another, a process per probe; CPU = its processes' user+sys
#              plus the shell's own. Only when installed (monitoring-plugins-basic): this
#              script never installs it.
# and netmond-echo's CPU per datagram meanwhile, for context. A round during which other
# processes used more than 25% of a core is run again (--retries times at most). Reports
# the median CPU µs per probe run of each client and the ratios to the floor, as a table,
# as one "BENCH udp key=value ..." line, and as BUILD_DIR/bench/udp.{md,json}. Issue 10's
# target: netmond ≤ 2× the floor. Every run is bounded (--runs, --check-runs,
# --max-seconds per client); every datagram goes to 127.0.0.1.
#
# Usage: bench/run-udp.sh [--build-dir DIR] [--rounds N] [--runs N] [--concurrency K]
#          [--check-runs N] [--retries N] [--max-seconds S]
#          [--probe-bin PATH]   (default BUILD_DIR/bench/udp_probe_bench)
#          [--echo-probe-bin PATH]   (default BUILD_DIR/bench/udp_echo_probe_bench)
# Environment: PROBE_ARGS adds flags to udp_probe_bench.
# Exit: 0 measured and every request got its reply / was Ok; 1 a failure (a failed or
# unfinished run, a client or netmond-echo that did not work, udp_probe_bench not built);
# 2 usage.
# shellcheck disable=SC2154,SC2317 # variables set by bench_options, functions called by name
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
BENCH_NAME=udp

bench_options "${BASH_SOURCE[0]}" build-dir=build/default rounds=5:1..99 runs=5000:1..999999 \
  concurrency=8:1..999 check-runs=200:1..99999 retries=2:0..9 max-seconds=20:1..999 probe-bin= \
  echo-probe-bin= \
  -- "$@"
busy_limit=25 # % of a core used by other processes during a part: contended

floor_bin=$build_dir/bench/udp_floor
probe_bin=${probe_bin:-$build_dir/bench/udp_probe_bench}
echo_bin=$build_dir/echo/netmond-echo
echo_probe_bin=${echo_probe_bin:-$build_dir/bench/udp_echo_probe_bench}
[[ -x $echo_probe_bin ]] || bench_die "$echo_probe_bin not built (run: cmake --preset default && cmake --build --preset default)"
[[ -x $floor_bin ]] || bench_die "$floor_bin not built (run: cmake --preset default && cmake --build --preset default)"
[[ -x $echo_bin ]] || bench_die "$echo_bin not built (run: cmake --preset default && cmake --build --preset default)"
check_bin=$(command -v check_udp || true)
[[ -n $check_bin || ! -x /usr/lib/nagios/plugins/check_udp ]] || check_bin=/usr/lib/nagios/plugins/check_udp
check_why=""
[[ -n $check_bin ]] || check_why="check_udp not installed (package monitoring-plugins-basic; this benchmark does not install it)"
bench_prepare "probes/udp.cpp" "${check_bin:+check_udp}${check_bin:-no other client}"
payload='netmond!' # 8 bytes, as the floor's requests

# ---- the server: netmond-echo ------------------------------------------------------------
echo_log=$(cd "$out/logs" && pwd)/udp-echo.log
BENCH_SERVER_LOG=$echo_log
bench_start_server udp netmond-echo bench_start_echo
port=$BENCH_PORT echo_pid=$BENCH_SERVER_PID
bench_log "bench udp: netmond-echo pid $echo_pid on 127.0.0.1:$port"
bench_log "bench udp: $rounds rounds; netmond and floor: $runs runs, $concurrency concurrent and one at a time; check_udp: ${check_why:-$check_runs runs, sequential}"

# ---- the clients -------------------------------------------------------------------------
# bench_rounds calls measure_PART ROUND, which sets the P_* figures (bench/lib.sh), or
# returns 1 when the client did not run at all.

# run_floor ROUND LABEL K SOCKET: udp_floor with K requests in flight.
run_floor() {
  bench_run_result "$out/logs/udp-$1-$2.log" "$floor_bin" --connect "127.0.0.1:$port" \
    --count "$runs" --concurrency "$3" --socket "$4" --size ${#payload} \
    --max-seconds "$max_seconds" || bench_die "the floor failed"
  bench_result_figures cpu_us_per_req rps
  P_LINE="$2 $P_CPU µs/run, $P_RPS runs/s, netmond-echo $P_SRV µs/datagram, $P_FAIL failed, other $P_OTHER%"
}

# run_netmond ROUND LABEL K: udp_probe_bench with K probes.
run_netmond() {
  bench_run_result "$out/logs/udp-$1-$2.log" "$probe_bin" --port "$port" --runs "$runs" \
    --set "payload=$payload" --concurrency "$3" --max-seconds "$max_seconds" \
    "${probe_args[@]}" || return 1
  bench_result_figures cpu_us_per_run runs_per_s setup_cpu_us startup_cpu_us
  local k
  for k in setup_cpu_us startup_cpu_us latency_p50_us maxrss_kib; do P_EXTRA+=("$(bench_field "$RESULT" "$k")"); done
  P_LINE="$2 $P_CPU µs/run, $P_RPS runs/s, setup ${P_EXTRA[0]} µs, netmond-echo $P_SRV µs/datagram, $P_FAIL failed, other $P_OTHER%"
}

# check_once: one check_udp process; prints "ok" when it said OK (exit 0).
check_once() { "$check_bin" -H 127.0.0.1 -p "$port" -s "$payload" -e "$payload" -t 2 >/dev/null && echo ok; }

# measure_echo ROUND: udp_echo_probe_bench with --concurrency probes.
measure_echo() {
  bench_run_result "$out/logs/udp-$1-echo.log" "$echo_probe_bin" --port "$port" --runs "$runs" \
    --concurrency "$concurrency" --max-seconds "$max_seconds" || bench_die "udp_echo_probe_bench failed"
  bench_result_figures cpu_us_per_run runs_per_s
  P_LINE="udp_echo $P_CPU µs/run, $P_RPS runs/s, netmond-echo $P_SRV µs/datagram, $P_FAIL failed, other $P_OTHER%"
}

measure_floor() { run_floor "$1" floor "$concurrency" one; }
measure_floorsock() { run_floor "$1" floorsock "$concurrency" per-request; }
measure_floor1() { run_floor "$1" floor1 1 one; }
measure_netmond() { run_netmond "$1" netmond "$concurrency"; }
measure_netmond1() { run_netmond "$1" netmond1 1; }
measure_check() {
  bench_run_processes "$out/logs/udp-$1-check.log" "$check_runs" "$max_seconds" "ok 0" check_once ||
    bench_die "check_udp failed"
  P_LINE="check_udp $P_CPU µs/run (${P_EXTRA[0]} in it, ${P_EXTRA[1]} launching), $P_RPS runs/s, netmond-echo $P_SRV µs/run, $P_FAIL failed, other $P_OTHER%"
}

# ---- rounds ------------------------------------------------------------------------------
parts=(floor netmond echo floorsock floor1 netmond1)
[[ -z $check_bin ]] || parts+=(check)
bench_probe_rounds udp_probe_bench "${parts[@]}"

# ---- report ------------------------------------------------------------------------------
fc=$(bench_med floor cpu) fr=$(bench_med floor rps) fg=$(bench_med floor srv)
ec=$(bench_med echo cpu) er=$(bench_med echo rps) eg=$(bench_med echo srv)
ef_ratio=$(bench_calc %.2f "$ec / $fc")
fsc=$(bench_med floorsock cpu) fsr=$(bench_med floorsock rps) fsg=$(bench_med floorsock srv)
f1c=$(bench_med floor1 cpu) f1r=$(bench_med floor1 rps) f1g=$(bench_med floor1 srv)
cc=$(bench_med check cpu) cr=$(bench_med check rps) cg=$(bench_med check srv)
nc=$(bench_med netmond cpu) nr=$(bench_med netmond rps) ng=$(bench_med netmond srv)
n1c=$(bench_med netmond1 cpu) n1r=$(bench_med netmond1 rps) n1g=$(bench_med netmond1 srv)
nf_ratio="" rnf="" n1f_ratio="" nfs_ratio="" cn_ratio="" nsetup="" nstartup="" np50="" nrss=""
if [[ -n $nc && -n $n1c ]]; then
  nf_ratio=$(bench_calc %.2f "$nc / $fc") rnf=$(bench_med netmond ratio %.2f)
  n1f_ratio=$(bench_calc %.2f "$n1c / $f1c") nfs_ratio=$(bench_calc %.2f "$nc / $fsc")
  [[ -z $cc ]] || cn_ratio=$(bench_calc %.1f "$cc / $n1c")
  nsetup=$(bench_med netmond x0 %.0f) nstartup=$(bench_med netmond x1 %.0f)
  np50=$(bench_med netmond x2 %.0f) nrss=$(bench_med netmond x3 %.0f)
fi
f_fail=$(($(bench_sum floor fail) + $(bench_sum floorsock fail) + $(bench_sum floor1 fail)))
n_fail=$(($(bench_sum netmond fail) + $(bench_sum netmond1 fail)))
failures=$((f_fail + n_fail + $(bench_sum echo fail) + $(bench_sum check fail)))
ok=1
((netmond_ok && failures == 0 && !client_error)) || ok=0

table=$(
  echo "An 8-byte datagram to netmond-echo on 127.0.0.1 and its echo back; netmond and floor: $runs runs, $concurrency in flight and one at a time; median of $rounds rounds"
  echo
  echo "| client | CPU µs per probe run | range | / floor | runs/s | netmond-echo CPU µs/datagram | failed runs |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  bench_row "udp_floor (epoll, one connected UDP socket, $concurrency in flight)" floor "$fc" 1.00 "$fr" "$fg"
  if [[ -n $nc && -n $n1c ]]; then
    bench_row "netmond udp probe (udp_probe_bench, $concurrency in flight)" netmond "$nc" "$nf_ratio" "$nr" "$ng"
  else
    echo "| netmond udp probe | ${netmond_why:-FAILED} | | | | | |"
  fi
  bench_row "netmond udp_echo probe (udp_echo_probe_bench, 70-byte request, $concurrency in flight)" echo "$ec" "$ef_ratio" "$er" "$eg"
  bench_row "udp_floor, a socket per request, $concurrency in flight" floorsock "$fsc" "$(bench_calc %.2f "$fsc / $fc")" "$fsr" "$fsg"
  bench_row "udp_floor, one at a time" floor1 "$f1c" "$(bench_calc %.2f "$f1c / $fc")" "$f1r" "$f1g"
  if [[ -n $nc && -n $n1c ]]; then
    bench_row "netmond udp probe, one at a time" netmond1 "$n1c" "$(bench_calc %.2f "$n1c / $fc")" "$n1r" "$n1g"
  fi
  if [[ -n $cc ]]; then
    bench_row "check_udp, one process per probe" check "$cc" "$(bench_calc %.1f "$cc / $fc")" "$cr" "$cg"
  else
    echo "| check_udp | skipped: $check_why | | | | | |"
  fi
  echo
  if [[ -n $nc && -n $n1c ]]; then
    echo "netmond / floor, CPU per run: $nf_ratio (median of per-round ratios: $rnf; target ≤ 2); netmond / floor with a socket per request: $nfs_ratio; udp_echo / floor: $ef_ratio (target ≤ 2); one at a time, netmond / floor: $n1f_ratio${cn_ratio:+; check_udp / netmond one at a time: $cn_ratio}"
    echo "netmond, once per process: $nstartup µs CPU before main(), $nsetup µs from main() to the first run; peak RSS $(bench_fmt "$nrss") KiB; median run latency $np50 µs"
  fi
  if ((failures)); then
    echo
    echo "FAILED: $failures runs got no reply / were not Ok (logs in $out/logs)."
  fi
  if ((BENCH_CONTENDED)); then
    echo
    echo "WARNING: other processes used more than $busy_limit% of a core during some parts even after $retries retries; the figures are noisy, run again on a quiet machine."
  fi
)
machine="BENCH udp netmond_cpu_us=$(bench_num "$nc") netmond1_cpu_us=$(bench_num "$n1c") floor_cpu_us=$fc floorsock_cpu_us=$fsc floor1_cpu_us=$f1c echo_cpu_us=$ec echo_per_floor=$ef_ratio check_cpu_us=$(bench_num "$cc") netmond_per_floor=$(bench_num "$nf_ratio") netmond_per_floorsock=$(bench_num "$nfs_ratio") netmond1_per_floor1=$(bench_num "$n1f_ratio") check_per_netmond1=$(bench_num "$cn_ratio") failures=$failures ok=$ok netmond_built=$([[ -x $probe_bin ]] && echo 1 || echo 0) check_installed=$([[ -n $check_bin ]] && echo 1 || echo 0) netmond_setup_cpu_us=$(bench_num "$nsetup") netmond_rps=$(bench_num "$([[ -n $nr ]] && printf %.0f "$nr")") floor_rps=$(printf %.0f "$fr") echo_cpu_us_floor=$fg echo_cpu_us_netmond=$(bench_num "$ng") contended=$BENCH_CONTENDED reruns=$BENCH_RERUNS rounds=$rounds runs=$runs check_runs=$check_runs concurrency=$concurrency"

members=$(
  cat <<EOF
  "host": {"cpus": $(nproc), "kernel": "$(uname -r)", "check_udp": $(bench_json_str "${check_bin:-not installed}")},
  "params": {"rounds": $rounds, "retries": $retries, "runs": $runs, "concurrency": $concurrency, "check_runs": $check_runs, "max_seconds": $max_seconds, "probe_args": $(bench_json_str "${probe_args[*]}")},
  "floor": {$(bench_json_part floor netmond_echo)},
  "floorsock": {$(bench_json_part floorsock netmond_echo)},
  "udp_echo": {$(bench_json_part echo netmond_echo)},
  "udp_echo_per_floor": $ef_ratio,
  "floor1": {$(bench_json_part floor1 netmond_echo)},
  "netmond": {"ok": $(bench_json_bool "$((netmond_ok && n_fail == 0))"), "why": $(bench_json_str "$netmond_why"), $(bench_json_part netmond netmond_echo setup_cpu_us startup_cpu_us latency_p50_us maxrss_kib)},
  "netmond1": {$(bench_json_part netmond1 netmond_echo setup_cpu_us startup_cpu_us latency_p50_us maxrss_kib)},
  "check": {"ok": $(bench_json_bool "$([[ -n $cc ]] && echo 1 || echo 0)"), "why": $(bench_json_str "$check_why"), $(bench_json_part check netmond_echo process_cpu_us_per_run launch_cpu_us_per_run)},
  "netmond_per_floor": $(bench_jnum "$nf_ratio"),
  "netmond_per_floor_rounds": $(bench_list netmond ratio),
  "netmond_per_floorsock": $(bench_jnum "$nfs_ratio"),
  "netmond1_per_floor1": $(bench_jnum "$n1f_ratio"),
  "check_per_netmond1": $(bench_jnum "$cn_ratio"),
EOF
)
bench_report "$ok" "$failures" "$table" "$machine" "$members"
