#!/usr/bin/env bash
# Server CPU per literal-mock request under wrk, with the request journal and the access log
# on and off (two interleaved rounds of the four settings).
#
#   cargo build --release --bin switchyard && bash bench/observability_cpu.sh
#
# Switchyard runs pinned to core 0 (--workers 1, logs to a file in a temp dir), wrk to
# core 1 (-t1 -c64, 2 s warm-up, then 8 s) on GET /alice/demo/hello of a `serve --demo`
# store. CPU is the server's utime+stime from /proc over the 8 s, divided by the requests
# wrk counted; it includes the log-writing thread. Needs wrk (bench/run.sh installs it).
# Only 127.0.0.1; every server is stopped after its run; the temp dir is removed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
W=$(mktemp -d)
target/release/switchyard serve --db $W/demo.db --port 19001 --demo > $W/demo.out 2>&1 &
P=$!; sleep 1.5; kill $P; wait $P 2>/dev/null || true
run() { # label args...
  label=$1; shift
  taskset -c 0 target/release/switchyard serve --db $W/demo.db --port 19002 --workers 1 --log-file $W/logs/sy.log "$@" > /dev/null 2>&1 &
  S=$!; sleep 0.7
  taskset -c 1 wrk -t1 -c64 -d2s http://127.0.0.1:19002/alice/demo/hello > /dev/null
  c0=$(awk '{print $14+$15}' /proc/$S/stat)
  out=$(taskset -c 1 wrk -t1 -c64 -d8s http://127.0.0.1:19002/alice/demo/hello)
  c1=$(awk '{print $14+$15}' /proc/$S/stat)
  req=$(echo "$out" | awk '/requests in/ {print $1}')
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  kill $S; wait $S 2>/dev/null || true
  echo "$label rps=$rps cpu_us_per_req=$(python3 -c "print(round(($c1-$c0)*10000/$req,2))")"
}
for round in 1 2; do
  run "journal=on  access=off" --access-log off
  run "journal=on  access=on " --access-log on
  run "journal=off access=off" --access-log off --journal-size 0
  run "journal=off access=on " --access-log on --journal-size 0
done
rm -rf "$W"
