#!/usr/bin/env bash
# bench/run-ntp.sh: netmond's CPU time per NTP probe against the floor (and against
# monitoring-plugins' check_ntp_time as a process per probe, when it is installed).
#
# Starts one chronyd (/usr/sbin/chronyd, package chrony) as its own child: in the
# foreground (-d), never touching the clock (-x), with a configuration in a temp dir: UDP
# port 127.0.0.1:<free port>, `allow 127.0.0.1`, no sources, `local stratum 8` (it serves
# this host's clock as a local reference), `cmdport 0` and `bindcmdaddress /` (no command
# sockets), `noclientlog` (no per-client state; rate limiting, which needs it, is off
# anyway: there is no `ratelimit` directive, so every request is answered), its pid and
# drift files in the temp dir; stopped by its PID at the end. Then each round measures, in
# an order that rotates from round to round:
#   floor      ntp_floor: --runs SNTP requests (48 bytes, mode 3, a random transmit
#              timestamp; send, recv, check mode 4, stratum and origin, offset from T1..T4)
#              with --concurrency in flight on one connected non-blocking UDP socket and
#              epoll; CPU = its getrusage over them
#   netmond    ntp_probe_bench: netmond's ntp probe (make_probe with a spec parsed by the
#              ntp type's parse(): one request per run, from the check's connected socket,
#              kept between runs that succeed),
#              --concurrency probes, --runs runs; CPU = the process's getrusage from first
#              start to last result
#   floorsock  the floor with a fresh connected socket per request (as the probe opened one
#              before it kept its socket), --concurrency in flight: what that design costs
#   floor1     the floor, one request at a time
#   netmond1   the netmond probe, one run at a time
#   check      check_ntp_time -H 127.0.0.1 -p PORT (monitoring-plugins) run --check-runs
#              times one after another, a process per probe; CPU = its processes' user+sys
#              plus the shell's own. Only when installed: this script never installs it.
# and chronyd's CPU per request meanwhile (/proc/PID/stat), for context. A
# round during which other processes used more than 25% of a core is run again (--retries
# times at most). Reports the median CPU µs per probe run of each client and the ratios to
# the floors, as a table, as one "BENCH ntp key=value ..." line, and as
# BUILD_DIR/bench/ntp.{md,json}. There is no target: the figures are for reading. Every
# run is bounded (--runs, --check-runs, --max-seconds per client). Nothing leaves the
# host: every request goes to 127.0.0.1, and chronyd has no sources to ask.
#
# Usage: bench/run-ntp.sh [--build-dir DIR] [--rounds N] [--runs N] [--concurrency K]
#          [--check-runs N] [--retries N] [--max-seconds S]
#          [--probe-bin PATH]   (default BUILD_DIR/bench/ntp_probe_bench)
# Environment: PROBE_ARGS adds flags to ntp_probe_bench (e.g. "--set samples=2").
# Exit: 0 measured and every run got a valid answer / was Ok; 1 a failure (a failed or
# unfinished run, a client or chronyd that did not work, ntp_probe_bench not built); 2 usage.
# shellcheck disable=SC2154,SC2317 # variables set by bench_options, functions called by name
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
BENCH_NAME=ntp

bench_options "${BASH_SOURCE[0]}" build-dir=build/default rounds=5:1..99 runs=5000:1..999999 \
  concurrency=20:1..999 check-runs=200:1..99999 retries=2:0..9 max-seconds=20:1..999 probe-bin= \
  -- "$@"
busy_limit=25 # % of a core used by other processes during a part: contended

floor_bin=$build_dir/bench/ntp_floor
probe_bin=${probe_bin:-$build_dir/bench/ntp_probe_bench}
[[ -x $floor_bin ]] || bench_die "$floor_bin not built (run: cmake --preset default && cmake --build --preset default)"
chronyd_bin=/usr/sbin/chronyd
[[ -x $chronyd_bin ]] || bench_die "$chronyd_bin not found (scripts/install-deps.sh installs chrony)"
check_bin=$(command -v check_ntp_time || true)
[[ -n $check_bin || ! -x /usr/lib/nagios/plugins/check_ntp_time ]] || check_bin=/usr/lib/nagios/plugins/check_ntp_time
check_why=""
[[ -n $check_bin ]] || check_why="check_ntp_time not installed (package monitoring-plugins-basic; this benchmark does not install it)"
bench_prepare "probes/ntp.cpp and probes/ntp_packet.cpp" "${check_bin:+check_ntp_time}${check_bin:-no other client}"

