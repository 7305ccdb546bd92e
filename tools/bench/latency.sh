#!/usr/bin/env bash
# Latency, open loop: p50/p99 of the signed issues.labeled webhook at a fixed 2,000 requests/s
# (oha -q 2000 -z 10s, 32 connections, after a 2 s warm-up at the same rate), Lever on SQLite,
# Lever on PostgreSQL and Probot 14 in one run. oha sends the same headers on every request,
# so every request after Lever's first is a redelivery of one delivery id (answered 200
# "duplicate" after the same batched commit path; see docs/PERFORMANCE.md).
#
#   tools/bench/latency.sh             (docs/PERFORMANCE.md, "Latency")
source "$(dirname "$0")/lib.sh"
need oha "cargo install oha"; need curl curl; need openssl openssl; need psql postgresql-client
RATE=${BENCH_RATE:-2000}
machine
build_lever
probot_install
webhook_body
echo "== body $(wc -c <"$BENCH_BODY") bytes; Probot $PROBOT_VERSION; $(oha --version); oha -q $RATE -z $DURATION -c $CONNECTIONS"

ROWS=()
measure() {
    local name=$1 pid=$2 port=$3 path=$4 t0 t1
    local args=(--no-tui -m POST -T application/json -c "$CONNECTIONS" -q "$RATE"
        -H "X-GitHub-Event: issues" -H "X-GitHub-Delivery: 72d3162e-cc78-11e3-81ab-4c9367dc$(printf %04x $((RANDOM % 65536)))"
        -H "X-Hub-Signature-256: $BENCH_SIG" -H "User-Agent: GitHub-Hookshot/bench" -D "$BENCH_BODY")
    oha "${args[@]}" -z 2s "http://127.0.0.1:$port$path" >/dev/null
    t0=$(ticks "$pid")
    oha "${args[@]}" -z "$DURATION" --output-format json "http://127.0.0.1:$port$path" >"$SCRATCH/oha.json"
    t1=$(ticks "$pid")
    ROWS+=("$(python3 - "$name" "$SCRATCH/oha.json" $((t1 - t0)) "$CLK_TCK" <<'PY'
import json, sys
name, path, ticks, hz = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
r = json.load(open(path))
s, p = r["summary"], r["latencyPercentiles"]
codes = r.get("statusCodeDistribution", {})
n = sum(codes.values())
print(f"| {name} | {s['requestsPerSec']:.0f} | {p['p50'] * 1000:.2f} | {p['p99'] * 1000:.2f} | {(p.get('p99.9') or 0) * 1000:.2f} | {ticks / hz * 1e6 / max(n, 1):.0f} | {json.dumps(codes)} |")
PY
)")
    echo "-- $name: ${ROWS[-1]}"
}

start_probot
measure "Probot $PROBOT_VERSION" "$PROBOT_PID" "$PROBOT_PORT" /api/github/webhooks
stop "$PROBOT_PID"

DB=$SCRATCH/latency.db
rm -f "$DB" "$DB-wal" "$DB-shm"
start_lever "sqlite://$DB"
measure "Lever, SQLite (synchronous=full)" "$LEVER_PID" "$LEVER_PORT" /webhooks/github
stop "$LEVER_PID"

SCHEMA=lever_bench_$$
psql "$PG_URL" -qc "DROP SCHEMA IF EXISTS $SCHEMA CASCADE; CREATE SCHEMA $SCHEMA"
start_lever "$PG_URL?options=-c%20search_path%3D$SCHEMA"
measure "Lever, PostgreSQL 127.0.0.1" "$LEVER_PID" "$LEVER_PORT" /webhooks/github
stop "$LEVER_PID"
psql "$PG_URL" -qc "DROP SCHEMA $SCHEMA CASCADE"

echo
echo "| server | achieved requests/s | p50 ms | p99 ms | p99.9 ms | server CPU µs/request | status codes |"
echo "|---|---|---|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
