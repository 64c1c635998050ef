#!/usr/bin/env bash
# Script-handler benchmark (issue 22, items 4 and 6): a trivial JavaScript handler against
# the literal mock on one core, and how closely the CPU-time limit stops a runaway handler.
#
#   bash bench/script.sh         (from the repository root; about 2½ minutes once built)
#
# Every server is `switchyard serve --workers 1 --access-log off --log warn` on a fresh temp
# SQLite store, started under `taskset -c BENCH_SERVER_CPU` (0). Affinity set on the exec is
# inherited by every thread the process starts, so the async worker, the blocking pool and
# each script's own QuickJS thread (`script-{owner}/{project}`) all share that one core: the
# script's thread is a second OS thread, and "one core" means the hand-off to it happens on
# the same core. The script checks that every thread of the server is pinned there. The
# load (wrk, the Python clients) runs on BENCH_LOAD_CPU (1). Users, projects, endpoints and
# scripts are made over HTTP (register, login, POST /admin/projects, POST …/endpoints,
# PUT …/script with application/javascript).
#  1. One project with a literal mock `GET /mock` → {"message":"hello"} and a script
#     `app.get("/script", () => ({ message: "hello" }))`; both must answer 200,
#     application/json and the same 19 bytes before anything is measured. Then in
#     BENCH_SCRIPT_ROUNDS interleaved rounds (mock, script, mock, …) wrk -t1 -cN on each:
#     warm-up, then the measured run with --latency: requests/s, p50/p99/p99.9/max, server
#     CPU per request (utime and stime of the whole process, all threads, from /proc/PID/stat
#     over the measured run, divided by the requests wrk counted), the part of it spent on
#     the script's thread (/proc/PID/task/TID/stat), and context switches per request (all
#     threads, /proc/PID/task/*/status). Medians over the rounds, and the script/mock ratio
#     of the medians and of each round (target ≥ 0.5× the mock's requests/s, floor 0.3×),
#     with beside it mock CPU / script CPU per request: the ratio both would reach if each
#     had the core to itself, which other processes on the core disturb less.
#     Then, unless BENCH_SCRIPT_PERF=0 or perf is missing, system calls and context switches
#     per request counted by `perf stat` in a separate wrk run of each (not measured).
#  2. For each CPU-time limit in BENCH_SCRIPT_LIMITS (50ms 200ms), a server started with
#     `--script-cpu-time LIMIT`, a project `runaway` whose `GET /loop` never returns
#     (`for (;;) {}`) and a project `other` with the trivial `GET /script`:
#       a. quiet: sequential GETs of other's /script from one Python client
#          (http.client, one keep-alive connection), max(2 s, count × limit) long;
#       b. the limit: BENCH_SCRIPT_LIMIT_REQUESTS sequential GETs of /loop from another
#          Python client, wall time per request; each must answer 504 `script_timeout`;
#          min/median/p99/max of (elapsed − limit) (target: p99 ≤ 10 ms), and the server's
#          CPU per runaway request;
#       c. both at once: b again, with a. running for as long as it does — another
#          project's latency while a runaway script spins on the same core.
# Prints a markdown summary. Exits non-zero if a step fails (build, a server that does not
# answer, a wrong body, a thread not on the server core, any non-2xx or socket error in a
# wrk run, a /loop request not answered 504 script_timeout, a trivial request not answered
# 200 with the body), not when a target is missed. Only 127.0.0.1 is used; every process
# started here is stopped on exit; the temp dir is removed unless BENCH_KEEP=1 or a step
# failed.
#
# Knobs (environment): CARGO_TARGET_DIR (default target), BENCH_SCRIPT_ROUNDS (3),
# BENCH_SCRIPT_WARMUP (s, 3), BENCH_SCRIPT_DURATION (s, 10), BENCH_CONNECTIONS (64),
# BENCH_SCRIPT_LIMITS ("50ms 200ms"; each a --script-cpu-time value in ms or s),
# BENCH_SCRIPT_LIMIT_REQUESTS (50), BENCH_SCRIPT_PERF (1; 0 skips perf stat),
# BENCH_SERVER_CPU (0), BENCH_LOAD_CPU (1), BENCH_OUT (also write the summary to this file),
# BENCH_KEEP=1 (keep the temp dir with logs and samples).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-target}
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$ROOT/$TARGET_DIR" ;; esac
ROUNDS=${BENCH_SCRIPT_ROUNDS:-3}
WARMUP=${BENCH_SCRIPT_WARMUP:-3}
DURATION=${BENCH_SCRIPT_DURATION:-10}
CONNS=${BENCH_CONNECTIONS:-64}
LIMITS=${BENCH_SCRIPT_LIMITS:-50ms 200ms}
LIMIT_REQUESTS=${BENCH_SCRIPT_LIMIT_REQUESTS:-50}
SCPU=${BENCH_SERVER_CPU:-0}
LCPU=${BENCH_LOAD_CPU:-1}
HELLO='{"message":"hello"}'
USER_NAME=bench
PASSWORD="bench-$RANDOM$RANDOM$RANDOM"

