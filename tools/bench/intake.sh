#!/usr/bin/env bash
# Intake, closed loop: single-finding EventBridge "Security Hub Findings - Imported" events through
# POST /events/securityhub (bearer token), each a new finding of a new group (HIGH, production:
# a ticket), accepted durably (202 after the commit) by Lever on SQLite and on PostgreSQL.
# wrk -t1 -c32 -d10s after a 2 s warm-up; Lever's CPU µs per event from /proc. Lever's workers
# run against the suite's fake GitHub (benches/fakes.rs, GitHub's secondary limits enforced), as
# in production during a flood: a few issues open within the limits, the rest wait their turn.
#
#   tools/bench/intake.sh              (docs/PERFORMANCE.md, "Intake")
source "$(dirname "$0")/lib.sh"
need wrk "apt-get install wrk"; need curl curl; need sqlite3 sqlite3; need psql postgresql-client
machine
build_lever
start_fake_github
echo "== fake GitHub at $BENCH_GITHUB_URL"

# The demo's payments-prod S3.5 finding in an EventBridge envelope; __N__ varies per request.
python3 - "$ROOT/examples/demo/findings/04-payments-prod-logs-bucket-s3.5.json" >"$SCRATCH/event.json" <<'PY'
import json, sys
f = json.load(open(sys.argv[1]))
f["Id"] = f["Id"] + "-__N__"
f["Resources"][0]["Id"] = "arn:aws:s3:::bench-__N__"
event = {"version": "0", "id": "__N__", "detail-type": "Security Hub Findings - Imported",
         "source": "aws.securityhub", "account": f["AwsAccountId"], "time": f["UpdatedAt"],
         "region": f["Region"], "resources": [f["ProductArn"]], "detail": {"findings": [f]}}
sys.stdout.write(json.dumps(event, separators=(",", ":")))
PY
export BENCH_BODY=$SCRATCH/event.json BENCH_TOKEN=$TOKEN
echo "== event $(wc -c <"$BENCH_BODY") bytes; wrk -t1 -c$CONNECTIONS -d$DURATION"

ROWS=()
measure() {
    local name=$1 pid=$2 out t0 t1 line
    BENCH_RUN=$((RANDOM * 32768 + RANDOM)) wrk -t1 -c"$CONNECTIONS" -d2s -s "$ROOT/tools/bench/intake.lua" "http://127.0.0.1:$LEVER_PORT" >/dev/null
    t0=$(ticks "$pid")
    out=$(BENCH_RUN=$((RANDOM * 32768 + RANDOM)) wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --timeout 5s -s "$ROOT/tools/bench/intake.lua" "http://127.0.0.1:$LEVER_PORT")
    t1=$(ticks "$pid")
    echo "-- $name"; echo "$out"
    line=$(grep '^RESULT' <<<"$out")
    eval "${line#RESULT }"
    ROWS+=("$(awk -v n="$name" -v r="$requests" -v d="$duration_us" -v cpu=$((t1 - t0)) -v hz="$CLK_TCK" \
        -v p50="$p50_us" -v p99="$p99_us" -v bad="$non2xx" -v se="$socket_errors" 'BEGIN {
        printf "| %s | %.0f | %.0f | %.2f | %.2f | %d / %d |", n, (r - bad) / (d / 1e6), cpu / hz * 1e6 / r, p50 / 1000, p99 / 1000, bad, se }')")
    VERDICTS+=("$(target_verdict "intake, $name: single-finding events/s accepted durably" "$(awk -v r="$requests" -v bad="$non2xx" -v d="$duration_us" 'BEGIN { printf "%.0f", (r - bad) / (d / 1e6) }')" ">=" 10000 "/s")")
}
VERDICTS=()

DB=$SCRATCH/intake.db
rm -f "$DB" "$DB-wal" "$DB-shm"
start_lever "sqlite://$DB"
measure "Lever, SQLite (synchronous=full)" "$LEVER_PID"
echo "findings recorded: $(sqlite3 "$DB" 'SELECT count(*) FROM findings'), groups: $(sqlite3 "$DB" 'SELECT count(*) FROM groups')"
stop "$LEVER_PID"

SCHEMA=lever_bench_$$
psql "$PG_URL" -qc "DROP SCHEMA IF EXISTS $SCHEMA CASCADE; CREATE SCHEMA $SCHEMA"
start_lever "$PG_URL?options=-c%20search_path%3D$SCHEMA"
measure "Lever, PostgreSQL 127.0.0.1" "$LEVER_PID"
echo "findings recorded: $(psql "$PG_URL" -Atc "SELECT count(*) FROM $SCHEMA.findings"), groups: $(psql "$PG_URL" -Atc "SELECT count(*) FROM $SCHEMA.groups")"
stop "$LEVER_PID"
psql "$PG_URL" -qc "DROP SCHEMA $SCHEMA CASCADE"

echo
echo "| store | events/s accepted (202) | Lever CPU µs/event | p50 ms | p99 ms | non-2xx / socket errors |"
echo "|---|---|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"

echo
printf '%s\n' "${VERDICTS[@]}"
