#!/usr/bin/env bash
# Webhooks, closed loop: Lever on SQLite, Lever on PostgreSQL and Probot 14 side by side in one
# run (wrk -t1 -c32 -d10s each, after a 2 s warm-up), a signed 11.8 KB issues.labeled delivery
# with a fresh X-GitHub-Delivery per request. Per server: requests/s, server CPU µs per request
# (/proc/PID/stat utime+stime, all threads), p50/p99, bytes stored per delivery (SQLite: used
# pages; PostgreSQL: total relation size of a fresh schema in database `test`).
#
#   tools/bench/webhooks.sh            (docs/PERFORMANCE.md, "Webhooks")
source "$(dirname "$0")/lib.sh"
need wrk "apt-get install wrk"; need curl curl; need openssl openssl; need sqlite3 sqlite3; need psql postgresql-client
machine
build_lever
probot_install
webhook_body
echo "== body $(wc -c <"$BENCH_BODY") bytes; Probot $PROBOT_VERSION; node $(node --version); wrk -t1 -c$CONNECTIONS -d$DURATION"

sqlite_used() { sqlite3 "$1" "SELECT (SELECT page_count FROM pragma_page_count) - (SELECT freelist_count FROM pragma_freelist_count), (SELECT page_size FROM pragma_page_size)" | awk -F'|' '{print $1 * $2}'; }
pg_used() { psql "$PG_URL" -Atc "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = '$1' AND c.relkind IN ('r', 'm')"; }
pg_ticks() { local t=0 p; for p in $(pgrep -x postgres); do t=$((t + $(ticks "$p" 2>/dev/null || echo 0))); done; echo "$t"; }

ROWS=()
# measure NAME PID PORT PATH SIZE_CMD...: warm-up, then the measured wrk run.
measure() {
    local name=$1 pid=$2 port=$3 path=$4; shift 4
    local url="http://127.0.0.1:$port" out t0 t1 s0 s1 pg0 pg1 line
    BENCH_PATH=$path BENCH_RUN=$((RANDOM * 32768 + RANDOM)) wrk -t1 -c"$CONNECTIONS" -d2s -s "$ROOT/tools/bench/webhook.lua" "$url" >/dev/null
    s0=$("$@"); t0=$(ticks "$pid"); pg0=$(pg_ticks)
    out=$(BENCH_PATH=$path BENCH_RUN=$((RANDOM * 32768 + RANDOM)) wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --timeout 5s -s "$ROOT/tools/bench/webhook.lua" "$url")
    t1=$(ticks "$pid"); pg1=$(pg_ticks); s1=$("$@")
    echo "-- $name"; echo "$out"
    line=$(grep '^RESULT' <<<"$out")
    eval "${line#RESULT }"
    local ok=$((requests - non2xx))
    ROWS+=("$(awk -v n="$name" -v r="$requests" -v ok="$ok" -v d="$duration_us" -v cpu=$((t1 - t0)) -v hz="$CLK_TCK" \
        -v p50="$p50_us" -v p99="$p99_us" -v s0="$s0" -v s1="$s1" -v pg=$((pg1 - pg0)) -v bad="$non2xx" -v se="$socket_errors" -v db="$name" 'BEGIN {
        stored = (s0 == "-") ? "n/a (keeps nothing)" : sprintf("%.0f", (s1 - s0) / ok);
        pgcpu = (db ~ /PostgreSQL/) ? sprintf(" (+ %.0f µs in PostgreSQL)", pg / hz * 1e6 / r) : "";
        printf "| %s | %.0f | %.0f%s | %.2f | %.2f | %s | %d / %d |", n, r / (d / 1e6), cpu / hz * 1e6 / r, pgcpu, p50 / 1000, p99 / 1000, stored, bad, se }')")
}
none() { echo -; }

# Probot first (it keeps nothing), then Lever on SQLite, then Lever on PostgreSQL.
start_probot
measure "Probot $PROBOT_VERSION" "$PROBOT_PID" "$PROBOT_PORT" /api/github/webhooks none
stop "$PROBOT_PID"

DB=$SCRATCH/webhooks.db
rm -f "$DB" "$DB-wal" "$DB-shm"
start_lever "sqlite://$DB"
measure "Lever, SQLite (synchronous=full)" "$LEVER_PID" "$LEVER_PORT" /webhooks/github sqlite_used "$DB"
echo "deliveries recorded: $(sqlite3 "$DB" 'SELECT count(*) FROM deliveries')"
stop "$LEVER_PID"

SCHEMA=lever_bench_$$
psql "$PG_URL" -qc "DROP SCHEMA IF EXISTS $SCHEMA CASCADE; CREATE SCHEMA $SCHEMA"
start_lever "$PG_URL?options=-c%20search_path%3D$SCHEMA"
measure "Lever, PostgreSQL 127.0.0.1" "$LEVER_PID" "$LEVER_PORT" /webhooks/github pg_used "$SCHEMA"
echo "deliveries recorded: $(psql "$PG_URL" -Atc "SELECT count(*) FROM $SCHEMA.deliveries")"
stop "$LEVER_PID"
psql "$PG_URL" -qc "DROP SCHEMA $SCHEMA CASCADE"

echo
echo "| server | requests/s | server CPU µs/request | p50 ms | p99 ms | bytes stored per delivery | non-2xx / socket errors |"
echo "|---|---|---|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
