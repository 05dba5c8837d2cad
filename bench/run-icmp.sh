#!/usr/bin/env bash
# bench/run-icmp.sh: netmond's CPU time per ICMP probe against the floor, fping and
# iputils ping, and the RTT netmond reports against iputils ping's, to 127.0.0.1.
#
# No server: the kernel answers echo requests to 127.0.0.1 itself, in the sender's context
# (loopback delivers the request, the reply and its delivery in the sending process's
# system calls), so each client's CPU includes the kernel's answering work, the same for
# all. Each round measures, in an order that rotates from round to round:
#   floor      icmp_floor: --runs echo requests (56 bytes, fresh sequence number, send,
#              recv, check type, id, seq and cookie) with --concurrency in flight on one
#              raw ICMP socket (ICMP_FILTER + a BPF filter on its identifier) and epoll;
#              CPU = its getrusage over them
#   netmond    icmp_probe_bench: netmond's icmp probe (make_probe with a spec parsed by the
#              icmp type's parse(): count 1, size 56), --concurrency probes, --runs runs;
#              CPU = the process's getrusage from first start to last result
#   floorsock  the floor with a fresh raw socket per request (as the probe opens one per
#              run), --concurrency in flight: what that design costs by itself
#   floor1     the floor, one request at a time
#   netmond1   the netmond probe, one run at a time
#   fping      `fping -c --fping-count -p 1 -i 1 -q 127.0.0.1`: one long-lived process pinging
#              once a millisecond, one request at a time; CPU per ping = the process's
#              user+sys (bash `times`, children: exec and start-up included, spread over
#              its pings) plus the launching shell's, divided by the pings; the pings it
#              counts lost (no reply within its 1 ms timeout) are reported, not failures
#   ping       `ping -c 1 -W 2 -n -q 127.0.0.1` run --ping-runs times one after another, a
#              process per probe as a cron/nagios-style monitor runs one; CPU = the ping
#              processes' user+sys (bash `times`, children) plus the shell's own
# A round during which other processes used more than 25% of a core is run again
# (--retries times at most).
#
# Then the RTT comparison (--rtt-count N, 0 to skip): netmond's icmp probe, one run with
# count 1 every 200 ms (icmp_probe_bench --concurrency 1 --gap-ms 200 --rtt-file), and
# `ping -c N -i 0.2 -n 127.0.0.1`, both at once, the probe started 100 ms after ping so
# that their requests interleave instead of colliding. Each reports one RTT per request:
# netmond the rtt_ms of each run's one reply (the kernel's receive stamp minus the clock
# read right before sendto), ping the time= of each reply (also the kernel's receive stamp
# minus its send time, printed to 1 µs below 1 ms). Running both at once exposes them to
# the same load; one request each per run, the same spacing, the same payload size. The
# medians are compared (RTTs on a busy host have a long tail, which a mean would follow):
# netmond median - ping median, in µs.
#
# Reports the median CPU µs per probe run of each client and the ratios to the floors, the
# RTT medians and their difference, as a table, as one "BENCH icmp key=value ..." line, and
# as BUILD_DIR/bench/icmp.{md,json}. There is no target: the figures are for reading.
# Every run is bounded (--runs, --fping-count, --ping-runs, --rtt-count, --max-seconds per
# client). Nothing leaves the host: every request goes to 127.0.0.1. Needs CAP_NET_RAW
# (root) or a ping_group_range admitting the user, for the floor and fping.
#
# Usage: bench/run-icmp.sh [--build-dir DIR] [--rounds N] [--runs N] [--concurrency K]
#          [--fping-count N] [--ping-runs N] [--rtt-count N] [--retries N] [--max-seconds S]
#          [--probe-bin PATH]   (default BUILD_DIR/bench/icmp_probe_bench)
# Environment: PROBE_ARGS adds flags to icmp_probe_bench (e.g. "--set size=1000").
# Exit: 0 measured and every run got its reply / was Ok; 1 a failure (a failed or unfinished
# run, a client that did not work, icmp_probe_bench not built); 2 usage; 77 skipped: no raw
# ICMP socket allowed.
# shellcheck disable=SC2154,SC2317 # variables set by bench_options, functions called by name
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
BENCH_NAME=icmp

