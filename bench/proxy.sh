#!/usr/bin/env bash
# Gateway benchmark: Switchyard's gateway mode as a reverse proxy, side by side with nginx
# proxy_pass, with the smallest reverse proxy hyper 1 allows (the floor of any hyper-based
# proxy) and with the upstream alone, and the gateway's live reload of a 10,000-route file.
#
#   bash bench/proxy.sh          (from the repository root; about 4 minutes once built)
#
# One upstream for everything: the minimal hyper server of bench/hyper_baseline.rs (every
# request answered 200, application/json, {"message":"hello"}), started once.
#  1. In BENCH_PROXY_ROUNDS interleaved rounds (direct, Switchyard, hyper proxy, nginx,
#     direct, …), GET /api/hello under wrk -t1 -cN: requests/s, p50/p99/max, and server CPU
#     per request (utime+stime from /proc/PID/stat over the measured run, divided by the
#     requests wrk counted). For the proxies only the proxy's own process counts (nginx:
#     master + worker); the upstream's CPU per request is shown beside it for information.
#       direct      — wrk → upstream
#       switchyard  — wrk → `switchyard gateway --workers 1 --access-log off` (route `/`) → upstream
#       hyper proxy — wrk → bench/hyper_proxy_baseline.rs → upstream: hyper 1 server and
#                     client, one upstream connection per client connection (no pool), the
#                     same headers changed as by the two others; no routing, logging, request
#                     id or stats. What is left of the gap to nginx at this floor is hyper's.
#                     It runs on its default current-thread runtime because that is what
#                     `--workers 1` gives Switchyard (src/cli.rs: one worker → current-thread
#                     runtime), so both have the same runtime shape (nginx: one worker process).
#       nginx       — wrk → nginx, one worker, proxy_pass to a keep-alive upstream
#                     (bench/nginx-proxy.conf) → upstream
#     Medians over the rounds, per measure, and the Switchyard/nginx, Switchyard/hyper-proxy
#     and hyper-proxy/nginx ratios.
#  2. Startup with a 10,000-route file (exec → /health answers; VmRSS 1 s later).
#  3. Reload of that file (routes /r0 … /r9999 → one backend): the file is rewritten with its
#     last route replaced by a new one and renamed over the path; the time until the new
#     route answers 200 (polled every BENCH_PROXY_POLL_MS on one keep-alive connection),
#     BENCH_PROXY_RELOADS times with no other traffic, and the gateway's CPU per reload.
#  4. wrk on an untouched route (/r5000) for BENCH_PROXY_DURATION s, with no reloads and with
#     one reload a second (3 above, run under the load), in interleaved rounds: requests/s,
#     p50/p99/p99.9/max.
#  5. Instructions per request under callgrind (deterministic, unlike the rest on a shared
#     machine), the proxy alone under valgrind and the upstream native: the gateway with its
#     one route, the gateway with the 10,000-route file (GET /r5000), the hyper proxy, nginx
#     as one process, and the upstream itself for scale. Skipped if valgrind is missing or
#     BENCH_PROXY_CG=0.
#
# Pinning (2 cores, so no arrangement is clean): the server measured — the proxy, or in the
# "direct" rows the upstream itself (moved there with taskset -p for those runs) — on core
# BENCH_SERVER_CPU (0); wrk, the upstream while it sits behind a proxy, and the Python
# reload/poll client on core BENCH_LOAD_CPU (1). So behind a proxy the upstream competes with
# wrk for core 1; the summary shows how busy each core was.
#
# Prints a markdown summary. Exits non-zero if a step fails (build, a server that does not
# answer, a wrong body, any non-2xx or socket error in a wrk run, a reload not served within
# 10 s), not when a target is missed. Only 127.0.0.1 is used; every process started here is
# stopped on exit; the temp dir is removed unless BENCH_KEEP=1 or a step failed.
#
# Knobs (environment): CARGO_TARGET_DIR (default target), BENCH_PROXY_ROUNDS (3),
# BENCH_PROXY_WARMUP (s, 2), BENCH_PROXY_DURATION (s, 10), BENCH_CONNECTIONS (64),
# BENCH_PROXY_ROUTES (10000), BENCH_PROXY_RELOADS (10), BENCH_PROXY_RELOAD_ROUNDS (2),
# BENCH_PROXY_POLL_MS (1), BENCH_PROXY_CG (1; 0 skips step 5), BENCH_PROXY_CG_WARMUP (1200),
# BENCH_PROXY_CG_REQUESTS (2000), BENCH_SERVER_CPU (0), BENCH_LOAD_CPU (1), BENCH_OUT (also write
# the summary to this file), BENCH_KEEP=1 (keep the temp dir with logs and wrk outputs).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-target}
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$ROOT/$TARGET_DIR" ;; esac
ROUNDS=${BENCH_PROXY_ROUNDS:-3}
WARMUP=${BENCH_PROXY_WARMUP:-2}
DURATION=${BENCH_PROXY_DURATION:-10}
CONNS=${BENCH_CONNECTIONS:-64}
NROUTES=${BENCH_PROXY_ROUTES:-10000}
KEEP_ROUTE=/r$((NROUTES / 2))    # the untouched route of step 4
RELOADS=${BENCH_PROXY_RELOADS:-10}
RELOAD_ROUNDS=${BENCH_PROXY_RELOAD_ROUNDS:-2}
POLL_MS=${BENCH_PROXY_POLL_MS:-1}
SCPU=${BENCH_SERVER_CPU:-0}
LCPU=${BENCH_LOAD_CPU:-1}
HELLO='{"message":"hello"}'
PATH_HELLO=/api/hello

