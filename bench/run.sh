#!/usr/bin/env bash
# Switchyard benchmark: one run, side by side with a minimal hyper server and nginx.
#
#   bash bench/run.sh            (from the repository root; see docs/benchmarks.md)
#
# Servers run pinned to core 0 (Switchyard --workers 1, hyper on a current-thread runtime,
# nginx with one worker); wrk and the admin client run pinned to core 1.
#  1. GET /alice/demo/hello on the three servers: requests/s, p50/p99, server CPU µs/request.
#  2. 10,000 endpoints added one at a time via the admin API: POST-until-served latency.
#  3. wrk on the first and last added endpoint with 1, 10,000 and 100,000 endpoints
#     (100,000 loaded by one PUT of the whole project).
#  4. Cold start (exec → /health answers) on the 10,000-endpoint store; idle RSS.
#  5. Step 2 again from a client in another language (bench/add_latency.py, Python standard
#     library) on a fresh server: one keep-alive connection, then a new connection per request.
# Prints a markdown summary at the end. Exits non-zero if a step fails, not if a target
# is missed. Only 127.0.0.1 is used; every process started here is stopped on exit.
#
# Knobs (environment): CARGO_TARGET_DIR (default target), BENCH_WARMUP (s, default 3),
# BENCH_DURATION (s, default 10), BENCH_CONNECTIONS (64), BENCH_ADD (10000),
# BENCH_BULK (100000), BENCH_COLD_REPS (5), BENCH_ROUNDS (interleaved rounds of step 1 and
# of the 1 vs 100,000 comparison, default 3; the median-throughput round is reported), BENCH_SERVER_CPU (0),
# BENCH_LOAD_CPU (1), BENCH_OUT (also write the summary to this file), BENCH_KEEP=1 (keep
# the temp dir with logs and databases).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-target}
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$ROOT/$TARGET_DIR" ;; esac
WARMUP=${BENCH_WARMUP:-3}
DURATION=${BENCH_DURATION:-10}
CONNS=${BENCH_CONNECTIONS:-64}
ADD_COUNT=${BENCH_ADD:-10000}
BULK_COUNT=${BENCH_BULK:-100000}
COLD_REPS=${BENCH_COLD_REPS:-5}
ROUNDS=${BENCH_ROUNDS:-3}
SCPU=${BENCH_SERVER_CPU:-0}
LCPU=${BENCH_LOAD_CPU:-1}
HELLO='{"message":"hello"}'

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }

# ---------------------------------------------------------------- processes and cleanup
WORK=$(mktemp -d /tmp/switchyard-bench.XXXXXX)
PIDS=()
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
trap cleanup EXIT
trap 'exit 130' INT TERM

declare -A R    # results: R[label.rps], R[label.p50], R[label.p99], R[label.cpu], ...