# ---- chronyd -----------------------------------------------------------------------------
chronyd_log=$(cd "$out/logs" && pwd)/ntp-chronyd.log
BENCH_SERVER_LOG=$chronyd_log
chronyd_answers() { "$floor_bin" --connect "127.0.0.1:$1" --count 1 --max-seconds 0.2 >/dev/null 2>&1; }
start_chronyd() {
  cat >"$tmp/chrony.conf" <<EOF
port $1
bindaddress 127.0.0.1
allow 127.0.0.1
local stratum 8
cmdport 0
bindcmdaddress /
noclientlog
user $(id -un)
pidfile $tmp/chronyd.pid
driftfile $tmp/chronyd.drift
EOF
  # -x: never touch the clock; -d: foreground, log to stderr; -U: no root check.
  bench_start BENCH_SERVER_PID "$chronyd_log.out" "$chronyd_bin" -x -d -U -f "$tmp/chrony.conf"
  bench_await chronyd_answers "$1"
}
bench_start_server udp chronyd start_chronyd
port=$BENCH_PORT chronyd_pid=$BENCH_SERVER_PID
bench_log "bench ntp: chronyd pid $chronyd_pid serving stratum 8 on 127.0.0.1:$port"
bench_log "bench ntp: $rounds rounds; netmond and floor: $runs runs, $concurrency concurrent and one at a time; check_ntp_time: ${check_why:-$check_runs runs, sequential}"

# ---- the clients -------------------------------------------------------------------------
# bench_rounds calls measure_PART ROUND, which sets the P_* figures (bench/lib.sh), or
# returns 1 when the client did not run at all.

# run_floor ROUND LABEL K SOCKET: ntp_floor with K requests in flight.
run_floor() {
  bench_run_result "$out/logs/ntp-$1-$2.log" "$floor_bin" --connect "127.0.0.1:$port" \
    --count "$runs" --concurrency "$3" --socket "$4" --max-seconds "$max_seconds" ||
    bench_die "the floor failed"
  bench_result_figures cpu_us_per_req rps
  P_LINE="$2 $P_CPU µs/run, $P_RPS runs/s, chronyd $P_SRV µs/request, $P_FAIL failed, other $P_OTHER%"
}

# run_netmond ROUND LABEL K: ntp_probe_bench with K probes.
run_netmond() {
  bench_run_result "$out/logs/ntp-$1-$2.log" "$probe_bin" --port "$port" --runs "$runs" \
    --concurrency "$3" --max-seconds "$max_seconds" "${probe_args[@]}" || return 1
  bench_result_figures cpu_us_per_run runs_per_s setup_cpu_us startup_cpu_us
  local k
  for k in setup_cpu_us startup_cpu_us latency_p50_us maxrss_kib; do P_EXTRA+=("$(bench_field "$RESULT" "$k")"); done
  P_LINE="$2 $P_CPU µs/run, $P_RPS runs/s, setup ${P_EXTRA[0]} µs, chronyd $P_SRV µs/request, $P_FAIL failed, other $P_OTHER%"
}

# check_once: one check_ntp_time process; prints "ok" when it said OK (exit 0).
check_once() { "$check_bin" -H 127.0.0.1 -p "$port" -t 2 >/dev/null && echo ok; }

measure_floor() { run_floor "$1" floor "$concurrency" one; }
measure_floorsock() { run_floor "$1" floorsock "$concurrency" per-request; }
measure_floor1() { run_floor "$1" floor1 1 one; }
measure_netmond() { run_netmond "$1" netmond "$concurrency"; }
measure_netmond1() { run_netmond "$1" netmond1 1; }
measure_check() {
  bench_run_processes "$out/logs/ntp-$1-check.log" "$check_runs" "$max_seconds" "ok 0" check_once ||
    bench_die "check_ntp_time failed"
  P_LINE="check_ntp_time $P_CPU µs/run (${P_EXTRA[0]} in it, ${P_EXTRA[1]} launching), $P_RPS runs/s, chronyd $P_SRV µs/run, $P_FAIL failed, other $P_OTHER%"
}