log() { printf '[proxy %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }

# ---------------------------------------------------------------- processes and cleanup
WORK=$(mktemp -d /tmp/switchyard-proxy.XXXXXX)
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

declare -A R    # results: R[label.rps], R[label.p99], R[label.cpu], …

# wrk writes p99.9 and the max in µs at the end of a run (latency:percentile needs a script).
cat >"$WORK/tail.lua" <<'LUA'
done = function(summary, latency, requests)
    io.write(string.format("p999_us %d\nmax_us %d\n", latency:percentile(99.9), latency.max))
end
LUA

# measure LABEL URL PID...: one measured wrk run on URL (no warm-up); CPU of the PIDs (the
# server measured) and of UP_PID (the upstream) around it; fills R[LABEL.*].
measure() {
    local label=$1 url=$2
    shift 2
    local out="$WORK/wrk-$label.txt" t0 t1 u0 u1 b0 q0 b1 q1 l0 l1
    t0=$(cpu_ticks "$@")
    u0=$(cpu_ticks "$UP_PID")
    read -r b0 q0 < <(core_ticks "$SCPU")
    read -r l0 _ < <(core_ticks "$LCPU")
    timeout $((DURATION + 30)) taskset -c "$LCPU" wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency -s "$WORK/tail.lua" "$url" >"$out" \
        || die "wrk on $url failed: $(cat "$out")"
    t1=$(cpu_ticks "$@")
    u1=$(cpu_ticks "$UP_PID")
    read -r b1 q1 < <(core_ticks "$SCPU")
    read -r l1 _ < <(core_ticks "$LCPU")
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
    R[$label.upcpu]=$(awk -v d=$((u1 - u0)) -v n="$requests" -v hz="$CLK_TCK" 'BEGIN {printf "%.2f", d * 1e6 / hz / n}')
    # Shares of the run: the measured server's own CPU, softirq on its core, busy time on
    # its core not charged to it (other processes: the noise indicator), and core LCPU busy.
    R[$label.busy]=$(pct $((t1 - t0)) "$DURATION")
    R[$label.softirq]=$(pct $((q1 - q0)) "$DURATION")
    R[$label.other]=$(pct $((b1 - b0 - (t1 - t0))) "$DURATION")
    R[$label.load]=$(pct $((l1 - l0)) "$DURATION")
    log "  $label: ${R[$label.rps]} req/s, p50 ${R[$label.p50]} ms, p99 ${R[$label.p99]} ms, p99.9 ${R[$label.p999]} ms, max ${R[$label.max]} ms, ${R[$label.cpu]} µs CPU/request (upstream ${R[$label.upcpu]}); core $SCPU: server ${R[$label.busy]}, softirq ${R[$label.softirq]}, other ${R[$label.other]}; core $LCPU busy ${R[$label.load]}"
}

# bench LABEL URL PID...: body check, warm-up, measured run.
bench() {
    local label=$1 url=$2
    check_body "$url"
    log "wrk $label: $url (warm-up ${WARMUP}s, then ${DURATION}s)"
    timeout $((WARMUP + 30)) taskset -c "$LCPU" wrk -t1 -c"$CONNS" -d"${WARMUP}s" "$url" >/dev/null \
        || die "wrk warm-up on $url failed"
    measure "$@"
}

# The gateway-file client (Python standard library): writes route files, measures startup
# and reloads. Every number it prints is a key=value line.
cat >"$WORK/gw.py" <<'PY'
import argparse, http.client, os, signal, subprocess, sys, time

signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def routes_text(count, upstream, last=None):
    """count routes /r0 … /r{count-1} → backend up; `last` replaces the last one."""
    out = ["routes:"]
    for i in range(count - 1):
        out.append(f"  - path_prefix: /r{i}\n    backend: up")
    out.append(f"  - path_prefix: {last or f'/r{count - 1}'}\n    backend: up")
    out.append(f'backends:\n  - name: up\n    urls: ["http://127.0.0.1:{upstream}"]')
    return "\n".join(out) + "\n"


def write_over(path, text):
    """Write beside the path, then rename over it (as editors and kubectl do)."""
    tmp = path + ".new"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def q(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, max(0, int(round(p / 100 * len(values) + 0.5)) - 1))]


class Client:
    def __init__(self, port):
        self.port = port
        self.conn = None

    def status(self, path):
        for _ in range(3):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                self.conn.request("GET", path)
                answer = self.conn.getresponse()
                answer.read()
                return answer.status
            except (ConnectionError, http.client.HTTPException):
                self.conn = None
        raise SystemExit(f"GET {path}: the connection failed three times")


