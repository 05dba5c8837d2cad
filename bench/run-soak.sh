#!/usr/bin/env bash
# bench/run-soak.sh: netmond for a long time (`make soak DURATION=30m`): a mixed config of
# thousands of checks against local peers, some of them failing, reloaded periodically.
# Records its resident memory, descriptors and schedule lateness every --sample seconds and
# fails when memory or descriptors grow after the warm-up.
#
# Peers, all on loopback (bench_start_local_peers, bench/lib.sh): nginx (http; tcp connects
# to it), dnsmasq (dns), netmond-echo (udp_echo; udp gets its reply from it), the kernel's
# ICMP echo on 127.0.0.0/8; and a second netmond-echo that answers nobody here (--allow
# 10.0.0.0/8): a silent peer. --checks checks of the types of --mix in turn at --interval
# with --timeout; of every 100 checks, the first --failing fail for good, each its own way:
# tcp to a closed port (refused), udp to a closed port (refused, ICMP), udp_echo and dns to
# the silent peer (timeout), http to a missing page (404: unexpected); icmp never fails
# here. Every --reload-every seconds the config alternates with a second one in which every
# tenth check has another timeout (changed: restarted), 1% of the checks are gone and 1%
# are new, and netmond gets SIGHUP. Results are logged as JSON, failures and state changes
# only (log.results: changes), to a file.
#
# With --blackhole 1 every check times out instead (issue 11: 10,000 checks that all time
# out): netmond runs in a network namespace this script creates (removed on exit), where
# 10.255.0.0/16 is routed to lo and an nftables rule drops whatever arrives for it, and
# every check targets its own address there (10.255.0.1 ...): tcp and http connects,
# udp_echo, dns and ntp requests and icmp echoes all vanish, and each run ends at its
# timeout. Results are
# not logged then (log.level error): they would all be failures. (udp checks count silence
# as open, so --mix leaves them out by default in this mode.)
#
# Every --sample seconds a row of BUILD_DIR/bench/soak.tsv: minutes since start, VmRSS
# (MiB), open descriptors, results in the window per second, CPU % of one core, and the
# lateness p50 / p99 of the window's runs (upper bounds: the buckets of
# netmond_schedule_lateness_seconds, scraped from /metrics), and the reloads so far.
# BUILD_DIR/bench/soak.png plots them (gnuplot). Verdict, over the rows after --warmup:
# the median RSS of the last rows (6, or one cycle of the two alternating configurations,
# 2 x --reload-every, if longer) may exceed that of the first by at most 5% or 4 MiB
# (the larger), the median descriptors by at most 1% of the checks + 8; netmond must run
# to the end, answer every scrape, every window must have results, and each SIGHUP must be
# followed by a reload (a new netmond_config_last_reload_timestamp_seconds). Writes
# BUILD_DIR/bench/soak.{md,json}.
#
# Usage: bench/run-soak.sh [--build-dir DIR] [--duration 30m] [--checks 2000]
#          [--interval 1s] [--timeout 500ms] [--mix "tcp udp udp_echo icmp dns http"]
#          [--failing 5] [--reload-every 60] [--sample 10] [--warmup 120] [--blackhole 0|1]
#   --duration: seconds, or with a unit: 90s, 30m, 2h (at most 24h).
# Exit: 0 no growth; 1 growth or a failure; 2 usage.
# shellcheck disable=SC2154 # variables set by bench_options
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
BENCH_NAME=soak

bench_options "${BASH_SOURCE[0]}" build-dir=build/default duration=30m checks=2000:10..100000 \
  interval=1s timeout=500ms mix="tcp udp udp_echo icmp dns http" failing=5:0..100 \
  reload-every=60:0..86400 sample=10:1..3600 warmup=120:0..86400 blackhole=0:0..1 -- "$@"
if ((blackhole)) && [[ " $* " != *" --mix "* ]]; then mix="tcp udp_echo icmp dns http ntp"; fi
case $duration in
  *h) seconds=$((${duration%h} * 3600)) ;;
  *m) seconds=$((${duration%m} * 60)) ;;
  *s) seconds=${duration%s} ;;
  *) seconds=$duration ;;
