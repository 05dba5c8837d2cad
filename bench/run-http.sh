#!/usr/bin/env bash
# bench/run-http.sh: netmond's CPU time per HTTP probe against the floor and against
# running curl as a process per probe.
#
# Starts one nginx (single process, its own config, pid and logs in a temp dir) on
# 127.0.0.1:<free port> serving a --size byte static page, then each round measures, in
# an order that rotates from round to round:
#   netmond  http_probe_bench: netmond's http probe (make_probe on a loop + Resolver +
#            CurlMulti), --concurrency probes, --runs runs in total, each a fresh
#            connection; CPU = the process's getrusage from first start to last result
#   floor    http_floor: the same number of raw requests (socket, non-blocking connect,
#            write a GET with Connection: close, read to EOF, close) with the same
#            concurrency on one epoll set; CPU = its getrusage over the requests
#   curl     `curl -s -o /dev/null URL` run --curl-runs times one after another, as a
#            cron/nagios-style monitor does; CPU = the curl processes' user+sys (bash
#            `times`, children) plus the shell's own CPU launching them (fork)
# and nginx's CPU per request meanwhile (/proc/PID/stat), for context. A
# round during which other processes used more than 25% of a core is run again
# (--retries times at most). Reports the median CPU µs per probe run of each client and
# the ratios netmond/floor and curl/floor, as a table, as one "BENCH http key=value ..."
# line, and as BUILD_DIR/bench/http.{md,json}. There is no target: the figures are for
# reading. Every run is bounded (--runs, --curl-runs, --max-seconds per client).
#
# Usage: bench/run-http.sh [--build-dir DIR] [--rounds N] [--runs N] [--concurrency K]
#          [--curl-runs N] [--size BYTES] [--retries N] [--max-seconds S]
#          [--probe-bin PATH]   (default BUILD_DIR/bench/http_probe_bench)
# Environment: PROBE_ARGS adds flags to http_probe_bench (e.g. "--keepalive").
# Exit: 0 measured and every run answered 200 / Ok; 1 a failure (a failed or unfinished
# run, a client or nginx that did not work, http_probe_bench not built); 2 usage.
# shellcheck disable=SC2154,SC2317 # variables set by bench_options, functions called by name
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
BENCH_NAME=http

bench_options "${BASH_SOURCE[0]}" build-dir=build/default rounds=5:1..99 runs=2000:1..999999 \
  concurrency=20:1..999 curl-runs=200:1..99999 size=1024:0..99999999 retries=2:0..9 \
  max-seconds=20:1..999 probe-bin= -- "$@"
busy_limit=25 # % of a core used by other processes during a part: contended

floor_bin=$build_dir/bench/http_floor
probe_bin=${probe_bin:-$build_dir/bench/http_probe_bench}
[[ -x $floor_bin ]] || bench_die "$floor_bin not built (run: cmake --preset default && cmake --build --preset default)"
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
[[ -x $nginx_bin ]] || bench_die "nginx not found (scripts/install-deps.sh installs nginx-light)"
curl_bin=$(command -v curl) || bench_die "curl not found (scripts/install-deps.sh installs it)"
bench_prepare "probes/http.cpp and probes/curl_multi.cpp" curl

# ---- nginx (bench_start_nginx, bench/lib.sh) ---------------------------------------------
# keepalive_timeout 0 there: all three clients' connections end the same way.
mkdir -p "$tmp/www" "$tmp/temp"
head -c "$size" /dev/zero | tr '\0' 'x' >"$tmp/www/index.html"
nginx_log=$(cd "$out/logs" && pwd)/http-nginx.log
BENCH_SERVER_LOG=$nginx_log
bench_start_server tcp nginx bench_start_nginx
port=$BENCH_PORT nginx_pid=$BENCH_SERVER_PID
url=http://127.0.0.1:$port/
bench_log "bench http: nginx pid $nginx_pid serving $size bytes at $url"
bench_log "bench http: $rounds rounds; netmond and floor: $runs runs, $concurrency concurrent; curl: $curl_runs runs, sequential"

