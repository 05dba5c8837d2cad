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
# and nginx's CPU per request meanwhile (/proc/PID/task/*/schedstat), for context. A
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
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
source "$here/lib.sh"

build_dir=build/default
rounds=5
runs=2000
concurrency=20
curl_runs=200
size=1024
retries=2
max_seconds=20
probe_bin=
busy_limit=25 # % of a core used by other processes during a part: contended

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
    --runs) runs=$2 ;;
    --concurrency) concurrency=$2 ;;
    --curl-runs) curl_runs=$2 ;;
    --size) size=$2 ;;
    --retries) retries=$2 ;;
    --max-seconds) max_seconds=$2 ;;
    --probe-bin) probe_bin=$2 ;;
    *) usage 2 ;;
  esac
  shift 2
done
[[ $rounds =~ ^[1-9][0-9]?$ ]] || bench_die "--rounds must be 1..99"
[[ $runs =~ ^[1-9][0-9]{0,5}$ ]] || bench_die "--runs must be 1..999999"
[[ $concurrency =~ ^[1-9][0-9]{0,2}$ ]] || bench_die "--concurrency must be 1..999"
[[ $curl_runs =~ ^[1-9][0-9]{0,4}$ ]] || bench_die "--curl-runs must be 1..99999"
[[ $size =~ ^[0-9]{1,8}$ ]] || bench_die "--size must be 0..99999999 bytes"
[[ $retries =~ ^[0-9]$ ]] || bench_die "--retries must be 0..9"
[[ $max_seconds =~ ^[1-9][0-9]{0,2}$ ]] || bench_die "--max-seconds must be 1..999"

floor_bin=$build_dir/bench/http_floor
probe_bin=${probe_bin:-$build_dir/bench/http_probe_bench}
[[ -x $floor_bin ]] || bench_die "$floor_bin not built (run: cmake --preset default && cmake --build --preset default)"
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
[[ -x $nginx_bin ]] || bench_die "nginx not found (scripts/install-deps.sh installs nginx-light)"
curl_bin=$(command -v curl) || bench_die "curl not found (scripts/install-deps.sh installs it)"
netmond_ok=1 netmond_why=""
if [[ ! -x $probe_bin ]]; then
  netmond_ok=0
  netmond_why="not built ($probe_bin: needs probes/http.cpp and probes/curl_multi.cpp in netmond_probes)"
  bench_log "bench http: $probe_bin $netmond_why; measuring the floor and curl only"
fi
read -r -a probe_args <<<"${PROBE_ARGS:-}"

out=$build_dir/bench
mkdir -p "$out/logs"
rm -f "$out"/logs/http-*
tmp=$(mktemp -d "${TMPDIR:-/tmp}/netmond-bench-http.XXXXXX")
trap 'bench_cleanup; rm -rf "$tmp"' EXIT

calc() { awk "BEGIN { printf \"$1\", ($2) }"; }

# ---- nginx -------------------------------------------------------------------------------
# One process (master_process off), so its CPU is that of one PID; no access log; every
# path nginx writes under $tmp. keepalive_timeout 0: nginx closes each connection after
# its response, whichever client sent the request, so all three clients' connections end
# the same way.
mkdir -p "$tmp/www" "$tmp/temp"
head -c "$size" /dev/zero | tr '\0' 'x' >"$tmp/www/index.html"
nginx_log=$(cd "$out/logs" && pwd)/http-nginx.log
start_nginx() {
  local port=$1
  cat >"$tmp/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $tmp/nginx.pid;
error_log $nginx_log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_timeout 0;
  default_type text/html;
  client_body_temp_path $tmp/temp/body;
  proxy_temp_path $tmp/temp/proxy;
  fastcgi_temp_path $tmp/temp/fastcgi;
  uwsgi_temp_path $tmp/temp/uwsgi;
  scgi_temp_path $tmp/temp/scgi;
  server {
    listen 127.0.0.1:$port backlog=4096;
    root $tmp/www;
  }
}
EOF
  bench_start nginx_pid "$nginx_log.out" "$nginx_bin" -p "$tmp/" -c "$tmp/nginx.conf" -e "$nginx_log"
  local i code
  for ((i = 0; i < 50; i++)); do
    kill -0 "$nginx_pid" 2>/dev/null || return 1
    code=$("$curl_bin" -s -o /dev/null -w '%{http_code}' --max-time 1 "http://127.0.0.1:$port/" || true)
    [[ $code == 200 ]] && return 0
    sleep 0.1
  done
  return 1
}
nginx_pid=
for attempt in 1 2; do
  port=$(bench_free_port tcp)
  : >"$nginx_log"
  start_nginx "$port" && break
  bench_stop "$nginx_pid" || true
  bench_log "bench http: nginx did not answer on 127.0.0.1:$port (attempt $attempt):"
  cat "$nginx_log" "$nginx_log.out" 2>/dev/null | tail -n 5 | sed 's/^/    /' >&2
  ((attempt < 2)) || bench_die "nginx did not start"
