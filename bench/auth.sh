#!/usr/bin/env bash
# Per-project auth benchmark (the auth issue's performance item): what the check costs on
# the request path, as server CPU per request over an open project, for an API key and an
# RS256 JWT (the token seen before, and a new token each request).
#
#   bash bench/auth.sh           (from the repository root; about 6 minutes once built)
#
# One server: `switchyard serve --workers 1 --access-log off --log warn` on a fresh temp
# SQLite store, started under `taskset -c BENCH_SERVER_CPU` (0); every thread it starts
# inherits that core, and the script checks it. The load (wrk, the Python client) runs on
# BENCH_LOAD_CPU (1). Set-up over HTTP (register, log in, POST /admin/projects, POST
# …/endpoints, POST …/keys): three projects of the same owner, each with the literal mock
# `GET /mock` → {"message":"hello"}:
#   open   policy `none` (the reference);
#   keyed  {"type": "api_key"}, one key (POST /admin/projects/bench/keyed/keys {"name":
#          "bench"}), sent as `x-api-key`;
#   jwt    {"type": "jwt", "algorithms": ["RS256"], "jwks": {"keys": [JWK]}, "issuer":
#          "https://bench.example/", "audience": "bench"}: an inline key set (no network).
# Tokens: bench/jwt_tokens.rs (an example) signs BENCH_AUTH_TOKENS + 1 RS256 tokens with the
# test key src/auth/testdata/rsa2048.pk8 (kid "bench"; `exp` an hour ahead, a distinct `jti`
# each) and prints the public JWK the policy holds. The first token is "the one token"; the
# others are the distinct set. Before anything is measured each kind must answer 200,
# application/json and the hello body, and keyed/jwt must answer 401 without credentials
# (and jwt 401 to a token with a broken signature).
#  1. wrk -t1 -c BENCH_AUTH_CONNECTIONS (32), in BENCH_AUTH_ROUNDS (3) interleaved rounds
#     (open, keyed, jwt-one, jwt-distinct, open, …), each a warm-up of BENCH_AUTH_WARMUP (3)
#     s and a measured run of BENCH_AUTH_DURATION (10) s with --latency:
#       open          GET /bench/open/mock
#       keyed         GET /bench/keyed/mock, x-api-key: the key
#       jwt-one       GET /bench/jwt/mock, authorization: Bearer the one token (every request
#                     after the first is a hit in the verified-token cache)
#       jwt-distinct  GET /bench/jwt/mock with the next token of the distinct set each request
#                     (a wrk Lua script cycling through the file; the measured run starts at
#                     the first, the warm-up in the middle): the signature is checked every
#                     time. A run with more requests than tokens sends some again (counted);
#                     the cache has 4,096 slots, so a token sent again after all the others is
#                     not in it any more (it would survive that many inserts with probability
#                     (1 − 1/4096)^tokens, e^−49 for 200,000).
#     requests/s, p50/p99, server CPU per request (utime+stime of the whole process from
#     /proc/PID/stat over the measured run, divided by the requests wrk counted), and the
#     auth check's cost: that CPU minus open's, in µs. Medians over the rounds (the cost is
#     the difference of the medians; each round's difference is listed).
#  2. Unless BENCH_AUTH_CG=0: the same store served under `valgrind --tool=callgrind` (one
#     process, the same flags), a Python client on one keep-alive connection: for each kind,
#     BENCH_AUTH_CG_WARMUP (1200; more than the 1,000 journal entries, as callgrind.sh)
#     sequential requests, `callgrind_control -z`, BENCH_AUTH_CG_REQUESTS (2000) requests,
#     `callgrind_control -d`: user-space instructions per request, and the difference to
#     open. jwt-distinct sends tokens never sent to this process (warm-up and measured
#     requests each their own). Deterministic, unlike the wall-clock figures of 1.
# Prints a markdown summary, with the targets: API key ≤ 5 µs of CPU per request over open;
# RS256 JWT ≤ 20 µs with the key cached (both the repeated-token and the distinct-token
# figures). Exits non-zero if a step fails (build, a server that does not answer, a wrong
# status or body, a thread not on the server core, any non-2xx or socket error in a wrk run),
# not when a target is missed. Only 127.0.0.1 is used; every process started here is stopped
# on exit; the temp dir (tokens: ~110 MB for 200,000) is removed unless BENCH_KEEP=1 or a
# step failed.
#
# Knobs (environment): CARGO_TARGET_DIR (default target), BENCH_AUTH_ROUNDS (3),
# BENCH_AUTH_WARMUP (s, 3), BENCH_AUTH_DURATION (s, 10), BENCH_AUTH_CONNECTIONS (32),
# BENCH_AUTH_TOKENS (200000), BENCH_AUTH_SIGN_THREADS (threads signing them, 2; ~0.55 ms of
# CPU a token), BENCH_AUTH_CG (1; 0 skips callgrind), BENCH_AUTH_CG_WARMUP (1200),
# BENCH_AUTH_CG_REQUESTS (2000), BENCH_WAIT_IDLE (1: before measuring, wait up to 10 minutes,
# polling every 30 s, until no cargo or rustc process runs; 0: don't), BENCH_SERVER_CPU (0),
# BENCH_LOAD_CPU (1), BENCH_OUT (also write the summary to this file), BENCH_KEEP=1 (keep the
# temp dir).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-target}
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$ROOT/$TARGET_DIR" ;; esac
ROUNDS=${BENCH_AUTH_ROUNDS:-3}
WARMUP=${BENCH_AUTH_WARMUP:-3}
DURATION=${BENCH_AUTH_DURATION:-10}
CONNS=${BENCH_AUTH_CONNECTIONS:-32}
TOKENS=${BENCH_AUTH_TOKENS:-200000}
SIGN_THREADS=${BENCH_AUTH_SIGN_THREADS:-2}
CG=${BENCH_AUTH_CG:-1}
CG_WARMUP=${BENCH_AUTH_CG_WARMUP:-1200}
CG_REQUESTS=${BENCH_AUTH_CG_REQUESTS:-2000}
SCPU=${BENCH_SERVER_CPU:-0}
LCPU=${BENCH_LOAD_CPU:-1}
HELLO='{"message":"hello"}'
USER_NAME=bench
PASSWORD="bench-$RANDOM$RANDOM$RANDOM"
ISSUER=https://bench.example/
AUDIENCE=bench
KID=bench
KINDS=(open keyed jwt1 jwtn)

