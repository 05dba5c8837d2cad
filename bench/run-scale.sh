#!/usr/bin/env bash
# bench/run-scale.sh: netmond itself (the daemon binary, its scheduler, logging and probes
# together) running N checks at a short interval against local peers.
#
# Starts nginx (http, and the tcp checks connect to it), dnsmasq (dns), netmond-echo
# (udp_echo, and the udp checks get their reply from it) and uses the kernel's ICMP echo
# on 127.0.0.0/8, all on loopback. For each N of --checks it writes a config of N checks,
# the types of --mix in turn (check i has type mix[i % len]), every one at --interval with
# its own name, and runs `netmond -c CONFIG` with the results logged to a file as --log
# says (json: every result as JSON, as in production; text: every result as text;
# changes: only failures and state changes) and its /metrics on a free loopback port.
# After --warmup seconds it measures for --duration seconds:
#   probes/s     finished runs in the window (netmond_check_runs_total) / its length
#   cpu_pct      netmond's CPU (user+sys, all threads, /proc/PID/stat) in % of one core
#   cpu_us       netmond's CPU µs per result (probe, scheduling and logging together)
#   rss_peak     peak resident memory (VmHWM, whole run), MiB
#   fd_peak      the most descriptors open at one of the 1 s samples
#   lateness     actual start − due time of the runs that completed in the window (each
#                result's lateness_ms), p50 / p99 / max, ms (--log json only)
#   skipped      schedule slots passed over in the window (netmond_check_skipped_slots_total)
#   failed       runs in the window that failed (netmond_check_runs_total; a correct run
#                has 0)
# With --reload 1, after the window: the config with one check changed (c0's timeout) is
# written over the file and netmond gets SIGHUP; reported are the time its loop spent
# applying the reload and the time its thread spent reading and validating the file
# beside the loop (the "reloaded: ... (file read in R ms ..., applied in A ms)" log line),
# and the lateness p99 / max of the runs
# logged from the SIGHUP on for --reload-watch seconds (--log json), which the reload must
# not delay. For 10,000 checks pick an interval the loop sustains: --interval 10s.
# Targets (issue 10, 10,000 checks at 1 s on one core): ≥ 9,900 probes/s, ≤ 35% of a core,
# p99 lateness ≤ 5 ms, peak RSS ≤ 64 MiB. They are reported, not enforced: the exit status
# says whether netmond ran and every result was ok. Writes BUILD_DIR/bench/scale.{md,json}.
# Loopback only; each run is bounded by --warmup + --duration (+ a 10 s grace to stop).
#
# Usage: bench/run-scale.sh [--build-dir DIR] [--checks "1000 10000"] [--interval 1s]
#          [--duration SECONDS] [--warmup SECONDS] [--timeout 500ms]
#          [--mix "tcp udp udp_echo icmp dns http"] [--log json|text|changes]
#          [--reload 0|1] [--reload-watch SECONDS]
# Exit: 0 measured and no failed result; 1 a failure (netmond or a peer did not run, or a
# result was not ok); 2 usage.
# shellcheck disable=SC2154,SC2317 # variables set by bench_options, functions called by name
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
BENCH_NAME=scale

bench_options "${BASH_SOURCE[0]}" build-dir=build/default checks="1000 10000" interval=1s \
  duration=60:1..3600 warmup=5:1..600 timeout=500ms mix="tcp udp udp_echo icmp dns http" \
  log=json reload=0:0..1 reload-watch=5:1..600 -- "$@"
[[ $log == json || $log == text || $log == changes ]] || bench_die "--log: json, text or changes"
read -r -a check_counts <<<"$checks"
read -r -a types <<<"$mix"
for n in "${check_counts[@]}"; do
  [[ $n =~ ^[1-9][0-9]{0,6}$ ]] || bench_die "--checks: whole numbers 1..9999999, not '$n'"
done
for t in "${types[@]}"; do
  [[ " tcp udp udp_echo icmp dns http " == *" $t "* ]] || bench_die "--mix: unknown type '$t'"
