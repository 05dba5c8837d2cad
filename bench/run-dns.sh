#!/usr/bin/env bash
# bench/run-dns.sh: netmond's CPU time per DNS probe against the floor and against
# running dig as a process per query.
#
# Starts one dnsmasq (its own flags, no config file, no upstream servers, pid and log in a
# temp dir) on 127.0.0.1:<free UDP port> answering bench.test A with 192.0.2.1 from a
# static record, then each round measures, in an order that rotates from round to round:
#   floor     dns_floor: --runs queries (a precomputed A query with a fresh id, send, recv,
#             check id, question, RCODE and ANCOUNT) with --concurrency in flight on one
#             connected non-blocking UDP socket and epoll; CPU = its getrusage over them
#   netmond   dns_probe_bench: netmond's dns probe (make_probe on a loop + Resolver +
#             CurlMulti + DnsChannels), --concurrency probes, --runs runs in total;
#             CPU = the process's getrusage from first start to last result
#   floor1    the floor, one query at a time
#   netmond1  the netmond probe, one run at a time: between two runs no probe holds the
#             c-ares channel, so it is destroyed and made again, as it is in the daemon for
#             a server whose checks do not overlap
#   dig       `dig @127.0.0.1 -p PORT +tries=1 +time=2 bench.test A +short` run --dig-runs
#             times one after another, as a cron/nagios-style monitor does; CPU = the dig
#             processes' user+sys (bash `times`, children) plus the shell's own CPU
#             launching them (fork)
# and dnsmasq's CPU per query meanwhile (/proc/PID/stat), for context. A round
# during which other processes used more than 25% of a core is run again (--retries times
# at most). Reports the median CPU µs per probe run of each client and the ratios
# netmond/floor, netmond1/floor1 and dig/floor, as a table, as one
# "BENCH dns key=value ..." line, and as BUILD_DIR/bench/dns.{md,json}. There is no
# target: the figures are for reading. Every run is bounded (--runs, --dig-runs,
# --max-seconds per client). Nothing leaves the host: every client asks 127.0.0.1 only.
#
# Usage: bench/run-dns.sh [--build-dir DIR] [--rounds N] [--runs N] [--concurrency K]
#          [--dig-runs N] [--retries N] [--max-seconds S]
#          [--probe-bin PATH]   (default BUILD_DIR/bench/dns_probe_bench)
# Environment: PROBE_ARGS adds flags to dns_probe_bench (e.g. "--expect ^192\.").
# Exit: 0 measured and every run answered 192.0.2.1 / Ok; 1 a failure (a failed or
# unfinished run, a client or dnsmasq that did not work, dns_probe_bench not built); 2 usage.
# shellcheck disable=SC2154,SC2317 # variables set by bench_options, functions called by name
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
BENCH_NAME=dns

bench_options "${BASH_SOURCE[0]}" build-dir=build/default rounds=5:1..99 runs=5000:1..999999 \
  concurrency=20:1..999 dig-runs=200:1..99999 retries=2:0..9 max-seconds=20:1..999 probe-bin= \
  -- "$@"
busy_limit=25 # % of a core used by other processes during a part: contended
name=bench.test
address=192.0.2.1 # TEST-NET-1: served by dnsmasq, never contacted

floor_bin=$build_dir/bench/dns_floor
probe_bin=${probe_bin:-$build_dir/bench/dns_probe_bench}
[[ -x $floor_bin ]] || bench_die "$floor_bin not built (run: cmake --preset default && cmake --build --preset default)"
dnsmasq_bin=/usr/sbin/dnsmasq
[[ -x $dnsmasq_bin ]] || bench_die "$dnsmasq_bin not found (scripts/install-deps.sh installs dnsmasq-base)"
dig_bin=$(command -v dig) || bench_die "dig not found (scripts/install-deps.sh installs bind9-dnsutils)"
bench_prepare "probes/dns.cpp and probes/ares_channel.cpp" dig

# ---- dnsmasq (bench_start_dnsmasq, bench/lib.sh) -----------------------------------------
dnsmasq_log=$(cd "$out/logs" && pwd)/dns-dnsmasq.log
BENCH_SERVER_LOG=$dnsmasq_log
bench_start_server udp dnsmasq bench_start_dnsmasq
port=$BENCH_PORT dnsmasq_pid=$BENCH_SERVER_PID
bench_dig_cmd "$port"
bench_log "bench dns: dnsmasq pid $dnsmasq_pid answering $name A $address on 127.0.0.1:$port"
bench_log "bench dns: $rounds rounds; netmond and floor: $runs runs, $concurrency concurrent and one at a time; dig: $dig_runs runs, sequential"

# ---- the clients -------------------------------------------------------------------------
# bench_rounds calls measure_PART ROUND, which sets the P_* figures (bench/lib.sh), or
# returns 1 when the client did not run at all.

