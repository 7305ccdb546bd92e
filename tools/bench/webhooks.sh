#!/usr/bin/env bash
# Webhooks, closed loop: Lever on SQLite, Lever on PostgreSQL and Probot 14 side by side in one
# run (32 connections, 10 s each after a 2 s warm-up, like `wrk -t1 -c32 -d10s`), a signed
# 11.8 KB issues.labeled delivery with a fresh X-GitHub-Delivery *and a unique body* per request
# (its label id is the request's number, each body signed: Lever deduplicates replays by body
# hash too). The generator is benches/openloop.rs in closed mode (wrk cannot sign each body).
# Per server: requests/s, server CPU µs per request (/proc/PID/stat utime+stime, all threads),
# p50/p99, bytes stored per delivery (SQLite: used pages; PostgreSQL: total relation size of a
# fresh schema in database `test`).
#
#   tools/bench/webhooks.sh            (docs/PERFORMANCE.md, "Webhooks")
source "$(dirname "$0")/lib.sh"
need curl curl; need openssl openssl; need sqlite3 sqlite3; need psql postgresql-client
machine
build_lever
OPENLOOP=$(bench_bin openloop)
[ -x "$OPENLOOP" ] || { echo "could not build benches/openloop.rs" >&2; exit 2; }
probot_install
webhook_body
SECONDS_MEASURED=${DURATION%s}
echo "== body $(wc -c <"$BENCH_BODY") bytes; Probot $PROBOT_VERSION; node $(node --version); closed loop, $CONNECTIONS connections, ${SECONDS_MEASURED}s"

sqlite_used() { sqlite3 "$1" "SELECT (SELECT page_count FROM pragma_page_count) - (SELECT freelist_count FROM pragma_freelist_count), (SELECT page_size FROM pragma_page_size)" | awk -F'|' '{print $1 * $2}'; }
pg_used() { psql "$PG_URL" -Atc "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = '$1' AND c.relkind IN ('r', 'm')"; }
pg_ticks() { local t=0 p; for p in $(pgrep -x postgres); do t=$((t + $(ticks "$p" 2>/dev/null || echo 0))); done; echo "$t"; }

ROWS=()
rm -f "$SCRATCH/webhooks.vals"
# generate URL FIRST SECONDS: the closed-loop generator, unique signed bodies from number FIRST.
# SIGN_SECRET: what the bodies are signed with (the edge-alone row signs with a wrong one).
generate() {
    OPENLOOP_MODE=closed OPENLOOP_URL="$1" OPENLOOP_BODY="$BENCH_BODY" \
        OPENLOOP_HEADERS=$'Content-Type: application/json\nX-GitHub-Event: issues\nUser-Agent: GitHub-Hookshot/bench' \
        OPENLOOP_FRESH_HEADER=X-GitHub-Delivery OPENLOOP_SIGN_SECRET="${SIGN_SECRET:-$SECRET}" OPENLOOP_VARY="$BENCH_VARY" \
        OPENLOOP_FIRST="$2" OPENLOOP_SECONDS="$3" OPENLOOP_WARMUP=0 OPENLOOP_CONNECTIONS="$CONNECTIONS" \
        "$OPENLOOP" --bench
}
# measure NAME PID PORT PATH SIZE_CMD...: warm-up, then the measured run.
measure() {
    local name=$1 pid=$2 port=$3 path=$4; shift 4
    local url="http://127.0.0.1:$port$path" out t0 t1 s0 s1 pg0 pg1
    generate "$url" 0 2 >/dev/null
    s0=$("$@"); t0=$(ticks "$pid"); pg0=$(pg_ticks)
    out=$(generate "$url" 50000000000 "$SECONDS_MEASURED")
    t1=$(ticks "$pid"); pg1=$(pg_ticks); s1=$("$@")
    echo "-- $name"; echo "$out"
    ROWS+=("$(python3 - "$name" $((t1 - t0)) "$CLK_TCK" "$s0" "$s1" $((pg1 - pg0)) <<PY
import json, sys
name, cpu, hz, s0, s1, pg = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5], int(sys.argv[6])
r = json.loads([l for l in """$out""".splitlines() if l.startswith("openloop: ")][-1][len("openloop: "):])
n = r["requests"]
ok = sum(v for k, v in r["statuses"].items() if k.startswith("2"))
accepted = r["statuses"].get("202", 0)
stored = "n/a (keeps nothing)" if s0 == "-" else f"{(int(s1) - int(s0)) / max(accepted, 1):.0f}"
pgcpu = f" (+ {pg / hz * 1e6 / n:.0f} µs in PostgreSQL)" if "PostgreSQL" in name else ""
with open("$SCRATCH/webhooks.vals", "a") as vals:
    print(name, r["achieved"], cpu / hz * 1e6 / n, stored if s0 != "-" else "-", sep="|", file=vals)
print(f"| {name} | {r['achieved']:.0f} | {cpu / hz * 1e6 / n:.0f}{pgcpu} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {stored} | {n - ok} | {json.dumps(r['statuses'])} |")
PY
)")
}
none() { echo -; }