bench_options "${BASH_SOURCE[0]}" build-dir=build/default rounds=5:1..99 runs=2000:1..999999 \
  concurrency=20:1..999 fping-count=2000:1..99999 ping-runs=200:1..99999 rtt-count=100:0..1000 \
  retries=2:0..9 max-seconds=20:1..999 probe-bin= -- "$@"
busy_limit=25 # % of a core used by other processes during a part: contended
host=127.0.0.1

floor_bin=$build_dir/bench/icmp_floor
probe_bin=${probe_bin:-$build_dir/bench/icmp_probe_bench}
[[ -x $floor_bin ]] || bench_die "$floor_bin not built (run: cmake --preset default && cmake --build --preset default)"
fping_bin=$(command -v fping) || bench_die "fping not found (scripts/install-deps.sh installs fping)"
ping_bin=$(command -v ping) || bench_die "ping not found (scripts/install-deps.sh installs iputils-ping)"
bench_prepare "probes/icmp.cpp and probes/icmp_socket.cpp" "fping and ping"
BENCH_SERVER_PID="" BENCH_SERVER_LOG=/dev/null # no server: the kernel answers
if ! "$floor_bin" --count 1 --max-seconds 2 >"$out/logs/icmp-check.log" 2>&1; then
  if grep -q 'Operation not permitted' "$out/logs/icmp-check.log"; then
    bench_log "bench icmp: skipped: no raw ICMP socket allowed (needs CAP_NET_RAW)"
    exit 77
  fi
  bench_die "icmp_floor cannot ping $host (log: $out/logs/icmp-check.log)"
fi
bench_log "bench icmp: $rounds rounds; netmond and floor: $runs runs, $concurrency concurrent and one at a time; fping: $fping_count pings in one process; ping: $ping_runs processes; RTT: $rtt_count requests each"

# ---- the clients -------------------------------------------------------------------------
# bench_rounds calls measure_PART ROUND, which sets the P_* figures (bench/lib.sh), or
# returns 1 when the client did not run at all.

# run_floor ROUND LABEL K SOCKET: icmp_floor with K requests in flight.
run_floor() {
  bench_run_result "$out/logs/icmp-$1-$2.log" "$floor_bin" --host "$host" --count "$runs" \
    --concurrency "$3" --socket "$4" --max-seconds "$max_seconds" || bench_die "the floor failed"
  bench_result_figures cpu_us_per_req rps
  P_LINE="$2 $P_CPU µs/run, $P_RPS runs/s, $P_FAIL failed, other $P_OTHER%"
}

# run_netmond ROUND LABEL K: icmp_probe_bench with K probes.
run_netmond() {
  bench_run_result "$out/logs/icmp-$1-$2.log" "$probe_bin" --host "$host" --runs "$runs" \
    --concurrency "$3" --max-seconds "$max_seconds" "${probe_args[@]}" || return 1
  bench_result_figures cpu_us_per_run runs_per_s setup_cpu_us startup_cpu_us
  local k
  for k in setup_cpu_us startup_cpu_us latency_p50_us maxrss_kib; do P_EXTRA+=("$(bench_field "$RESULT" "$k")"); done
  P_LINE="$2 $P_CPU µs/run, $P_RPS runs/s, setup ${P_EXTRA[0]} µs, $P_FAIL failed, other $P_OTHER%"
}