done
url=http://127.0.0.1:$port/
bench_log "bench http: nginx pid $nginx_pid serving $size bytes at $url"
bench_log "bench http: $rounds rounds; netmond and floor: $runs runs, $concurrency concurrent; curl: $curl_runs runs, sequential"

# ---- the three clients -------------------------------------------------------------------
# Each sets, or returns 1 when the client did not run at all:
#   P_CPU    client CPU µs per probe run
#   P_RPS    runs per second (wall)
#   P_FAIL   runs that failed or did not finish
#   P_NGINX  nginx CPU µs per request
#   P_OTHER  CPU used by anything else, % of one core
#   P_EXTRA  client-specific figures (an array)
#   P_LINE   a summary for the log

# measure CMD...: runs one client CMD (http_floor or http_probe_bench, which print a
# RESULT line) in the background, waited for, with nginx's CPU and the host's busy time
# around it. Sets RESULT (the line) and the *0/*1 samples.
run_result_client() {
  local log=$1 pid rc=0
  shift
  ng0=$(bench_cpu_ns "$nginx_pid") busy0=$(bench_busy_ns) wall0=$(date +%s%N)
  bench_start pid "$log" "$@"
  wait "$pid" || rc=$?
  bench_forget "$pid"
  ng1=$(bench_cpu_ns "$nginx_pid") busy1=$(bench_busy_ns) wall1=$(date +%s%N)
  RESULT=$(grep '^RESULT ' "$log" || true)
  [[ -n $RESULT ]] || {
    bench_log "bench http: $1 printed no result (exit $rc; log: $log)"
    tail -n 5 "$log" | sed 's/^/    /' >&2
    return 1
  }
  if ((rc != 0)); then
    bench_log "bench http: ${1##*/} reported failures (exit $rc; log: $log):"
    grep -v '^RESULT ' "$log" | head -n 5 | sed 's/^/    /' >&2
  fi
  kill -0 "$nginx_pid" 2>/dev/null || bench_die "nginx exited (log: $nginx_log)"
  return 0
}

# other_pct CLIENT_CPU_NS: the host's busy time minus the client's and nginx's, % of a core.
other_pct() {
  calc %.0f "(o = ($busy1 - $busy0) - $1 - ($ng1 - $ng0)) > 0 ? 100 * o / ($wall1 - $wall0) : 0"
}

measure_floor() {
  local log=$out/logs/http-$1-floor.log
  run_result_client "$log" "$floor_bin" --connect "127.0.0.1:$port" --count "$runs" \
    --concurrency "$concurrency" --max-seconds "$max_seconds" || return 1
  local ok failed incomplete cpu
  ok=$(bench_field "$RESULT" ok) failed=$(bench_field "$RESULT" failed)
  incomplete=$(bench_field "$RESULT" incomplete) cpu=$(bench_field "$RESULT" cpu_us)
  P_CPU=$(bench_field "$RESULT" cpu_us_per_req)
  P_RPS=$(bench_field "$RESULT" rps)
  P_FAIL=$((failed + incomplete))
  P_NGINX=$(calc %.3f "($ng1 - $ng0) / 1000 / ($ok + $failed > 0 ? $ok + $failed : 1)")
  P_OTHER=$(other_pct "$cpu * 1000")
  P_EXTRA=()
  P_LINE="floor $P_CPU µs/run, $P_RPS runs/s, nginx $P_NGINX µs/req, $P_FAIL failed, other $P_OTHER%"
}

