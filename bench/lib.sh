# shellcheck shell=bash
# bench/lib.sh: helpers shared by the bench/run-*.sh benchmarks. Sourced, not run.
#
# Every process a benchmark starts goes through bench_start, which records its
# PID; bench_stop stops it by that PID (SIGTERM, then SIGKILL after a grace
# period) and the EXIT trap installed here stops whatever is still running, so
# nothing outlives the benchmark, even on failure or Ctrl-C.

BENCH_PIDS=()

bench_log() { printf '%s\n' "$*" >&2; }
bench_die() {
  bench_log "bench: error: $*"
  exit 1
}

# bench_start VAR LOGFILE CMD...: starts CMD in the background, stdout+stderr to
# LOGFILE, and stores its PID in VAR.
bench_start() {
  local -n _pid_out=$1
  local log=$2
  shift 2
  : >"$log"
  "$@" >>"$log" 2>&1 & # append mode: others may add to the same log meanwhile
  _pid_out=$!
  BENCH_PIDS+=("$_pid_out")
}

# bench_stop PID: SIGTERM, wait up to 3 s, then SIGKILL. Returns the exit status
# (143 or 137 when it had to be signalled and did not handle it).
bench_stop() {
  local pid=$1 i rc=0
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 30; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      bench_log "bench: pid $pid ignored SIGTERM for 3 s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  wait "$pid" 2>/dev/null || rc=$?
  bench_forget "$pid"
  return "$rc"
}

# bench_forget PID: PID has been waited for; the EXIT trap need not stop it.
bench_forget() {
  local kept=() p
  for p in "${BENCH_PIDS[@]}"; do [[ $p == "$1" ]] || kept+=("$p"); done
  BENCH_PIDS=("${kept[@]}")
}

bench_cleanup() {
  local p
  for p in "${BENCH_PIDS[@]}"; do bench_stop "$p" || true; done
}
trap bench_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# bench_usage SCRIPT [STATUS]: prints SCRIPT's header comment (from line 2 to the
# `set -euo` line, shellcheck directives left out) and exits STATUS (default 2).
bench_usage() {
  sed -n '2,/^set -euo/p' "$1" | sed '$d; /^# shellcheck /d; s/^# \{0,1\}//'
  exit "${2:-2}"
}