# ---- the three clients -------------------------------------------------------------------
# bench_rounds calls measure_PART ROUND, which sets the P_* figures (bench/lib.sh), or
# returns 1 when the client did not run at all.

measure_floor() {
  bench_run_result "$out/logs/http-$1-floor.log" "$floor_bin" --connect "127.0.0.1:$port" \
    --count "$runs" --concurrency "$concurrency" --max-seconds "$max_seconds" ||
    bench_die "the floor failed"
  bench_result_figures cpu_us_per_req rps
  P_LINE="floor $P_CPU µs/run, $P_RPS runs/s, nginx $P_SRV µs/req, $P_FAIL failed, other $P_OTHER%"
}

measure_netmond() {
  bench_run_result "$out/logs/http-$1-netmond.log" "$probe_bin" --url "$url" --runs "$runs" \
    --concurrency "$concurrency" --max-seconds "$max_seconds" "${probe_args[@]}" || return 1
  bench_result_figures cpu_us_per_run runs_per_s setup_cpu_us startup_cpu_us
  local k
  for k in setup_cpu_us startup_cpu_us latency_p50_us maxrss_kib; do P_EXTRA+=("$(bench_field "$RESULT" "$k")"); done
  P_LINE="netmond $P_CPU µs/run, $P_RPS runs/s, setup ${P_EXTRA[0]} µs, nginx $P_SRV µs/req, $P_FAIL failed, other $P_OTHER%"
}

measure_curl() {
  bench_run_processes "$out/logs/http-$1-curl.log" "$curl_runs" "$max_seconds" "200 0" \
    "$curl_bin" -s -o /dev/null -w '%{http_code}' --max-time 5 "$url" || bench_die "curl failed"
  P_LINE="curl $P_CPU µs/run (${P_EXTRA[0]} in curl, ${P_EXTRA[1]} launching), $P_RPS runs/s, nginx $P_SRV µs/req, $P_FAIL failed, other $P_OTHER%"
}

# ---- rounds ------------------------------------------------------------------------------
bench_probe_rounds http_probe_bench floor netmond curl

# ---- report ------------------------------------------------------------------------------
fc=$(bench_med floor cpu) fr=$(bench_med floor rps) fg=$(bench_med floor srv)
cc=$(bench_med curl cpu) cr=$(bench_med curl rps) cg=$(bench_med curl srv)
cp=$(bench_med curl x0) cl=$(bench_med curl x1)
curl_per_floor=$(bench_calc %.2f "$cc / $fc")
rcf=$(bench_med curl ratio %.2f)
nc=$(bench_med netmond cpu) nr=$(bench_med netmond rps) ng=$(bench_med netmond srv)
nf_ratio="" rnf="" cn_ratio="" nsetup="" nstartup="" np50="" nrss=""
if [[ -n $nc ]]; then
  nf_ratio=$(bench_calc %.2f "$nc / $fc") rnf=$(bench_med netmond ratio %.2f)
  cn_ratio=$(bench_calc %.1f "$cc / $nc")
  nsetup=$(bench_med netmond x0 %.0f) nstartup=$(bench_med netmond x1 %.0f)
  np50=$(bench_med netmond x2 %.0f) nrss=$(bench_med netmond x3 %.0f)
fi
f_fail=$(bench_sum floor fail) n_fail=$(bench_sum netmond fail) c_fail=$(bench_sum curl fail)
failures=$((f_fail + n_fail + c_fail))
ok=1
((netmond_ok && failures == 0 && !client_error)) || ok=0

