# Shell helpers the benchmark scripts share (sourced by run.sh, proxy.sh, script.sh,
# dataset.sh and auth.sh): stopping what they started, free ports, waiting for a server,
# checking its answer, reading CPU time from /proc, medians, key=value results, waiting for
# other builds to end, and the source stamp of a summary. A script that sources this defines `log MESSAGE`, `die MESSAGE`, `WORK` (its
# temporary directory), `PIDS` (the processes it started) and `HELLO` (the body every
# server answers) first.

# The processes a script started (it adds each one's PID to PIDS) are stopped when it exits,
# and its WORK directory removed unless BENCH_KEEP=1 or it failed:
#   trap cleanup EXIT; trap 'exit 130' INT TERM
cleanup() {
    local rc=$?
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    if [[ ${BENCH_KEEP:-0} == 1 || $rc != 0 ]]; then
        log "logs kept in $WORK"
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}

# stop PID: graceful stop of one process started here, then forget it.
stop() {
    local pid=$1
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    forget "$pid"
}

# forget PID: a process started here that has ended.
forget() {
    local kept=() p
    for p in "${PIDS[@]}"; do [[ $p == "$1" ]] || kept+=("$p"); done
    PIDS=("${kept[@]}")
}

free_port() {
    local port
    for _ in $(seq 200); do
        port=$((20000 + RANDOM % 30000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    die "no free port found"
}

# wait_http URL PID: until URL answers 2xx (fails if PID dies or after 30 s).
wait_http() {
    local url=$1 pid=$2
    for _ in $(seq 3000); do
        curl -sf -o /dev/null --max-time 1 "$url" && return 0
        kill -0 "$pid" 2>/dev/null || die "server $pid exited before $url answered"
        sleep 0.01
    done
    die "$url did not answer within 30 s"
}

# check_body URL: the URL answers 200 with the hello body and a JSON content type.
check_body() {
    local url=$1 out
    out=$(curl -s -D "$WORK/headers" --max-time 5 "$url") || die "GET $url failed"
    grep -q '^HTTP/1.1 200' "$WORK/headers" || die "GET $url: $(head -1 "$WORK/headers")"
    grep -qi '^content-type: application/json' "$WORK/headers" || die "GET $url: no application/json content type"
    [[ $out == "$HELLO" ]] || die "GET $url answered '$out', not '$HELLO'"
}

# ---------------------------------------------------------------- measurement helpers
CLK_TCK=$(getconf CLK_TCK)

# cpu_ticks PID...: utime+stime (clock ticks) of the processes, all their threads.
cpu_ticks() {
    local total=0 pid t
    for pid in "$@"; do
        # Fields after the ")" that closes comm: state is 1, utime 12, stime 13.
        t=$(sed 's/^.*) //' "/proc/$pid/stat" | awk '{print $12 + $13}')
        total=$((total + t))
    done
    echo "$total"
}

# core_ticks CPU: "busy softirq" ticks of one core from /proc/stat; busy is everything but
# idle and iowait. Softirq (loopback TCP work) is also charged to the task it interrupts, so
# it is partly inside the server's own utime+stime; it is shown apart for information.
core_ticks() {
    awk -v c="cpu$1" '$1 == c {print $2 + $3 + $4 + $7 + $8 + $9, $8}' /proc/stat
}

# to_ms VALUE: a wrk duration (123.45us, 1.23ms, 1.00s, 2.00m) in milliseconds.
to_ms() {
    awk -v v="$1" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000
        printf "%.3f", n }'
}

# median VALUE...: the middle value (the lower middle for an even count).
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }

# kv FILE PREFIX: read key=value lines of FILE into R[PREFIX.key] (the caller's `declare -A R`).
kv() {
    local key value
    while IFS='=' read -r key value; do
        [[ -n $key ]] && R[$2.$key]=$value
    done <"$1"
}

# wait_for_idle_builds MINUTES: another build on this 2-core machine would take a core from
# the server or the load, so unless BENCH_WAIT_IDLE=0, wait (polling every 30 s, at most
# MINUTES) until no cargo or rustc process runs.
wait_for_idle_builds() {
    [[ ${BENCH_WAIT_IDLE:-1} == 1 ]] || return 0
    local i busy polls=$(($1 * 2 + 1))
    for i in $(seq "$polls"); do
        busy=$( (pgrep -l 'rustc|cargo' || true) | awk '{print $2}' | sort | uniq -c | awk '{printf "%s×%s ", $2, $1}')
        [[ -z $busy ]] && return 0
        [[ $i == "$polls" ]] && die "builds still running after $1 minutes ($busy); BENCH_WAIT_IDLE=0 measures anyway"
        log "waiting for other builds to finish: $busy"
        sleep 30
    done
}

# source_stamp: the commit measured, whether src or bench had uncommitted changes, and a
# hash of src, bench, Cargo.toml and Cargo.lock as they were.
source_stamp() {
    local source
    source=$(git rev-parse --short HEAD 2>/dev/null || echo "no commit")
    if [[ -n $(git status --porcelain -- src bench Cargo.toml Cargo.lock 2>/dev/null) ]]; then source="$source + uncommitted changes"; fi
    echo "$source, src+bench sha256 $(find src bench Cargo.toml Cargo.lock -type f | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-12)"
}
