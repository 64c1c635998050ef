#!/usr/bin/env bash
# Server CPU per literal-mock request under wrk, with the request journal and the access log
# on and off, against the minimal hyper server measured in the same round.
#
#   bash bench/observability_cpu.sh        (from the repository root)
#
# Each round runs the four Switchyard settings and the hyper baseline (bench/hyper_baseline.rs)
# one after the other (interleaved, so that the machine's drift hits them alike). A server
# runs pinned to core 0 (Switchyard --workers 1, logs to a file in a temp dir; hyper on a
# current-thread runtime), wrk to core 1 (-t1 -c64, 2 s warm-up, then BENCH_OBS_DURATION s)
# on GET /alice/demo/hello of a `serve --demo` store. CPU is the server's utime+stime from
# /proc over the measured run, divided by the requests wrk counted; it includes the
# log-writing thread. Prints one line per run, then the median of each setting over the
# rounds and its ratio to hyper's median. Knobs: BENCH_OBS_ROUNDS (3), BENCH_OBS_DURATION
# (8), CARGO_TARGET_DIR. Needs wrk (bench/run.sh installs it). Only 127.0.0.1; every server
# is stopped after its run; the temp dir is removed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
TARGET_DIR=${CARGO_TARGET_DIR:-target}
ROUNDS=${BENCH_OBS_ROUNDS:-3}
DURATION=${BENCH_OBS_DURATION:-8}
cargo build --release --locked --bin switchyard >&2
cargo build --release --locked --example hyper_baseline >&2
SY="$TARGET_DIR/release/switchyard"
HYPER="$TARGET_DIR/release/examples/hyper_baseline"
W=$(mktemp -d)
S=
cleanup() {
    [ -n "$S" ] && kill "$S" 2>/dev/null || true
    rm -rf "$W"
}
trap cleanup EXIT
"$SY" serve --db "$W/demo.db" --port 19001 --demo >"$W/demo.out" 2>&1 &
S=$!
sleep 1.5
kill "$S"
wait "$S" 2>/dev/null || true
S=
declare -A CPU
# run LABEL COMMAND...: one measured run of a server started by COMMAND on port 19002.
run() {
    local label=$1
    shift
    taskset -c 0 "$@" >/dev/null 2>&1 &
    S=$!
    sleep 0.7
    taskset -c 1 wrk -t1 -c64 -d2s http://127.0.0.1:19002/alice/demo/hello >/dev/null
    local c0 c1 out req rps cpu
    c0=$(awk '{print $14+$15}' "/proc/$S/stat")
    out=$(taskset -c 1 wrk -t1 -c64 -d"${DURATION}s" http://127.0.0.1:19002/alice/demo/hello)
    c1=$(awk '{print $14+$15}' "/proc/$S/stat")
    req=$(echo "$out" | awk '/requests in/ {print $1}')
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    kill "$S"
    wait "$S" 2>/dev/null || true
    S=
    # Clock ticks are 10 ms: µs per request = ticks * 10,000 / requests.
    cpu=$(python3 -c "print(round(($c1-$c0)*10000/$req,2))")
    CPU[$label]+="$cpu "
    printf '%-24s rps=%-10s cpu_us_per_req=%s\n' "$label" "$rps" "$cpu"
}
serve() { echo "$SY" serve --db "$W/demo.db" --port 19002 --workers 1 --log-file "$W/logs/sy.log" "$@"; }
for round in $(seq "$ROUNDS"); do
    # shellcheck disable=SC2046 # serve prints a command line of plain words
    run "journal=on  access=off" $(serve --access-log off)
    # shellcheck disable=SC2046
    run "journal=on  access=on" $(serve --access-log on)
    # shellcheck disable=SC2046
    run "journal=off access=off" $(serve --access-log off --journal-size 0)
    # shellcheck disable=SC2046
    run "journal=off access=on" $(serve --access-log on --journal-size 0)
    run "hyper" "$HYPER" --port 19002
done
echo
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
base=$(echo "${CPU[hyper]}" | median)
for label in "journal=on  access=off" "journal=on  access=on" "journal=off access=off" "journal=off access=on" "hyper"; do
    m=$(echo "${CPU[$label]}" | median)
    printf '%-24s median cpu_us_per_req=%-6s x%s hyper\n' "$label" "$m" "$(python3 -c "print(round($m/$base,3))")"
done