# fping_once: one fping process, --fping-count pings one at a time 1 ms apart (-p: per
# target, -i: between any two; the default -i of 10 ms would set the pace); prints
# "RECEIVED/SENT" from its summary (bash builtins only, so that no other process's CPU
# counts as fping's).
fping_once() {
  local line rc=0
  "$fping_bin" -c "$fping_count" -p 1 -i 1 -q "$host" 2>"$tmp/fping.out" || rc=$?
  read -r line <"$tmp/fping.out" || true
  [[ $line =~ =\ ([0-9]+)/([0-9]+)/ ]] && echo "${BASH_REMATCH[2]}/${BASH_REMATCH[1]}"
  return "$rc"
}

# ping_once: one ping process, one request; prints "ok" when it got the reply.
ping_once() { "$ping_bin" -c 1 -W 2 -n -q "$host" >/dev/null && echo ok; }

measure_floor() { run_floor "$1" floor "$concurrency" one; }
measure_floorsock() { run_floor "$1" floorsock "$concurrency" per-request; }
measure_floor1() { run_floor "$1" floor1 1 one; }
measure_netmond() { run_netmond "$1" netmond "$concurrency"; }
measure_netmond1() { run_netmond "$1" netmond1 1; }
measure_fping() {
  local log=$out/logs/icmp-$1-fping.log got late
  bench_run_processes "$log" 1 "$max_seconds" "$fping_count/$fping_count 0" fping_once ||
    bench_die "fping failed"
  got=$(sed -n '1s|/.*||p' "$log.results")
  [[ $got =~ ^[0-9]+$ ]] || got=0
  late=$((fping_count - got))
  # One process for all the pings: the figures per process become figures per ping.
  P_CPU=$(bench_calc %.3f "$P_CPU / $fping_count") P_RPS=$(bench_calc %.1f "$P_RPS * $fping_count")
  P_EXTRA=("$(bench_calc %.3f "${P_EXTRA[0]} / $fping_count")" "$(bench_calc %.3f "${P_EXTRA[1]} / $fping_count")" "$late")
  # With -c, fping's timeout is its period (1 ms): on a busy host a few replies come later
  # and count as lost (fping -t cannot be longer than -p). So only a failed fping (no reply
  # at all: exit 1) fails the part; the pings it counted as lost are reported beside.
  P_FAIL=0
  grep -q ' 0$' "$log.results" || P_FAIL=$fping_count
  P_LINE="fping $P_CPU µs/ping (${P_EXTRA[0]} in fping, ${P_EXTRA[1]} launching), $P_RPS pings/s, $late lost or later than 1 ms, other $P_OTHER%"
}
measure_ping() {
  bench_run_processes "$out/logs/icmp-$1-ping.log" "$ping_runs" "$max_seconds" "ok 0" ping_once ||
    bench_die "ping failed"
  P_LINE="ping $P_CPU µs/run (${P_EXTRA[0]} in ping, ${P_EXTRA[1]} launching), $P_RPS runs/s, $P_FAIL failed, other $P_OTHER%"
}

# ---- rounds ------------------------------------------------------------------------------
bench_probe_rounds icmp_probe_bench floor netmond floorsock floor1 netmond1 fping ping