measure_netmond() {
  local log=$out/logs/http-$1-netmond.log
  run_result_client "$log" "$probe_bin" --url "$url" --runs "$runs" --concurrency "$concurrency" \
    --max-seconds "$max_seconds" "${probe_args[@]}" || return 1
  local ok failed incomplete cpu setup startup
  ok=$(bench_field "$RESULT" ok) failed=$(bench_field "$RESULT" failed)
  incomplete=$(bench_field "$RESULT" incomplete) cpu=$(bench_field "$RESULT" cpu_us)
  setup=$(bench_field "$RESULT" setup_cpu_us) startup=$(bench_field "$RESULT" startup_cpu_us)
  P_CPU=$(bench_field "$RESULT" cpu_us_per_run)
  P_RPS=$(bench_field "$RESULT" runs_per_s)
  P_FAIL=$((failed + incomplete))
  P_NGINX=$(calc %.3f "($ng1 - $ng0) / 1000 / ($ok + $failed > 0 ? $ok + $failed : 1)")
  P_OTHER=$(other_pct "($cpu + $setup + $startup) * 1000")
  P_EXTRA=("$setup" "$startup" "$(bench_field "$RESULT" latency_p50_us)" "$(bench_field "$RESULT" maxrss_kib)")
  P_LINE="netmond $P_CPU µs/run, $P_RPS runs/s, setup $setup µs, nginx $P_NGINX µs/req, $P_FAIL failed, other $P_OTHER%"
}

# curl_loop N CODES TIMES: runs curl N times one after another (stopping early after
# --max-seconds), one HTTP status per line in CODES, then the shell's `times` in TIMES.
curl_loop() {
  local i end=$((EPOCHSECONDS + max_seconds))
  for ((i = 0; i < $1; i++)); do
    ((EPOCHSECONDS < end)) || break
    "$curl_bin" -s -o /dev/null -w '%{http_code}' --max-time 5 "$url"
    echo " $?" # "200 0": the status, then curl's exit code
  done >"$2"
  times >"$3"
}

# times_s LINE: "0m1.234s 0m0.567s" -> user+sys seconds
times_s() { awk '{ s = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); s += a[1] * 60 + a[2] } printf "%.6f\n", s }' <<<"$1"; }

measure_curl() {
  local log=$out/logs/http-$1-curl.log codes=$tmp/curl-codes times_file=$tmp/curl-times pid rc=0
  rm -f "$codes" "$times_file"
  ng0=$(bench_cpu_ns "$nginx_pid") busy0=$(bench_busy_ns) wall0=$(date +%s%N)
  curl_loop "$curl_runs" "$codes" "$times_file" &
  pid=$!
  BENCH_PIDS+=("$pid")
  wait "$pid" || rc=$?
  bench_forget "$pid"
  ng1=$(bench_cpu_ns "$nginx_pid") busy1=$(bench_busy_ns) wall1=$(date +%s%N)
  if ((rc != 0)) || [[ ! -s $times_file ]]; then
    bench_log "bench http: the curl loop failed (exit $rc)"
    return 1
  fi
  local n_done ok self children
  n_done=$(wc -l <"$codes") ok=$(grep -cx '200 0' "$codes" || true)
  self=$(times_s "$(sed -n 1p "$times_file")") children=$(times_s "$(sed -n 2p "$times_file")")
  {
    echo "curl runs: $n_done, HTTP 200: $ok"
    grep -vx '200 0' "$codes" | sort | uniq -c | sed 's/^/  not 200 (status, exit code): /'
    echo "times (shell, then its children):"
    cat "$times_file"
  } >"$log"
  kill -0 "$nginx_pid" 2>/dev/null || bench_die "nginx exited (log: $nginx_log)"
  ((n_done > 0)) || return 1
  # CPU per probe: the curl processes themselves (exec, dynamic linking, TLS library
  # initialisation, the request) plus the launching shell's share (fork, wait).
  local proc launch
  proc=$(calc %.3f "$children * 1e6 / $n_done") launch=$(calc %.3f "$self * 1e6 / $n_done")
  P_CPU=$(calc %.3f "$proc + $launch")
  P_RPS=$(calc %.1f "$n_done * 1e9 / ($wall1 - $wall0)")
  P_FAIL=$((curl_runs - ok))
  P_NGINX=$(calc %.3f "($ng1 - $ng0) / 1000 / $n_done")
  P_OTHER=$(other_pct "($self + $children) * 1e9")
  P_EXTRA=("$proc" "$launch")
  P_LINE="curl $P_CPU µs/run ($proc in curl, $launch launching), $P_RPS runs/s, nginx $P_NGINX µs/req, $P_FAIL failed, other $P_OTHER%"
}

