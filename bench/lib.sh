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

# bench_free_port udp|tcp: prints a port in 20000..59999 that nothing on this host
# is bound to (udp) or listens on (tcp) right now. (A race with another process is
# possible; the benchmark notices when its server fails to answer.)
bench_free_port() {
  local proto=$1 flag used port i
  case $proto in
    udp) flag=-Hlnu ;;
    tcp) flag=-Hlnt ;;
    *) bench_die "bench_free_port: udp or tcp, not '$proto'" ;;
  esac
  used=$(ss "$flag" 2>/dev/null | awk '{n = split($4, a, ":"); print a[n]}')
  for ((i = 0; i < 100; i++)); do
    port=$((20000 + RANDOM % 40000))
    grep -qx "$port" <<<"$used" || {
      echo "$port"
      return 0
    }
  done
  bench_die "no free ${proto^^} port found"
}

# bench_cpu_ns PID: CPU time (user+system, all threads) the process has used, in
# nanoseconds, from /proc/PID/task/*/schedstat.
bench_cpu_ns() {
  cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s += $1} END {printf "%.0f\n", s}'
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