# run_floor ROUND LABEL K: dns_floor with K queries in flight.
run_floor() {
  bench_run_result "$out/logs/dns-$1-$2.log" "$floor_bin" --connect "127.0.0.1:$port" \
    --count "$runs" --concurrency "$3" --query "$name" --max-seconds "$max_seconds" ||
    bench_die "the floor failed"
  bench_result_figures cpu_us_per_req rps
  P_LINE="$2 $P_CPU µs/run, $P_RPS runs/s, dnsmasq $P_SRV µs/query, $P_FAIL failed, other $P_OTHER%"
}

# run_netmond ROUND LABEL K: dns_probe_bench with K probes.
run_netmond() {
  bench_run_result "$out/logs/dns-$1-$2.log" "$probe_bin" --port "$port" --query "$name" \
    --runs "$runs" --concurrency "$3" --max-seconds "$max_seconds" "${probe_args[@]}" || return 1
  bench_result_figures cpu_us_per_run runs_per_s setup_cpu_us startup_cpu_us
  local k
  for k in setup_cpu_us startup_cpu_us latency_p50_us maxrss_kib; do P_EXTRA+=("$(bench_field "$RESULT" "$k")"); done
  P_LINE="$2 $P_CPU µs/run, $P_RPS runs/s, setup ${P_EXTRA[0]} µs, dnsmasq $P_SRV µs/query, $P_FAIL failed, other $P_OTHER%"
}

measure_floor() { run_floor "$1" floor "$concurrency"; }
measure_floor1() { run_floor "$1" floor1 1; }
measure_netmond() { run_netmond "$1" netmond "$concurrency"; }
measure_netmond1() { run_netmond "$1" netmond1 1; }
measure_dig() {
  bench_run_processes "$out/logs/dns-$1-dig.log" "$dig_runs" "$max_seconds" "$address 0" \
    "${DIG[@]}" || bench_die "dig failed"
  P_LINE="dig $P_CPU µs/run (${P_EXTRA[0]} in dig, ${P_EXTRA[1]} launching), $P_RPS runs/s, dnsmasq $P_SRV µs/query, $P_FAIL failed, other $P_OTHER%"
}

# ---- rounds ------------------------------------------------------------------------------
bench_probe_rounds dns_probe_bench floor netmond floor1 netmond1 dig

# ---- report ------------------------------------------------------------------------------
fc=$(bench_med floor cpu) fr=$(bench_med floor rps) fg=$(bench_med floor srv)
f1c=$(bench_med floor1 cpu) f1r=$(bench_med floor1 rps) f1g=$(bench_med floor1 srv)
dc=$(bench_med dig cpu) dr=$(bench_med dig rps) dg=$(bench_med dig srv)
dp=$(bench_med dig x0) dl=$(bench_med dig x1)
dig_per_floor=$(bench_calc %.2f "$dc / $fc") rdf=$(bench_med dig ratio %.2f)
nc=$(bench_med netmond cpu) nr=$(bench_med netmond rps) ng=$(bench_med netmond srv)
n1c=$(bench_med netmond1 cpu) n1r=$(bench_med netmond1 rps) n1g=$(bench_med netmond1 srv)
nf_ratio="" rnf="" n1f_ratio="" dn_ratio="" dn1_ratio="" nsetup="" nstartup="" np50="" n1p50="" nrss=""
if [[ -n $nc && -n $n1c ]]; then
  nf_ratio=$(bench_calc %.2f "$nc / $fc") rnf=$(bench_med netmond ratio %.2f)
  n1f_ratio=$(bench_calc %.2f "$n1c / $f1c")
  dn_ratio=$(bench_calc %.1f "$dc / $nc") dn1_ratio=$(bench_calc %.1f "$dc / $n1c")
  nsetup=$(bench_med netmond x0 %.0f) nstartup=$(bench_med netmond x1 %.0f)
  np50=$(bench_med netmond x2 %.0f) n1p50=$(bench_med netmond1 x2 %.0f) nrss=$(bench_med netmond x3 %.0f)
fi
f_fail=$(($(bench_sum floor fail) + $(bench_sum floor1 fail))) d_fail=$(bench_sum dig fail)
n_fail=$(($(bench_sum netmond fail) + $(bench_sum netmond1 fail)))
failures=$((f_fail + n_fail + d_fail))
ok=1
((netmond_ok && failures == 0 && !client_error)) || ok=0