# ---- rounds ------------------------------------------------------------------------------
parts=(floor netmond floorsock floor1 netmond1)
[[ -z $check_bin ]] || parts+=(check)
bench_probe_rounds ntp_probe_bench "${parts[@]}"

# ---- report ------------------------------------------------------------------------------
fc=$(bench_med floor cpu) fr=$(bench_med floor rps) fg=$(bench_med floor srv)
fsc=$(bench_med floorsock cpu) fsr=$(bench_med floorsock rps) fsg=$(bench_med floorsock srv)
f1c=$(bench_med floor1 cpu) f1r=$(bench_med floor1 rps) f1g=$(bench_med floor1 srv)
cc=$(bench_med check cpu) cr=$(bench_med check rps) cg=$(bench_med check srv)
nc=$(bench_med netmond cpu) nr=$(bench_med netmond rps) ng=$(bench_med netmond srv)
n1c=$(bench_med netmond1 cpu) n1r=$(bench_med netmond1 rps) n1g=$(bench_med netmond1 srv)
nf_ratio="" rnf="" n1f_ratio="" nfs_ratio="" cn_ratio="" nsetup="" nstartup="" np50="" n1p50="" nrss=""
if [[ -n $nc && -n $n1c ]]; then
  nf_ratio=$(bench_calc %.2f "$nc / $fc") rnf=$(bench_med netmond ratio %.2f)
  n1f_ratio=$(bench_calc %.2f "$n1c / $f1c") nfs_ratio=$(bench_calc %.2f "$nc / $fsc")
  [[ -z $cc ]] || cn_ratio=$(bench_calc %.1f "$cc / $n1c")
  nsetup=$(bench_med netmond x0 %.0f) nstartup=$(bench_med netmond x1 %.0f)
  np50=$(bench_med netmond x2 %.0f) n1p50=$(bench_med netmond1 x2 %.0f) nrss=$(bench_med netmond x3 %.0f)
fi
f_fail=$(($(bench_sum floor fail) + $(bench_sum floorsock fail) + $(bench_sum floor1 fail)))
n_fail=$(($(bench_sum netmond fail) + $(bench_sum netmond1 fail)))
c_fail=$(bench_sum check fail)
failures=$((f_fail + n_fail + c_fail))
ok=1
((netmond_ok && failures == 0 && !client_error)) || ok=0