# ---- RTT: netmond against iputils ping ---------------------------------------------------
rtt_ping="" rtt_netmond="" rtt_diff="" rtt_ping_n=0 rtt_netmond_n=0 rtt_fail=0 rtt_why=""
if ((rtt_count > 0 && netmond_ok)); then
  bench_log "bench icmp: RTT: $rtt_count requests 200 ms apart from ping and from netmond's probe, at once"
  rtt_max=$((rtt_count / 5 + 10)) # 200 ms apart, plus start-up
  bench_start ping_pid "$out/logs/icmp-rtt-ping.log" timeout "$rtt_max" \
    "$ping_bin" -c "$rtt_count" -i 0.2 -W 2 -n "$host"
  sleep 0.1
  rc=0
  bench_start probe_pid "$out/logs/icmp-rtt-netmond.log" "$probe_bin" --host "$host" \
    --runs "$rtt_count" --concurrency 1 --gap-ms 200 --rtt-file "$tmp/rtt-netmond.txt" \
    --max-seconds "$rtt_max" "${probe_args[@]}"
  wait "$probe_pid" || rc=$?
  bench_forget "$probe_pid"
  ((rc == 0)) || rtt_fail=1
  rc=0
  wait "$ping_pid" || rc=$?
  bench_forget "$ping_pid"
  ((rc == 0)) || rtt_fail=1
  sed -n 's/.* time=\([0-9.]*\) ms$/\1/p' "$out/logs/icmp-rtt-ping.log" |
    awk '{ printf "%.1f\n", $1 * 1000 }' >"$tmp/rtt-ping.txt"
  rtt_ping_n=$(wc -l <"$tmp/rtt-ping.txt")
  rtt_netmond_n=0
  [[ ! -f $tmp/rtt-netmond.txt ]] || rtt_netmond_n=$(wc -l <"$tmp/rtt-netmond.txt")
  if ((rtt_ping_n > 0 && rtt_netmond_n > 0)); then
    # shellcheck disable=SC2046 # one number a line
    rtt_ping=$(bench_calc %.1f "$(bench_median $(cat "$tmp/rtt-ping.txt"))")
    # shellcheck disable=SC2046
    rtt_netmond=$(bench_calc %.1f "$(bench_median $(cat "$tmp/rtt-netmond.txt"))")
    rtt_diff=$(bench_calc %.1f "$rtt_netmond - $rtt_ping")
    cp "$tmp/rtt-ping.txt" "$out/logs/icmp-rtt-ping-us.txt"
    cp "$tmp/rtt-netmond.txt" "$out/logs/icmp-rtt-netmond-us.txt"
  fi
  ((rtt_ping_n == rtt_count && rtt_netmond_n == rtt_count)) || rtt_fail=1
  bench_log "bench icmp: RTT median: netmond $rtt_netmond µs ($rtt_netmond_n replies), ping $rtt_ping µs ($rtt_ping_n replies), difference $rtt_diff µs"
elif ((rtt_count > 0)); then
  rtt_why="skipped: $netmond_why"
else
  rtt_why="skipped (--rtt-count 0)"
fi

# ---- report ------------------------------------------------------------------------------
fc=$(bench_med floor cpu) fr=$(bench_med floor rps)
fsc=$(bench_med floorsock cpu) fsr=$(bench_med floorsock rps)
f1c=$(bench_med floor1 cpu) f1r=$(bench_med floor1 rps)
fpc=$(bench_med fping cpu) fpr=$(bench_med fping rps) fpp=$(bench_med fping x0 %.3f)
pc=$(bench_med ping cpu) pr=$(bench_med ping rps) pp=$(bench_med ping x0) pl=$(bench_med ping x1)
ping_per_floor=$(bench_calc %.1f "$pc / $fc")
nc=$(bench_med netmond cpu) nr=$(bench_med netmond rps)
n1c=$(bench_med netmond1 cpu) n1r=$(bench_med netmond1 rps)
nf_ratio="" rnf="" n1f_ratio="" nfs_ratio="" pn_ratio="" fpn1_ratio="" nsetup="" nstartup="" np50="" n1p50="" nrss=""
if [[ -n $nc && -n $n1c ]]; then
  nf_ratio=$(bench_calc %.2f "$nc / $fc") rnf=$(bench_med netmond ratio %.2f)
  n1f_ratio=$(bench_calc %.2f "$n1c / $f1c") nfs_ratio=$(bench_calc %.2f "$nc / $fsc")
  pn_ratio=$(bench_calc %.1f "$pc / $n1c") fpn1_ratio=$(bench_calc %.2f "$fpc / $n1c")
  nsetup=$(bench_med netmond x0 %.0f) nstartup=$(bench_med netmond x1 %.0f)
  np50=$(bench_med netmond x2 %.0f) n1p50=$(bench_med netmond1 x2 %.0f) nrss=$(bench_med netmond x3 %.0f)