def startup(a):
    """exec → /health answers 200 on a fresh connection, reps times; VmRSS 1 s later."""
    ms, rss = [], []
    for _ in range(a.reps):
        t0 = time.monotonic()
        child = subprocess.Popen(a.command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            while True:
                if child.poll() is not None:
                    raise SystemExit(f"the gateway exited with {child.returncode} before /health answered")
                if time.monotonic() - t0 > 30:
                    raise SystemExit("/health did not answer within 30 s")
                try:
                    c = http.client.HTTPConnection("127.0.0.1", a.port, timeout=1)
                    c.request("GET", "/health")
                    if c.getresponse().status == 200:
                        break
                except OSError:
                    pass
                finally:
                    c.close()
                time.sleep(0.0005)
            ms.append((time.monotonic() - t0) * 1000)
            time.sleep(1)
            with open(f"/proc/{child.pid}/status") as f:
                kb = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
            rss.append(kb * 1024 / 1e6)
        finally:
            child.terminate()
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
    print(f"startup_ms={' '.join(f'{x:.1f}' for x in ms)}")
    print(f"startup_median_ms={q(ms, 50):.1f}")
    print(f"rss_mb={' '.join(f'{x:.1f}' for x in rss)}")
    print(f"rss_median_mb={q(rss, 50):.1f}")


def reload(a):
    """Reload `count` times, one every `interval` s after `delay` s: replace the last route by
    a new one, rename over, poll the new route until it answers 200."""
    client = Client(a.port)
    took = []
    start = time.monotonic() + a.delay
    for k in range(a.count):
        path = f"/new-{a.tag}-{k}"
        text = routes_text(a.routes, a.upstream, path)
        pause = start + k * a.interval - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        before = client.status(path)
        if before != 404:
            raise SystemExit(f"GET {path} before the reload answered {before}, not 404")
        write_over(a.file, text)
        t0 = time.monotonic()
        while True:
            status = client.status(path)
            if status == 200:
                break
            if status != 404:
                raise SystemExit(f"GET {path} during the reload answered {status}")
            if time.monotonic() - t0 > 10:
                raise SystemExit(f"{path} was not served within 10 s of the rename")
            time.sleep(a.poll_ms / 1000)
        took.append((time.monotonic() - t0) * 1000)
    print(f"reload_ms={' '.join(f'{x:.1f}' for x in took)}")
    print(f"reload_count={len(took)}")
    for name, p in (("min", 0), ("median", 50), ("max", 100)):
        print(f"reload_{name}_ms={q(took, p):.1f}")


parser = argparse.ArgumentParser()
sub = parser.add_subparsers(dest="cmd", required=True)
g = sub.add_parser("gen")
g.add_argument("--file", required=True)
g.add_argument("--routes", type=int, required=True)
g.add_argument("--upstream", type=int, required=True)
s = sub.add_parser("startup")
s.add_argument("--port", type=int, required=True)
s.add_argument("--reps", type=int, default=3)
s.add_argument("command", nargs=argparse.REMAINDER)
r = sub.add_parser("reload")
r.add_argument("--file", required=True)
r.add_argument("--port", type=int, required=True)
r.add_argument("--routes", type=int, required=True)
r.add_argument("--upstream", type=int, required=True)
r.add_argument("--count", type=int, required=True)
r.add_argument("--interval", type=float, default=0.5)
r.add_argument("--delay", type=float, default=0)
r.add_argument("--poll-ms", type=float, default=1)
r.add_argument("--tag", default="a")
a = parser.parse_args()
if a.cmd == "gen":
    write_over(a.file, routes_text(a.routes, a.upstream))
elif a.cmd == "startup":
    a.command = [c for c in a.command if c != "--"]
    startup(a)
else:
    reload(a)
PY

# ---------------------------------------------------------------- 0. tools and binaries
[[ $(nproc) -ge 2 ]] || die "needs at least 2 cores (server on one, load on another)"
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || missing+=(nginx)
if ((${#missing[@]})); then
    SUDO=""
    [[ $(id -u) == 0 ]] || SUDO=sudo
    log "installing ${missing[*]} (Debian packages)"
    $SUDO apt-get update -qq >"$WORK/apt.log" 2>&1 || die "apt-get update failed (see $WORK/apt.log)"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >>"$WORK/apt.log" 2>&1 \
        || die "apt-get install ${missing[*]} failed (see $WORK/apt.log)"
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
for tool in curl taskset getconf python3; do command -v "$tool" >/dev/null || die "$tool is required"; done

# Built apart (as bench/callgrind.sh does): examples enable the dev-dependencies' features,
# and the binary measured must be the one `cargo build --release` ships.
log "building release binaries (target dir $TARGET_DIR)"
{ CARGO_TARGET_DIR="$TARGET_DIR" cargo build --release --locked --bin switchyard &&
    CARGO_TARGET_DIR="$TARGET_DIR" cargo build --release --locked --example hyper_baseline \
        --example hyper_proxy_baseline; } >"$WORK/build.log" 2>&1 \
    || { tail -30 "$WORK/build.log" >&2; die "cargo build failed"; }
SY="$TARGET_DIR/release/switchyard"
HYPER="$TARGET_DIR/release/examples/hyper_baseline"
HYPER_PROXY="$TARGET_DIR/release/examples/hyper_proxy_baseline"

START_DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ)
SOURCE=$(git rev-parse --short HEAD 2>/dev/null || echo "no commit")
if [[ -n $(git status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null) ]]; then SOURCE="$SOURCE + uncommitted changes"; fi
SOURCE="$SOURCE, src+bench sha256 $(find src bench Cargo.toml Cargo.lock -type f | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-12)"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
log "load average before: $LOAD_BEFORE"

# ---------------------------------------------------------------- servers
UP_PORT=$(free_port)
log "starting the upstream (hyper baseline) on core $LCPU, port $UP_PORT"
taskset -c "$LCPU" "$HYPER" --port "$UP_PORT" >"$WORK/upstream.log" 2>&1 &
UP_PID=$!
PIDS+=("$UP_PID")
wait_http "http://127.0.0.1:$UP_PORT/" "$UP_PID"

cat >"$WORK/proxy.yml" <<EOF
routes:
  - path_prefix: /
    backend: up
backends:
  - name: up
    urls: ["http://127.0.0.1:$UP_PORT"]
EOF
GW_PORT=$(free_port)
GW_ARGS=(--workers 1 --access-log off --log warn)
log "starting the Switchyard gateway on core $SCPU, port $GW_PORT"
NO_COLOR=1 taskset -c "$SCPU" "$SY" gateway -c "$WORK/proxy.yml" -p "$GW_PORT" "${GW_ARGS[@]}" \
    >"$WORK/gateway.log" 2>&1 &
GW_PID=$!
PIDS+=("$GW_PID")
wait_http "http://127.0.0.1:$GW_PORT/health" "$GW_PID"

# The hyper proxy on its default current-thread runtime, as `--workers 1` runs Switchyard.
HP_PORT=$(free_port)
log "starting the hyper proxy on core $SCPU, port $HP_PORT"
taskset -c "$SCPU" "$HYPER_PROXY" --port "$HP_PORT" --upstream "127.0.0.1:$UP_PORT" >"$WORK/hyper-proxy.log" 2>&1 &
HP_PID=$!
PIDS+=("$HP_PID")
wait_http "http://127.0.0.1:$HP_PORT$PATH_HELLO" "$HP_PID"

NGINX_PORT=$(free_port)
mkdir -p "$WORK/nginx"
sed -e "s|__DIR__|$WORK/nginx|g" -e "s|__PORT__|$NGINX_PORT|g" -e "s|__UPSTREAM__|$UP_PORT|g" \
    bench/nginx-proxy.conf >"$WORK/nginx/nginx.conf"
NGINX_VERSION=$("$NGINX" -v 2>&1 | sed 's/.*: //')
log "starting nginx ($NGINX_VERSION) on core $SCPU, port $NGINX_PORT"
taskset -c "$SCPU" "$NGINX" -p "$WORK/nginx" -e "$WORK/nginx/nginx-error.log" -c "$WORK/nginx/nginx.conf" \
    >"$WORK/nginx/stdout.log" 2>&1 &
NGINX_PID=$!
PIDS+=("$NGINX_PID")
wait_http "http://127.0.0.1:$NGINX_PORT$PATH_HELLO" "$NGINX_PID"
NGINX_PIDS=("$NGINX_PID" $(pgrep -P "$NGINX_PID"))
[[ ${#NGINX_PIDS[@]} == 2 ]] || die "expected one nginx master and one worker, found ${NGINX_PIDS[*]}"

# ---------------------------------------------------------------- 1. direct vs the three proxies
for round in $(seq "$ROUNDS"); do
    # The upstream alone, placed as a measured server is (core SCPU), then put back.
    taskset -a -p -c "$SCPU" "$UP_PID" >/dev/null
    bench "direct.$round" "http://127.0.0.1:$UP_PORT$PATH_HELLO" "$UP_PID"
    taskset -a -p -c "$LCPU" "$UP_PID" >/dev/null
    bench "sy.$round" "http://127.0.0.1:$GW_PORT$PATH_HELLO" "$GW_PID"
    bench "hp.$round" "http://127.0.0.1:$HP_PORT$PATH_HELLO" "$HP_PID"
    bench "nginx.$round" "http://127.0.0.1:$NGINX_PORT$PATH_HELLO" "${NGINX_PIDS[@]}"
done
# Medians over the rounds, per measure; and the ratios of the medians and per round:
# R[ratio.*] Switchyard/nginx, R[ratio_sh.*] Switchyard/hyper proxy, R[ratio_hn.*] hyper
# proxy/nginx.
for s in direct sy hp nginx; do
    for f in rps p50 p99 p999 max cpu upcpu busy softirq other load; do
        vals=()
        for r in $(seq "$ROUNDS"); do vals+=("${R[$s.$r.$f]%\%}"); done
        R[$s.$f]=$(median "${vals[@]}")
        R[$s.all_$f]="${vals[*]}"
    done
done
for pair in ratio:sy:nginx ratio_sh:sy:hp ratio_hn:hp:nginx; do
    IFS=: read -r key a b <<<"$pair"
    for f in rps p99 cpu; do
        R[$key.$f]=$(ratio "${R[$a.$f]}" "${R[$b.$f]}")
        rr=()
        for r in $(seq "$ROUNDS"); do rr+=("$(ratio "${R[$a.$r.$f]}" "${R[$b.$r.$f]}")"); done
        R[$key.all_$f]="${rr[*]}"
    done
done
stop "$GW_PID"
stop "$HP_PID"
stop "$NGINX_PID"

# ---------------------------------------------------------------- 2. startup with 10,000 routes
log "generating a gateway file of $NROUTES routes"
GW_FILE="$WORK/routes-$NROUTES.yml"
python3 "$WORK/gw.py" gen --file "$GW_FILE" --routes "$NROUTES" --upstream "$UP_PORT"
R[file.bytes]=$(stat -c %s "$GW_FILE")
GW_PORT=$(free_port)
GW_CMD=(taskset -c "$SCPU" "$SY" gateway -c "$GW_FILE" -p "$GW_PORT" "${GW_ARGS[@]}")
log "startup with $NROUTES routes (3 times)"
timeout 120 taskset -c "$LCPU" python3 "$WORK/gw.py" startup --port "$GW_PORT" --reps 3 -- "${GW_CMD[@]}" \
    >"$WORK/startup.txt" 2>"$WORK/startup.log" &
STARTUP_PID=$!
PIDS+=("$STARTUP_PID")
wait "$STARTUP_PID" || { cat "$WORK/startup.log" >&2; die "startup measurement failed"; }
forget "$STARTUP_PID"
kv "$WORK/startup.txt" start
log "  startup ${R[start.startup_ms]} ms; VmRSS ${R[start.rss_mb]} MB"

# ---------------------------------------------------------------- 3. reloads, no other traffic
NO_COLOR=1 "${GW_CMD[@]}" >"$WORK/gateway-routes.log" 2>&1 &
GW_PID=$!
PIDS+=("$GW_PID")
wait_http "http://127.0.0.1:$GW_PORT/health" "$GW_PID"
check_body "http://127.0.0.1:$GW_PORT$KEEP_ROUTE"
check_body "http://127.0.0.1:$GW_PORT/r$((NROUTES - 1))"
GW_RSS_BEFORE=$(awk '/^VmRSS:/ {printf "%.1f", $2 * 1024 / 1e6}' "/proc/$GW_PID/status")
log "$RELOADS reloads of the $NROUTES-route file, no other traffic"
c0=$(cpu_ticks "$GW_PID")
timeout 300 taskset -c "$LCPU" python3 "$WORK/gw.py" reload --file "$GW_FILE" --port "$GW_PORT" \
    --routes "$NROUTES" --upstream "$UP_PORT" --count "$RELOADS" --interval 0.6 --poll-ms "$POLL_MS" --tag idle \
    >"$WORK/reload-idle.txt" 2>"$WORK/reload-idle.log" &
RELOAD_PID=$!
PIDS+=("$RELOAD_PID")
t_reload0=$(date +%s%N)
wait "$RELOAD_PID" || { cat "$WORK/reload-idle.log" >&2; die "reloads failed"; }
t_reload1=$(date +%s%N)
forget "$RELOAD_PID"
c1=$(cpu_ticks "$GW_PID")
kv "$WORK/reload-idle.txt" idle
# The gateway's CPU over the whole sequence, per reload: compiling and swapping, dropping the
# old table, and answering the poll requests (about one per POLL_MS while a reload is pending).
R[idle.cpu_ms_per_reload]=$(awk -v d=$((c1 - c0)) -v n="$RELOADS" -v hz="$CLK_TCK" 'BEGIN {printf "%.1f", d * 1000 / hz / n}')
R[idle.seconds]=$(awk -v a="$t_reload0" -v b="$t_reload1" 'BEGIN {printf "%.1f", (b - a) / 1e9}')
GW_RSS_AFTER=$(awk '/^VmRSS:/ {printf "%.1f", $2 * 1024 / 1e6}' "/proc/$GW_PID/status")
log "  reload → served: ${R[idle.reload_ms]} ms; gateway CPU ${R[idle.cpu_ms_per_reload]} ms per reload; VmRSS $GW_RSS_BEFORE → $GW_RSS_AFTER MB"

# ---------------------------------------------------------------- 4. traffic on an untouched route
URL_KEEP="http://127.0.0.1:$GW_PORT$KEEP_ROUTE"
check_body "$URL_KEEP"
log "wrk on an untouched route ($URL_KEEP), warm-up ${WARMUP}s"
timeout $((WARMUP + 30)) taskset -c "$LCPU" wrk -t1 -c"$CONNS" -d"${WARMUP}s" "$URL_KEEP" >/dev/null \
    || die "wrk warm-up on $URL_KEEP failed"
UNDER_LOAD=$((DURATION - 2))
for round in $(seq "$RELOAD_ROUNDS"); do
    measure "quiet.$round" "$URL_KEEP" "$GW_PID"
    # One reload a second, from 1 s into the run to 1 s before its end.
    log "wrk with $UNDER_LOAD reloads during the run"
    timeout $((DURATION + 60)) taskset -c "$LCPU" python3 "$WORK/gw.py" reload --file "$GW_FILE" --port "$GW_PORT" \
        --routes "$NROUTES" --upstream "$UP_PORT" --count "$UNDER_LOAD" --interval 1 --delay 1 --poll-ms "$POLL_MS" \
        --tag "load$round" >"$WORK/reload-load-$round.txt" 2>"$WORK/reload-load-$round.log" &
    RELOAD_PID=$!
    PIDS+=("$RELOAD_PID")
    measure "reloading.$round" "$URL_KEEP" "$GW_PID"
    wait "$RELOAD_PID" || { cat "$WORK/reload-load-$round.log" >&2; die "reloads under load failed"; }
    forget "$RELOAD_PID"
    kv "$WORK/reload-load-$round.txt" "load$round"
    log "  reload → served under load: ${R[load$round.reload_ms]} ms"
done
R[load.reload_all]=""
for round in $(seq "$RELOAD_ROUNDS"); do R[load.reload_all]+="${R[load$round.reload_ms]} "; done
R[load.reload_median_ms]=$(median ${R[load.reload_all]})
R[load.reload_max_ms]=$(printf '%s\n' ${R[load.reload_all]} | sort -g | tail -1)
R[load.reload_min_ms]=$(printf '%s\n' ${R[load.reload_all]} | sort -g | head -1)
GW_RSS_END=$(awk '/^VmRSS:/ {printf "%.1f", $2 * 1024 / 1e6}' "/proc/$GW_PID/status")
stop "$GW_PID"

# ---------------------------------------------------------------- 5. instructions per request
# Each proxy alone under callgrind (as bench/callgrind.sh does it: BENCH_PROXY_CG_WARMUP
# sequential GETs on one keep-alive connection, counters zeroed, BENCH_PROXY_CG_REQUESTS
# more, counters dumped), the upstream running natively; only the proxy's instructions count.
cat >"$WORK/cg_client.py" <<'PY'
import http.client, sys
port, path, count = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
for _ in range(count):
    conn.request("GET", path)
    answer = conn.getresponse()
    body = answer.read()
    if answer.status != 200 or body != b'{"message":"hello"}':
        sys.exit(f"unexpected answer {answer.status} {body!r}")
PY
# cg NAME PORT PATH COMMAND...: R[cg.NAME] = user-space instructions per request.
cg() {
    local name=$1 port=$2 path=$3
    shift 3
    log "callgrind: $name (GET $path)"
    taskset -c "$SCPU" valgrind --tool=callgrind --callgrind-out-file="$WORK/cg/$name.%p" "$@" >"$WORK/cg/$name.log" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    for _ in $(seq 1200); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        kill -0 "$pid" 2>/dev/null || die "$name exited under callgrind (see $WORK/cg/$name.log)"
        sleep 0.1
    done
    timeout 600 taskset -c "$LCPU" python3 "$WORK/cg_client.py" "$port" "$path" "$CG_WARMUP" || die "$name: warm-up requests failed"
    callgrind_control -z "$pid" >/dev/null 2>&1
    timeout 600 taskset -c "$LCPU" python3 "$WORK/cg_client.py" "$port" "$path" "$CG_REQUESTS" || die "$name: requests failed"
    callgrind_control -d "$pid" >/dev/null 2>&1
    local dump=""
    for _ in $(seq 100); do
        dump=$(ls -t "$WORK/cg/$name".*.* 2>/dev/null | head -1 || true)
        [[ -n $dump ]] && grep -qE '^(summary|totals):' "$dump" && break
        sleep 0.1
    done
    [[ -n $dump ]] || die "$name: no callgrind dump"
    R[cg.$name]=$(awk -v r="$CG_REQUESTS" '/^(summary|totals):/ {printf "%.0f", $2 / r; exit}' "$dump")
    stop "$pid"
    log "  $name: ${R[cg.$name]} instructions/request"
}
CG_WARMUP=${BENCH_PROXY_CG_WARMUP:-1200}
CG_REQUESTS=${BENCH_PROXY_CG_REQUESTS:-2000}
if [[ ${BENCH_PROXY_CG:-1} == 1 ]] && command -v valgrind >/dev/null; then
    mkdir -p "$WORK/cg"
    # The 10,000-route file as first generated (the reloads above changed its last route).
    python3 "$WORK/gw.py" gen --file "$GW_FILE" --routes "$NROUTES" --upstream "$UP_PORT"
    p=$(free_port)
    cg gateway "$p" "$PATH_HELLO" "$SY" gateway -c "$WORK/proxy.yml" -p "$p" "${GW_ARGS[@]}"
    p=$(free_port)
    cg "gateway-$NROUTES" "$p" "$KEEP_ROUTE" "$SY" gateway -c "$GW_FILE" -p "$p" "${GW_ARGS[@]}"
    p=$(free_port)
    cg hyper-proxy "$p" "$PATH_HELLO" "$HYPER_PROXY" --port "$p" --upstream "127.0.0.1:$UP_PORT"
    # nginx as above, but as one process (master_process off) so that callgrind follows the
    # process that serves.
    p=$(free_port)
    mkdir -p "$WORK/cg/nginx"
    sed -e "s|__DIR__|$WORK/cg/nginx|g" -e "s|__PORT__|$p|g" -e "s|__UPSTREAM__|$UP_PORT|g" \
        -e "s|^master_process on;|master_process off;|" bench/nginx-proxy.conf >"$WORK/cg/nginx/nginx.conf"
    cg nginx "$p" "$PATH_HELLO" "$NGINX" -p "$WORK/cg/nginx" -e "$WORK/cg/nginx/nginx-error.log" -c "$WORK/cg/nginx/nginx.conf"
    # The upstream's own count, for scale (a second instance of it, under callgrind).
    p=$(free_port)
    cg direct "$p" "$PATH_HELLO" "$HYPER" --port "$p"
fi
stop "$UP_PID"
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- summary
summary() {
    echo "## Gateway benchmark ($START_DATE)"
    echo
    echo "Source: $SOURCE. nginx $NGINX_VERSION, $(wrk -v 2>&1 | head -1 | awk '{print "wrk", $2}'), $(nproc) cores." \
        "Load average before: $LOAD_BEFORE; after: $LOAD_AFTER."
    echo "wrk -t1 -c$CONNS, ${WARMUP}s warm-up, ${DURATION}s measured, GET $PATH_HELLO; $ROUNDS interleaved rounds;" \
        "measured server on core $SCPU, wrk (and the upstream behind a proxy) on core $LCPU."
    echo
    echo "### Proxy path: medians of $ROUNDS rounds"
    echo
    echo "| | requests/s | p50 ms | p99 ms | p99.9 ms | max ms | server CPU µs/request | upstream CPU µs/request | core $SCPU: server / softirq / other | core $LCPU busy |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    local s name
    for s in direct sy hp nginx; do
        case $s in
            direct) name="direct (upstream alone, on core $SCPU)" ;;
            sy) name="Switchyard gateway (\`--workers 1\`)" ;;
            hp) name="hyper proxy (minimal hyper 1, one upstream connection per client connection)" ;;
            nginx) name="nginx proxy_pass (1 worker, keepalive 64)" ;;
        esac
        local up=${R[$s.upcpu]}
        [[ $s == direct ]] && up="(same)"
        printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s%% / %s%% / %s%% | %s%% |\n' "$name" "${R[$s.rps]}" "${R[$s.p50]}" \
            "${R[$s.p99]}" "${R[$s.p999]}" "${R[$s.max]}" "${R[$s.cpu]}" "$up" "${R[$s.busy]}" "${R[$s.softirq]}" "${R[$s.other]}" "${R[$s.load]}"
    done
    echo
    echo "All rounds — requests/s: direct ${R[direct.all_rps]}; Switchyard ${R[sy.all_rps]}; hyper proxy ${R[hp.all_rps]}; nginx ${R[nginx.all_rps]}." \
        "p99 ms: direct ${R[direct.all_p99]}; Switchyard ${R[sy.all_p99]}; hyper proxy ${R[hp.all_p99]}; nginx ${R[nginx.all_p99]}." \
        "Server CPU µs/request: direct ${R[direct.all_cpu]}; Switchyard ${R[sy.all_cpu]}; hyper proxy ${R[hp.all_cpu]}; nginx ${R[nginx.all_cpu]}."
    echo
    echo "| Switchyard / nginx | ratio of medians | per round |"
    echo "|---|---:|---|"
    echo "| requests/s | ×${R[ratio.rps]} | ${R[ratio.all_rps]} |"
    echo "| p99 | ×${R[ratio.p99]} | ${R[ratio.all_p99]} |"
    echo "| proxy CPU per request | ×${R[ratio.cpu]} | ${R[ratio.all_cpu]} |"
    echo
    echo "Against the hyper floor (how much of the gap to nginx is hyper's, how much Switchyard's):"
    echo
    echo "| | Switchyard / hyper proxy | per round | hyper proxy / nginx | per round |"
    echo "|---|---:|---|---:|---|"
    echo "| requests/s | ×${R[ratio_sh.rps]} | ${R[ratio_sh.all_rps]} | ×${R[ratio_hn.rps]} | ${R[ratio_hn.all_rps]} |"
    echo "| p99 | ×${R[ratio_sh.p99]} | ${R[ratio_sh.all_p99]} | ×${R[ratio_hn.p99]} | ${R[ratio_hn.all_p99]} |"
    echo "| proxy CPU per request | ×${R[ratio_sh.cpu]} | ${R[ratio_sh.all_cpu]} | ×${R[ratio_hn.cpu]} | ${R[ratio_hn.all_cpu]} |"
    echo
    echo "Proxy / direct, requests/s: Switchyard ×$(ratio "${R[sy.rps]}" "${R[direct.rps]}"), hyper proxy ×$(ratio "${R[hp.rps]}" "${R[direct.rps]}"), nginx ×$(ratio "${R[nginx.rps]}" "${R[direct.rps]}")."
    echo
    echo "### $NROUTES-route gateway file ($(awk -v b="${R[file.bytes]}" 'BEGIN {printf "%.0f", b / 1000}') kB)"
    echo
    echo "Startup (exec → /health answers): ${R[start.startup_ms]} ms (median ${R[start.startup_median_ms]});" \
        "VmRSS 1 s after start: ${R[start.rss_mb]} MB; before the reloads $GW_RSS_BEFORE MB, after the first $RELOADS $GW_RSS_AFTER MB, after all $((RELOADS + UNDER_LOAD * RELOAD_ROUNDS)) $GW_RSS_END MB."
    echo
    echo "Rename over → new route answers 200 (poll every ${POLL_MS} ms; the gateway looks at the file every 250 ms):"
    echo
    echo "| | reloads | min ms | median ms | max ms | all |"
    echo "|---|---:|---:|---:|---:|---|"
    echo "| no other traffic | ${R[idle.reload_count]} | ${R[idle.reload_min_ms]} | ${R[idle.reload_median_ms]} | ${R[idle.reload_max_ms]} | ${R[idle.reload_ms]} |"
    echo "| under wrk -c$CONNS on $KEEP_ROUTE | $((UNDER_LOAD * RELOAD_ROUNDS)) | ${R[load.reload_min_ms]} | ${R[load.reload_median_ms]} | ${R[load.reload_max_ms]} | ${R[load.reload_all]}|"
    echo
    echo "Gateway CPU per reload (no other traffic, including the poll requests): ${R[idle.cpu_ms_per_reload]} ms."
    echo
    echo "Traffic on the untouched route $KEEP_ROUTE, interleaved rounds ($UNDER_LOAD reloads, one a second, in each \"reloading\" run):"
    echo
    echo "| run | requests/s | p50 ms | p99 ms | p99.9 ms | max ms | server CPU µs/request | core $SCPU: server / softirq / other |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|"
    local r kind
    for r in $(seq "$RELOAD_ROUNDS"); do
        for kind in quiet reloading; do
            local l=$kind.$r
            printf '| %s %s | %s | %s | %s | %s | %s | %s | %s / %s / %s |\n' "$kind" "$r" "${R[$l.rps]}" "${R[$l.p50]}" "${R[$l.p99]}" \
                "${R[$l.p999]}" "${R[$l.max]}" "${R[$l.cpu]}" "${R[$l.busy]}" "${R[$l.softirq]}" "${R[$l.other]}"
        done
    done
    echo
    if [[ -n ${R[cg.gateway]:-} ]]; then
        echo "### Instructions per request (callgrind, proxy process only, $CG_REQUESTS sequential GETs on one connection)"
        echo
        echo "| | user-space instructions per request |"
        echo "|---|---:|"
        echo "| Switchyard gateway, route \`/\`, GET $PATH_HELLO | ${R[cg.gateway]} |"
        echo "| Switchyard gateway, $NROUTES routes, GET $KEEP_ROUTE | ${R[cg.gateway-$NROUTES]} |"
        echo "| hyper proxy (minimal hyper 1) | ${R[cg.hyper-proxy]} |"
        echo "| nginx proxy_pass (one process) | ${R[cg.nginx]} |"
        echo "| the upstream alone (minimal hyper), for scale | ${R[cg.direct]} |"
        echo
        echo "Switchyard / nginx: ×$(ratio "${R[cg.gateway]}" "${R[cg.nginx]}");" \
            "Switchyard / hyper proxy: ×$(ratio "${R[cg.gateway]}" "${R[cg.hyper-proxy]}");" \
            "hyper proxy / nginx: ×$(ratio "${R[cg.hyper-proxy]}" "${R[cg.nginx]}")."
        echo
    fi
    echo "### Targets"
    echo
    echo "| target | measured | verdict |"
    echo "|---|---:|---|"
    echo "| requests/s ≥ nginx proxy_pass | ×${R[ratio.rps]} | $(verdict "$(cmp "${R[ratio.rps]}" '>=' 1)") |"
    echo "| p99 ≤ nginx proxy_pass | ×${R[ratio.p99]} | $(verdict "$(cmp "${R[ratio.p99]}" '<=' 1)") |"
    echo "| (information) proxy CPU per request vs nginx | ×${R[ratio.cpu]} | — |"
}
echo
if [[ -n ${BENCH_OUT:-} ]]; then summary | tee "$BENCH_OUT"; else summary; fi
