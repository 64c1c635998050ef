#!/usr/bin/env bash
# User-space instructions per literal-mock request, counted by callgrind (deterministic,
# unlike wall-clock figures on a shared machine).
#
#   bash bench/callgrind.sh            (from the repository root)
#
# Each server runs alone under `valgrind --tool=callgrind`. A client on one keep-alive
# connection sends BENCH_CG_WARMUP sequential `GET /alice/demo/hello`, the counters are
# zeroed (`callgrind_control -z`), it sends BENCH_CG_REQUESTS more, the counters are dumped
# (`callgrind_control -d`), and the dumped total divided by the request count is printed.
# Servers: Switchyard (`--workers 1 --access-log off`, on a store made by `serve --demo`;
# stats and the journal on, as by default), the same with `--journal-size 0`, the minimal
# hyper server of bench/hyper_baseline.rs, and nginx (`return 200`, one process; installed
# if missing). Only 127.0.0.1 is used; every process started here is stopped on exit. Knobs: CARGO_TARGET_DIR, BENCH_CG_WARMUP (1200),
# BENCH_CG_REQUESTS (2000), BENCH_CG_KEEP=1 (keep the callgrind outputs for callgrind_annotate),
# BENCH_CG_SERVER_ARGS (more `serve` flags for Switchyard, e.g. "--journal-size 0"),
# BENCH_CG_ONLY (a space-separated subset of "switchyard no-journal hyper nginx";
# `no-journal` is Switchyard with `--journal-size 0`, to show what the journal costs).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
TARGET_DIR=${CARGO_TARGET_DIR:-target}
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$(pwd)/$TARGET_DIR" ;; esac
# The warm-up outlasts the default journal (1,000 entries): a running node's journal ring is
# full, so the measured requests reuse entries as they do in the steady state, instead of
# paying the one-time filling of the ring.
WARMUP=${BENCH_CG_WARMUP:-1200}
REQUESTS=${BENCH_CG_REQUESTS:-2000}
WORK=$(mktemp -d /tmp/switchyard-callgrind.XXXXXX)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    sleep 0.5
    for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    if [ -n "${BENCH_CG_KEEP:-}" ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

missing=()
command -v valgrind >/dev/null || missing+=(valgrind)
command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || missing+=(nginx)
if ((${#missing[@]})); then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
# Built apart: examples enable the dev-dependencies' features (tokio's `process`), and the
# binary measured must be the one `cargo build --release` ships.
cargo build --release --locked --bin switchyard >&2
cargo build --release --locked --example hyper_baseline >&2
SY="$TARGET_DIR/release/switchyard"
HYPER="$TARGET_DIR/release/examples/hyper_baseline"

# requests PORT COUNT: COUNT sequential GETs on one keep-alive connection, each checked.
requests() {
    python3 - "$1" "$2" <<'PY'
import http.client, sys
port, count = int(sys.argv[1]), int(sys.argv[2])
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
for _ in range(count):
    conn.request("GET", "/alice/demo/hello")
    answer = conn.getresponse()
    body = answer.read()
    if answer.status != 200 or body != b'{"message":"hello"}':
        sys.exit(f"unexpected answer {answer.status} {body!r}")
PY
}

wait_port() {
    for _ in $(seq 600); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "port $1 did not open" >&2
    exit 1
}

# measure NAME PORT COMMAND...: the server under callgrind; prints instructions/request.
measure() {
    local name=$1 port=$2
    shift 2
    case " ${BENCH_CG_ONLY:-switchyard no-journal hyper nginx} " in *" $name "*) ;; *) return 0 ;; esac
    valgrind --tool=callgrind --callgrind-out-file="$WORK/$name.%p" "$@" \
        >"$WORK/$name.log" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    wait_port "$port"
    requests "$port" "$WARMUP"
    callgrind_control -z "$pid" >/dev/null
    requests "$port" "$REQUESTS"
    callgrind_control -d "$pid" >/dev/null
    sleep 0.5
    local dump total
    dump=$(ls -t "$WORK/$name".*.* 2>/dev/null | head -1)
    total=$(awk '/^(summary|totals):/ {print $2; exit}' "$dump")
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    awk -v n="$name" -v t="$total" -v r="$REQUESTS" \
        'BEGIN {printf "%-12s %10.0f instructions/request (%d requests)\n", n, t / r, r}'
}

# A store with the demo project, made natively (argon2 under valgrind is slow).
"$SY" serve --db "$WORK/demo.db" --port 18931 --demo >"$WORK/demo.log" 2>&1 &
DEMO=$!
PIDS+=("$DEMO")
wait_port 18931
kill -TERM "$DEMO"
wait "$DEMO" 2>/dev/null || true

# shellcheck disable=SC2086 # BENCH_CG_SERVER_ARGS is a list of words
measure switchyard 18932 "$SY" serve --db "$WORK/demo.db" --port 18932 --workers 1 --log warn --access-log off ${BENCH_CG_SERVER_ARGS:-}
# shellcheck disable=SC2086
measure no-journal 18935 "$SY" serve --db "$WORK/demo.db" --port 18935 --workers 1 --log warn --access-log off --journal-size 0 ${BENCH_CG_SERVER_ARGS:-}
measure hyper 18933 "$HYPER" --port 18933
# nginx as bench/run.sh runs it (one worker, access log off, `return 200` with the same
# body), but as a single process (`master_process off`) so that callgrind follows the one
# that serves.
mkdir -p "$WORK/nginx"
sed -e "s|__DIR__|$WORK/nginx|g" -e "s|__PORT__|18934|g" -e "s|^master_process on;|master_process off;|" \
    bench/nginx.conf >"$WORK/nginx/nginx.conf"
measure nginx 18934 "$NGINX" -p "$WORK/nginx" -e "$WORK/nginx/nginx-error.log" -c "$WORK/nginx/nginx.conf"