fi
f_fail=$(($(bench_sum floor fail) + $(bench_sum floorsock fail) + $(bench_sum floor1 fail)))
n_fail=$(($(bench_sum netmond fail) + $(bench_sum netmond1 fail)))
o_fail=$(($(bench_sum fping fail) + $(bench_sum ping fail)))
failures=$((f_fail + n_fail + o_fail + rtt_fail))
ok=1
((netmond_ok && failures == 0 && !client_error)) || ok=0

# row LABEL PART CPU RATIO RPS: one table row.
row() { echo "| $1 | $3 | $(bench_range "$2" cpu) | $4 | $(bench_fmt "$5") | $(bench_sum "$2" fail) |"; }
table=$(
  echo "ICMP echo (56 bytes) to $host, answered by the kernel; netmond and floor: $runs runs, $concurrency in flight and one at a time; fping: $fping_count pings in one process; ping: $ping_runs processes; median of $rounds rounds"
  echo
  echo "| client | CPU µs per probe run | range | / floor | runs/s | failed runs |"
  echo "|---|---:|---:|---:|---:|---:|"
  row "icmp_floor (epoll, one raw socket, $concurrency in flight)" floor "$fc" 1.00 "$fr"
  if [[ -n $nc && -n $n1c ]]; then
    row "netmond icmp probe (icmp_probe_bench, $concurrency in flight)" netmond "$nc" "$nf_ratio" "$nr"
  else
    echo "| netmond icmp probe | ${netmond_why:-FAILED} | | | | |"
  fi
  row "icmp_floor, a raw socket per request, $concurrency in flight" floorsock "$fsc" "$(bench_calc %.2f "$fsc / $fc")" "$fsr"
  row "icmp_floor, one at a time" floor1 "$f1c" "$(bench_calc %.2f "$f1c / $fc")" "$f1r"
  if [[ -n $nc && -n $n1c ]]; then
    row "netmond icmp probe, one at a time" netmond1 "$n1c" "$(bench_calc %.2f "$n1c / $fc")" "$n1r"
  fi
  row "fping, one process, one ping a ms (per ping)" fping "$fpc" "$(bench_calc %.2f "$fpc / $fc")" "$fpr"
  row "ping -c 1, one process per probe" ping "$pc" "$ping_per_floor" "$pr"
  echo
  if [[ -n $nc && -n $n1c ]]; then
    echo "netmond / floor, CPU per run: $nf_ratio (median of per-round ratios: $rnf); netmond / floor with a socket per request: $nfs_ratio; one at a time, netmond / floor: $n1f_ratio; fping / netmond one at a time: $fpn1_ratio; ping / netmond one at a time: $pn_ratio"
    echo "netmond, once per process: $nstartup µs CPU before main(), $nsetup µs from main() to the first run; peak RSS $(bench_fmt "$nrss") KiB; median run latency $np50 µs ($n1p50 µs one at a time)"
  else
    echo "ping / floor, CPU per run: $ping_per_floor"
  fi
  echo "fping per ping: $fpp µs in the fping process (its start-up spread over $fping_count pings; $(bench_sum fping x2) pings of all rounds counted lost, i.e. later than fping's 1 ms timeout); ping per run: $pp µs in the ping process (exec, libraries, socket, one request) + $pl µs in the launching shell (fork, wait)"
  echo
  if [[ -n $rtt_diff ]]; then
    echo "RTT to $host, $rtt_count requests 200 ms apart each, both at once: median netmond $rtt_netmond µs ($rtt_netmond_n replies), iputils ping $rtt_ping µs ($rtt_ping_n replies); netmond - ping: $rtt_diff µs"
  else
    echo "RTT comparison: ${rtt_why:-FAILED (logs in $out/logs/icmp-rtt-*)}"
  fi
  if ((failures)); then
    echo
    echo "FAILED: $failures runs or parts did not get their replies / Ok (logs in $out/logs)."
  fi
  if ((BENCH_CONTENDED)); then
    echo
    echo "WARNING: other processes used more than $busy_limit% of a core during some parts even after $retries retries; the figures are noisy, run again on a quiet machine."
  fi
)
machine="BENCH icmp netmond_cpu_us=$(bench_num "$nc") netmond1_cpu_us=$(bench_num "$n1c") floor_cpu_us=$fc floorsock_cpu_us=$fsc floor1_cpu_us=$f1c fping_cpu_us=$fpc ping_cpu_us=$pc netmond_per_floor=$(bench_num "$nf_ratio") netmond_per_floorsock=$(bench_num "$nfs_ratio") netmond1_per_floor1=$(bench_num "$n1f_ratio") ping_per_floor=$ping_per_floor ping_per_netmond1=$(bench_num "$pn_ratio") fping_per_netmond1=$(bench_num "$fpn1_ratio") rtt_netmond_us=$(bench_num "$rtt_netmond") rtt_ping_us=$(bench_num "$rtt_ping") rtt_diff_us=$(bench_num "$rtt_diff") failures=$failures ok=$ok netmond_built=$([[ -x $probe_bin ]] && echo 1 || echo 0) netmond_setup_cpu_us=$(bench_num "$nsetup") netmond_rps=$(bench_num "$([[ -n $nr ]] && printf %.0f "$nr")") floor_rps=$(printf %.0f "$fr") contended=$BENCH_CONTENDED reruns=$BENCH_RERUNS rounds=$rounds runs=$runs fping_count=$fping_count ping_runs=$ping_runs rtt_count=$rtt_count concurrency=$concurrency"