# Probot first (it keeps nothing), then Lever on SQLite, then Lever on PostgreSQL.
start_probot
measure "Probot $PROBOT_VERSION" "$PROBOT_PID" "$PROBOT_PORT" /api/github/webhooks none
stop "$PROBOT_PID"

DB=$SCRATCH/webhooks.db
rm -f "$DB" "$DB-wal" "$DB-shm"
start_lever "sqlite://$DB"
measure "Lever, SQLite (synchronous=${LEVER_SQLITE_SYNCHRONOUS:-full})" "$LEVER_PID" "$LEVER_PORT" /webhooks/github sqlite_used "$DB"
echo "deliveries recorded: $(sqlite3 "$DB" 'SELECT count(*) FROM deliveries')"
# The same requests signed with a wrong secret: Lever answers 401 after reading the body and
# computing its HMAC, and writes nothing. What its HTTP edge alone costs a request, below which
# no durable write path can go (the CPU target is measured against it, docs/PERFORMANCE.md).
SIGN_SECRET=not-the-secret generate "http://127.0.0.1:$LEVER_PORT/webhooks/github" 0 2 >/dev/null
t0=$(ticks "$LEVER_PID")
out=$(SIGN_SECRET=not-the-secret generate "http://127.0.0.1:$LEVER_PORT/webhooks/github" 0 "$SECONDS_MEASURED")
t1=$(ticks "$LEVER_PID")
EDGE=$(python3 - $((t1 - t0)) "$CLK_TCK" <<PY
import json, sys
r = json.loads([l for l in """$out""".splitlines() if l.startswith("openloop: ")][-1][len("openloop: "):])
cpu = int(sys.argv[1]) / int(sys.argv[2]) * 1e6 / r["requests"]
print(f"{cpu:.1f}@@| Lever, wrong signature (401: the HTTP edge and the HMAC, nothing written) | {r['achieved']:.0f} | {cpu:.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | 0 | {r['requests']} | {json.dumps(r['statuses'])} |")
PY
)
stop "$LEVER_PID"

SCHEMA=lever_bench_$$
psql "$PG_URL" -qc "DROP SCHEMA IF EXISTS $SCHEMA CASCADE; CREATE SCHEMA $SCHEMA"
start_lever "$PG_URL?options=-c%20search_path%3D$SCHEMA"
measure "Lever, PostgreSQL 127.0.0.1" "$LEVER_PID" "$LEVER_PORT" /webhooks/github pg_used "$SCHEMA"
echo "deliveries recorded: $(psql "$PG_URL" -Atc "SELECT count(*) FROM $SCHEMA.deliveries")"
stop "$LEVER_PID"
psql "$PG_URL" -qc "DROP SCHEMA $SCHEMA CASCADE"

echo
echo "| server | requests/s | server CPU µs/request | p50 ms | p99 ms | bytes stored per accepted delivery | non-2xx | status codes |"
echo "|---|---|---|---|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
echo "${EDGE#*@@}"

# The targets, per Lever row against Probot's row of the same run.
echo
IFS='|' read -r _ PROBOT_RPS PROBOT_CPU _ < <(head -1 "$SCRATCH/webhooks.vals")
tail -n +2 "$SCRATCH/webhooks.vals" | while IFS='|' read -r name rps cpu stored; do
    target_verdict "webhooks, $name: requests/s as a multiple of Probot's" "$(python3 -c "print($rps / $PROBOT_RPS)")" ">=" 3 "×"
    target_verdict "webhooks, $name: Probot's CPU per request ÷ Lever's" "$(python3 -c "print($PROBOT_CPU / $cpu)")" ">=" 6 "×"
    target_verdict "webhooks, $name: bytes stored per untracked delivery" "$stored" "<=" 1024 " B"
done
python3 -c 'import sys; edge, probot = float(sys.argv[1]), float(sys.argv[2]); print(f"floor: Lever'"'"'s HTTP edge alone (401 after the HMAC, nothing written) {edge:.0f} µs/request: Probot'"'"'s CPU ÷ 6 is {probot / 6:.0f} µs, so a durable path within it has {probot / 6 - edge:.0f} µs for parsing, digesting and writing a delivery")' "${EDGE%%@@*}" "$PROBOT_CPU"