# bench LABEL URL PID...: warm-up, then the measured wrk run, CPU of PIDs around it.
bench() {
    local label=$1 url=$2
    shift 2
    check_body "$url"
    log "wrk $label: $url (warm-up ${WARMUP}s, then ${DURATION}s)"
    timeout $((WARMUP + 30)) taskset -c "$LCPU" wrk -t1 -c"$CONNS" -d"${WARMUP}s" "$url" >/dev/null \
        || die "wrk warm-up on $url failed"
    local out="$WORK/wrk-$label.txt" t0 t1 b0 b1
    t0=$(cpu_ticks "$@")
    read -r b0 q0 < <(core_ticks "$SCPU")
    timeout $((DURATION + 30)) taskset -c "$LCPU" wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "$url" >"$out" \
        || die "wrk on $url failed: $(cat "$out")"
    t1=$(cpu_ticks "$@")
    read -r b1 q1 < <(core_ticks "$SCPU")
    if grep -q 'Non-2xx' "$out"; then die "wrk on $url: $(grep 'Non-2xx' "$out")"; fi
    local requests rps p50 p99 errors
    requests=$(awk '/requests in/ {print $1}' "$out")
    rps=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$out")
    p50=$(to_ms "$(awk '$1 == "50%" {print $2}' "$out")")
    p99=$(to_ms "$(awk '$1 == "99%" {print $2}' "$out")")
    errors=$(awk '/Socket errors/ {print $3, $4, $5, $6, $7, $8, $9, $10}' "$out")
    [[ -n $requests && $requests -gt 0 ]] || die "wrk on $url completed no requests: $(cat "$out")"
    R[$label.rps]=$rps
    R[$label.p50]=$p50
    R[$label.p99]=$p99
    R[$label.requests]=$requests
    R[$label.cpu]=$(awk -v d=$((t1 - t0)) -v n="$requests" -v hz="$CLK_TCK" 'BEGIN {printf "%.2f", d * 1e6 / hz / n}')
    # Shares of the server core during the run: the server itself (below ~90% it was not
    # the bottleneck), softirq (kernel network work), and busy time not charged to the
    # server (other processes, or softirq while the server slept: the noise indicator).
    pct_of() { awk -v t="$1" -v hz="$CLK_TCK" -v d="$DURATION" 'BEGIN {o = t / hz / d * 100; if (o < 0) o = 0; printf "%.0f%%", o}'; }
    R[$label.busy]=$(pct_of $((t1 - t0)))
    R[$label.softirq]=$(pct_of $((q1 - q0)))
    R[$label.other]=$(pct_of $((b1 - b0 - (t1 - t0))))
    R[$label.errors]=${errors:-none}
    log "  $label: ${rps} req/s, p50 ${p50} ms, p99 ${p99} ms, ${R[$label.cpu]} µs CPU/request; core $SCPU: server ${R[$label.busy]}, softirq ${R[$label.softirq]}, other ${R[$label.other]}${errors:+, socket errors: $errors}"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b + 0 == 0) print "n/a"; else printf "%.3f", a / b}'; }
# verdict OK: "met" or "**missed**"
verdict() { if [[ $1 == 1 ]]; then echo "met"; else echo "**missed**"; fi; }
cmp() { awk -v a="$1" -v op="$2" -v b="$3" 'BEGIN {
    if (op == "<=") r = (a + 0 <= b + 0); else if (op == "<") r = (a + 0 < b + 0); else r = (a + 0 >= b + 0)
    print r ? 1 : 0 }'; }

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

log "building release binaries (target dir $TARGET_DIR)"
CARGO_TARGET_DIR="$TARGET_DIR" cargo build --release --bin switchyard --examples >"$WORK/build.log" 2>&1 \
    || { tail -30 "$WORK/build.log" >&2; die "cargo build failed"; }
SY="$TARGET_DIR/release/switchyard"
HYPER="$TARGET_DIR/release/examples/hyper_baseline"
ADMIN="$TARGET_DIR/release/examples/admin_latency"
LOAD=(taskset -c "$LCPU")

START_DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ)
# What was measured: the git commit if there is one, and a hash of the sources as built.
SOURCE=$(git rev-parse --short HEAD 2>/dev/null || echo "no commit")
SOURCE="$SOURCE, src+bench sha256 $(find src bench Cargo.toml Cargo.lock -type f | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-12)"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
log "load average before: $LOAD_BEFORE"

# ---------------------------------------------------------------- servers
PASSWORD="bench-$RANDOM$RANDOM$RANDOM"
DB="sqlite://$WORK/switchyard.db"

# start_switchyard DB LOGFILE: sets SY_PID and SY_PORT.
start_switchyard() {
    SY_PORT=$(free_port)
    NO_COLOR=1 taskset -c "$SCPU" "$SY" serve --db "$1" --port "$SY_PORT" --workers 1 \
        --admin-body-limit 64MiB --access-log off >"$2" 2>&1 &
    SY_PID=$!
    PIDS+=("$SY_PID")
    wait_http "http://127.0.0.1:$SY_PORT/health" "$SY_PID"
}

log "starting Switchyard (fresh store) on core $SCPU"
start_switchyard "$DB" "$WORK/switchyard-1.log"
SY_BASE="http://127.0.0.1:$SY_PORT"
ACCOUNT=(--base "$SY_BASE" --user alice --password "$PASSWORD" --project demo)
"${LOAD[@]}" "$ADMIN" setup "${ACCOUNT[@]}" >"$WORK/setup.txt" || die "creating alice/demo failed"