log() { printf '[auth %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }

# ---------------------------------------------------------------- processes and cleanup
WORK=$(mktemp -d /tmp/switchyard-auth.XXXXXX)
PIDS=()
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
trap cleanup EXIT
trap 'exit 130' INT TERM

declare -A R    # results: R[kind.round.cpu], R[kind.cpu], R[cg.kind], …

verdict() { if [[ $1 == 1 ]]; then echo "met"; else echo "**missed**"; fi; }
le() { awk -v a="$1" -v b="$2" 'BEGIN {print (a + 0 <= b + 0) ? 1 : 0}'; }
diff2() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%+.2f", a - b}'; }
pct() { awk -v t="$1" -v hz="$CLK_TCK" -v d="$2" 'BEGIN {o = t / hz / d * 100; if (o < 0) o = 0; printf "%.0f%%", o}'; }
thousands() { echo "$1" | sed ':a;s/\B[0-9]\{3\}\>/,&/;ta'; }
name_of() {
    case $1 in
        open) echo "open (\`none\`)" ;;
        keyed) echo "keyed (\`api_key\`, x-api-key)" ;;
        jwt1) echo "jwt, one token repeated (verified-token cache)" ;;
        jwtn) echo "jwt, a new token each request (signature checked)" ;;
    esac
}