log() { printf '[script %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }

# ---------------------------------------------------------------- processes and cleanup
WORK=$(mktemp -d /tmp/switchyard-script.XXXXXX)
PIDS=()
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
trap cleanup EXIT
trap 'exit 130' INT TERM

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b + 0 == 0) print "n/a"; else printf "%.3f", a / b}'; }
verdict() { if [[ $1 == 1 ]]; then echo "met"; else echo "**missed**"; fi; }
cmp() { awk -v a="$1" -v op="$2" -v b="$3" 'BEGIN {
    if (op == "<=") r = (a + 0 <= b + 0); else r = (a + 0 >= b + 0)
    print r ? 1 : 0 }'; }
pct() { awk -v t="$1" -v hz="$CLK_TCK" -v d="$2" 'BEGIN {o = t / hz / d * 100; if (o < 0) o = 0; printf "%.0f%%", o}'; }
# to_limit_ms VALUE: a --script-cpu-time value (50ms, 1s, 1.5s) in milliseconds.
to_limit_ms() {
    case $1 in
        *ms) awk -v v="${1%ms}" 'BEGIN {printf "%g", v}' ;;
        *s) awk -v v="${1%s}" 'BEGIN {printf "%g", v * 1000}' ;;
        *) die "BENCH_SCRIPT_LIMITS: '$1' is not like 50ms or 1s" ;;
    esac
}

# user_sys PID: "utime stime" (ticks) of the process, all its threads.
user_sys() {
    sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12, $13}'
}

# script_ticks PID: "utime stime" (ticks) of PID's script threads (named script-…) alive now.
script_ticks() {
    local u=0 s=0 f line comm tu ts
    for f in /proc/"$1"/task/*/stat; do
        line=$(<"$f") 2>/dev/null || continue
        comm=${line#*(}
        comm=${comm%)*}
        [[ $comm == script-* ]] || continue
        read -r tu ts < <(awk '{print $12, $13}' <<<"${line##*) }")
        u=$((u + tu))
        s=$((s + ts))
    done
    echo "$u $s"
}

# ctx_switches PID: voluntary + involuntary context switches of PID's threads alive now.
ctx_switches() {
    cat /proc/"$1"/task/*/status 2>/dev/null | awk '/^(non)?voluntary_ctxt_switches:/ {n += $2} END {print n + 0}'
}