table=$(
  echo "DNS query $name A over UDP to dnsmasq on 127.0.0.1; netmond and floor: $runs runs, $concurrency in flight and one at a time; dig: $dig_runs runs one after another; median of $rounds rounds"
  echo
  echo "| client | CPU µs per probe run | range | / floor | runs/s | dnsmasq CPU µs/query | failed runs |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  bench_row "dns_floor (epoll, one UDP socket, $concurrency in flight)" floor "$fc" 1.00 "$fr" "$fg"
  if [[ -n $nc && -n $n1c ]]; then
    bench_row "netmond dns probe (dns_probe_bench, $concurrency in flight)" netmond "$nc" "$nf_ratio" "$nr" "$ng"
  else
    echo "| netmond dns probe | ${netmond_why:-FAILED} | | | | | |"
  fi
  bench_row "dns_floor, one at a time" floor1 "$f1c" "$(bench_calc %.2f "$f1c / $fc")" "$f1r" "$f1g"
  if [[ -n $nc && -n $n1c ]]; then
    bench_row "netmond dns probe, one at a time" netmond1 "$n1c" "$(bench_calc %.2f "$n1c / $fc")" "$n1r" "$n1g"
  fi
  bench_row "dig, one process per query" dig "$dc" "$dig_per_floor" "$dr" "$dg"
  echo
  if [[ -n $nc && -n $n1c ]]; then
    echo "netmond / floor, CPU per run: $nf_ratio (median of per-round ratios: $rnf); one at a time, netmond / floor: $n1f_ratio; dig / floor: $dig_per_floor (per-round: $rdf); dig / netmond: $dn_ratio ($dn1_ratio one at a time)"
    echo "netmond, once per process: $nstartup µs CPU before main(), $nsetup µs from main() to the first run (loop, Resolver, CurlMulti, DnsChannels, $concurrency probe objects); peak RSS $(bench_fmt "$nrss") KiB; median run latency $np50 µs ($n1p50 µs one at a time)"
  else
    echo "dig / floor, CPU per run: $dig_per_floor (median of per-round ratios: $rdf)"
  fi
  echo "dig per run: $dp µs in the dig process (exec, libraries, query) + $dl µs in the launching shell (fork, wait)"
  if ((failures)); then
    echo
    echo "FAILED: $failures runs did not end with $address / Ok (logs in $out/logs)."
  fi
  if ((BENCH_CONTENDED)); then
    echo
    echo "WARNING: other processes used more than $busy_limit% of a core during some parts even after $retries retries; the figures are noisy, run again on a quiet machine."
  fi
)
machine="BENCH dns netmond_cpu_us=$(bench_num "$nc") netmond1_cpu_us=$(bench_num "$n1c") dig_cpu_us=$dc floor_cpu_us=$fc floor1_cpu_us=$f1c netmond_per_floor=$(bench_num "$nf_ratio") netmond1_per_floor1=$(bench_num "$n1f_ratio") dig_per_floor=$dig_per_floor dig_per_netmond=$(bench_num "$dn_ratio") failures=$failures ok=$ok netmond_built=$([[ -x $probe_bin ]] && echo 1 || echo 0) netmond_setup_cpu_us=$(bench_num "$nsetup") netmond_rps=$(bench_num "$([[ -n $nr ]] && printf %.0f "$nr")") floor_rps=$(printf %.0f "$fr") dig_rps=$(printf %.1f "$dr") dnsmasq_cpu_us_floor=$fg dnsmasq_cpu_us_netmond=$(bench_num "$ng") dnsmasq_cpu_us_dig=$dg contended=$BENCH_CONTENDED reruns=$BENCH_RERUNS rounds=$rounds runs=$runs dig_runs=$dig_runs concurrency=$concurrency"

members=$(
  cat <<EOF
  "host": {"cpus": $(nproc), "kernel": "$(uname -r)", "dnsmasq": "$("$dnsmasq_bin" --version | head -n 1 | cut -d' ' -f3)", "dig": "$("$dig_bin" -v 2>&1 | head -n 1)"},
  "params": {"rounds": $rounds, "retries": $retries, "runs": $runs, "concurrency": $concurrency, "dig_runs": $dig_runs, "max_seconds": $max_seconds, "query": "$name A", "probe_args": $(bench_json_str "${probe_args[*]}")},
  "floor": {$(bench_json_part floor dnsmasq)},
  "floor1": {$(bench_json_part floor1 dnsmasq)},
  "netmond": {"ok": $(bench_json_bool "$((netmond_ok && n_fail == 0))"), "why": $(bench_json_str "$netmond_why"), $(bench_json_part netmond dnsmasq setup_cpu_us startup_cpu_us latency_p50_us maxrss_kib)},
  "netmond1": {$(bench_json_part netmond1 dnsmasq setup_cpu_us startup_cpu_us latency_p50_us maxrss_kib)},
  "dig": {$(bench_json_part dig dnsmasq process_cpu_us_per_run launch_cpu_us_per_run)},
  "netmond_per_floor": $(bench_jnum "$nf_ratio"),
  "netmond_per_floor_rounds": $(bench_list netmond ratio),
  "netmond1_per_floor1": $(bench_jnum "$n1f_ratio"),
  "dig_per_floor": $dig_per_floor,
  "dig_per_floor_rounds": $(bench_list dig ratio),
  "dig_per_netmond": $(bench_jnum "$dn_ratio"),
  "dig_per_netmond1": $(bench_jnum "$dn1_ratio"),
EOF
)
bench_report "$ok" "$failures" "$table" "$machine" "$members"