# ---- rounds ------------------------------------------------------------------------------
parts=(floor netmond curl)
f_cpu=() f_rps=() f_ng=() f_other=()
n_cpu=() n_rps=() n_ng=() n_other=() n_setup=() n_startup=() n_p50=() n_rss=()
c_cpu=() c_proc=() c_launch=() c_rps=() c_ng=() c_other=()
round_nf=() round_cf=()
f_fail=0 n_fail=0 c_fail=0 contended=0 reruns=0 client_error=0
for ((r = 1; r <= rounds; r++)); do
  for ((try = 0; try <= retries; try++)); do
    # Rotate the order: round 1 floor, netmond, curl; round 2 netmond, curl, floor; ...
    order=()
    for ((i = 0; i < 3; i++)); do order+=("${parts[$(((r - 1 + i) % 3))]}"); done
    line="round $r:" busy=0
    F=() N=() C=()
    for p in "${order[@]}"; do
      case $p in
        floor)
          measure_floor "$r" || bench_die "the floor failed"
          F=("$P_CPU" "$P_RPS" "$P_NGINX" "$P_OTHER" "$P_FAIL") ;;
        netmond)
          ((netmond_ok)) || continue
          if measure_netmond "$r"; then
            N=("$P_CPU" "$P_RPS" "$P_NGINX" "$P_OTHER" "$P_FAIL" "${P_EXTRA[@]}")
          else
            netmond_ok=0 netmond_why="http_probe_bench failed (see $out/logs)" client_error=1
            continue
          fi ;;
        curl)
          measure_curl "$r" || bench_die "curl failed"
          C=("$P_CPU" "$P_RPS" "$P_NGINX" "$P_OTHER" "$P_FAIL" "${P_EXTRA[@]}") ;;
      esac
      line+=" $P_LINE;"
      if ((P_OTHER > busy)); then busy=$P_OTHER; fi
    done
    if ((busy > busy_limit)); then
      if ((try < retries)); then
        bench_log "bench http: $line — other processes busy, round run again"
        reruns=$((reruns + 1))
        continue
      fi
      contended=1
      line+=" — CONTENDED"
    fi
    break
  done
  bench_log "bench http: $line"
  f_cpu+=("${F[0]}") f_rps+=("${F[1]}") f_ng+=("${F[2]}") f_other+=("${F[3]}")
  f_fail=$((f_fail + F[4]))
  c_cpu+=("${C[0]}") c_rps+=("${C[1]}") c_ng+=("${C[2]}") c_other+=("${C[3]}")
  c_fail=$((c_fail + C[4])) c_proc+=("${C[5]}") c_launch+=("${C[6]}")
  round_cf+=("$(calc %.3f "${C[0]} / ${F[0]}")")
  if ((${#N[@]})); then
    n_cpu+=("${N[0]}") n_rps+=("${N[1]}") n_ng+=("${N[2]}") n_other+=("${N[3]}")
    n_fail=$((n_fail + N[4])) n_setup+=("${N[5]}") n_startup+=("${N[6]}") n_p50+=("${N[7]}") n_rss+=("${N[8]}")
    round_nf+=("$(calc %.3f "${N[0]} / ${F[0]}")")
  fi
done

# ---- report ------------------------------------------------------------------------------
median() { bench_median "$@"; }
fmt() { printf '%.0f\n' "$1" | sed ':a; s/\B[0-9]\{3\}\>/,&/; ta'; }
range() { printf '%s\n' "$@" | sort -g | sed -n '1p;$p' | xargs | awk '{printf "%.1f–%.1f\n", $1, $2}'; }
json_array() {
  local IFS=,
  echo "[$*]"
}
json_bool() { if (($1)); then echo true; else echo false; fi; }
jnum() { if [[ -z ${1:-} ]]; then echo null; else echo "$1"; fi; }
num() { if [[ -z ${1:-} ]]; then echo nan; else echo "$1"; fi; }

fc=$(calc %.1f "$(median "${f_cpu[@]}")") fr=$(median "${f_rps[@]}") fg=$(calc %.1f "$(median "${f_ng[@]}")")
cc=$(calc %.1f "$(median "${c_cpu[@]}")") cr=$(median "${c_rps[@]}") cg=$(calc %.1f "$(median "${c_ng[@]}")")
cp=$(calc %.1f "$(median "${c_proc[@]}")") cl=$(calc %.1f "$(median "${c_launch[@]}")")
curl_per_floor=$(calc %.2f "$cc / $fc")
rcf=$(calc %.2f "$(median "${round_cf[@]}")")
nc="" nr="" ng="" nf_ratio="" rnf="" cn_ratio="" nsetup="" nstartup="" np50="" nrss=""
if ((${#n_cpu[@]})); then
  nc=$(calc %.1f "$(median "${n_cpu[@]}")") nr=$(median "${n_rps[@]}") ng=$(calc %.1f "$(median "${n_ng[@]}")")
  nf_ratio=$(calc %.2f "$nc / $fc") rnf=$(calc %.2f "$(median "${round_nf[@]}")")
  cn_ratio=$(calc %.1f "$cc / $nc")
  nsetup=$(calc %.0f "$(median "${n_setup[@]}")") nstartup=$(calc %.0f "$(median "${n_startup[@]}")")
  np50=$(calc %.0f "$(median "${n_p50[@]}")") nrss=$(calc %.0f "$(median "${n_rss[@]}")")
fi
failures=$((f_fail + n_fail + c_fail))
ok=1
((netmond_ok && failures == 0 && !client_error)) || ok=0

table=$(
  echo "HTTP GET of a $size-byte page from nginx on 127.0.0.1, a fresh connection per run; netmond and floor: $runs runs, $concurrency in flight; curl: $curl_runs runs one after another; median of $rounds rounds"
  echo
  echo "| client | CPU µs per probe run | range | / floor | runs/s | nginx CPU µs/request | failed runs |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  echo "| http_floor (epoll, raw GET, $concurrency in flight) | $fc | $(range "${f_cpu[@]}") | 1.00 | $(fmt "$fr") | $fg | $f_fail |"
  if ((${#n_cpu[@]})); then
    echo "| netmond http probe (http_probe_bench, $concurrency in flight) | $nc | $(range "${n_cpu[@]}") | $nf_ratio | $(fmt "$nr") | $ng | $n_fail |"
  else
    echo "| netmond http probe | ${netmond_why:-FAILED} | | | | | |"
  fi
  echo "| curl, one process per probe | $cc | $(range "${c_cpu[@]}") | $curl_per_floor | $(fmt "$cr") | $cg | $c_fail |"
  echo
  if ((${#n_cpu[@]})); then
    echo "netmond / floor, CPU per run: $nf_ratio (median of per-round ratios: $rnf); curl / floor: $curl_per_floor (per-round: $rcf); curl / netmond: $cn_ratio"
    echo "netmond, once per process: $nstartup µs CPU before main(), $nsetup µs from main() to the first run (loop, Resolver, CurlMulti, $concurrency probe objects); peak RSS $(fmt "$nrss") KiB; median run latency $np50 µs"
  else
    echo "curl / floor, CPU per run: $curl_per_floor (median of per-round ratios: $rcf)"
  fi
  echo "curl per run: $cp µs in the curl process (exec, libraries, request) + $cl µs in the launching shell (fork, wait)"
  if ((failures)); then
    echo
    echo "FAILED: $failures runs did not end with HTTP 200 / Ok (logs in $out/logs)."
  fi
  if ((contended)); then
    echo
    echo "WARNING: other processes used more than $busy_limit% of a core during some parts even after $retries retries; the figures are noisy, run again on a quiet machine."
  fi
)
machine="BENCH http netmond_cpu_us=$(num "$nc") curl_cpu_us=$cc floor_cpu_us=$fc netmond_per_floor=$(num "$nf_ratio") curl_per_floor=$curl_per_floor curl_per_netmond=$(num "$cn_ratio") failures=$failures ok=$ok netmond_built=$([[ -x $probe_bin ]] && echo 1 || echo 0) netmond_setup_cpu_us=$(num "$nsetup") netmond_rps=$(num "$([[ -n $nr ]] && printf %.0f "$nr")") floor_rps=$(printf %.0f "$fr") curl_rps=$(printf %.1f "$cr") nginx_cpu_us_floor=$fg nginx_cpu_us_netmond=$(num "$ng") nginx_cpu_us_curl=$cg contended=$contended reruns=$reruns rounds=$rounds runs=$runs curl_runs=$curl_runs concurrency=$concurrency size=$size"

printf '%s\n' "$table" >"$out/http.md"
cat >"$out/http.json" <<EOF
{
  "benchmark": "http",
  "date": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
  "host": {"cpus": $(nproc), "kernel": "$(uname -r)", "nginx": "$("$nginx_bin" -v 2>&1 | sed 's/.*: //')", "curl": "$("$curl_bin" --version | head -n 1 | cut -d' ' -f1-2)"},
  "params": {"rounds": $rounds, "retries": $retries, "runs": $runs, "concurrency": $concurrency, "curl_runs": $curl_runs, "size": $size, "max_seconds": $max_seconds, "probe_args": "${probe_args[*]}"},
  "floor": {"cpu_us_per_run_median": $fc, "cpu_us_per_run": $(json_array "${f_cpu[@]}"), "runs_per_s": $(json_array "${f_rps[@]}"), "nginx_cpu_us_per_request": $(json_array "${f_ng[@]}"), "other_cpu_pct": $(json_array "${f_other[@]}"), "failed_runs": $f_fail},
  "netmond": {"ok": $(json_bool "$((netmond_ok && n_fail == 0))"), "why": "$netmond_why", "cpu_us_per_run_median": $(jnum "$nc"), "cpu_us_per_run": $(json_array "${n_cpu[@]}"), "runs_per_s": $(json_array "${n_rps[@]}"), "nginx_cpu_us_per_request": $(json_array "${n_ng[@]}"), "other_cpu_pct": $(json_array "${n_other[@]}"), "setup_cpu_us": $(json_array "${n_setup[@]}"), "startup_cpu_us": $(json_array "${n_startup[@]}"), "latency_p50_us": $(json_array "${n_p50[@]}"), "maxrss_kib": $(json_array "${n_rss[@]}"), "failed_runs": $n_fail},
  "curl": {"cpu_us_per_run_median": $cc, "cpu_us_per_run": $(json_array "${c_cpu[@]}"), "process_cpu_us_per_run": $(json_array "${c_proc[@]}"), "launch_cpu_us_per_run": $(json_array "${c_launch[@]}"), "runs_per_s": $(json_array "${c_rps[@]}"), "nginx_cpu_us_per_request": $(json_array "${c_ng[@]}"), "other_cpu_pct": $(json_array "${c_other[@]}"), "failed_runs": $c_fail},
  "netmond_per_floor": $(jnum "$nf_ratio"),
  "netmond_per_floor_rounds": $(json_array "${round_nf[@]}"),
  "curl_per_floor": $curl_per_floor,
  "curl_per_floor_rounds": $(json_array "${round_cf[@]}"),
  "curl_per_netmond": $(jnum "$cn_ratio"),
  "failures": $failures,
  "ok": $(json_bool "$ok"),
  "contended": $(json_bool "$contended"),
  "reruns": $reruns
}
EOF

echo
printf '%s\n' "$table"
echo
echo "$machine"
((ok)) || exit 1
exit 0