done
# icmp needs CAP_NET_RAW (root here) or ping sockets for our group; without either its
# checks could only fail, so it leaves the mix.
read -r ping_lo ping_hi </proc/sys/net/ipv4/ping_group_range
if [[ " ${types[*]} " == *" icmp "* ]] && ((EUID != 0)) &&
  ! (($(id -g) >= ping_lo && $(id -g) <= ping_hi)); then
  bench_log "bench scale: no ICMP socket for this user (not root, ping_group_range $ping_lo $ping_hi): icmp left out"
  kept=()
  for t in "${types[@]}"; do [[ $t == icmp ]] || kept+=("$t"); done
  types=("${kept[@]}") mix="${kept[*]}"
  ((${#types[@]})) || bench_die "--mix: nothing left to run"
fi

netmond_bin=$build_dir/daemon/netmond
echo_bin=$build_dir/echo/netmond-echo
[[ -x $netmond_bin && -x $echo_bin ]] ||
  bench_die "$netmond_bin or $echo_bin not built (run: cmake --preset default && cmake --build --preset default)"
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
dnsmasq_bin=/usr/sbin/dnsmasq
curl_bin=$(command -v curl) || bench_die "curl not found (scripts/install-deps.sh installs it)"
dig_bin=$(command -v dig) || bench_die "dig not found (scripts/install-deps.sh installs bind9-dnsutils)"
[[ -x $nginx_bin ]] || bench_die "nginx not found (scripts/install-deps.sh installs nginx-light)"
[[ -x $dnsmasq_bin ]] || bench_die "$dnsmasq_bin not found (scripts/install-deps.sh installs dnsmasq-base)"
probe_bin=$netmond_bin # bench_prepare's check: the daemon is what runs here
bench_prepare "the daemon" "nothing"
((netmond_ok)) || exit 1
name=bench.test
address=192.0.2.1 # TEST-NET-1: served by dnsmasq, never contacted

# ---- peers -------------------------------------------------------------------------------
bench_start_local_peers scale
bench_log "bench scale: nginx :$http_port (pid $nginx_pid), dnsmasq :$dns_port (pid $dnsmasq_pid), netmond-echo :$echo_port (pid $echo_pid)"

# ---- one run -----------------------------------------------------------------------------

# write_config N FILE: N checks of the mix, one server per check (its own address for
# icmp: 127.0.0.1 .. 127.0.255.254, so every run has its own target as on a real network).
write_config() {
  local n=$1
  awk -v n="$n" -v mix="$mix" -v interval="$interval" -v timeout="$timeout" \
    -v http="$http_port" -v dns="$dns_port" -v echo_port="$echo_port" -v qname="$name" \
    -v logmode="$log" -v metrics="$metrics_port" '
    BEGIN {
      k = split(mix, t, " ")
      print "control: {socket: \"\"}"
      printf "metrics: {listen: \"127.0.0.1:%d\"}\n", metrics
      if (logmode == "changes") print "log: {format: json, results: changes}"
      else printf "log: {format: %s}\n", logmode
      printf "defaults: {interval: %s, timeout: %s, retries: 0}\n", interval, timeout
      print "servers:"
      for (i = 0; i < n; i++) {
        type = t[i % k + 1]
        if (type == "icmp") addr = sprintf("127.0.%d.%d", int(i / 254) % 256, i % 254 + 1)
        else addr = "127.0.0.1"
        if (type == "tcp") svc = sprintf("{type: tcp, port: %d", http)
        else if (type == "udp") svc = sprintf("{type: udp, port: %d, payload: x", echo_port)
        else if (type == "udp_echo") svc = sprintf("{type: udp_echo, port: %d", echo_port)
        else if (type == "icmp") svc = "{type: icmp"
        else if (type == "dns") svc = sprintf("{type: dns, port: %d, query: %s", dns, qname)
        else svc = sprintf("{type: http, url: \"http://127.0.0.1:%d/\"", http)
        printf "  - {address: %s, services: [%s, name: c%d}]}\n", addr, svc, i
      }
    }' >"$2"
}

# percentile P FILE: the P-th percentile (nearest rank) of the sorted numbers in FILE.
percentile() { awk -v p="$1" '{ v[NR] = $1 } END { if (!NR) { print "nan"; exit } i = int(p / 100 * NR + 0.999999); if (i < 1) i = 1; print v[i] }' "$2"; }

# results_in LOG FROM TO: the result lines FROM+1..TO of the log.
results_in() { sed -n "$(($2 + 1)),$3p" "$1" | grep '"event":"result"' || true; }

# scrape: "RUNS FAILURES SKIPPED", the sums over all checks in netmond's /metrics.
scrape() {
  "$curl_bin" -s --max-time 60 "http://127.0.0.1:$metrics_port/metrics" | awk '
    /^netmond_check_runs_total/ { runs += $NF; if ($0 ~ /result="failure"/) failures += $NF }
    /^netmond_check_skipped_slots_total/ { skipped += $NF }
    END { printf "%d %d %d\n", runs, failures, skipped }'
}

# measure_reload: SIGHUP with one check changed; sets R[$n reload_ms] (the loop's share),
# R[$n read_ms] (the reading thread's), after_p99, after_max.
measure_reload() {
  local before
  sed -i 's/, name: c0}/, timeout: 400ms, name: c0}/' "$cfg"
  before=$(wc -l <"$log_file")
  kill -HUP "$pid"
  local end=$((EPOCHSECONDS + 60)) line=""
  while ((EPOCHSECONDS < end)); do
    line=$(tail -n "+$((before + 1))" "$log_file" | grep -m 1 '"reloaded: ' || true)
    [[ -z $line ]] || break
    sleep 0.2
  done
  [[ -n $line ]] || bench_die "no reload logged within 60 s (log: $log_file)"
  R[$n reload_ms]=$(sed -n 's/.* applied in \([0-9.]*\) ms.*/\1/p' <<<"$line")
  R[$n read_ms]=$(sed -n 's/.*file read in \([0-9.]*\) ms.*/\1/p' <<<"$line")
  [[ -n ${R[$n reload_ms]} && -n ${R[$n read_ms]} ]] || bench_die "unexpected reload line: $line"
  bench_log "bench scale: $n checks: ${line##*\"message\":\"}"
  # From the SIGHUP on: the runs the reload held up are logged after it.
  watch "$reload_watch"
  if [[ $log == json ]]; then
    results_in "$log_file" "$before" "$(wc -l <"$log_file")" |
      grep -o '"lateness_ms":[0-9.e+-]*' | cut -d: -f2 | sort -g >"$tmp/after"
    if [[ -s $tmp/after ]]; then
      R[$n after_p99]=$(percentile 99 "$tmp/after") R[$n after_max]=$(tail -n 1 "$tmp/after")
    fi
  fi
}

# lateness_json VALUE: a number, or null for "—" (not measured).
lateness_json() { if [[ $1 == "—" ]]; then echo null; else bench_jnum "$1"; fi; }

declare -A R=()
failures=0
for n in "${check_counts[@]}"; do
  cfg=$tmp/scale-$n.yaml log_file=$tmp/scale-$n.log
  metrics_port=$(bench_free_port tcp)
  write_config "$n" "$cfg"
  "$netmond_bin" --check-config -c "$cfg" >/dev/null 2>"$tmp/check.err" ||
    bench_die "the generated config does not load: $(head -n 3 "$tmp/check.err")"
  bench_log "bench scale: $n checks (${types[*]}) every $interval, log $log, ${warmup}s warm-up, ${duration}s measured"
  bench_start pid "$log_file" "$netmond_bin" -c "$cfg" --no-console
  fd_peak=0
  # watch SECONDS: waits that long while netmond runs, counting its descriptors each second.
  watch() {
    local end=$((EPOCHSECONDS + $1)) fds
    while ((EPOCHSECONDS < end)); do
      kill -0 "$pid" 2>/dev/null || bench_die "netmond exited (log: $log_file)"
      fds=$(find /proc/"$pid"/fd -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
      ((fds > fd_peak)) && fd_peak=$fds
      sleep 1
    done
  }
  watch "$warmup"
  # The scrapes' own CPU in netmond (rendering N checks' samples) falls outside the window.
  read -r runs0 failed0 skipped0 < <(scrape)
  lines0=$(wc -l <"$log_file") cpu0=$(bench_cpu_ns "$pid") wall0=$(date +%s%N)
  watch "$duration"
  lines1=$(wc -l <"$log_file") cpu1=$(bench_cpu_ns "$pid") wall1=$(date +%s%N)
  read -r runs1 failed1 skipped1 < <(scrape)
  rss_kib=$(awk '/^VmHWM:/ { print $2 }' /proc/"$pid"/status)
  R[$n reload_ms]="—" R[$n read_ms]="—" R[$n after_p99]="—" R[$n after_max]="—"
  if ((reload)); then measure_reload; fi
  bench_stop "$pid" || true
  head -c 1M "$log_file" >"$out/logs/scale-$n-netmond.log.head"
  ((runs1 > 0)) || bench_die "no runs counted in /metrics (log: $out/logs/scale-$n-netmond.log.head)"
  results_in "$log_file" "$lines0" "$lines1" >"$tmp/window"
  done_n=$((runs1 - runs0))
  failed=$((failed1 - failed0))
  : >"$tmp/lateness"
  [[ $log != json ]] ||
    grep -o '"lateness_ms":[0-9.e+-]*' "$tmp/window" | cut -d: -f2 | sort -g >"$tmp/lateness"
  secs=$(bench_calc %.6f "($wall1 - $wall0) / 1e9")
  R[$n rate]=$(bench_calc %.0f "$done_n / $secs")
  R[$n expected]=$(bench_calc %.0f "$n / $(awk -v d="$interval" 'BEGIN { v = d + 0; u = d; sub(/^[0-9.]+/, "", u)
    print (u == "ms" ? v / 1000 : u == "m" ? v * 60 : v) }')")
  R[$n cpu_pct]=$(bench_calc %.1f "100 * ($cpu1 - $cpu0) / ($wall1 - $wall0)")
  R[$n cpu_us]=$(bench_calc %.1f "($cpu1 - $cpu0) / 1000 / ($done_n > 0 ? $done_n : 1)")
  R[$n rss]=$(bench_calc %.1f "$rss_kib / 1024")
  R[$n fds]=$fd_peak
  R[$n p50]=$(percentile 50 "$tmp/lateness") R[$n p99]=$(percentile 99 "$tmp/lateness")
  R[$n max]=$(tail -n 1 "$tmp/lateness")
  R[$n failed]=$failed R[$n skipped]=$((skipped1 - skipped0))
  [[ -s $tmp/lateness ]] || R[$n p50]="—" R[$n p99]="—" R[$n max]="—"
  # Why results failed, for the log: the most common messages.
  if ((failed > 0)); then
    failures=$((failures + failed))
    bench_log "bench scale: $failed of $done_n results failed; most common:"
    grep '"ok":false' "$tmp/window" | grep -o '"type":"[a-z_]*".*"message":"[^"]*"' |
      sed 's/"target".*"message"/ /' | sort | uniq -c | sort -rn | head -n 5 | sed 's/^/    /' >&2
  fi
  bench_log "bench scale: $n checks: ${R[$n rate]} probes/s (of ${R[$n expected]}), ${R[$n cpu_pct]}% of a core, ${R[$n cpu_us]} µs/result, RSS ${R[$n rss]} MiB, ${R[$n fds]} fds, lateness p50/p99/max ${R[$n p50]}/${R[$n p99]}/${R[$n max]} ms, ${R[$n skipped]} slots skipped, $failed failed"
  ((!reload)) || bench_log "bench scale: $n checks: reload ${R[$n reload_ms]} ms of loop time (file read in ${R[$n read_ms]} ms beside it), lateness p99/max in the ${reload_watch}s after it ${R[$n after_p99]}/${R[$n after_max]} ms"
  rm -f "$log_file"
done

# ---- report ------------------------------------------------------------------------------
table="| checks | probes/s (expected) | CPU % of a core | CPU µs per result | peak RSS MiB | fd peak | lateness p50 / p99 / max ms | slots skipped | failed |
|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
json_runs=()
for n in "${check_counts[@]}"; do
  table+="
| $(bench_fmt "$n") | $(bench_fmt "${R[$n rate]}") ($(bench_fmt "${R[$n expected]}")) | ${R[$n cpu_pct]} | ${R[$n cpu_us]} | ${R[$n rss]} | ${R[$n fds]} | ${R[$n p50]} / ${R[$n p99]} / ${R[$n max]} | ${R[$n skipped]} | ${R[$n failed]} |"
  json_runs+=("{\"checks\": $n, \"probes_per_s\": ${R[$n rate]}, \"expected_per_s\": ${R[$n expected]}, \"cpu_pct\": ${R[$n cpu_pct]}, \"cpu_us_per_result\": ${R[$n cpu_us]}, \"rss_peak_mib\": ${R[$n rss]}, \"fd_peak\": ${R[$n fds]}, \"lateness_ms\": {\"p50\": $(lateness_json "${R[$n p50]}"), \"p99\": $(lateness_json "${R[$n p99]}"), \"max\": $(lateness_json "${R[$n max]}")}, \"skipped_slots\": ${R[$n skipped]}, \"failed\": ${R[$n failed]}, \"reload_ms\": $(lateness_json "${R[$n reload_ms]}"), \"reload_read_ms\": $(lateness_json "${R[$n read_ms]}"), \"after_reload_lateness_ms\": {\"p99\": $(lateness_json "${R[$n after_p99]}"), \"max\": $(lateness_json "${R[$n after_max]}")}}")
done
if ((reload)); then
  table+="

| checks | reload with one check changed: ms of loop time | file read and validated beside the loop, ms | lateness p99 / max in the ${reload_watch} s after it, ms |
|---:|---:|---:|---:|"
  for n in "${check_counts[@]}"; do
    table+="
| $(bench_fmt "$n") | ${R[$n reload_ms]} | ${R[$n read_ms]} | ${R[$n after_p99]} / ${R[$n after_max]} |"
  done
fi
table+="

Mix: ${types[*]}; interval $interval, timeout $timeout; log $log; ${duration}s measured after ${warmup}s."
line="BENCH scale"
for n in "${check_counts[@]}"; do
  line+=" n${n}_per_s=${R[$n rate]} n${n}_cpu_pct=${R[$n cpu_pct]} n${n}_rss_mib=${R[$n rss]} n${n}_lateness_p99_ms=${R[$n p99]}"
done
members="  \"mix\": $(bench_json_str "${types[*]}"), \"interval\": $(bench_json_str "$interval"), \"log\": \"$log\", \"duration_s\": $duration,
  \"runs\": [$(IFS=,; echo "${json_runs[*]}")],"
BENCH_CONTENDED=0 BENCH_RERUNS=0
bench_report "$((failures == 0))" "$failures" "$table" "$line" "$members"