# check_pinned PID: every thread of PID may run on core SCPU only.
check_pinned() {
    local t allowed n=0
    for t in /proc/"$1"/task/*; do
        allowed=$(awk '/^Cpus_allowed_list:/ {print $2}' "$t/status")
        [[ $allowed == "$SCPU" ]] || die "thread $(<"$t/comm") of server $1 may run on cores $allowed, not only $SCPU"
        n=$((n + 1))
    done
    PINNED=$n
    log "  all $n threads of server $1 pinned to core $SCPU"
}

# The HTTP client (Python standard library): the account and projects; the sequential
# requests for callgrind. Every number it prints is a key=value line.
cat >"$WORK/au.py" <<'PY'
import argparse, http.client, json, sys

HELLO = b'{"message":"hello"}'


def call(conn, method, path, body=None, headers=None):
    conn.request(method, path, body=body, headers=headers or {})
    answer = conn.getresponse()
    return answer.status, answer.read()


def expect(what, got, want, body):
    if got != want:
        sys.exit(f"{what}: {got} (expected {want}): {body[:400]!r}")


def setup(a):
    conn = http.client.HTTPConnection("127.0.0.1", a.port, timeout=60)
    js = {"content-type": "application/json"}
    creds = json.dumps({"username": a.user, "password": a.password})
    status, body = call(conn, "POST", "/auth/register", creds, js)
    expect(f"register {a.user}", status, 201, body)
    status, body = call(conn, "POST", "/auth/login", creds, js)
    expect(f"login {a.user}", status, 200, body)
    auth = {**js, "authorization": "Bearer " + json.loads(body)["access_token"]}
    with open(a.jwk) as f:
        jwk = json.load(f)
    policies = {
        "open": {"type": "none"},
        "keyed": {"type": "api_key"},
        "jwt": {"type": "jwt", "algorithms": ["RS256"], "jwks": {"keys": [jwk]},
                "issuer": a.issuer, "audience": a.audience},
    }
    for name, policy in policies.items():
        status, body = call(conn, "POST", "/admin/projects", json.dumps({"name": name, "auth": policy}), auth)
        expect(f"POST /admin/projects {name}", status, 201, body)
        got = json.loads(body).get("auth", {}).get("type")
        expect(f"policy of {name}", got, policy["type"], body)
        endpoint = {"method": "GET", "path": "/mock", "response": {"json": {"message": "hello"}}}
        status, body = call(conn, "POST", f"/admin/projects/{a.user}/{name}/endpoints", json.dumps(endpoint), auth)
        expect(f"POST endpoint /mock in {name}", status, 201, body)
    status, body = call(conn, "POST", f"/admin/projects/{a.user}/keyed/keys", json.dumps({"name": "bench"}), auth)
    expect("POST /admin/projects/…/keyed/keys", status, 201, body)
    print(f"key={json.loads(body)['key']}")


def requests(a):
    """Sequential GETs on one keep-alive connection, each 200 with the hello body: with a
    fixed header, or with the tokens of lines offset+1 … offset+count of a file in turn."""
    headers = {}
    if a.header:
        name, _, value = a.header.partition(":")
        headers[name.strip()] = value.strip()
    tokens = None
    if a.tokens:
        tokens = []
        with open(a.tokens) as f:
            for i, line in enumerate(f):
                if i >= a.offset + a.count:
                    break
                if i >= a.offset:
                    tokens.append(line.strip())
        if len(tokens) < a.count:
            sys.exit(f"{a.tokens}: {len(tokens)} tokens from line {a.offset + 1}, {a.count} needed")
    conn = http.client.HTTPConnection("127.0.0.1", a.port, timeout=120)
    for i in range(a.count):
        if tokens is not None:
            headers["authorization"] = "Bearer " + tokens[i]
        status, body = call(conn, "GET", a.path, headers=headers)
        expect(f"GET {a.path}", (status, body), (200, HELLO), body)


parser = argparse.ArgumentParser()
sub = parser.add_subparsers(dest="cmd", required=True)
s = sub.add_parser("setup")
s.add_argument("--port", type=int, required=True)
s.add_argument("--user", required=True)
s.add_argument("--password", required=True)
s.add_argument("--jwk", required=True)
s.add_argument("--issuer", required=True)
s.add_argument("--audience", required=True)
s = sub.add_parser("requests")
s.add_argument("--port", type=int, required=True)
s.add_argument("--path", required=True)
s.add_argument("--count", type=int, required=True)
s.add_argument("--header")
s.add_argument("--tokens")
s.add_argument("--offset", type=int, default=0)
a = parser.parse_args()
{"setup": setup, "requests": requests}[a.cmd](a)
PY

# wrk: p99.9 and the max at the end of a run (fixed-header runs).
cat >"$WORK/tail.lua" <<'LUA'
done = function(summary, latency, requests)
    io.write(string.format("p999_us %d\nmax_us %d\n", latency:percentile(99.9), latency.max))
end
LUA
# wrk: a new bearer token each request, cycling through the file given as the first
# argument from the line after the second (an offset).
cat >"$WORK/tokens.lua" <<'LUA'
local tokens, n, i = {}, 0, 0
init = function(args)
    for line in io.lines(args[1]) do
        n = n + 1
        tokens[n] = line
    end
    i = tonumber(args[2] or "0") % n
end
request = function()
    i = i % n + 1
    return wrk.format(nil, nil, {["Authorization"] = "Bearer " .. tokens[i]})
end
done = function(summary, latency, requests)
    io.write(string.format("p999_us %d\nmax_us %d\n", latency:percentile(99.9), latency.max))
end
LUA

# ---------------------------------------------------------------- 0. tools, binaries, tokens
[[ $(nproc) -ge 2 ]] || die "needs at least 2 cores (server on one, load on another)"
missing=()
command -v wrk >/dev/null || missing+=(wrk)
if [[ $CG == 1 ]]; then command -v valgrind >/dev/null || missing+=(valgrind); fi
if ((${#missing[@]})); then
    SUDO=""
    [[ $(id -u) == 0 ]] || SUDO=sudo
    log "installing ${missing[*]} (Debian packages)"
    $SUDO apt-get update -qq >"$WORK/apt.log" 2>&1 || die "apt-get update failed (see $WORK/apt.log)"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >>"$WORK/apt.log" 2>&1 \
        || die "apt-get install ${missing[*]} failed (see $WORK/apt.log)"
fi
for tool in curl taskset getconf python3 awk; do command -v "$tool" >/dev/null || die "$tool is required"; done
[[ $TOKENS -ge $((CG_WARMUP + CG_REQUESTS)) ]] || die "BENCH_AUTH_TOKENS must be at least BENCH_AUTH_CG_WARMUP + BENCH_AUTH_CG_REQUESTS"

# Built apart (as callgrind.sh): examples enable the dev-dependencies' features (tokio's
# `process`), and the binary measured must be the one `cargo build --release` ships.
log "building the release binary and bench/jwt_tokens.rs (target dir $TARGET_DIR)"
CARGO_TARGET_DIR="$TARGET_DIR" cargo build --release --locked --bin switchyard >"$WORK/build.log" 2>&1 \
    || { tail -30 "$WORK/build.log" >&2; die "cargo build failed"; }
CARGO_TARGET_DIR="$TARGET_DIR" cargo build --release --locked --example jwt_tokens >>"$WORK/build.log" 2>&1 \
    || { tail -30 "$WORK/build.log" >&2; die "cargo build --example jwt_tokens failed"; }
SY="$TARGET_DIR/release/switchyard"
JT="$TARGET_DIR/release/examples/jwt_tokens"

log "signing $((TOKENS + 1)) RS256 tokens ($SIGN_THREADS threads)"
t0=$EPOCHREALTIME
"$JT" --jwk --kid "$KID" >"$WORK/jwk.json" || die "jwt_tokens --jwk failed"
"$JT" $((TOKENS + 1)) --kid "$KID" --issuer "$ISSUER" --audience "$AUDIENCE" --threads "$SIGN_THREADS" \
    >"$WORK/all-tokens.txt" || die "jwt_tokens failed"
ONE_TOKEN=$(head -1 "$WORK/all-tokens.txt")
tail -n +2 "$WORK/all-tokens.txt" >"$WORK/tokens.txt"
rm "$WORK/all-tokens.txt"
[[ $(wc -l <"$WORK/tokens.txt") == "$TOKENS" ]] || die "expected $TOKENS distinct tokens"
[[ $(sort -u "$WORK/tokens.txt" | wc -l) == "$TOKENS" ]] || die "the tokens are not all distinct"
R[tokens.bytes]=${#ONE_TOKEN}
R[tokens.seconds]=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.0f", b - a}')
log "  $TOKENS + 1 tokens of ${#ONE_TOKEN} bytes in ${R[tokens.seconds]} s"

wait_for_idle_builds 10

START_DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ)
SOURCE=$(source_stamp)
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
log "load average before: $LOAD_BEFORE"

# ---------------------------------------------------------------- server and set-up
PORT=$(free_port)
log "starting Switchyard (fresh store) on core $SCPU, port $PORT"
NO_COLOR=1 taskset -c "$SCPU" "$SY" serve --db "sqlite://$WORK/auth.db" --port "$PORT" --workers 1 \
    --access-log off --log warn >"$WORK/server.log" 2>&1 &
SY_PID=$!
PIDS+=("$SY_PID")
wait_http "http://127.0.0.1:$PORT/health" "$SY_PID"
timeout 120 taskset -c "$LCPU" python3 "$WORK/au.py" setup --port "$PORT" --user "$USER_NAME" --password "$PASSWORD" \
    --jwk "$WORK/jwk.json" --issuer "$ISSUER" --audience "$AUDIENCE" >"$WORK/setup.txt" 2>"$WORK/setup.log" \
    || { cat "$WORK/setup.log" >&2; die "creating the user, projects and key failed"; }
kv "$WORK/setup.txt" setup
API_KEY=${R[setup.key]:-}
[[ $API_KEY == syk_* ]] || die "no API key in the answer"
BASE="http://127.0.0.1:$PORT/$USER_NAME"
declare -A URL HDR
URL=([open]="$BASE/open/mock" [keyed]="$BASE/keyed/mock" [jwt1]="$BASE/jwt/mock" [jwtn]="$BASE/jwt/mock")
HDR=([open]="" [keyed]="x-api-key: $API_KEY" [jwt1]="authorization: Bearer $ONE_TOKEN" [jwtn]="")

# check_answer URL WANT_STATUS [HEADER]: the status; for 200 also the hello body and a JSON
# content type.
check_answer() {
    local url=$1 want=$2 header=${3:-} out args=()
    [[ -n $header ]] && args=(-H "$header")
    out=$(curl -s -D "$WORK/headers" --max-time 5 "${args[@]}" "$url") || die "GET $url failed"
    grep -q "^HTTP/1.1 $want" "$WORK/headers" || die "GET $url${header:+ (${header%%:*})}: $(head -1 "$WORK/headers"), not $want: $out"
    [[ $want == 200 ]] || return 0
    grep -qi '^content-type: application/json' "$WORK/headers" || die "GET $url: no application/json content type"
    [[ $out == "$HELLO" ]] || die "GET $url answered '$out', not '$HELLO'"
}
check_answer "${URL[open]}" 200
check_answer "${URL[keyed]}" 200 "${HDR[keyed]}"
check_answer "${URL[jwt1]}" 200 "${HDR[jwt1]}"
check_answer "${URL[jwtn]}" 200 "authorization: Bearer $(head -1 "$WORK/tokens.txt")"
check_answer "${URL[jwtn]}" 200 "authorization: Bearer $(tail -1 "$WORK/tokens.txt")"
check_answer "${URL[keyed]}" 401
check_answer "${URL[keyed]}" 401 "x-api-key: ${API_KEY%?}x"
check_answer "${URL[jwt1]}" 401
# The one token with the last signature character changed: a bad signature.
bad=${ONE_TOKEN%?}
[[ ${ONE_TOKEN: -1} == A ]] && bad+=B || bad+=A
check_answer "${URL[jwt1]}" 401 "authorization: Bearer $bad"
log "  open, keyed and jwt answer 200 with $HELLO; keyed and jwt answer 401 without credentials or with bad ones"
check_pinned "$SY_PID"

# ---------------------------------------------------------------- 1. wrk rounds
# bench KIND ROUND: warm-up, then the measured run; fills R[KIND.ROUND.*].
bench() {
    local kind=$1 round=$2 label="$1.$2" url=${URL[$1]} header=${HDR[$1]}
    local out="$WORK/wrk-$label.txt" warm=(-s "$WORK/tail.lua") meas=(-s "$WORK/tail.lua")
    local u0 k0 u1 k1 b0 q0 b1 q1 requests
    if [[ $kind == jwtn ]]; then
        warm=(-s "$WORK/tokens.lua" -- "$WORK/tokens.txt" $((TOKENS / 2)))
        meas=(-s "$WORK/tokens.lua" -- "$WORK/tokens.txt" 0)
    elif [[ -n $header ]]; then
        warm=(-H "$header" "${warm[@]}")
        meas=(-H "$header" "${meas[@]}")
    fi
    log "wrk $label: $url (warm-up ${WARMUP}s, then ${DURATION}s)"
    timeout $((WARMUP + 60)) taskset -c "$LCPU" wrk -t1 -c"$CONNS" -d"${WARMUP}s" "$url" "${warm[@]}" >"$out" 2>&1 \
        || die "wrk warm-up on $label failed: $(cat "$out")"
    if grep -qE 'Non-2xx|Socket errors' "$out"; then die "wrk warm-up on $label: $(grep -E 'Non-2xx|Socket errors' "$out")"; fi
    read -r u0 k0 < <(sed 's/^.*) //' "/proc/$SY_PID/stat" | awk '{print $12, $13}')
    read -r b0 q0 < <(core_ticks "$SCPU")
    timeout $((DURATION + 60)) taskset -c "$LCPU" wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "$url" "${meas[@]}" >"$out" 2>&1 \
        || die "wrk on $label failed: $(cat "$out")"
    read -r u1 k1 < <(sed 's/^.*) //' "/proc/$SY_PID/stat" | awk '{print $12, $13}')
    read -r b1 q1 < <(core_ticks "$SCPU")
    if grep -qE 'Non-2xx|Socket errors' "$out"; then die "wrk on $label: $(grep -E 'Non-2xx|Socket errors' "$out")"; fi
    requests=$(awk '/requests in/ {print $1}' "$out")
    [[ -n $requests && $requests -gt 0 ]] || die "wrk on $label completed no requests: $(cat "$out")"
    per_request() { awk -v d="$1" -v n="$requests" -v hz="$CLK_TCK" 'BEGIN {printf "%.2f", d * 1e6 / hz / n}'; }
    R[$label.requests]=$requests
    R[$label.rps]=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$out")
    R[$label.p50]=$(to_ms "$(awk '$1 == "50%" {print $2}' "$out")")
    R[$label.p99]=$(to_ms "$(awk '$1 == "99%" {print $2}' "$out")")
    R[$label.max]=$(awk '$1 == "max_us" {printf "%.3f", $2 / 1000}' "$out")
    R[$label.cpu]=$(per_request $((u1 + k1 - u0 - k0)))
    R[$label.usr]=$(per_request $((u1 - u0)))
    R[$label.sys]=$(per_request $((k1 - k0)))
    # Busy time on the server's core not charged to the server: other processes (noise).
    R[$label.other]=$(pct $((b1 - b0 - (u1 + k1 - u0 - k0))) "$DURATION")
    R[$label.repeats]=0
    [[ $kind == jwtn && $requests -gt $TOKENS ]] && R[$label.repeats]=$((requests - TOKENS))
    log "  $label: ${R[$label.rps]} req/s, p50 ${R[$label.p50]} ms, p99 ${R[$label.p99]} ms," \
        "${R[$label.cpu]} µs CPU/request (user ${R[$label.usr]}, system ${R[$label.sys]}); core $SCPU other ${R[$label.other]}" \
        "$([[ $kind == jwtn ]] && echo "; ${R[$label.repeats]} requests sent a token again")"
}

for round in $(seq "$ROUNDS"); do
    for kind in "${KINDS[@]}"; do bench "$kind" "$round"; done
done
for kind in "${KINDS[@]}"; do
    for f in rps p50 p99 max cpu usr sys other repeats; do
        vals=()
        for r in $(seq "$ROUNDS"); do vals+=("${R[$kind.$r.$f]%\%}"); done
        R[$kind.$f]=$(median "${vals[@]}")
        R[$kind.all_$f]="${vals[*]}"
    done
    R[$kind.cost]=$(diff2 "${R[$kind.cpu]}" "${R[open.cpu]}")
    R[$kind.ucost]=$(diff2 "${R[$kind.usr]}" "${R[open.usr]}")
    dd=()
    for r in $(seq "$ROUNDS"); do dd+=("$(diff2 "${R[$kind.$r.cpu]}" "${R[open.$r.cpu]}")"); done
    R[$kind.all_cost]="${dd[*]}"
done
R[rss]=$(awk '/^VmRSS:/ {printf "%.1f", $2 * 1024 / 1e6}' "/proc/$SY_PID/status")
stop "$SY_PID"

# ---------------------------------------------------------------- 2. callgrind
if [[ $CG == 1 ]]; then
    PORT=$(free_port)
    log "the same store under callgrind (port $PORT)"
    taskset -c "$SCPU" valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.%p" \
        "$SY" serve --db "sqlite://$WORK/auth.db" --port "$PORT" --workers 1 --access-log off --log warn \
        >"$WORK/callgrind.log" 2>&1 &
    CG_PID=$!
    PIDS+=("$CG_PID")
    for _ in $(seq 1200); do
        curl -sf -o /dev/null --max-time 5 "http://127.0.0.1:$PORT/health" && break
        kill -0 "$CG_PID" 2>/dev/null || die "the server under callgrind exited (see $WORK/callgrind.log)"
        sleep 0.1
    done
    curl -sf -o /dev/null --max-time 5 "http://127.0.0.1:$PORT/health" || die "the server under callgrind did not answer in 120 s"
    # cg_requests KIND COUNT OFFSET: sequential requests of KIND (tokens from line OFFSET+1).
    cg_requests() {
        local kind=$1 args=(--port "$PORT" --path "/$USER_NAME/${URL[$1]#"$BASE/"}" --count "$2")
        if [[ $kind == jwtn ]]; then
            args+=(--tokens "$WORK/tokens.txt" --offset "$3")
        elif [[ -n ${HDR[$kind]} ]]; then
            args+=(--header "${HDR[$kind]}")
        fi
        timeout 900 taskset -c "$LCPU" python3 "$WORK/au.py" requests "${args[@]}" 2>"$WORK/cg-client.log" \
            || { cat "$WORK/cg-client.log" >&2; die "requests to $kind under callgrind failed"; }
    }
    dumps=0
    for kind in "${KINDS[@]}"; do
        log "  $kind: $CG_WARMUP requests, zero, $CG_REQUESTS requests, dump"
        cg_requests "$kind" "$CG_WARMUP" 0
        callgrind_control -z "$CG_PID" >/dev/null 2>&1 || die "callgrind_control -z failed"
        cg_requests "$kind" "$CG_REQUESTS" "$CG_WARMUP"
        callgrind_control -d "$CG_PID" >/dev/null 2>&1 || die "callgrind_control -d failed"
        dumps=$((dumps + 1))
        dump="$WORK/cg.$CG_PID.$dumps"
        for _ in $(seq 100); do [[ -s $dump ]] && grep -q '^totals:' "$dump" && break; sleep 0.1; done
        total=$(awk '/^(summary|totals):/ {print $2; exit}' "$dump" 2>/dev/null)
        [[ -n $total ]] || die "no callgrind dump $dump"
        R[cg.$kind]=$(awk -v t="$total" -v n="$CG_REQUESTS" 'BEGIN {printf "%.0f", t / n}')
        log "    ${R[cg.$kind]} instructions/request"
    done
    stop "$CG_PID"
    for kind in "${KINDS[@]}"; do R[cg.$kind.cost]=$((${R[cg.$kind]} - ${R[cg.open]})); done
fi
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- summary
summary() {
    local kind r
    echo "## Per-project auth benchmark ($START_DATE)"
    echo
    echo "Source: $SOURCE; $(rustc --version 2>/dev/null || echo rustc ?). $(nproc) cores," \
        "$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), Linux $(uname -r), $(wrk -v 2>&1 | head -1 | awk '{print "wrk", $2}')," \
        "$(valgrind --version 2>/dev/null || echo 'no valgrind'). Load average before: $LOAD_BEFORE; after: $LOAD_AFTER."
    echo "Server: \`switchyard serve --workers 1 --access-log off --log warn\`, all $PINNED threads on core $SCPU; wrk and the" \
        "Python client on core $LCPU. Projects \`open\` (\`none\`), \`keyed\` (\`api_key\`, one key) and \`jwt\` (RS256, inline JWKS" \
        "of one key), each with the literal mock \`GET /mock\` → \`$HELLO\`. Tokens: ${R[tokens.bytes]} bytes" \
        "(header with \`kid\`; \`iss\`, \`aud\`, \`sub\`, \`iat\`, \`exp\`, \`jti\`), $TOKENS distinct + 1, signed by" \
        "bench/jwt_tokens.rs in ${R[tokens.seconds]} s."
    echo
    echo "### Under load: medians of $ROUNDS interleaved rounds"
    echo
    echo "wrk -t1 -c$CONNS, ${WARMUP}s warm-up, ${DURATION}s measured. Server CPU = utime + stime of the whole process over the" \
        "measured run / requests. Auth cost = that CPU − open's (difference of the medians; per round in the next table)."
    echo
    echo "| kind | requests/s | p50 ms | p99 ms | server CPU µs/request (user + system) | auth cost µs/request over open (user part) | core $SCPU other |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
    for kind in "${KINDS[@]}"; do
        printf '| %s | %s | %s | %s | %s (%s + %s) | %s | %s%% |\n' "$(name_of "$kind")" "${R[$kind.rps]}" "${R[$kind.p50]}" \
            "${R[$kind.p99]}" "${R[$kind.cpu]}" "${R[$kind.usr]}" "${R[$kind.sys]}" \
            "$([[ $kind == open ]] && echo — || echo "${R[$kind.cost]} (${R[$kind.ucost]})")" "${R[$kind.other]}"
    done
    echo
    echo "Each round: server CPU µs/request (auth cost over that round's open); \"other\" is busy time on core $SCPU not" \
        "charged to the server (other processes: the noise indicator)."
    echo
    echo "| round | open | keyed | jwt one token | jwt new tokens | core $SCPU other (open / keyed / one / new) |"
    echo "|---|---:|---:|---:|---:|---:|"
    for r in $(seq "$ROUNDS"); do
        printf '| %s | %s | %s (%s) | %s (%s) | %s (%s) | %s / %s / %s / %s |\n' "$r" "${R[open.$r.cpu]}" \
            "${R[keyed.$r.cpu]}" "$(diff2 "${R[keyed.$r.cpu]}" "${R[open.$r.cpu]}")" \
            "${R[jwt1.$r.cpu]}" "$(diff2 "${R[jwt1.$r.cpu]}" "${R[open.$r.cpu]}")" \
            "${R[jwtn.$r.cpu]}" "$(diff2 "${R[jwtn.$r.cpu]}" "${R[open.$r.cpu]}")" \
            "${R[open.$r.other]}" "${R[keyed.$r.other]}" "${R[jwt1.$r.other]}" "${R[jwtn.$r.other]}"
    done
    echo
    echo "requests/s per round: open ${R[open.all_rps]}; keyed ${R[keyed.all_rps]}; jwt one token ${R[jwt1.all_rps]};" \
        "jwt new tokens ${R[jwtn.all_rps]}. p99 ms per round: open ${R[open.all_p99]}; keyed ${R[keyed.all_p99]};" \
        "jwt one token ${R[jwt1.all_p99]}; jwt new tokens ${R[jwtn.all_p99]}. VmRSS after the runs: ${R[rss]} MB."
    echo "New tokens: each measured run starts at the first of the $TOKENS tokens (the warm-ups in the middle of the list);" \
        "requests that sent a token again, per round: ${R[jwtn.all_repeats]}. A token comes back only after all $TOKENS" \
        "others; the verified-token cache has 4,096 direct-mapped slots, so it is still there with probability" \
        "(1 − 1/4096)^$((TOKENS - 1)) = $(awk -v n="$TOKENS" 'BEGIN {printf "%.2g", exp((n - 1) * log(1 - 1 / 4096))}')."
    if [[ $CG == 1 ]]; then
        echo
        echo "### Instructions per request (callgrind)"
        echo
        echo "The same store served under \`valgrind --tool=callgrind\`; per kind $CG_WARMUP sequential requests on one" \
            "keep-alive connection, counters zeroed, $CG_REQUESTS requests counted (user space, all threads). New tokens:" \
            "none sent to this process before."
        echo
        echo "| kind | instructions/request | over open |"
        echo "|---|---:|---:|"
        for kind in "${KINDS[@]}"; do
            printf '| %s | %s | %s |\n' "$(name_of "$kind")" "$(thousands "${R[cg.$kind]}")" \
                "$([[ $kind == open ]] && echo — || echo "+$(thousands "${R[cg.$kind.cost]}")")"
        done
    fi
    echo
    echo "### Targets"
    echo
    echo "| target | measured (auth cost, CPU µs/request over open; median, rounds) | verdict |"
    echo "|---|---:|---|"
    echo "| API key check ≤ 5 µs | ${R[keyed.cost]} (${R[keyed.all_cost]}) | $(verdict "$(le "${R[keyed.cost]}" 5)") |"
    echo "| RS256 JWT, key cached, the same token again (verified-token cache hit) ≤ 20 µs | ${R[jwt1.cost]} (${R[jwt1.all_cost]}) | $(verdict "$(le "${R[jwt1.cost]}" 20)") |"
    echo "| RS256 JWT, key cached, a new token each request (signature checked) ≤ 20 µs | ${R[jwtn.cost]} (${R[jwtn.all_cost]}) | $(verdict "$(le "${R[jwtn.cost]}" 20)") |"
}
echo
if [[ -n ${BENCH_OUT:-} ]]; then summary | tee "$BENCH_OUT"; else summary; fi
