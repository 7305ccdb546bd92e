#!/usr/bin/env bash
# Latency, open loop: p50/p99 of the signed issues.labeled webhook at a fixed 2,000 requests/s
# for 10 s (after a 2 s warm-up at the same rate), 32 connections at most, Lever on SQLite, Lever
# on PostgreSQL and Probot 14 in one run. The generator is benches/openloop.rs: each request
# carries a fresh X-GitHub-Delivery and a unique signed body (oha cannot vary either, so with oha
# every request after the first was a duplicate that wrote nothing), and a request's latency counts from when it was
# due, not from when a connection was free (no coordinated omission).
#
#   tools/bench/latency.sh             (docs/PERFORMANCE.md, "Latency")
source "$(dirname "$0")/lib.sh"
need curl curl; need openssl openssl; need psql postgresql-client
RATE=${BENCH_RATE:-2000}
machine
build_lever
OPENLOOP=$(bench_bin openloop)
[ -x "$OPENLOOP" ] || { echo "could not build benches/openloop.rs" >&2; exit 2; }
probot_install
webhook_body
SECONDS_MEASURED=${DURATION%s}
echo "== body $(wc -c <"$BENCH_BODY") bytes; Probot $PROBOT_VERSION; open loop at $RATE/s for ${SECONDS_MEASURED}s, $CONNECTIONS connections, a fresh delivery id per request"

ROWS=()
measure() {
    local name=$1 pid=$2 port=$3 path=$4 t0 t1
    t0=$(ticks "$pid")
    OPENLOOP_URL="http://127.0.0.1:$port$path" OPENLOOP_BODY="$BENCH_BODY" \
        OPENLOOP_HEADERS=$'Content-Type: application/json\nX-GitHub-Event: issues\nUser-Agent: GitHub-Hookshot/bench' \
        OPENLOOP_FRESH_HEADER=X-GitHub-Delivery OPENLOOP_SIGN_SECRET="$SECRET" OPENLOOP_VARY="$BENCH_VARY" \
        OPENLOOP_RATE="$RATE" OPENLOOP_SECONDS="$SECONDS_MEASURED" \
        OPENLOOP_WARMUP=2 OPENLOOP_CONNECTIONS="$CONNECTIONS" "$OPENLOOP" --bench >"$SCRATCH/openloop.out"
    t1=$(ticks "$pid")
    ROWS+=("$(python3 - "$name" "$SCRATCH/openloop.out" $((t1 - t0)) "$CLK_TCK" <<'PY'
import json, sys
name, path, ticks, hz = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
line = [l for l in open(path) if l.startswith("openloop: ")][-1]
r = json.loads(line[len("openloop: "):])
# Server CPU over warm-up and measurement, per request sent in both.
sent = r["requests"] + r["rate"] * 2
with open(path + ".p99", "w") as f:
    f.write(f"{r['p99_ms']:.2f}")
print(f"| {name} | {r['achieved']:.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['p999_ms']:.2f} | {r['max_ms']:.2f} | {ticks / hz * 1e6 / max(sent, 1):.0f} | {json.dumps(r['statuses'])} |")
PY
)")
    echo "-- $name: ${ROWS[-1]}"
    case $name in Lever*) VERDICTS+=("$(target_verdict "latency, $name: p99 at $RATE requests/s" "$(cat "$SCRATCH/openloop.out.p99")" "<" 2 " ms")") ;; esac
}
VERDICTS=()

start_probot
measure "Probot $PROBOT_VERSION" "$PROBOT_PID" "$PROBOT_PORT" /api/github/webhooks
stop "$PROBOT_PID"

DB=$SCRATCH/latency.db
rm -f "$DB" "$DB-wal" "$DB-shm"
start_lever "sqlite://$DB"
measure "Lever, SQLite (synchronous=${LEVER_SQLITE_SYNCHRONOUS:-full})" "$LEVER_PID" "$LEVER_PORT" /webhooks/github
stop "$LEVER_PID"

SCHEMA=lever_bench_$$
psql "$PG_URL" -qc "DROP SCHEMA IF EXISTS $SCHEMA CASCADE; CREATE SCHEMA $SCHEMA"
start_lever "$PG_URL?options=-c%20search_path%3D$SCHEMA"
measure "Lever, PostgreSQL 127.0.0.1" "$LEVER_PID" "$LEVER_PORT" /webhooks/github
stop "$LEVER_PID"
psql "$PG_URL" -qc "DROP SCHEMA $SCHEMA CASCADE"

echo
echo "| server | achieved requests/s | p50 ms | p99 ms | p99.9 ms | max ms | server CPU µs/request | status codes |"
echo "|---|---|---|---|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"

echo
printf '%s\n' "${VERDICTS[@]}"