HYPER_PORT=$(free_port)
log "starting the hyper baseline on core $SCPU"
taskset -c "$SCPU" "$HYPER" --port "$HYPER_PORT" >"$WORK/hyper.log" 2>&1 &
HYPER_PID=$!
PIDS+=("$HYPER_PID")
wait_http "http://127.0.0.1:$HYPER_PORT/" "$HYPER_PID"

NGINX_PORT=$(free_port)
mkdir -p "$WORK/nginx"
sed -e "s|__DIR__|$WORK/nginx|g" -e "s|__PORT__|$NGINX_PORT|g" bench/nginx.conf >"$WORK/nginx/nginx.conf"
log "starting nginx ($("$NGINX" -v 2>&1 | sed 's/.*: //')) on core $SCPU"
taskset -c "$SCPU" "$NGINX" -p "$WORK/nginx" -e "$WORK/nginx/nginx-error.log" -c "$WORK/nginx/nginx.conf" \
    >"$WORK/nginx/stdout.log" 2>&1 &
NGINX_PID=$!
PIDS+=("$NGINX_PID")
wait_http "http://127.0.0.1:$NGINX_PORT/alice/demo/hello" "$NGINX_PID"
NGINX_PIDS=("$NGINX_PID" $(pgrep -P "$NGINX_PID"))
[[ ${#NGINX_PIDS[@]} == 2 ]] || die "expected one nginx master and one worker, found ${NGINX_PIDS[*]}"

# ---------------------------------------------------------------- 1. peers side by side
for round in $(seq "$ROUNDS"); do
    bench "sy.$round" "$SY_BASE/alice/demo/hello" "$SY_PID"
    bench "hyper.$round" "http://127.0.0.1:$HYPER_PORT/alice/demo/hello" "$HYPER_PID"
    bench "nginx.$round" "http://127.0.0.1:$NGINX_PORT/alice/demo/hello" "${NGINX_PIDS[@]}"
done
# pick LABEL: copy the median-throughput round of LABEL.N to LABEL.
pick() {
    local best
    best=$(for r in $(seq "$ROUNDS"); do echo "${R[$1.$r.rps]} $r"; done | sort -n | awk -v m=$(((ROUNDS + 1) / 2)) 'NR == m {print $2}')
    for field in rps p50 p99 cpu busy softirq other errors requests; do R[$1.$field]=${R[$1.$best.$field]}; done
    R[$1.all_rps]=$(for r in $(seq "$ROUNDS"); do printf '%s ' "${R[$1.$r.rps]}"; done)
    R[$1.all_cpu]=$(for r in $(seq "$ROUNDS"); do printf '%s ' "${R[$1.$r.cpu]}"; done)
}
for s in sy hyper nginx; do pick "$s"; done
stop "$HYPER_PID"
stop "$NGINX_PID"

# ---------------------------------------------------------------- 2. add 10,000 one at a time
log "adding $ADD_COUNT endpoints one at a time through the admin API"
"${LOAD[@]}" "$ADMIN" add "${ACCOUNT[@]}" --count "$ADD_COUNT" --samples "$WORK/add-samples.txt" >"$WORK/add.txt" 2>"$WORK/add.log" \
    || { cat "$WORK/add.log" >&2; die "adding endpoints failed"; }
grep -E 'endpoints (added|in)' "$WORK/add.log" | tail -3 >&2 || true
kv "$WORK/add.txt" add

# ---------------------------------------------------------------- 3. throughput vs route count
bench "n10k.hello" "$SY_BASE/alice/demo/hello" "$SY_PID"
bench "n10k.first" "$SY_BASE${R[add.add_first_path]}" "$SY_PID"
bench "n10k.last" "$SY_BASE${R[add.add_last_path]}" "$SY_PID"

# ---------------------------------------------------------------- 4. cold start, 10,000 endpoints
log "stopping Switchyard; cold start on the same store, $COLD_REPS times"
stop "$SY_PID"
COLD_PORT=$(free_port)
"${LOAD[@]}" "$ADMIN" coldstart --bin "$SY" --db "$DB" --port "$COLD_PORT" --reps "$COLD_REPS" \
    --cpu "$SCPU" --key cold10k >"$WORK/cold10k.txt" 2>"$WORK/cold10k.log" \
    || { cat "$WORK/cold10k.log" >&2; die "cold start (10,000 endpoints) failed"; }
cat "$WORK/cold10k.log" >&2
kv "$WORK/cold10k.txt" cold
log "idle RSS with no endpoints (fresh, empty store)"
"${LOAD[@]}" "$ADMIN" coldstart --bin "$SY" --db "sqlite://$WORK/empty.db" --port "$COLD_PORT" \
    --reps "$COLD_REPS" --cpu "$SCPU" --key cold0 >"$WORK/cold0.txt" 2>"$WORK/cold0.log" \
    || { cat "$WORK/cold0.log" >&2; die "cold start (empty store) failed"; }
cat "$WORK/cold0.log" >&2
kv "$WORK/cold0.txt" cold

# ---------------------------------------------------------------- 3b. 100,000 endpoints in one PUT
log "restarting Switchyard on the same store; PUT of $BULK_COUNT endpoints"
start_switchyard "$DB" "$WORK/switchyard-2.log"
SY_BASE="http://127.0.0.1:$SY_PORT"
ACCOUNT=(--base "$SY_BASE" --user alice --password "$PASSWORD" --project demo)
# Throughput drifts by tens of percent over minutes on a shared host, so 1 and 100,000 are
# compared in interleaved rounds on this one server: PUT the 1-endpoint project, measure,
# PUT the 100,000-endpoint project, measure first and last; the median round of each counts.
for round in $(seq "$ROUNDS"); do
    "${LOAD[@]}" "$ADMIN" setup "${ACCOUNT[@]}" >"$WORK/setup-$round.txt" || die "PUT of the 1-endpoint project failed"
    bench "n1.$round" "$SY_BASE/alice/demo/hello" "$SY_PID"
    "${LOAD[@]}" "$ADMIN" bulk "${ACCOUNT[@]}" --count "$BULK_COUNT" >"$WORK/bulk.txt" 2>"$WORK/bulk.log" \
        || { cat "$WORK/bulk.log" >&2; die "PUT of $BULK_COUNT endpoints failed"; }
    cat "$WORK/bulk.log" >&2
    kv "$WORK/bulk.txt" bulk
    R[bulk.put_all]="${R[bulk.put_all]:-}${R[bulk.bulk_put_ms]} "
    bench "n100k.first.$round" "$SY_BASE${R[bulk.bulk_first_path]}" "$SY_PID"
    bench "n100k.last.$round" "$SY_BASE${R[bulk.bulk_last_path]}" "$SY_PID"
done
for s in n1 n100k.first n100k.last; do pick "$s"; done
SY_RSS_LOADED=$(awk '/^VmRSS/ {printf "%.1f", $2 * 1024 / 1e6}' "/proc/$SY_PID/status")
stop "$SY_PID"

log "cold start with $BULK_COUNT endpoints (for information)"
"${LOAD[@]}" "$ADMIN" coldstart --bin "$SY" --db "$DB" --port "$COLD_PORT" --reps 3 \
    --cpu "$SCPU" --key cold100k >"$WORK/cold100k.txt" 2>"$WORK/cold100k.log" \
    || { cat "$WORK/cold100k.log" >&2; die "cold start ($BULK_COUNT endpoints) failed"; }
cat "$WORK/cold100k.log" >&2
kv "$WORK/cold100k.txt" cold

# ---------------------------------------------------------------- 5. add 10,000 from Python
log "adding $ADD_COUNT endpoints one at a time from Python (keep-alive, then a connection per request)"
python3 bench/add_latency.py --bin "$SY" --server-args "--workers 1 --access-log off" --server-cpu "$SCPU" --client-cpu "$LCPU" \
    --count "$ADD_COUNT" --mode both --out "$WORK/pyadd.txt" >"$WORK/pyadd-report.txt" 2>"$WORK/pyadd.log" \
    || { cat "$WORK/pyadd.log" >&2; die "adding endpoints from Python failed"; }
kv "$WORK/pyadd.txt" py

LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- summary
n_add=$((ADD_COUNT + 1))
cpu_vs_hyper=$(ratio "${R[sy.cpu]}" "${R[hyper.cpu]}")
cpu_vs_nginx=$(ratio "${R[sy.cpu]}" "${R[nginx.cpu]}")
rps_vs_hyper=$(ratio "${R[sy.rps]}" "${R[hyper.rps]}")
rps_vs_nginx=$(ratio "${R[sy.rps]}" "${R[nginx.rps]}")
first_100k=$(ratio "${R[n100k.first.rps]}" "${R[n1.rps]}")
last_100k=$(ratio "${R[n100k.last.rps]}" "${R[n1.rps]}")
worst_100k=$(printf '%s\n%s\n' "$first_100k" "$last_100k" | sort -g | head -1)

row() { # label key
    printf '| %s | %s | %s | %s | %s | %s / %s / %s |\n' "$1" "${R[$2.rps]}" "${R[$2.p50]}" "${R[$2.p99]}" "${R[$2.cpu]}" \
        "${R[$2.busy]}" "${R[$2.softirq]}" "${R[$2.other]}"
}
summary() {
    echo "## Switchyard benchmark — $START_DATE"
    echo
    echo "$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), Linux $(uname -r);" \
        "servers on core $SCPU, wrk/client on core $LCPU; wrk -t1 -c$CONNS, ${WARMUP}s warm-up + ${DURATION}s;" \
        "load average before $LOAD_BEFORE, after $LOAD_AFTER. Source: $SOURCE; $(rustc --version 2>/dev/null || echo rustc ?)."
    echo
    echo "### 1. GET /alice/demo/hello → $HELLO (access log off everywhere)"
    echo
    echo "| server | requests/s | p50 ms | p99 ms | server CPU µs/request | core $SCPU: server / softirq / other |"
    echo "|---|---:|---:|---:|---:|---:|"
    row "Switchyard (--workers 1)" sy
    row "minimal hyper (current_thread)" hyper
    row "nginx (1 worker, return 200)" nginx
    if ((ROUNDS > 1)); then
        echo
        echo "Median of $ROUNDS interleaved rounds by requests/s. All rounds, requests/s: Switchyard ${R[sy.all_rps]}; hyper ${R[hyper.all_rps]}; nginx ${R[nginx.all_rps]}." \
            "CPU µs/request: Switchyard ${R[sy.all_cpu]}; hyper ${R[hyper.all_cpu]}; nginx ${R[nginx.all_cpu]}."
        echo -n "Per-round Switchyard/hyper CPU ratio:"
        for r in $(seq "$ROUNDS"); do echo -n " $(ratio "${R[sy.$r.cpu]}" "${R[hyper.$r.cpu]}")"; done
        echo -n "; Switchyard/nginx:"
        for r in $(seq "$ROUNDS"); do echo -n " $(ratio "${R[sy.$r.cpu]}" "${R[nginx.$r.cpu]}")"; done
        echo "."
    fi
    echo
    echo "Switchyard / hyper: requests/s ×$rps_vs_hyper, CPU per request ×$cpu_vs_hyper." \
        "Switchyard / nginx: requests/s ×$rps_vs_nginx, CPU per request ×$cpu_vs_nginx."
    echo
    echo "### 2. $ADD_COUNT endpoints added one at a time (POST, then GET until 200)"
    echo
    echo "| | p50 ms | p90 ms | p99 ms | max ms | mean ms |"
    echo "|---|---:|---:|---:|---:|---:|"
    local first_tail=$((${R[add.add_tail_from]} + 1))
    for k in add_total add_post add_total_tail add_post_tail; do
        local name
        case $k in
            add_total) name="add until served, all $ADD_COUNT" ;;
            add_post) name="POST alone, all $ADD_COUNT" ;;
            add_total_tail) name="add until served, the last ${R[add.add_total_tail_n]} (with $first_tail–$ADD_COUNT present)" ;;
            add_post_tail) name="POST alone, the last ${R[add.add_post_tail_n]}" ;;
        esac
        printf '| %s | %s | %s | %s | %s | %s |\n' "$name" "${R[add.${k}_p50_ms]}" "${R[add.${k}_p90_ms]}" \
            "${R[add.${k}_p99_ms]}" "${R[add.${k}_max_ms]}" "${R[add.${k}_mean_ms]}"
    done
    echo
    echo "New endpoint not served on the first GET after the POST answered: ${R[add.add_not_served_on_first_get]} times."
    echo -n "p99 of add-until-served per 1000 added:"
    for ((c = 1000; c <= ADD_COUNT; c += 1000)); do echo -n " ${R[add.add_chunk_${c}_p99_ms]:-?}"; done
    echo " ms."
    echo
    echo "### 3. Throughput against route count"
    echo
    echo "| endpoints in the project | URL | requests/s | p50 ms | p99 ms | server CPU µs/request | core $SCPU: server / softirq / other |"
    echo "|---|---|---:|---:|---:|---:|---:|"
    printf '| 1 (step 1) | /alice/demo/hello | %s | %s | %s | %s | %s / %s / %s |\n' "${R[sy.rps]}" "${R[sy.p50]}" "${R[sy.p99]}" "${R[sy.cpu]}" \
        "${R[sy.busy]}" "${R[sy.softirq]}" "${R[sy.other]}"
    printf '| 1 (interleaved with 100,000) | /alice/demo/hello | %s | %s | %s | %s | %s / %s / %s |\n' "${R[n1.rps]}" "${R[n1.p50]}" "${R[n1.p99]}" "${R[n1.cpu]}" \
        "${R[n1.busy]}" "${R[n1.softirq]}" "${R[n1.other]}"
    for n in n10k n100k; do
        local count=$n_add path_first=${R[add.add_first_path]} path_last=${R[add.add_last_path]} whichs="first last hello"
        if [[ $n == n100k ]]; then count=${R[bulk.bulk_endpoints]}; path_first=${R[bulk.bulk_first_path]}; path_last=${R[bulk.bulk_last_path]}; whichs="first last"; fi
        for which in $whichs; do
            local path
            case $which in first) path="$path_first (first added)" ;; last) path="$path_last (last added)" ;; hello) path="/alice/demo/hello" ;; esac
            printf '| %s | %s | %s | %s | %s | %s | %s / %s / %s |\n' "$count" "$path" "${R[$n.$which.rps]}" "${R[$n.$which.p50]}" \
                "${R[$n.$which.p99]}" "${R[$n.$which.cpu]}" "${R[$n.$which.busy]}" "${R[$n.$which.softirq]}" "${R[$n.$which.other]}"
        done
    done
    echo
    echo "1 and ${R[bulk.bulk_endpoints]} were measured in $ROUNDS interleaved rounds on the same server (median round by requests/s shown)." \
        "Requests/s, all rounds: 1: ${R[n1.all_rps]}; first: ${R[n100k.first.all_rps]}; last: ${R[n100k.last.all_rps]}." \
        "CPU µs/request: 1: ${R[n1.all_cpu]}; first: ${R[n100k.first.all_cpu]}; last: ${R[n100k.last.all_cpu]}."
    echo
    echo "${R[bulk.bulk_endpoints]} / 1 (requests/s): first added ×$first_100k, last added ×$last_100k;" \
        "CPU per request: first ×$(ratio "${R[n100k.first.cpu]}" "${R[n1.cpu]}"), last ×$(ratio "${R[n100k.last.cpu]}" "${R[n1.cpu]}")." \
        "Each PUT of ${R[bulk.bulk_endpoints]} endpoints took ${R[bulk.put_all]}ms." \
        "Server RSS after the 100,000-endpoint runs: ${SY_RSS_LOADED} MB."
    echo
    echo "### 4. Cold start and idle memory"
    echo
    echo "| store | exec → /health answers, median ms (all) | startup_ms logged, median | idle VmRSS, median MB |"
    echo "|---|---:|---:|---:|"
    printf '| empty | %s (%s) | %s | %s |\n' "${R[cold.cold0_health_median_ms]}" "${R[cold.cold0_health_all_ms]}" "${R[cold.cold0_logged_median_ms]}" "${R[cold.cold0_rss_median_mb]}"
    printf '| %s endpoints | %s (%s) | %s | %s |\n' "$n_add" "${R[cold.cold10k_health_median_ms]}" "${R[cold.cold10k_health_all_ms]}" "${R[cold.cold10k_logged_median_ms]}" "${R[cold.cold10k_rss_median_mb]}"
    printf '| %s endpoints | %s (%s) | %s | %s |\n' "${R[bulk.bulk_endpoints]}" "${R[cold.cold100k_health_median_ms]}" "${R[cold.cold100k_health_all_ms]}" "${R[cold.cold100k_logged_median_ms]}" "${R[cold.cold100k_rss_median_mb]}"
    echo
    echo "### 5. $ADD_COUNT endpoints added one at a time from Python (bench/add_latency.py, fresh server, --workers 1)"
    echo
    echo "| connection | adds | p50 ms | p90 ms | p99 ms | max ms |"
    echo "|---|---|---:|---:|---:|---:|"
    for mode in keepalive fresh; do
        local conn="one keep-alive connection"
        [[ $mode == fresh ]] && conn="a new connection per request"
        for part in all last1000 last100; do
            printf '| %s | %s | %s | %s | %s | %s |\n' "$conn" "$part" "${R[py.${mode}_${part}_total_p50_ms]}" \
                "${R[py.${mode}_${part}_total_p90_ms]}" "${R[py.${mode}_${part}_total_p99_ms]}" "${R[py.${mode}_${part}_total_max_ms]}"
        done
    done
    echo
    echo "p99 per 1000 added, keep-alive: ${R[py.keepalive_chunk_p99_ms]} ms; new connection per request: ${R[py.fresh_chunk_p99_ms]} ms."
    echo
    echo "### Targets"
    echo
    echo "| target | measured | verdict |"
    echo "|---|---:|---|"
    echo "| server CPU/request ≤ 1.11× minimal hyper | ×$cpu_vs_hyper | $(verdict "$(cmp "$cpu_vs_hyper" '<=' 1.11)") |"
    echo "| server CPU/request ≤ nginx | ×$cpu_vs_nginx | $(verdict "$(cmp "$cpu_vs_nginx" '<=' 1)") |"
    echo "| requests/s ≥ 0.9× minimal hyper (DESIGN.md) | ×$rps_vs_hyper | $(verdict "$(cmp "$rps_vs_hyper" '>=' 0.9)") |"
    echo "| requests/s ≥ nginx (DESIGN.md) | ×$rps_vs_nginx | $(verdict "$(cmp "$rps_vs_nginx" '>=' 1)") |"
    echo "| add until served p99 ≤ 5 ms with $ADD_COUNT endpoints (the last ${R[add.add_total_tail_n]} adds) | ${R[add.add_total_tail_p99_ms]} ms | $(verdict "$(cmp "${R[add.add_total_tail_p99_ms]}" '<=' 5)") |"
    echo "| add until served p99 ≤ 5 ms, over the whole ramp 0 → $ADD_COUNT | ${R[add.add_total_p99_ms]} ms | $(verdict "$(cmp "${R[add.add_total_p99_ms]}" '<=' 5)") |"
    for mode in keepalive fresh; do
        for part in last100 last1000; do
            local v=${R[py.${mode}_${part}_total_p99_ms]}
            echo "| add until served p99 ≤ 5 ms from Python ($mode), $part of $ADD_COUNT | $v ms | $(verdict "$(cmp "$v" '<=' 5)") |"
        done
    done
    echo "| throughput with 100,000 endpoints ≥ 0.95× with 1 (worse of first/last) | ×$worst_100k | $(verdict "$(cmp "$worst_100k" '>=' 0.95)") |"
    echo "| cold start with 10,000 endpoints < 300 ms (median) | ${R[cold.cold10k_health_median_ms]} ms | $(verdict "$(cmp "${R[cold.cold10k_health_median_ms]}" '<' 300)") |"
    echo "| idle RSS < 30 MB (10,000 endpoints) | ${R[cold.cold10k_rss_median_mb]} MB | $(verdict "$(cmp "${R[cold.cold10k_rss_median_mb]}" '<' 30)") |"
    echo "| idle RSS < 30 MB (no endpoints) | ${R[cold.cold0_rss_median_mb]} MB | $(verdict "$(cmp "${R[cold.cold0_rss_median_mb]}" '<' 30)") |"
    echo
    echo "Core $SCPU columns, as shares of the run: the measured server's own CPU (utime+stime, which is what CPU/request counts; below ~90% the server was not the bottleneck), softirq on that core (kernel network work; charged to whichever task it interrupts, so partly inside the server's figure), and busy time not charged to the server (other processes or softirq while the server slept; tens of percent mean the run was disturbed). Numbers on a shared machine are noisy; see also the load averages."
}
echo
if [[ -n ${BENCH_OUT:-} ]]; then summary | tee "$BENCH_OUT"; else summary; fi