esac
[[ $seconds =~ ^[0-9]+$ ]] && ((seconds >= 1 && seconds <= 86400)) ||
  bench_die "--duration: seconds or 90s, 30m, 2h (at most 24h), not '$duration'"
((warmup + 12 * sample <= seconds)) ||
  bench_die "--duration must leave 12 samples after the warm-up (--warmup $warmup, --sample $sample)"
read -r -a types <<<"$mix"
for t in "${types[@]}"; do
  [[ " tcp udp udp_echo icmp dns http " == *" $t "* || ($blackhole == 1 && $t == ntp) ]] ||
    bench_die "--mix: unknown type '$t' (ntp only with --blackhole 1)"
done

netmond_bin=$build_dir/daemon/netmond
echo_bin=$build_dir/echo/netmond-echo
[[ -x $netmond_bin && -x $echo_bin ]] || bench_die "$netmond_bin or $echo_bin not built"
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
dnsmasq_bin=/usr/sbin/dnsmasq
curl_bin=$(command -v curl) || bench_die "curl not found (scripts/install-deps.sh installs it)"
dig_bin=$(command -v dig) || bench_die "dig not found (scripts/install-deps.sh installs bind9-dnsutils)"
gnuplot_bin=$(command -v gnuplot || true)
probe_bin=$netmond_bin
bench_prepare "the daemon" "nothing"
name=bench.test
address=192.0.2.1 # TEST-NET-1: served by dnsmasq, never contacted

in_ns=()
if ((blackhole)); then
  ns=netmond-soak-$$
  ip netns add "$ns" || bench_die "cannot create a network namespace (needs root)"
  trap 'bench_cleanup; rm -rf "$tmp"; ip netns del "$ns" 2>/dev/null' EXIT
  ip -n "$ns" link set lo up
  ip -n "$ns" addr add 10.255.255.254/16 dev lo
  ip netns exec "$ns" nft -f - <<'NFT' || bench_die "nft failed (scripts/install-deps.sh installs nftables)"
table inet netmond_blackhole {
  chain input { type filter hook input priority 0; ip daddr 10.255.0.0/16 ip daddr != 10.255.255.254 drop; }
}
NFT
  in_ns=(ip netns exec "$ns")
  http_port=80 dns_port=53 echo_port=7 silent_port=7 closed_tcp=80 closed_udp=7
  bench_log "bench soak: every check into a black hole (namespace $ns: 10.255.0.0/16 dropped)"
else
  bench_start_local_peers soak
  silent_port=$(bench_free_port udp)
  bench_start silent_pid "$out/logs/soak-silent.log" "$echo_bin" --listen "127.0.0.1:$silent_port" \
    --allow 10.0.0.0/8
  closed_tcp=$(bench_free_port tcp) closed_udp=$(bench_free_port udp)
  bench_log "bench soak: nginx :$http_port, dnsmasq :$dns_port, netmond-echo :$echo_port, silent :$silent_port"
fi