table=$(
  echo "HTTP GET of a $size-byte page from nginx on 127.0.0.1, a fresh connection per run; netmond and floor: $runs runs, $concurrency in flight; curl: $curl_runs runs one after another; median of $rounds rounds"
  echo
  echo "| client | CPU µs per probe run | range | / floor | runs/s | nginx CPU µs/request | failed runs |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  echo "| http_floor (epoll, raw GET, $concurrency in flight) | $fc | $(bench_range floor cpu) | 1.00 | $(bench_fmt "$fr") | $fg | $f_fail |"
  if [[ -n $nc ]]; then
    echo "| netmond http probe (http_probe_bench, $concurrency in flight) | $nc | $(bench_range netmond cpu) | $nf_ratio | $(bench_fmt "$nr") | $ng | $n_fail |"
  else
    echo "| netmond http probe | ${netmond_why:-FAILED} | | | | | |"
  fi
  echo "| curl, one process per probe | $cc | $(bench_range curl cpu) | $curl_per_floor | $(bench_fmt "$cr") | $cg | $c_fail |"
  echo
  if [[ -n $nc ]]; then
    echo "netmond / floor, CPU per run: $nf_ratio (median of per-round ratios: $rnf); curl / floor: $curl_per_floor (per-round: $rcf); curl / netmond: $cn_ratio"
    echo "netmond, once per process: $nstartup µs CPU before main(), $nsetup µs from main() to the first run (loop, Resolver, CurlMulti, $concurrency probe objects); peak RSS $(bench_fmt "$nrss") KiB; median run latency $np50 µs"
  else
    echo "curl / floor, CPU per run: $curl_per_floor (median of per-round ratios: $rcf)"
  fi
  echo "curl per run: $cp µs in the curl process (exec, libraries, request) + $cl µs in the launching shell (fork, wait)"
  if ((failures)); then
    echo
    echo "FAILED: $failures runs did not end with HTTP 200 / Ok (logs in $out/logs)."
  fi
  if ((BENCH_CONTENDED)); then
    echo
    echo "WARNING: other processes used more than $busy_limit% of a core during some parts even after $retries retries; the figures are noisy, run again on a quiet machine."
  fi
)
machine="BENCH http netmond_cpu_us=$(bench_num "$nc") curl_cpu_us=$cc floor_cpu_us=$fc netmond_per_floor=$(bench_num "$nf_ratio") curl_per_floor=$curl_per_floor curl_per_netmond=$(bench_num "$cn_ratio") failures=$failures ok=$ok netmond_built=$([[ -x $probe_bin ]] && echo 1 || echo 0) netmond_setup_cpu_us=$(bench_num "$nsetup") netmond_rps=$(bench_num "$([[ -n $nr ]] && printf %.0f "$nr")") floor_rps=$(printf %.0f "$fr") curl_rps=$(printf %.1f "$cr") nginx_cpu_us_floor=$fg nginx_cpu_us_netmond=$(bench_num "$ng") nginx_cpu_us_curl=$cg contended=$BENCH_CONTENDED reruns=$BENCH_RERUNS rounds=$rounds runs=$runs curl_runs=$curl_runs concurrency=$concurrency size=$size"

members=$(
  cat <<EOF
  "host": {"cpus": $(nproc), "kernel": "$(uname -r)", "nginx": "$("$nginx_bin" -v 2>&1 | sed 's/.*: //')", "curl": "$("$curl_bin" --version | head -n 1 | cut -d' ' -f1-2)"},
  "params": {"rounds": $rounds, "retries": $retries, "runs": $runs, "concurrency": $concurrency, "curl_runs": $curl_runs, "size": $size, "max_seconds": $max_seconds, "probe_args": $(bench_json_str "${probe_args[*]}")},
  "floor": {$(bench_json_part floor nginx)},
  "netmond": {"ok": $(bench_json_bool "$((netmond_ok && n_fail == 0))"), "why": $(bench_json_str "$netmond_why"), $(bench_json_part netmond nginx setup_cpu_us startup_cpu_us latency_p50_us maxrss_kib)},
  "curl": {$(bench_json_part curl nginx process_cpu_us_per_run launch_cpu_us_per_run)},
  "netmond_per_floor": $(bench_jnum "$nf_ratio"),
  "netmond_per_floor_rounds": $(bench_list netmond ratio),
  "curl_per_floor": $curl_per_floor,
  "curl_per_floor_rounds": $(bench_list curl ratio),
  "curl_per_netmond": $(bench_jnum "$cn_ratio"),
EOF
)
bench_report "$ok" "$failures" "$table" "$machine" "$members"