table=$(
  echo "SNTP request to chronyd (stratum 8, local clock) on 127.0.0.1; netmond and floor: $runs runs, $concurrency in flight and one at a time; median of $rounds rounds"
  echo
  echo "| client | CPU µs per probe run | range | / floor | runs/s | chronyd CPU µs/request | failed runs |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  bench_row "ntp_floor (epoll, one connected UDP socket, $concurrency in flight)" floor "$fc" 1.00 "$fr" "$fg"
  if [[ -n $nc && -n $n1c ]]; then
    bench_row "netmond ntp probe (ntp_probe_bench, $concurrency in flight)" netmond "$nc" "$nf_ratio" "$nr" "$ng"
  else
    echo "| netmond ntp probe | ${netmond_why:-FAILED} | | | | | |"
  fi
  bench_row "ntp_floor, a socket per request, $concurrency in flight" floorsock "$fsc" "$(bench_calc %.2f "$fsc / $fc")" "$fsr" "$fsg"
  bench_row "ntp_floor, one at a time" floor1 "$f1c" "$(bench_calc %.2f "$f1c / $fc")" "$f1r" "$f1g"
  if [[ -n $nc && -n $n1c ]]; then
    bench_row "netmond ntp probe, one at a time" netmond1 "$n1c" "$(bench_calc %.2f "$n1c / $fc")" "$n1r" "$n1g"
  fi
  if [[ -n $cc ]]; then
    bench_row "check_ntp_time, one process per probe" check "$cc" "$(bench_calc %.1f "$cc / $fc")" "$cr" "$cg"
  else
    echo "| check_ntp_time | skipped: $check_why | | | | | |"
  fi
  echo
  if [[ -n $nc && -n $n1c ]]; then
    echo "netmond / floor, CPU per run: $nf_ratio (median of per-round ratios: $rnf); netmond / floor with a socket per request: $nfs_ratio; one at a time, netmond / floor: $n1f_ratio${cn_ratio:+; check_ntp_time / netmond one at a time: $cn_ratio}"
    echo "netmond, once per process: $nstartup µs CPU before main(), $nsetup µs from main() to the first run; peak RSS $(bench_fmt "$nrss") KiB; median run latency $np50 µs ($n1p50 µs one at a time)"
  fi
  if [[ -n $cc ]]; then
    echo "check_ntp_time per run: $(bench_med check x0) µs in the process + $(bench_med check x1) µs in the launching shell"
  fi
  if ((failures)); then
    echo
    echo "FAILED: $failures runs did not end with a valid answer / Ok (logs in $out/logs)."
  fi
  if ((BENCH_CONTENDED)); then
    echo
    echo "WARNING: other processes used more than $busy_limit% of a core during some parts even after $retries retries; the figures are noisy, run again on a quiet machine."
  fi
)
machine="BENCH ntp netmond_cpu_us=$(bench_num "$nc") netmond1_cpu_us=$(bench_num "$n1c") floor_cpu_us=$fc floorsock_cpu_us=$fsc floor1_cpu_us=$f1c check_cpu_us=$(bench_num "$cc") netmond_per_floor=$(bench_num "$nf_ratio") netmond_per_floorsock=$(bench_num "$nfs_ratio") netmond1_per_floor1=$(bench_num "$n1f_ratio") check_per_netmond1=$(bench_num "$cn_ratio") failures=$failures ok=$ok netmond_built=$([[ -x $probe_bin ]] && echo 1 || echo 0) check_installed=$([[ -n $check_bin ]] && echo 1 || echo 0) netmond_setup_cpu_us=$(bench_num "$nsetup") netmond_rps=$(bench_num "$([[ -n $nr ]] && printf %.0f "$nr")") floor_rps=$(printf %.0f "$fr") chronyd_cpu_us_floor=$fg chronyd_cpu_us_netmond=$(bench_num "$ng") contended=$BENCH_CONTENDED reruns=$BENCH_RERUNS rounds=$rounds runs=$runs check_runs=$check_runs concurrency=$concurrency"

members=$(
  cat <<EOF
  "host": {"cpus": $(nproc), "kernel": "$(uname -r)", "chronyd": "$("$chronyd_bin" -v | head -n 1 | cut -d' ' -f4)", "check_ntp_time": $(bench_json_str "${check_bin:-not installed}")},
  "params": {"rounds": $rounds, "retries": $retries, "runs": $runs, "concurrency": $concurrency, "check_runs": $check_runs, "max_seconds": $max_seconds, "probe_args": $(bench_json_str "${probe_args[*]}")},
  "floor": {$(bench_json_part floor chronyd)},
  "floorsock": {$(bench_json_part floorsock chronyd)},
  "floor1": {$(bench_json_part floor1 chronyd)},
  "netmond": {"ok": $(bench_json_bool "$((netmond_ok && n_fail == 0))"), "why": $(bench_json_str "$netmond_why"), $(bench_json_part netmond chronyd setup_cpu_us startup_cpu_us latency_p50_us maxrss_kib)},
  "netmond1": {$(bench_json_part netmond1 chronyd setup_cpu_us startup_cpu_us latency_p50_us maxrss_kib)},
  "check": {"ok": $(bench_json_bool "$([[ -n $cc ]] && echo 1 || echo 0)"), "why": $(bench_json_str "$check_why"), $(bench_json_part check chronyd process_cpu_us_per_run launch_cpu_us_per_run)},
  "netmond_per_floor": $(bench_jnum "$nf_ratio"),
  "netmond_per_floor_rounds": $(bench_list netmond ratio),
  "netmond_per_floorsock": $(bench_jnum "$nfs_ratio"),
  "netmond1_per_floor1": $(bench_jnum "$n1f_ratio"),
  "check_per_netmond1": $(bench_jnum "$cn_ratio"),
EOF
)
bench_report "$ok" "$failures" "$table" "$machine" "$members"