# bench_options SCRIPT NAME=DEFAULT[:MIN..MAX]... -- ARG...: a benchmark's options and
# command line. Sets the variable NAME, dashes as underscores (build-dir=x sets
# build_dir), to DEFAULT, then to VALUE for every "--NAME VALUE" in ARG; with MIN..MAX,
# the value must be a whole number in that range. -h or --help prints SCRIPT's usage and
# exits 0; anything else prints it and exits 2; a value out of range is fatal.
bench_options() {
  local script=$1 names=() ranges=() n v i lo hi
  shift
  while (($#)) && [[ $1 != -- ]]; do
    n=${1%%=*} v=${1#*=}
    names+=("$n") ranges+=("")
    if [[ $v =~ ^(.*):([0-9]+)\.\.([0-9]+)$ ]]; then
      v=${BASH_REMATCH[1]} ranges[-1]="${BASH_REMATCH[2]} ${BASH_REMATCH[3]}"
    fi
    printf -v "${n//-/_}" '%s' "$v"
    shift
  done
  shift
  while (($#)); do
    case $1 in -h | --help) bench_usage "$script" 0 ;; esac
    n=${1#--}
    if (($# < 2)) || [[ $1 != --* || " ${names[*]} " != *" $n "* ]]; then bench_usage "$script" 2; fi
    printf -v "${n//-/_}" '%s' "$2"
    shift 2
  done
  for i in "${!names[@]}"; do
    [[ -n ${ranges[i]} ]] || continue
    n=${names[i]//-/_}
    v=${!n}
    read -r lo hi <<<"${ranges[i]}"
    if [[ ! $v =~ ^(0|[1-9][0-9]{0,8})$ ]] || ((v < lo || v > hi)); then
      bench_die "--${names[i]} must be $lo..$hi"
    fi
  done
}

# bench_free_port udp|tcp: prints a port in 20000..32767 that nothing on this host
# is bound to (udp) or listens on (tcp) right now. Below the kernel's ephemeral range
# (net.ipv4.ip_local_port_range, 32768..60999 by default): a port there may be the local
# end of a client's connection, which makes a listener's bind fail (the scale benchmark
# leaves thousands in TIME_WAIT). (A race with another process is possible; the
# benchmark notices when its server fails to answer.)
bench_free_port() {
  local proto=$1 flag used port i
  case $proto in
    udp) flag=-Hlnu ;;
    tcp) flag=-Hlnt ;;
    *) bench_die "bench_free_port: udp or tcp, not '$proto'" ;;
  esac
  used=$(ss "$flag" 2>/dev/null | awk '{n = split($4, a, ":"); print a[n]}')
  for ((i = 0; i < 100; i++)); do
    port=$((20000 + RANDOM % 12768))
    grep -qx "$port" <<<"$used" || {
      echo "$port"
      return 0
    }
  done
  bench_die "no free ${proto^^} port found"
}

# bench_cpu_ns PID: CPU time (user+system, all threads, also those that have exited) the
# process has used, in nanoseconds, from utime+stime of /proc/PID/stat (clock ticks, 10 ms).
# Not the sum of /proc/PID/task/*/schedstat: that misses threads that have ended, such as
# netmond's /metrics formatting threads.
bench_cpu_ns() {
  local stat
  stat=$(cat /proc/"$1"/stat 2>/dev/null) || { echo 0; return; }
  # Fields after the command name, which is in parentheses and may hold spaces.
  awk -v hz="$(getconf CLK_TCK)" '{printf "%.0f\n", ($12 + $13) * 1e9 / hz}' <<<"${stat##*) }"
}

# bench_median N...: the median of the numbers given (mean of the middle two for
# an even count).
bench_median() {
  printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {
    if (NR == 0) { print "nan"; exit }
    m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
    printf "%.10g\n", m }'
}

# bench_field LINE KEY: the value of KEY=VALUE in a whitespace-separated line.
bench_field() {
  tr ' ' '\n' <<<"$1" | awk -F= -v k="$2" '$1 == k {print $2; exit}'
}

# bench_busy_ns: CPU time all CPUs of this host have spent busy (user, nice,
# system, irq, softirq, steal) since boot, in nanoseconds, from /proc/stat.
# Around a run, (busy delta - the benchmark's own processes' CPU) / wall time is
# the load that something else put on the machine meanwhile.
bench_busy_ns() {
  awk -v hz="$(getconf CLK_TCK)" '$1 == "cpu" { printf "%.0f\n", ($2 + $3 + $4 + $7 + $8 + $9) * 1e9 / hz; exit }' /proc/stat
}

# bench_prepare NEEDS OTHERS: the common start of a probe benchmark, after its options
# (BENCH_NAME, build_dir and probe_bin set). netmond_ok=0 and netmond_why when probe_bin
# is not built (NEEDS: what it needs in netmond_probes; OTHERS: the clients measured
# without it); probe_args from $PROBE_ARGS; out=BUILD_DIR/bench (or $BENCH_OUT_DIR, e.g.
# for the smoke tests, which must not overwrite `make bench`'s figures) with logs/
# (BENCH_NAME's old logs removed); tmp, a temporary directory removed on exit.
# shellcheck disable=SC2034,SC2154 # the variables are the benchmark's
bench_prepare() {
  netmond_ok=1 netmond_why=""
  if [[ ! -x $probe_bin ]]; then
    netmond_ok=0 netmond_why="not built ($probe_bin: needs $1 in netmond_probes)"
    bench_log "bench $BENCH_NAME: $probe_bin $netmond_why; measuring the floor and $2 only"
  fi
  read -r -a probe_args <<<"${PROBE_ARGS:-}"
  out=${BENCH_OUT_DIR:-$build_dir/bench}
  mkdir -p "$out/logs"
  rm -f "$out/logs/$BENCH_NAME"-*
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/netmond-bench-$BENCH_NAME.XXXXXX")
  trap 'bench_cleanup; rm -rf "$tmp"' EXIT
}

# bench_calc FORMAT EXPR: EXPR (awk arithmetic) printed with printf FORMAT.
bench_calc() { awk "BEGIN { printf \"$1\", ($2) }"; }

# ---- a client's part of a round ---------------------------------------------------------
# A probe benchmark measures each client in turn against one server it started. It sets
# BENCH_NAME (for messages), BENCH_SERVER_PID and BENCH_SERVER_LOG first. A client's
# part is sampled around (bench_sample_before/after: the server's CPU B_SRV0/1, the host's
# busy time B_BUSY0/1, the wall clock B_WALL0/1, all in ns), and its figures go to:
#   P_CPU    client CPU µs per probe run
#   P_RPS    runs per second (wall)
#   P_FAIL   runs that failed or did not finish
#   P_SRV    the server's CPU µs per request
#   P_OTHER  CPU used by anything else, % of one core
#   P_EXTRA  client-specific figures (an array)
#   P_LINE   a summary for the log (set by the benchmark)

bench_sample_before() { B_SRV0=$(bench_cpu_ns "$BENCH_SERVER_PID") B_BUSY0=$(bench_busy_ns) B_WALL0=$(date +%s%N); }
bench_sample_after() { B_SRV1=$(bench_cpu_ns "$BENCH_SERVER_PID") B_BUSY1=$(bench_busy_ns) B_WALL1=$(date +%s%N); }

# An empty BENCH_SERVER_PID: no server process (icmp: the kernel answers); its CPU reads 0.
bench_check_server() {
  [[ -z ${BENCH_SERVER_PID:-} ]] || kill -0 "$BENCH_SERVER_PID" 2>/dev/null ||
    bench_die "the server exited (log: $BENCH_SERVER_LOG)"
}

# bench_start_server PROTO WHAT START: picks a free PROTO (udp|tcp) port, BENCH_PORT, and
# calls START PORT, which starts the server WHAT with bench_start (its PID in
# BENCH_SERVER_PID, its output in BENCH_SERVER_LOG.out) and returns 0 once it answers
# (bench_await). When it does not, stops it, shows the end of its logs and tries another
# port once (a port taken in between), then gives up.
bench_start_server() {
  local proto=$1 what=$2 start=$3 attempt
  for attempt in 1 2; do
    BENCH_PORT=$(bench_free_port "$proto") BENCH_SERVER_PID=
    : >"$BENCH_SERVER_LOG"
    "$start" "$BENCH_PORT" && return 0
    [[ -z $BENCH_SERVER_PID ]] || bench_stop "$BENCH_SERVER_PID" || true
    bench_log "bench $BENCH_NAME: $what did not answer on 127.0.0.1:$BENCH_PORT (attempt $attempt):"
    cat "$BENCH_SERVER_LOG" "$BENCH_SERVER_LOG.out" 2>/dev/null | tail -n 5 | sed 's/^/    /' >&2
  done
  bench_die "$what did not start"
}

# bench_await CMD...: runs CMD every 0.1 s until it succeeds (0) while the server runs; 1
# when the server exited or 5 s passed.
bench_await() {
  local i
  for ((i = 0; i < 50; i++)); do
    kill -0 "$BENCH_SERVER_PID" 2>/dev/null || return 1
    "$@" && return 0
    sleep 0.1
  done
  return 1
}

# bench_other_pct CLIENT_CPU_NS: the host's busy time during the part minus the client's
# and the server's CPU, in % of one core.
bench_other_pct() {
  bench_calc %.0f "(o = ($B_BUSY1 - $B_BUSY0) - ($1) - ($B_SRV1 - $B_SRV0)) > 0 ? 100 * o / ($B_WALL1 - $B_WALL0) : 0"
}

# bench_server_us N: the server's CPU µs per request during the part, for N requests.
bench_server_us() { bench_calc %.3f "($B_SRV1 - $B_SRV0) / 1000 / ($1 > 0 ? $1 : 1)"; }

# bench_run_result LOG CMD...: runs CMD, a client that prints a "RESULT key=value ..."
# line, in the background and waits for it, sampled around. Sets RESULT. Returns 1 when
# CMD printed no RESULT line; a client that exits non-zero with a RESULT line has counted
# its failures there (logged here).
bench_run_result() {
  local log=$1 pid rc=0
  shift
  bench_sample_before
  bench_start pid "$log" "$@"
  wait "$pid" || rc=$?
  bench_forget "$pid"
  bench_sample_after
  RESULT=$(grep '^RESULT ' "$log" || true)
  [[ -n $RESULT ]] || {
    bench_log "bench $BENCH_NAME: $1 printed no result (exit $rc; log: $log)"
    tail -n 5 "$log" | sed 's/^/    /' >&2
    return 1
  }
  if ((rc != 0)); then
    bench_log "bench $BENCH_NAME: ${1##*/} reported failures (exit $rc; log: $log):"
    grep -v '^RESULT ' "$log" | head -n 5 | sed 's/^/    /' >&2
  fi
  bench_check_server
}

# bench_result_figures CPU_KEY RATE_KEY [KEY...]: P_CPU, P_RPS, P_FAIL (failed +
# incomplete), P_SRV and P_OTHER from RESULT and the samples. The client's own CPU, for
# P_OTHER, is cpu_us plus the KEYs (µs the client spent outside its runs).
bench_result_figures() {
  local ok failed incomplete cpu k
  ok=$(bench_field "$RESULT" ok) failed=$(bench_field "$RESULT" failed)
  incomplete=$(bench_field "$RESULT" incomplete) cpu=$(bench_field "$RESULT" cpu_us)
  for k in "${@:3}"; do cpu+=" + $(bench_field "$RESULT" "$k")"; done
  P_CPU=$(bench_field "$RESULT" "$1")
  P_RPS=$(bench_field "$RESULT" "$2")
  P_FAIL=$((failed + incomplete))
  P_SRV=$(bench_server_us "$((ok + failed))")
  P_OTHER=$(bench_other_pct "($cpu) * 1000")
}

# bench_process_loop N MAX_SECONDS RESULTS TIMES CMD...: runs CMD N times one after
# another, as a cron or Nagios-style monitor does (stopping early after MAX_SECONDS):
# one line per run in RESULTS, "OUTPUT EXIT_CODE" (CMD's stdout, newlines as commas), then
# the shell's `times` (its own CPU, then its children's) in TIMES.
bench_process_loop() {
  local n=$1 end=$((EPOCHSECONDS + $2)) results=$3 times_file=$4 i out rc
  shift 4
  for ((i = 0; i < n; i++)); do
    ((EPOCHSECONDS < end)) || break
    rc=0
    out=$("$@") || rc=$?
    printf '%s %d\n' "${out//$'\n'/,}" "$rc"
  done >"$results"
  times >"$times_file"
}

# bench_times_s LINE: a `times` line "0m1.234s 0m0.567s" -> user+sys seconds.
bench_times_s() { awk '{ s = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); s += a[1] * 60 + a[2] } printf "%.6f\n", s }' <<<"$1"; }

# bench_run_processes LOG N MAX_SECONDS EXPECT CMD...: bench_process_loop in the
# background, sampled around; a run is good when its line is EXPECT ("OUTPUT 0"). Writes a
# summary to LOG and sets the P_* figures: P_CPU is the processes' user+sys (exec, dynamic
# linking, library initialisation, the query) plus the launching shell's own CPU (fork,
# wait), per run; P_EXTRA=(process µs per run, launch µs per run); P_FAIL counts the N
# runs that were not good, run or not. Returns 1 when the loop failed or ran nothing.
bench_run_processes() {
  local log=$1 n=$2 max=$3 expect=$4 pid rc=0
  local results=$log.results times_file=$log.times
  shift 4
  rm -f "$results" "$times_file"
  bench_sample_before
  bench_process_loop "$n" "$max" "$results" "$times_file" "$@" &
  pid=$!
  BENCH_PIDS+=("$pid")
  wait "$pid" || rc=$?
  bench_forget "$pid"
  bench_sample_after
  if ((rc != 0)) || [[ ! -s $times_file ]]; then
    bench_log "bench $BENCH_NAME: the ${1##*/} loop failed (exit $rc)"
    return 1
  fi
  local n_done ok self children
  n_done=$(wc -l <"$results") ok=$(grep -cxF -- "$expect" "$results" || true)
  self=$(bench_times_s "$(sed -n 1p "$times_file")")
  children=$(bench_times_s "$(sed -n 2p "$times_file")")
  {
    echo "${1##*/} runs: $n_done, as expected ($expect): $ok"
    grep -vxF -- "$expect" "$results" | sort | uniq -c | sed 's/^/  not as expected (output, exit code): /'
    echo "times (shell, then its children):"
    cat "$times_file"
  } >"$log"
  bench_check_server
  ((n_done > 0)) || return 1
  local proc launch
  proc=$(bench_calc %.3f "$children * 1e6 / $n_done")
  launch=$(bench_calc %.3f "$self * 1e6 / $n_done")
  P_CPU=$(bench_calc %.3f "$proc + $launch")
  P_RPS=$(bench_calc %.1f "$n_done * 1e9 / ($B_WALL1 - $B_WALL0)")
  P_FAIL=$((n - ok))
  P_SRV=$(bench_server_us "$n_done")
  P_OTHER=$(bench_other_pct "($self + $children) * 1e9")
  P_EXTRA=("$proc" "$launch")
}

# ---- rounds ------------------------------------------------------------------------------

# bench_rounds ROUNDS RETRIES BUSY_LIMIT PART...: measures every PART (the function
# measure_PART ROUND, which sets the P_* figures and P_LINE) in each of ROUNDS rounds, in
# an order that rotates from round to round (round 1: the PARTs as given; round 2: from
# the second on, then the first; ...). A round during which other processes used more
# than BUSY_LIMIT % of a core is run again, RETRIES times at most, then kept and flagged
# (BENCH_CONTENDED=1; BENCH_RERUNS counts the reruns). A measure_PART that returns 1 drops
# its PART from then on (BENCH_DROPPED lists them). Kept figures go to the associative
# array BR, one space-separated list per "PART FIELD" (cpu rps srv other fail x0 x1 ...;
# ratio: PART's P_CPU / the first PART's in the same round).
# shellcheck disable=SC2034 # BENCH_CONTENDED and friends are for the caller
bench_rounds() {
  local rounds=$1 retries=$2 busy_limit=$3 r try i p line busy
  shift 3
  local parts=("$@") order
  declare -gA BR=()
  declare -gA BR_ROUND
  BENCH_CONTENDED=0 BENCH_RERUNS=0 BENCH_DROPPED=()
  for ((r = 1; r <= rounds; r++)); do
    for ((try = 0; try <= retries; try++)); do
      order=()
      for ((i = 0; i < ${#parts[@]}; i++)); do order+=("${parts[$(((r - 1 + i) % ${#parts[@]}))]}"); done
      line="round $r:" busy=0 BR_ROUND=()
      for p in "${order[@]}"; do
        [[ " ${BENCH_DROPPED[*]} " == *" $p "* ]] && continue
        P_EXTRA=()
        if ! "measure_$p" "$r"; then
          BENCH_DROPPED+=("$p")
          continue
        fi
        BR_ROUND[$p cpu]=$P_CPU BR_ROUND[$p rps]=$P_RPS BR_ROUND[$p srv]=$P_SRV
        BR_ROUND[$p other]=$P_OTHER BR_ROUND[$p fail]=$P_FAIL
        for i in "${!P_EXTRA[@]}"; do BR_ROUND[$p x$i]=${P_EXTRA[$i]}; done
        line+=" $P_LINE;"
        if ((P_OTHER > busy)); then busy=$P_OTHER; fi
      done
      if ((busy > busy_limit)); then
        if ((try < retries)); then
          bench_log "bench $BENCH_NAME: $line — other processes busy, round run again"
          BENCH_RERUNS=$((BENCH_RERUNS + 1))
          continue
        fi
        BENCH_CONTENDED=1
        line+=" — CONTENDED"
      fi
      break
    done
    bench_log "bench $BENCH_NAME: $line"
    for p in "${!BR_ROUND[@]}"; do BR[$p]+="${BR[$p]:+ }${BR_ROUND[$p]}"; done
    for p in "${parts[@]}"; do
      [[ -n ${BR_ROUND[$p cpu]:-} && -n ${BR_ROUND[${parts[0]} cpu]:-} ]] || continue
      BR[$p ratio]+="${BR[$p ratio]:+ }$(bench_calc %.3f "${BR_ROUND[$p cpu]} / ${BR_ROUND[${parts[0]} cpu]}")"
    done
  done
}

# bench_probe_rounds PROGRAM PART...: bench_rounds with the benchmark's ROUNDS, RETRIES and
# busy limit (rounds, retries, busy_limit), leaving out the netmond* PARTs when
# netmond_ok is 0 (PROGRAM not built). When PROGRAM failed in a part, sets netmond_ok=0,
# netmond_why and client_error=1 (else client_error=0).
# shellcheck disable=SC2034,SC2154 # the variables are the benchmark's
bench_probe_rounds() {
  local program=$1 parts=() p
  shift
  for p in "$@"; do
    if [[ $p != netmond* ]] || ((netmond_ok)); then parts+=("$p"); fi
  done
  bench_rounds "$rounds" "$retries" "$busy_limit" "${parts[@]}"
  client_error=0
  if [[ " ${BENCH_DROPPED[*]} " == *" netmond"* ]]; then
    netmond_ok=0 netmond_why="$program failed (see $out/logs)" client_error=1
  fi
}

# ---- report ------------------------------------------------------------------------------

# bench_med PART FIELD [FORMAT]: the median of PART's FIELD over the kept rounds (printf
# FORMAT, default %.1f); "" when PART has none.
bench_med() {
  local v=${BR[$1 $2]:-}
  [[ -n $v ]] || return 0
  # shellcheck disable=SC2086 # a space-separated list
  bench_calc "${3:-%.1f}" "$(bench_median $v)"
}

# bench_sum PART FIELD: the sum of PART's FIELD over the kept rounds.
bench_sum() { tr ' ' '\n' <<<"${BR[$1 $2]:-0}" | awk '{ s += $1 } END { printf "%d\n", s }'; }

# bench_range PART FIELD: "min–max" of PART's FIELD.
bench_range() { tr ' ' '\n' <<<"${BR[$1 $2]:-}" | sort -g | sed -n '1p;$p' | xargs | awk '{printf "%.1f–%.1f\n", $1, $2}'; }

# bench_list PART FIELD: PART's FIELD as a JSON array.
bench_list() { echo "[$(tr ' ' ',' <<<"${BR[$1 $2]:-}")]"; }

# bench_row LABEL PART CPU RATIO RPS SERVER_US: one row of a probe benchmark's table
# (client, CPU µs per run, its range over the rounds, ratio, runs/s, the server's CPU,
# failed runs).
bench_row() { echo "| $1 | $3 | $(bench_range "$2" cpu) | $4 | $(bench_fmt "$5") | $6 | $(bench_sum "$2" fail) |"; }

# bench_fmt N: N rounded, with thousands separators.
bench_fmt() { printf '%.0f\n' "$1" | sed ':a; s/\B[0-9]\{3\}\>/,&/; ta'; }

# bench_json_bool N, bench_jnum VALUE ("" -> null), bench_num VALUE ("" -> nan),
# bench_json_str TEXT (a JSON string: quotes and backslashes escaped).
bench_json_bool() { if (($1)); then echo true; else echo false; fi; }
bench_jnum() { if [[ -z ${1:-} ]]; then echo null; else echo "$1"; fi; }
bench_num() { if [[ -z ${1:-} ]]; then echo nan; else echo "$1"; fi; }
bench_json_str() {
  local t=${1//\\/\\\\}
  printf '"%s"\n' "${t//\"/\\\"}"
}

# bench_json_part PART SERVER [NAME...]: PART's figures as the members of a JSON object
# (no braces): the median CPU µs per run, every round's CPU, runs/s, SERVER's CPU per
# request (left out when SERVER is ""), other CPU %, the failed runs, and P_EXTRA's figures
# under the NAMEs.
bench_json_part() {
  local p=$1 i=0 name
  printf '"cpu_us_per_run_median": %s, "cpu_us_per_run": %s, "runs_per_s": %s' \
    "$(bench_jnum "$(bench_med "$p" cpu)")" "$(bench_list "$p" cpu)" "$(bench_list "$p" rps)"
  [[ -z $2 ]] || printf ', "%s_cpu_us_per_request": %s' "$2" "$(bench_list "$p" srv)"
  printf ', "other_cpu_pct": %s, "failed_runs": %s' "$(bench_list "$p" other)" "$(bench_sum "$p" fail)"
  for name in "${@:3}"; do
    printf ', "%s": %s' "$name" "$(bench_list "$p" "x$i")"
    i=$((i + 1))
  done
}

# bench_report OK FAILURES TABLE BENCH_LINE JSON: the end of a probe benchmark. Writes
# TABLE to OUT/BENCH_NAME.md and OUT/BENCH_NAME.json: an object with "benchmark", "date",
# the members in JSON (lines of `"key": value,`), "failures", "ok", "contended" and
# "reruns"; prints TABLE and BENCH_LINE; exits 0 when OK is 1, else 1.
bench_report() {
  local ok=$1 failures=$2 table=$3 line=$4 members=$5
  printf '%s\n' "$table" >"$out/$BENCH_NAME.md"
  {
    echo "{"
    echo "  \"benchmark\": \"$BENCH_NAME\","
    echo "  \"date\": \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\","
    printf '%s\n' "$members"
    echo "  \"failures\": $failures,"
    echo "  \"ok\": $(bench_json_bool "$ok"),"
    echo "  \"contended\": $(bench_json_bool "$BENCH_CONTENDED"),"
    echo "  \"reruns\": $BENCH_RERUNS"
    echo "}"
  } >"$out/$BENCH_NAME.json"
  echo
  printf '%s\n' "$table"
  echo
  echo "$line"
  ((ok)) || exit 1
  exit 0
}

# ---- loopback servers shared by the benchmarks --------------------------------------------
# Each is a START function for bench_start_server (bench_start_nginx PORT, ...): it starts
# the server on 127.0.0.1:PORT with bench_start and returns 0 once it answers.

# bench_start_nginx PORT: nginx ($nginx_bin) serving $tmp/www (and its temp paths under
# $tmp/temp), error log $nginx_log; asked with $curl_bin. One process (master_process off),
# so its CPU is that of one PID; no access log. keepalive_timeout 0: nginx closes each
# connection after its response, whichever client sent the request.
# shellcheck disable=SC2154 # the benchmark sets the variables named above
bench_nginx_answers() {
  [[ $("$curl_bin" -s -o /dev/null -w '%{http_code}' --max-time 1 "http://127.0.0.1:$1/" || true) == 200 ]]
}
# shellcheck disable=SC2154 # the benchmark sets the variables named above
bench_start_nginx() {
  local port=$1
  mkdir -p "$tmp/www" "$tmp/temp"
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
  bench_start BENCH_SERVER_PID "$nginx_log.out" "$nginx_bin" -p "$tmp/" -c "$tmp/nginx.conf" -e "$nginx_log"
  bench_await bench_nginx_answers "$port"
}

# bench_start_dnsmasq PORT: dnsmasq ($dnsmasq_bin) answering $name A $address, log
# $dnsmasq_log; asked with $dig_bin. In the foreground (one process: UDP is answered in
# it; only TCP would fork), no config file, no /etc/hosts, no upstream servers
# (--no-resolv) and every other name in .test answered NXDOMAIN locally (--local), so it
# never sends a query anywhere; 127.0.0.1 only (--bind-interfaces); no query log.
# bench_dig_cmd PORT sets DIG to the dig command asking it for the name's A record.
# shellcheck disable=SC2154 # the benchmark sets the variables named above
bench_dig_cmd() { DIG=("$dig_bin" @127.0.0.1 -p "$1" +tries=1 +time=2 "$name" A +short); }
# shellcheck disable=SC2154 # the benchmark sets the variables named above
bench_dnsmasq_answers() {
  bench_dig_cmd "$1"
  [[ $("${DIG[@]}" 2>/dev/null) == "$address" ]]
}
# shellcheck disable=SC2154 # the benchmark sets the variables named above
bench_start_dnsmasq() {
  bench_start BENCH_SERVER_PID "$dnsmasq_log.out" "$dnsmasq_bin" --keep-in-foreground \
    --conf-file=/dev/null --no-hosts --no-resolv --no-poll --local=/test/ \
    --user=root --pid-file="$tmp/dnsmasq.pid" --log-facility="$dnsmasq_log" \
    --bind-interfaces --listen-address=127.0.0.1 --port="$1" \
    --host-record="$name,$address"
  bench_await bench_dnsmasq_answers "$1"
}

# bench_start_echo PORT: netmond-echo ($echo_bin) on 127.0.0.1:PORT, log $echo_log, without
# its per-source rate limit in effect: every client here is 127.0.0.1, which the default
# limit is there to throttle.
# shellcheck disable=SC2154 # the benchmark sets the variables named above
bench_echo_answers() { grep -q "answering datagrams" "$echo_log.out"; }
# shellcheck disable=SC2154 # the benchmark sets the variables named above
bench_start_echo() {
  bench_start BENCH_SERVER_PID "$echo_log.out" "$echo_bin" --listen "127.0.0.1:$1" \
    --rate 10000000 --burst 10000000
  bench_await bench_echo_answers
}

# bench_start_local_peers PREFIX: the loopback servers a daemon benchmark's checks use:
# nginx serving $tmp/www/index.html ("ok"), dnsmasq (bench_start_dnsmasq: $name A $address)
# and netmond-echo, each on a free port, logs in $out/logs/PREFIX-*.log. Sets http_port,
# nginx_pid, dns_port, dnsmasq_pid, echo_port, echo_pid.
# shellcheck disable=SC2034 # the variables are the benchmark's
bench_start_local_peers() {
  nginx_log=$(cd "$out/logs" && pwd)/$1-nginx.log
  BENCH_SERVER_LOG=$nginx_log
  echo ok >"$(mkdir -p "$tmp/www" && echo "$tmp/www")/index.html"
  bench_start_server tcp nginx bench_start_nginx
  http_port=$BENCH_PORT nginx_pid=$BENCH_SERVER_PID

  dnsmasq_log=$(cd "$out/logs" && pwd)/$1-dnsmasq.log
  BENCH_SERVER_LOG=$dnsmasq_log
  bench_start_server udp dnsmasq bench_start_dnsmasq
  dns_port=$BENCH_PORT dnsmasq_pid=$BENCH_SERVER_PID

  echo_log=$out/logs/$1-echo.log
  BENCH_SERVER_LOG=$echo_log
  bench_start_server udp netmond-echo bench_start_echo
  echo_port=$BENCH_PORT echo_pid=$BENCH_SERVER_PID
}