# check_pinned PID: every thread of PID may run on core SCPU only; logs the thread names.
check_pinned() {
    local pid=$1 t allowed names=()
    for t in /proc/"$pid"/task/*; do
        allowed=$(awk '/^Cpus_allowed_list:/ {print $2}' "$t/status")
        [[ $allowed == "$SCPU" ]] || die "thread $(<"$t/comm") of server $pid may run on cores $allowed, not only $SCPU"
        names+=("$(<"$t/comm")")
    done
    log "  all ${#names[@]} threads of server $pid pinned to core $SCPU: ${names[*]}"
    PINNED="${#names[@]} threads ($(printf '%s\n' "${names[@]}" | sort | uniq -c | awk '{printf "%s%s%s", (NR > 1 ? ", " : ""), $2, ($1 > 1 ? " ×" $1 : "")}'))"
}

declare -A R    # results: R[label.rps], R[label.p99], R[label.cpu], …

# wrk writes p99.9 and the max in µs at the end of a run (latency:percentile needs a script).
cat >"$WORK/tail.lua" <<'LUA'
done = function(summary, latency, requests)
    io.write(string.format("p999_us %d\nmax_us %d\n", latency:percentile(99.9), latency.max))
end
LUA

# bench LABEL URL PID: warm-up, then the measured wrk run; CPU, script-thread CPU and
# context switches of PID around it; fills R[LABEL.*].
bench() {
    local label=$1 url=$2 pid=$3
    local out="$WORK/wrk-$label.txt" t0 t1 u0 u1 k0 k1 su0 su1 sk0 sk1 x0 x1 b0 q0 b1 q1
    log "wrk $label: $url (warm-up ${WARMUP}s, then ${DURATION}s)"
    timeout $((WARMUP + 30)) taskset -c "$LCPU" wrk -t1 -c"$CONNS" -d"${WARMUP}s" "$url" >"$out" \
        || die "wrk warm-up on $url failed: $(cat "$out")"
    if grep -qE 'Non-2xx|Socket errors' "$out"; then die "wrk warm-up on $url: $(grep -E 'Non-2xx|Socket errors' "$out")"; fi
    read -r u0 k0 < <(user_sys "$pid")
    read -r su0 sk0 < <(script_ticks "$pid")
    x0=$(ctx_switches "$pid")
    read -r b0 q0 < <(core_ticks "$SCPU")
    timeout $((DURATION + 30)) taskset -c "$LCPU" wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency -s "$WORK/tail.lua" "$url" >"$out" \
        || die "wrk on $url failed: $(cat "$out")"
    read -r u1 k1 < <(user_sys "$pid")
    read -r su1 sk1 < <(script_ticks "$pid")
    t0=$((u0 + k0))
    t1=$((u1 + k1))
    x1=$(ctx_switches "$pid")
    read -r b1 q1 < <(core_ticks "$SCPU")
    if grep -q 'Non-2xx' "$out"; then die "wrk on $url: $(grep 'Non-2xx' "$out")"; fi
    if grep -q 'Socket errors' "$out"; then die "wrk on $url: $(grep 'Socket errors' "$out")"; fi
    local requests
    requests=$(awk '/requests in/ {print $1}' "$out")
    [[ -n $requests && $requests -gt 0 ]] || die "wrk on $url completed no requests: $(cat "$out")"
    R[$label.requests]=$requests
    R[$label.rps]=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$out")
    R[$label.p50]=$(to_ms "$(awk '$1 == "50%" {print $2}' "$out")")
    R[$label.p99]=$(to_ms "$(awk '$1 == "99%" {print $2}' "$out")")
    R[$label.p999]=$(awk '$1 == "p999_us" {printf "%.3f", $2 / 1000}' "$out")
    R[$label.max]=$(awk '$1 == "max_us" {printf "%.3f", $2 / 1000}' "$out")
    R[$label.cpu]=$(awk -v d=$((t1 - t0)) -v n="$requests" -v hz="$CLK_TCK" 'BEGIN {printf "%.2f", d * 1e6 / hz / n}')
    per_request() { awk -v d="$1" -v n="$requests" -v hz="$CLK_TCK" 'BEGIN {printf "%.2f", d * 1e6 / hz / n}'; }
    R[$label.usr]=$(per_request $((u1 - u0)))
    R[$label.sys]=$(per_request $((k1 - k0)))
    R[$label.scpu]=$(per_request $((su1 + sk1 - su0 - sk0)))
    R[$label.susr]=$(per_request $((su1 - su0)))
    R[$label.ssys]=$(per_request $((sk1 - sk0)))
    R[$label.ctx]=$(awk -v d=$((x1 - x0)) -v n="$requests" 'BEGIN {printf "%.2f", d / n}')
    # Shares of the run on the server's core: the server itself (all threads), softirq, and
    # busy time not charged to the server (other processes: the noise indicator).
    R[$label.busy]=$(pct $((t1 - t0)) "$DURATION")
    R[$label.softirq]=$(pct $((q1 - q0)) "$DURATION")
    R[$label.other]=$(pct $((b1 - b0 - (t1 - t0))) "$DURATION")
    log "  $label: ${R[$label.rps]} req/s, p50 ${R[$label.p50]} ms, p99 ${R[$label.p99]} ms, max ${R[$label.max]} ms," \
        "${R[$label.cpu]} µs CPU/request (user ${R[$label.usr]}, system ${R[$label.sys]}; script thread ${R[$label.susr]} + ${R[$label.ssys]})," \
        "${R[$label.ctx]} context switches/request;" \
        "core $SCPU: server ${R[$label.busy]}, softirq ${R[$label.softirq]}, other ${R[$label.other]}"
}

# The HTTP client (Python standard library): account, projects and scripts; the runaway
# requests; the sequential latency probe. Every number it prints is a key=value line.
cat >"$WORK/sc.py" <<'PY'
import argparse, http.client, json, math, os, signal, sys, time

signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
HELLO = b'{"message":"hello"}'


def connect(port, timeout):
    return http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)


def call(conn, method, path, body=None, headers=None):
    conn.request(method, path, body=body, headers=headers or {})
    answer = conn.getresponse()
    return answer.status, answer.read()


def expect(what, got, want, body):
    if got != want:
        sys.exit(f"{what}: {got} (expected {want}): {body[:400]!r}")


def q(values, p):
    """Nearest-rank percentile."""
    values = sorted(values)
    return values[max(0, math.ceil(p / 100 * len(values)) - 1)]


def setup(a):
    conn = connect(a.port, 60)
    js = {"content-type": "application/json"}
    creds = json.dumps({"username": a.user, "password": a.password})
    status, body = call(conn, "POST", "/auth/register", creds, js)
    expect(f"register {a.user}", status, 201, body)
    status, body = call(conn, "POST", "/auth/login", creds, js)
    expect(f"login {a.user}", status, 200, body)
    auth = {"authorization": "Bearer " + json.loads(body)["access_token"]}
    for spec in a.project:
        name, _, script = spec.partition("=")
        status, body = call(conn, "POST", "/admin/projects", json.dumps({"name": name}), {**js, **auth})
        expect(f"POST /admin/projects {name}", status, 201, body)
        if name in (a.mock or []):
            endpoint = {"method": "GET", "path": "/mock", "response": {"json": {"message": "hello"}}}
            status, body = call(conn, "POST", f"/admin/projects/{a.user}/{name}/endpoints",
                                json.dumps(endpoint), {**js, **auth})
            expect(f"POST endpoint /mock in {name}", status, 201, body)
        with open(script, "rb") as f:
            source = f.read()
        status, body = call(conn, "PUT", f"/admin/projects/{a.user}/{name}/script", source,
                            {"content-type": "application/javascript", **auth})
        expect(f"PUT script of {name}", status, 201, body)


def limit(a):
    """Sequential GETs of a route that loops forever: each must be 504 script_timeout."""
    conn = connect(a.port, a.limit_ms / 1000 + 30)
    over = []
    try:
        for _ in range(a.count):
            t0 = time.perf_counter()
            status, body = call(conn, "GET", a.path)
            elapsed = (time.perf_counter() - t0) * 1000
            expect(f"GET {a.path}", status, 504, body)
            code = json.loads(body).get("error", {}).get("code")
            expect(f"GET {a.path} error code", code, "script_timeout", body)
            over.append(elapsed - a.limit_ms)
    finally:
        if a.done_file:
            open(a.done_file, "w").close()
    with open(a.samples, "w") as f:
        f.write("\n".join(f"{v:.3f}" for v in over) + "\n")
    print(f"requests={len(over)}")
    for name, p in (("min", 0), ("median", 50), ("p90", 90), ("p99", 99), ("max", 100)):
        print(f"over_{name}={q(over, p):.2f}")
    print(f"over_mean={sum(over) / len(over):.2f}")


def latency(a):
    """Sequential GETs of a trivial route (200, the hello body) on one keep-alive connection,
    for `seconds`, or until `stop_file` exists; then its latency percentiles."""
    conn = connect(a.port, 30)
    for _ in range(a.warmup):
        status, body = call(conn, "GET", a.path)
        expect(f"GET {a.path}", (status, body), (200, HELLO), body)
    lat = []
    start = time.monotonic()
    while True:
        now = time.monotonic()
        if a.stop_file:
            if os.path.exists(a.stop_file) or now - start > 600:
                break
        elif now - start >= a.seconds:
            break
        t0 = time.perf_counter()
        status, body = call(conn, "GET", a.path)
        lat.append((time.perf_counter() - t0) * 1000)
        expect(f"GET {a.path}", (status, body), (200, HELLO), body)
    if not lat:
        sys.exit(f"GET {a.path}: no request measured")
    print(f"requests={len(lat)}")
    print(f"seconds={time.monotonic() - start:.1f}")
    for name, p in (("p50", 50), ("p90", 90), ("p99", 99), ("p999", 99.9), ("max", 100)):
        print(f"{name}={q(lat, p):.3f}")


parser = argparse.ArgumentParser()
sub = parser.add_subparsers(dest="cmd", required=True)
s = sub.add_parser("setup")
s.add_argument("--port", type=int, required=True)
s.add_argument("--user", required=True)
s.add_argument("--password", required=True)
s.add_argument("--project", action="append", required=True, help="NAME=SCRIPT_FILE")
s.add_argument("--mock", action="append", help="a project that also gets GET /mock")
s = sub.add_parser("limit")
s.add_argument("--port", type=int, required=True)
s.add_argument("--path", required=True)
s.add_argument("--count", type=int, required=True)
s.add_argument("--limit-ms", type=float, required=True)
s.add_argument("--samples", required=True)
s.add_argument("--done-file")
s = sub.add_parser("latency")
s.add_argument("--port", type=int, required=True)
s.add_argument("--path", required=True)
s.add_argument("--seconds", type=float, default=3)
s.add_argument("--stop-file")
s.add_argument("--warmup", type=int, default=200)
a = parser.parse_args()
{"setup": setup, "limit": limit, "latency": latency}[a.cmd](a)
PY

# ---------------------------------------------------------------- 0. tools and binaries
[[ $(nproc) -ge 2 ]] || die "needs at least 2 cores (server on one, load on another)"
if ! command -v wrk >/dev/null; then
    SUDO=""
    [[ $(id -u) == 0 ]] || SUDO=sudo
    log "installing wrk (Debian package)"
    $SUDO apt-get update -qq >"$WORK/apt.log" 2>&1 || die "apt-get update failed (see $WORK/apt.log)"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq wrk >>"$WORK/apt.log" 2>&1 \
        || die "apt-get install wrk failed (see $WORK/apt.log)"
fi
for tool in curl taskset getconf python3; do command -v "$tool" >/dev/null || die "$tool is required"; done
LIMITS_MS=()
for l in $LIMITS; do LIMITS_MS+=("$(to_limit_ms "$l")"); done
((${#LIMITS_MS[@]})) || die "BENCH_SCRIPT_LIMITS is empty"

log "building the release binary (target dir $TARGET_DIR)"
CARGO_TARGET_DIR="$TARGET_DIR" cargo build --release --locked --bin switchyard >"$WORK/build.log" 2>&1 \
    || { tail -30 "$WORK/build.log" >&2; die "cargo build failed"; }
SY="$TARGET_DIR/release/switchyard"

START_DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ)
SOURCE=$(git rev-parse --short HEAD 2>/dev/null || echo "no commit")
if [[ -n $(git status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null) ]]; then SOURCE="$SOURCE + uncommitted changes"; fi
SOURCE="$SOURCE, src+bench sha256 $(find src bench Cargo.toml Cargo.lock -type f | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-12)"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
log "load average before: $LOAD_BEFORE"

# start_server NAME EXTRA_ARGS...: a server on a fresh store, all threads on core SCPU;
# sets SY_PID and SY_PORT.
start_server() {
    local name=$1
    shift
    SY_PORT=$(free_port)
    NO_COLOR=1 taskset -c "$SCPU" "$SY" serve --db "sqlite://$WORK/$name.db" --port "$SY_PORT" --workers 1 \
        --access-log off --log warn "$@" >"$WORK/$name.log" 2>&1 &
    SY_PID=$!
    PIDS+=("$SY_PID")
    wait_http "http://127.0.0.1:$SY_PORT/health" "$SY_PID"
}

# setup PORT ARGS...: the bench user and its projects, over HTTP.
setup() {
    local port=$1
    shift
    timeout 120 taskset -c "$LCPU" python3 "$WORK/sc.py" setup --port "$port" --user "$USER_NAME" \
        --password "$PASSWORD" "$@" >"$WORK/setup-$port.log" 2>&1 \
        || { cat "$WORK/setup-$port.log" >&2; die "creating the user and projects failed"; }
}

# ---------------------------------------------------------------- 1. script vs literal mock
cat >"$WORK/app.js" <<'JS'
app.get("/script", () => ({ message: "hello" }));
JS
log "starting Switchyard (fresh store) on core $SCPU"
start_server throughput
setup "$SY_PORT" --project "demo=$WORK/app.js" --mock demo
URL_MOCK="http://127.0.0.1:$SY_PORT/$USER_NAME/demo/mock"
URL_SCRIPT="http://127.0.0.1:$SY_PORT/$USER_NAME/demo/script"
check_body "$URL_MOCK"
check_body "$URL_SCRIPT"
log "  both answer 200, application/json, $HELLO"
check_pinned "$SY_PID"
R[pinned.throughput]=$PINNED
for round in $(seq "$ROUNDS"); do
    bench "mock.$round" "$URL_MOCK" "$SY_PID"
    bench "script.$round" "$URL_SCRIPT" "$SY_PID"
done
# Medians over the rounds, per measure; ratios of the medians and per round.
for s in mock script; do
    for f in rps p50 p99 p999 max cpu usr sys scpu susr ssys ctx busy softirq other; do
        vals=()
        for r in $(seq "$ROUNDS"); do vals+=("${R[$s.$r.$f]%\%}"); done
        R[$s.$f]=$(median "${vals[@]}")
        R[$s.all_$f]="${vals[*]}"
    done
done
for f in rps p99 cpu; do
    R[ratio.$f]=$(ratio "${R[script.$f]}" "${R[mock.$f]}")
    rr=()
    for r in $(seq "$ROUNDS"); do rr+=("$(ratio "${R[script.$r.$f]}" "${R[mock.$r.$f]}")"); done
    R[ratio.all_$f]="${rr[*]}"
done
# The throughput ratio the CPU per request implies when both saturate the core (mock CPU /
# script CPU): less sensitive than requests/s to other processes taking part of the core.
R[ratio.implied]=$(ratio "${R[mock.cpu]}" "${R[script.cpu]}")
rr=()
for r in $(seq "$ROUNDS"); do rr+=("$(ratio "${R[mock.$r.cpu]}" "${R[script.$r.cpu]}")"); done
R[ratio.all_implied]="${rr[*]}"
R[script.rss]=$(awk '/^VmRSS:/ {printf "%.1f", $2 * 1024 / 1e6}' "/proc/$SY_PID/status")

# 1b. System calls and context switches per request, counted by `perf stat` on the server
# (all threads) for PERF_S seconds in the middle of a wrk run of PERF_S + 2 s; requests in
# the window = wrk's requests/s × PERF_S. Not part of the measured rounds (counting the
# syscall tracepoint costs a little).
PERF_S=5
if [[ ${BENCH_SCRIPT_PERF:-1} == 1 ]] && command -v perf >/dev/null; then
    for s in mock script; do
        url=$URL_MOCK
        [[ $s == script ]] && url=$URL_SCRIPT
        log "perf stat: syscalls and context switches per request on $url"
        timeout $((PERF_S + 30)) taskset -c "$LCPU" wrk -t1 -c"$CONNS" -d"$((PERF_S + 2))s" "$url" >"$WORK/wrk-perf-$s.txt" &
        WRK_PID=$!
        PIDS+=("$WRK_PID")
        sleep 1
        if ! timeout $((PERF_S + 30)) perf stat -x, -e raw_syscalls:sys_enter,context-switches -p "$SY_PID" \
            -o "$WORK/perf-$s.txt" -- sleep "$PERF_S" 2>>"$WORK/perf-$s.log"; then
            log "  perf stat failed (see $WORK/perf-$s.log); skipped"
        fi
        wait "$WRK_PID" || die "wrk on $url failed: $(cat "$WORK/wrk-perf-$s.txt")"
        forget "$WRK_PID"
        rps=$(awk '/^Requests\/sec:/ {print $2}' "$WORK/wrk-perf-$s.txt")
        for ev in raw_syscalls:sys_enter context-switches; do
            n=$(awk -F, -v e="$ev" '$3 == e && $1 ~ /^[0-9]+$/ {print $1}' "$WORK/perf-$s.txt" 2>/dev/null)
            [[ -n $n ]] && R[perf.$s.$ev]=$(awk -v n="$n" -v r="$rps" -v t="$PERF_S" 'BEGIN {printf "%.2f", n / (r * t)}')
        done
        log "  $s: ${R[perf.$s.raw_syscalls:sys_enter]:-?} syscalls, ${R[perf.$s.context-switches]:-?} context switches per request"
    done
fi
stop "$SY_PID"

# ---------------------------------------------------------------- 2. the CPU-time limit
cat >"$WORK/runaway.js" <<'JS'
app.get("/loop", () => { for (;;) {} });
JS
for i in "${!LIMITS_MS[@]}"; do
    lim=${LIMITS_MS[$i]}
    log "a server with --script-cpu-time ${lim}ms: runaway/loop and other/script"
    start_server "limit-$lim" --script-cpu-time "${lim}ms"
    setup "$SY_PORT" --project "runaway=$WORK/runaway.js" --project "other=$WORK/app.js"
    check_body "http://127.0.0.1:$SY_PORT/$USER_NAME/other/script"
    check_pinned "$SY_PID"
    R[pinned.$lim]=$PINNED
    LOOP_PATH="/$USER_NAME/runaway/loop"
    OTHER_PATH="/$USER_NAME/other/script"
    quiet_s=$(awk -v n="$LIMIT_REQUESTS" -v l="$lim" 'BEGIN {s = n * l / 1000; if (s < 2) s = 2; printf "%g", s}')
    bound=$(awk -v n="$LIMIT_REQUESTS" -v l="$lim" 'BEGIN {printf "%d", n * (l / 1000 + 5) + 60}')

    log "  quiet: GET $OTHER_PATH for ${quiet_s}s, nothing else running"
    timeout 120 taskset -c "$LCPU" python3 "$WORK/sc.py" latency --port "$SY_PORT" --path "$OTHER_PATH" \
        --seconds "$quiet_s" >"$WORK/quiet-$lim.txt" 2>"$WORK/quiet-$lim.log" \
        || { cat "$WORK/quiet-$lim.log" >&2; die "latency probe on $OTHER_PATH failed"; }
    kv "$WORK/quiet-$lim.txt" "quiet.$lim"

    log "  limit: $LIMIT_REQUESTS sequential GETs of $LOOP_PATH"
    c0=$(cpu_ticks "$SY_PID")
    timeout "$bound" taskset -c "$LCPU" python3 "$WORK/sc.py" limit --port "$SY_PORT" --path "$LOOP_PATH" \
        --count "$LIMIT_REQUESTS" --limit-ms "$lim" --samples "$WORK/over-$lim.txt" >"$WORK/limit-$lim.txt" 2>"$WORK/limit-$lim.log" \
        || { cat "$WORK/limit-$lim.log" >&2; die "the runaway requests ($LOOP_PATH) failed"; }
    c1=$(cpu_ticks "$SY_PID")
    kv "$WORK/limit-$lim.txt" "limit.$lim"
    R[limit.$lim.cpu_ms]=$(awk -v d=$((c1 - c0)) -v n="$LIMIT_REQUESTS" -v hz="$CLK_TCK" 'BEGIN {printf "%.1f", d * 1000 / hz / n}')
    log "  elapsed − limit: min ${R[limit.$lim.over_min]}, median ${R[limit.$lim.over_median]}, p99 ${R[limit.$lim.over_p99]}, max ${R[limit.$lim.over_max]} ms; server CPU ${R[limit.$lim.cpu_ms]} ms per runaway request"

    log "  both: the runaway requests again, GET $OTHER_PATH meanwhile"
    rm -f "$WORK/done-$lim"
    timeout "$bound" taskset -c "$LCPU" python3 "$WORK/sc.py" limit --port "$SY_PORT" --path "$LOOP_PATH" \
        --count "$LIMIT_REQUESTS" --limit-ms "$lim" --samples "$WORK/over-both-$lim.txt" --done-file "$WORK/done-$lim" \
        >"$WORK/both-limit-$lim.txt" 2>"$WORK/both-limit-$lim.log" &
    HAMMER_PID=$!
    PIDS+=("$HAMMER_PID")
    timeout "$bound" taskset -c "$LCPU" python3 "$WORK/sc.py" latency --port "$SY_PORT" --path "$OTHER_PATH" \
        --stop-file "$WORK/done-$lim" >"$WORK/both-$lim.txt" 2>"$WORK/both-$lim.log" \
        || { cat "$WORK/both-$lim.log" >&2; die "latency probe on $OTHER_PATH during the runaway failed"; }
    wait "$HAMMER_PID" || { cat "$WORK/both-limit-$lim.log" >&2; die "the runaway requests ($LOOP_PATH) failed"; }
    forget "$HAMMER_PID"
    kv "$WORK/both-$lim.txt" "both.$lim"
    kv "$WORK/both-limit-$lim.txt" "bothlimit.$lim"
    log "  $OTHER_PATH p50/p99/max: quiet ${R[quiet.$lim.p50]} / ${R[quiet.$lim.p99]} / ${R[quiet.$lim.max]} ms," \
        "runaway ${R[both.$lim.p50]} / ${R[both.$lim.p99]} / ${R[both.$lim.max]} ms; elapsed − limit meanwhile p99 ${R[bothlimit.$lim.over_p99]} ms"
    stop "$SY_PID"
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- summary
summary() {
    echo "## Script handlers benchmark ($START_DATE)"
    echo
    echo "Source: $SOURCE; $(rustc --version 2>/dev/null || echo rustc ?). $(nproc) cores," \
        "$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), Linux $(uname -r), $(wrk -v 2>&1 | head -1 | awk '{print "wrk", $2}'), $(python3 --version)." \
        "Load average before: $LOAD_BEFORE; after: $LOAD_AFTER."
    echo "Servers: \`switchyard serve --workers 1 --access-log off --log warn\`, the whole process on core $SCPU" \
        "(${R[pinned.throughput]}); wrk and the Python clients on core $LCPU."
    echo
    echo "### Trivial script handler vs the literal mock: medians of $ROUNDS interleaved rounds"
    echo
    echo "wrk -t1 -c$CONNS, ${WARMUP}s warm-up, ${DURATION}s measured. Both answer 200, application/json, \`$HELLO\`."
    echo
    echo "| | requests/s | p50 ms | p99 ms | p99.9 ms | max ms | server CPU µs/request (user + system) | of which the script thread (user + system) | context switches/request | core $SCPU: server / softirq / other |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    local s name
    for s in mock script; do
        case $s in
            mock) name="literal mock \`GET /mock\`" ;;
            script) name="script \`app.get(\"/script\", () => ({ message: \"hello\" }))\`" ;;
        esac
        printf '| %s | %s | %s | %s | %s | %s | %s (%s + %s) | %s (%s + %s) | %s | %s%% / %s%% / %s%% |\n' "$name" "${R[$s.rps]}" "${R[$s.p50]}" \
            "${R[$s.p99]}" "${R[$s.p999]}" "${R[$s.max]}" "${R[$s.cpu]}" "${R[$s.usr]}" "${R[$s.sys]}" \
            "${R[$s.scpu]}" "${R[$s.susr]}" "${R[$s.ssys]}" "${R[$s.ctx]}" \
            "${R[$s.busy]}" "${R[$s.softirq]}" "${R[$s.other]}"
    done
    echo
    echo "Each round (\"other\" is busy time on core $SCPU not charged to the server: other processes; the noise indicator):"
    echo
    echo "| round | mock requests/s | script requests/s | script / mock | mock CPU µs/request | script CPU µs/request | mock CPU / script CPU | core $SCPU other: mock / script |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|"
    local r rr=(${R[ratio.all_rps]}) ri=(${R[ratio.all_implied]})
    for r in $(seq "$ROUNDS"); do
        printf '| %s | %s | %s | ×%s | %s | %s | ×%s | %s / %s |\n' "$r" "${R[mock.$r.rps]}" "${R[script.$r.rps]}" "${rr[$((r - 1))]}" \
            "${R[mock.$r.cpu]}" "${R[script.$r.cpu]}" "${ri[$((r - 1))]}" "${R[mock.$r.other]}" "${R[script.$r.other]}"
    done
    echo
    echo "p99 ms per round: mock ${R[mock.all_p99]}; script ${R[script.all_p99]}. VmRSS after the runs: ${R[script.rss]} MB."
    echo
    echo "| script / mock | ratio of medians | per round |"
    echo "|---|---:|---|"
    echo "| requests/s | ×${R[ratio.rps]} | ${R[ratio.all_rps]} |"
    echo "| p99 | ×${R[ratio.p99]} | ${R[ratio.all_p99]} |"
    echo "| server CPU per request | ×${R[ratio.cpu]} | ${R[ratio.all_cpu]} |"
    echo "| requests/s implied by CPU per request (mock CPU / script CPU) | ×${R[ratio.implied]} | ${R[ratio.all_implied]} |"
    if [[ -n ${R[perf.script.raw_syscalls:sys_enter]:-} ]]; then
        echo
        echo "System calls per request (perf stat, ${PERF_S}s within a separate wrk run): mock ${R[perf.mock.raw_syscalls:sys_enter]}," \
            "script ${R[perf.script.raw_syscalls:sys_enter]}; context switches per request: mock ${R[perf.mock.context-switches]:-?}," \
            "script ${R[perf.script.context-switches]:-?}."
    fi
    echo
    echo "### CPU-time limit: a handler that never returns"
    echo
    echo "$LIMIT_REQUESTS sequential GETs of \`$LOOP_PATH\` (\`app.get(\"/loop\", () => { for (;;) {} })\`) from one Python client," \
        "each answered 504 \`script_timeout\`; overshoot = the client's wall time per request − the limit" \
        "(it includes the HTTP round trip; nearest-rank percentiles, so below 100 requests p99 is the maximum)."
    echo
    echo "| --script-cpu-time | run | requests | overshoot ms: min | median | p90 | p99 | max | server CPU ms per runaway request |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
    local lim
    for lim in "${LIMITS_MS[@]}"; do
        printf '| %s ms | alone | %s | %s | %s | %s | %s | %s | %s |\n' "$lim" "${R[limit.$lim.requests]}" "${R[limit.$lim.over_min]}" \
            "${R[limit.$lim.over_median]}" "${R[limit.$lim.over_p90]}" "${R[limit.$lim.over_p99]}" "${R[limit.$lim.over_max]}" "${R[limit.$lim.cpu_ms]}"
        printf '| %s ms | with the other project probed | %s | %s | %s | %s | %s | %s | — |\n' "$lim" "${R[bothlimit.$lim.requests]}" \
            "${R[bothlimit.$lim.over_min]}" "${R[bothlimit.$lim.over_median]}" "${R[bothlimit.$lim.over_p90]}" \
            "${R[bothlimit.$lim.over_p99]}" "${R[bothlimit.$lim.over_max]}"
    done
    echo
    echo "### Another project while one project's script loops (same server, same core)"
    echo
    echo "Sequential GETs of \`$OTHER_PATH\` (the trivial handler, its own script thread) from a second Python client on one" \
        "keep-alive connection: alone (quiet), and while the first client keeps \`$LOOP_PATH\` spinning."
    echo
    echo "| --script-cpu-time | runaway load | requests | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|"
    for lim in "${LIMITS_MS[@]}"; do
        for s in quiet both; do
            printf '| %s ms | %s | %s | %s | %s | %s | %s | %s |\n' "$lim" "$([[ $s == quiet ]] && echo none || echo "$LOOP_PATH spinning")" \
                "${R[$s.$lim.requests]}" "${R[$s.$lim.p50]}" "${R[$s.$lim.p90]}" "${R[$s.$lim.p99]}" "${R[$s.$lim.p999]}" "${R[$s.$lim.max]}"
        done
    done
    echo
    echo "### Targets"
    echo
    echo "| target | measured | verdict |"
    echo "|---|---:|---|"
    local floor
    floor=$(verdict "$(cmp "${R[ratio.rps]}" '>=' 0.3)")
    echo "| trivial handler ≥ 0.5× the literal mock's requests/s, one core | ×${R[ratio.rps]} (rounds ${R[ratio.all_rps]}) | $(verdict "$(cmp "${R[ratio.rps]}" '>=' 0.5)") (floor 0.3×: $floor) |"
    echo "| (information) the same, implied by CPU per request | ×${R[ratio.implied]} (rounds ${R[ratio.all_implied]}) | — |"
    for lim in "${LIMITS_MS[@]}"; do
        echo "| CPU-time limit ${lim} ms enforced within 10 ms at p99 | p99 +${R[limit.$lim.over_p99]} ms (with the other project probed: +${R[bothlimit.$lim.over_p99]}) | $(verdict "$(cmp "${R[limit.$lim.over_p99]}" '<=' 10)") |"
    done
    for lim in "${LIMITS_MS[@]}"; do
        echo "| (information) other project's p99, ${lim} ms limit: quiet → runaway | ${R[quiet.$lim.p99]} → ${R[both.$lim.p99]} ms | — |"
    done
}
echo
if [[ -n ${BENCH_OUT:-} ]]; then summary | tee "$BENCH_OUT"; else summary; fi