# write_config VARIANT FILE: the checks; variant b changes every tenth check's timeout,
# drops the last 1% and adds 1% under new names.
write_config() {
  awk -v n="$checks" -v mix="$mix" -v interval="$interval" -v timeout="$timeout" \
    -v http="$http_port" -v dns="$dns_port" -v echo_port="$echo_port" -v qname="$name" \
    -v silent="$silent_port" -v ctcp="$closed_tcp" -v cudp="$closed_udp" \
    -v failing="$failing" -v metrics="$metrics_port" -v variant="$1" -v blackhole="$blackhole" '
    BEGIN {
      k = split(mix, t, " ")
      print "control: {socket: \"\"}"
      printf "metrics: {listen: \"127.0.0.1:%d\"}\n", metrics
      if (blackhole) print "log: {format: json, results: changes, level: error}"
      else print "log: {format: json, results: changes}"
      printf "defaults: {interval: %s, timeout: %s, retries: 0}\n", interval, timeout
      print "servers:"
      drop = int(n / 100)
      for (i = 0; i < n + drop; i++) {
        if (variant == "a" && i >= n) break
        if (variant == "b" && i >= n - drop && i < n) continue
        type = t[i % k + 1]
        bad = (i % 100) < failing
        if (blackhole) { bad = 0; addr = sprintf("10.255.%d.%d", int(i / 250) % 250, i % 250 + 1) }
        else if (type == "icmp") addr = sprintf("127.0.%d.%d", int(i / 254) % 256, i % 254 + 1)
        else addr = "127.0.0.1"
        if (type == "tcp") svc = sprintf("{type: tcp, port: %d", bad ? ctcp : http)
        else if (type == "udp") svc = sprintf("{type: udp, port: %d, payload: x", bad ? cudp : echo_port)
        else if (type == "udp_echo") svc = sprintf("{type: udp_echo, port: %d", bad ? silent : echo_port)
        else if (type == "icmp") svc = "{type: icmp"
        else if (type == "dns" && blackhole) svc = sprintf("{type: dns, server: %s, query: %s", addr, qname)
        else if (type == "dns") svc = sprintf("{type: dns, port: %d, query: %s", bad ? silent : dns, qname)
        else if (type == "ntp") svc = "{type: ntp"
        else if (blackhole) svc = sprintf("{type: http, url: \"http://%s/\"", addr)
        else svc = sprintf("{type: http, url: \"http://127.0.0.1:%d/%s\"", http, bad ? "missing" : "")
        if (variant == "b" && i % 10 == 0) svc = svc ", timeout: 400ms"
        printf "  - {address: %s, services: [%s, name: %s%d}]}\n", addr, svc, (i >= n ? "new" : "c"), i
      }
    }' >"$2"
}

# scrape: "RESULTS LATENESS_BUCKETS..." from /metrics: the count of
# netmond_schedule_lateness_seconds and its cumulative buckets (le order).
scrape() {
  "${in_ns[@]}" "$curl_bin" -s --max-time 30 "http://127.0.0.1:$metrics_port/metrics" | awk '
    /^netmond_schedule_lateness_seconds_bucket/ { b = b " " $NF }
    /^netmond_schedule_lateness_seconds_count/ { c = $NF }
    END { if (c == "") exit 1; print c b }'
}
bounds=(1 2.5 5 10 25 50 100 250 500 1000 2500 10000 inf) # ms, as kLatenessBuckets

# reload_stamp: when netmond last loaded its config (netmond_config_last_reload_timestamp_seconds).
reload_stamp() {
  "${in_ns[@]}" "$curl_bin" -s --max-time 30 "http://127.0.0.1:$metrics_port/metrics" |
    awk '/^netmond_config_last_reload_timestamp_seconds / { print $NF }'
}