members=$(
  cat <<EOF
  "host": {"cpus": $(nproc), "kernel": "$(uname -r)", "fping": "$("$fping_bin" -v 2>&1 | head -n 1)", "ping": "$("$ping_bin" -V 2>&1 | head -n 1)"},
  "params": {"rounds": $rounds, "retries": $retries, "runs": $runs, "concurrency": $concurrency, "fping_count": $fping_count, "ping_runs": $ping_runs, "rtt_count": $rtt_count, "max_seconds": $max_seconds, "probe_args": $(bench_json_str "${probe_args[*]}")},
  "floor": {$(bench_json_part floor "")},
  "floorsock": {$(bench_json_part floorsock "")},
  "floor1": {$(bench_json_part floor1 "")},
  "netmond": {"ok": $(bench_json_bool "$((netmond_ok && n_fail == 0))"), "why": $(bench_json_str "$netmond_why"), $(bench_json_part netmond "" setup_cpu_us startup_cpu_us latency_p50_us maxrss_kib)},
  "netmond1": {$(bench_json_part netmond1 "" setup_cpu_us startup_cpu_us latency_p50_us maxrss_kib)},
  "fping": {$(bench_json_part fping "" process_cpu_us_per_ping launch_cpu_us_per_ping lost_pings)},
  "ping": {$(bench_json_part ping "" process_cpu_us_per_run launch_cpu_us_per_run)},
  "netmond_per_floor": $(bench_jnum "$nf_ratio"),
  "netmond_per_floor_rounds": $(bench_list netmond ratio),
  "netmond_per_floorsock": $(bench_jnum "$nfs_ratio"),
  "netmond1_per_floor1": $(bench_jnum "$n1f_ratio"),
  "ping_per_floor": $ping_per_floor,
  "ping_per_netmond1": $(bench_jnum "$pn_ratio"),
  "fping_per_netmond1": $(bench_jnum "$fpn1_ratio"),
  "rtt": {"requests": $rtt_count, "netmond_replies": $rtt_netmond_n, "ping_replies": $rtt_ping_n, "netmond_median_us": $(bench_jnum "$rtt_netmond"), "ping_median_us": $(bench_jnum "$rtt_ping"), "netmond_minus_ping_us": $(bench_jnum "$rtt_diff"), "why": $(bench_json_str "$rtt_why")},
EOF
)
bench_report "$ok" "$failures" "$table" "$machine" "$members"