# quantile Q BEFORE AFTER: the upper bound (ms) of the bucket holding the Q quantile of the
# runs between two scrapes.
quantile() {
  local -a a=($2) b=($3)
  local total=$((b[0] - a[0])) i
  ((total > 0)) || { echo nan; return; }
  for ((i = 1; i < ${#b[@]}; i++)); do
    if (((b[i] - a[i]) * 1000 >= total * $1)); then echo "${bounds[i - 1]}"; return; fi
  done
  echo inf
}

metrics_port=$(bench_free_port tcp)
cfg=$tmp/soak.yaml
write_config a "$tmp/a.yaml"
write_config b "$tmp/b.yaml"
cp "$tmp/a.yaml" "$cfg"
"$netmond_bin" --check-config -c "$cfg" >/dev/null 2>"$tmp/check.err" ||
  bench_die "the generated config does not load: $(head -n 3 "$tmp/check.err")"
log_file=$tmp/soak.log
bench_start pid "$log_file" "${in_ns[@]}" "$netmond_bin" -c "$cfg" --no-console
((blackhole)) && failing=100
bench_log "bench soak: $checks checks (${types[*]}, $failing% failing) every $interval for ${seconds}s, reload every ${reload_every}s, sample every ${sample}s, warm-up ${warmup}s; netmond pid $pid"

tsv=$out/soak.tsv
printf 'minutes\trss_mib\tfds\tresults_per_s\tcpu_pct\tlateness_p50_ms\tlateness_p99_ms\treloads\n' >"$tsv"
start=$EPOCHSECONDS
next_reload=$((start + reload_every)) reloads=0 variant=a failures=0 applied=-1
for ((i = 0; i < 50; i++)); do scrape >/dev/null 2>&1 && break; sleep 0.2; done
prev=$(scrape) || bench_die "no /metrics from netmond (log: $log_file)"
prev_cpu=$(bench_cpu_ns "$pid") prev_wall=$(date +%s%N)
while ((EPOCHSECONDS - start < seconds)); do
  sleep "$sample"
  kill -0 "$pid" 2>/dev/null || bench_die "netmond exited (log: $(tail -n 5 "$log_file"))"
  if ((reload_every > 0 && EPOCHSECONDS >= next_reload)); then
    variant=$([[ $variant == a ]] && echo b || echo a)
    cp "$tmp/$variant.yaml" "$cfg.new" && mv "$cfg.new" "$cfg"
    kill -HUP "$pid"
    reloads=$((reloads + 1)) next_reload=$((next_reload + reload_every))
  fi
  now=$(scrape) || { failures=$((failures + 1)); bench_log "bench soak: a scrape failed"; continue; }
  stamp=$(reload_stamp)
  [[ -z $stamp || $stamp == "${last_stamp:-}" ]] || applied=$((applied + 1)) last_stamp=$stamp
  cpu=$(bench_cpu_ns "$pid") wall=$(date +%s%N)
  rss=$(awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' /proc/"$pid"/status)
  fds=$(find /proc/"$pid"/fd -mindepth 1 -maxdepth 1 | wc -l)
  results=$((${now%% *} - ${prev%% *}))
  ((results > 0)) || { failures=$((failures + 1)); bench_log "bench soak: no results in a window"; }
  row=$(printf '%.2f\t%s\t%s\t%.0f\t%.1f\t%s\t%s\t%s' \
    "$(bench_calc %.4f "($EPOCHSECONDS - $start) / 60")" "$rss" "$fds" \
    "$(bench_calc %.3f "$results / (($wall - $prev_wall) / 1e9)")" \
    "$(bench_calc %.3f "100 * ($cpu - $prev_cpu) / ($wall - $prev_wall)")" \
    "$(quantile 500 "$prev" "$now")" "$(quantile 990 "$prev" "$now")" "$reloads")
  printf '%s\n' "$row" >>"$tsv"
  bench_log "bench soak: $row"
  prev=$now prev_cpu=$cpu prev_wall=$wall
done
bench_stop "$pid" || failures=$((failures + 1))
head -c 1M "$log_file" >"$out/logs/soak-netmond.log.head"
# Each SIGHUP's reload shows as a new load time in /metrics; the last may land after the
# last sample.
((applied >= reloads - 1)) || { failures=$((failures + 1)); bench_log "bench soak: $reloads SIGHUPs, $applied reloads seen in /metrics"; }

# ---- verdict -------------------------------------------------------------------------------
# median COLUMN FIRST|LAST: the median of COLUMN over the first or last rows after the
# warm-up: 6 rows, or a whole cycle of the two configurations the reloads alternate
# (2 x --reload-every) if that is longer. The two differ in what is in flight, so a window
# shorter than the cycle compared one configuration's descriptors with the other's.
window=$(( reload_every > 0 && 2 * reload_every / sample > 6 ? 2 * reload_every / sample : 6 ))
median() {
  awk -F'\t' -v w="$(bench_calc %.4f "$warmup / 60")" -v c="$1" 'NR > 1 && $1 >= w { print $c }' "$tsv" |
    { if [[ $2 == first ]]; then head -n "$window"; else tail -n "$window"; fi; } | sort -g |
    awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}
rss0=$(median 2 first) rss1=$(median 2 last) fd0=$(median 3 first) fd1=$(median 3 last)
rss_allowed=$(bench_calc %.1f "($rss0 * 0.05 > 4 ? $rss0 * 0.05 : 4)")
fd_allowed=$((checks / 100 + 8))
rss_grew=$(bench_calc %d "$rss1 - $rss0 > $rss_allowed")
fd_grew=$(bench_calc %d "$fd1 - $fd0 > $fd_allowed")
((rss_grew)) && bench_log "bench soak: RSS grew from $rss0 to $rss1 MiB (allowed: +$rss_allowed)"
((fd_grew)) && bench_log "bench soak: descriptors grew from $fd0 to $fd1 (allowed: +$fd_allowed)"
p99_max=$(awk -F'\t' 'NR > 1 { print $7 }' "$tsv" | sort -g | tail -n 1)
rate=$(awk -F'\t' 'NR > 1 { s += $4; n++ } END { printf "%.0f", n ? s / n : 0 }' "$tsv")
cpu_avg=$(awk -F'\t' 'NR > 1 { s += $5; n++ } END { printf "%.1f", n ? s / n : 0 }' "$tsv")

if [[ -n $gnuplot_bin ]]; then
  "$gnuplot_bin" <<PLOT || bench_log "bench soak: gnuplot failed"
set terminal pngcairo size 1000,900 font ",10"
set output "$out/soak.png"
set datafile separator "\t"
set key autotitle columnhead
set multiplot layout 3,1 title "netmond soak: $checks checks ($failing% failing) every $interval, reload every ${reload_every}s, ${seconds}s"
set xlabel "minutes"
set grid
set ylabel "MiB"
plot "$tsv" using 1:2 with lines lw 2 title "resident memory (VmRSS)"
set ylabel "descriptors"
plot "$tsv" using 1:3 with lines lw 2 title "open descriptors"
set ylabel "ms"
set logscale y
plot "$tsv" using 1:6 with steps lw 2 title "lateness p50 (bucket bound)", "$tsv" using 1:7 with steps lw 2 title "lateness p99 (bucket bound)"
unset multiplot
PLOT
else
  bench_log "bench soak: no gnuplot (scripts/install-deps.sh installs gnuplot-nox): no plot"
fi

ok=$((failures == 0 && !rss_grew && !fd_grew))
table="| checks | duration | reloads | results/s | CPU % | RSS MiB after warm-up → end | fds after warm-up → end | lateness p99 max (ms, bucket bound) | verdict |
|---:|---:|---:|---:|---:|---:|---:|---:|---|
| $(bench_fmt "$checks") | ${seconds} s | $reloads | $(bench_fmt "$rate") | $cpu_avg | $rss0 → $rss1 (+$rss_allowed allowed) | $fd0 → $fd1 (+$fd_allowed allowed) | $p99_max | $(((ok)) && echo "no growth" || echo "FAILED") |

Mix: ${types[*]}, $failing% failing; interval $interval, timeout $timeout; samples in $tsv, plot in $out/soak.png."
line="BENCH soak checks=$checks seconds=$seconds reloads=$reloads rss_start_mib=$rss0 rss_end_mib=$rss1 fds_start=$fd0 fds_end=$fd1 lateness_p99_max_ms=$p99_max ok=$ok"
members="  \"checks\": $checks, \"seconds\": $seconds, \"reloads\": $reloads, \"results_per_s\": $rate, \"cpu_pct\": $cpu_avg,
  \"rss_mib\": {\"after_warmup\": $rss0, \"end\": $rss1, \"allowed_growth\": $rss_allowed},
  \"fds\": {\"after_warmup\": $fd0, \"end\": $fd1, \"allowed_growth\": $fd_allowed},
  \"lateness_p99_max_ms\": $(bench_json_str "$p99_max"), \"samples\": $(bench_json_str "$tsv"),"
BENCH_CONTENDED=0 BENCH_RERUNS=0
bench_report "$ok" "$failures" "$table" "$line" "$members"
