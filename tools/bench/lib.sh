# Shared by the benchmark scripts of tools/bench (sourced, not run). Loopback only; every load
# loop is bounded in time. See docs/PERFORMANCE.md.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
# LEVER_BENCH_BIN: another build of Lever to measure (an A/B of two commits); not rebuilt.
LEVER=${LEVER_BENCH_BIN:-$TARGET/release/lever}
SCRATCH=${LEVER_BENCH_DIR:-/tmp/lever-bench}
PROBOT_DIR=${PROBOT_BENCH_DIR:-/tmp/probot-bench}
PG_URL=${LEVER_BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}
SECRET=bench-webhook-secret
TOKEN=bench-ingest-token
LEVER_PORT=${LEVER_BENCH_PORT:-18080}
PROBOT_PORT=${PROBOT_BENCH_PORT:-18081}
DURATION=${BENCH_DURATION:-10s}
CONNECTIONS=${BENCH_CONNECTIONS:-32}
# The conformance data: ../shared/conformance beside the checkout, else the copy in the repository.
CONFORMANCE=${LEVER_CONFORMANCE_DIR:-$ROOT/../shared/conformance}
[ -d "$CONFORMANCE" ] || CONFORMANCE=$ROOT/tests/fixtures/conformance
WEBHOOK_SAMPLE=${WEBHOOK_SAMPLE:-$CONFORMANCE/webhooks/issues.labeled.0.json}
CLK_TCK=$(getconf CLK_TCK)
PIDS=()

mkdir -p "$SCRATCH"
cleanup() {
    local pid
    for pid in "${PIDS[@]:-}"; do
        [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
    done
}
trap cleanup EXIT

need() {
    command -v "$1" >/dev/null || { echo "missing tool: $1 ($2)" >&2; exit 2; }
}

machine() {
    echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -m | awk '/Mem:/{print $2}') MiB RAM, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ)"
    echo "== lever $(git -C "$ROOT" rev-parse --short HEAD)"
}

build_lever() {
    [ -n "${LEVER_BENCH_BIN:-}" ] && return 0
    (cd "$ROOT" && cargo build --release --bin lever --quiet)
}

# The demo configuration with the scheduled Security Hub sync and webhook redelivery off, so the
# server does only what the benchmark sends it.
config_dir() {
    rm -rf "$SCRATCH/config"
    cp -r "$ROOT/examples/demo" "$SCRATCH/config"
    printf '\n[sync]\ninterval = "off"\nwebhooks = "off"\n' >>"$SCRATCH/config/lever.toml"
    echo "$SCRATCH/config"
}

# The compact sample body with its label id set to BENCH_VARY, and the signature of that body.
# benches/openloop.rs replaces BENCH_VARY by each request's number and signs each body (Lever
# deduplicates replays by the body's SHA-256, so one repeated body would be a duplicate after
# the first request); BENCH_SIG is the signature of the body as written.
webhook_body() {
    python3 -c 'import json,sys; d = json.load(open(sys.argv[1])); d["label"]["id"] = 999999999999; sys.stdout.write(json.dumps(d, separators=(",", ":")))' \
        "$WEBHOOK_SAMPLE" >"$SCRATCH/webhook.json"
    SIG="sha256=$(openssl dgst -sha256 -hmac "$SECRET" -r "$SCRATCH/webhook.json" | cut -d' ' -f1)"
    export BENCH_BODY=$SCRATCH/webhook.json BENCH_SIG=$SIG BENCH_VARY=999999999999
}

# BENCH_SLOW_FSYNC_US=N: Lever's fsyncs take N µs more (tools/bench/slowsync.c, LD_PRELOAD), to
# see what slow storage does to a run.
slow_fsync_shim() {
    [ -n "${BENCH_SLOW_FSYNC_US:-}" ] || return 0
    need cc "apt-get install gcc"
    cc -O2 -shared -fPIC -o "$SCRATCH/slowsync.so" "$ROOT/tools/bench/slowsync.c" -ldl
    echo "$SCRATCH/slowsync.so"
}

# start_lever DATABASE_URL: `lever serve` on LEVER_PORT; GitHub points at BENCH_GITHUB_URL (see
# start_fake_github) or else, like Security Hub, at a closed loopback port (untracked deliveries
# make no call). Sets LEVER_PID. Passed
# through: LEVER_SQLITE_SYNCHRONOUS, LEVER_WORKERS, and LEVER_BENCH_LOG as Lever's RUST_LOG
# (default warn).
start_lever() {
    local url=$1 cfg preload
    cfg=$(config_dir)
    preload=$(slow_fsync_shim)
    (cd "$SCRATCH" && exec env -i PATH="$PATH" \
        GITHUB_APP_ID="${BENCH_GITHUB_APP_ID:-1}" \
        GITHUB_PRIVATE_KEY_PATH="$ROOT/tests/fixtures/github-app-test-key.TEST-ONLY.pem" \
        GITHUB_API_URL="${BENCH_GITHUB_URL:-http://127.0.0.1:9}" \
        GITHUB_WEBHOOK_SECRET=$SECRET LEVER_INGEST_TOKEN=$TOKEN \
        AWS_ENDPOINT_URL_SECURITYHUB=http://127.0.0.1:9 AWS_REGION=us-east-1 \
        AWS_ACCESS_KEY_ID=AKIDEXAMPLE AWS_SECRET_ACCESS_KEY=bench AWS_EC2_METADATA_DISABLED=true \
        DATABASE_URL="$url" RUST_LOG=${LEVER_BENCH_LOG:-warn} LEVER_SQLITE_SYNCHRONOUS="${LEVER_SQLITE_SYNCHRONOUS:-full}" \
        LEVER_WORKERS="${LEVER_WORKERS:-}" LD_PRELOAD="$preload" SLOWSYNC_US="${BENCH_SLOW_FSYNC_US:-0}" \
        "$LEVER" serve --config "$cfg" --listen "127.0.0.1:$LEVER_PORT" >>"$SCRATCH/lever.log" 2>&1) &
    LEVER_PID=$!
    PIDS+=("$LEVER_PID")
    wait_http "http://127.0.0.1:$LEVER_PORT/readyz" 200
}

# stop PID: SIGTERM, then SIGKILL after 10 s (a server whose workers retry thousands of jobs
# against the closed GitHub port may take longer to finish shutting down).
stop() {
    local i
    kill "$1" 2>/dev/null || true
    for i in $(seq 1 100); do
        kill -0 "$1" 2>/dev/null || break
        sleep 0.1
    done
    kill -9 "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

# wait_http URL [STATUS]: poll (at most 30 s) until URL answers (with STATUS when given).
wait_http() {
    local i code
    for i in $(seq 1 600); do
        code=$(curl -s -o /dev/null -w '%{http_code}' "$1" || true)
        if [ "$code" != "000" ] && { [ -z "${2:-}" ] || [ "$code" = "$2" ]; }; then return 0; fi
        sleep 0.05
    done
    echo "not ready: $1" >&2
    exit 1
}

# CPU ticks (user + system, all threads) of PID.
ticks() {
    awk '{print $14 + $15}' "/proc/$1/stat"
}

rss_kib() {
    awk '/^VmRSS:/{print $2}' "/proc/$1/status"
}

# Probot 14 from the npm registry in a scratch folder (never in the project): one
# app.on("issues.labeled") handler that does nothing, as in issue 8.
probot_install() {
    need node "Node.js"
    mkdir -p "$PROBOT_DIR"
    if [ ! -d "$PROBOT_DIR/node_modules/probot" ]; then
        (cd "$PROBOT_DIR" && printf '{"name":"probot-bench","private":true,"type":"module"}\n' >package.json &&
            npm install --no-audit --no-fund --silent probot@14 >/dev/null)
    fi
    cat >"$PROBOT_DIR/app.js" <<'JS'
import { run } from "probot";
run((app) => {
  app.on("issues.labeled", async () => {});
});
JS
    PROBOT_VERSION=$(node -p 'require(process.argv[1]).version' "$PROBOT_DIR/node_modules/probot/package.json")
}

start_probot() {
    (cd "$PROBOT_DIR" && exec env -i PATH="$PATH" NODE_ENV=production LOG_LEVEL=warn \
        APP_ID=1 PRIVATE_KEY="$(cat "$ROOT/tests/fixtures/github-app-test-key.TEST-ONLY.pem")" \
        WEBHOOK_SECRET=$SECRET HOST=127.0.0.1 PORT=$PROBOT_PORT \
        node app.js >>"$SCRATCH/probot.log" 2>&1) &
    PROBOT_PID=$!
    PIDS+=("$PROBOT_PID")
    wait_http "http://127.0.0.1:$PROBOT_PORT/api/github/webhooks"
}

# The server's main process: `( cd; exec … ) &` keeps the pid of the subshell that exec'd.

# bench_bin NAME: build the bench binary NAME (bench profile) and print its path.
bench_bin() {
    (cd "$ROOT" && cargo bench --bench "$1" --no-run --message-format=json 2>/dev/null) |
        python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == sys.argv[1]:
        print(m["executable"])' "$1" | tail -1
}

# start_fake_github: the suite's fake GitHub (benches/fakes.rs: the demo installation and
# repositories, secondary limits enforced in real time) on a free port. Sets BENCH_GITHUB_URL.
start_fake_github() {
    local bin i
    bin=$(bench_bin fakes)
    [ -x "$bin" ] || { echo "could not build benches/fakes.rs" >&2; exit 2; }
    "$bin" --bench >"$SCRATCH/fakes.out" 2>>"$SCRATCH/fakes.log" &
    PIDS+=("$!")
    for i in $(seq 1 200); do
        BENCH_GITHUB_URL=$(sed -n 's/^fake-github: //p' "$SCRATCH/fakes.out")
        [ -n "$BENCH_GITHUB_URL" ] && break
        sleep 0.05
    done
    [ -n "$BENCH_GITHUB_URL" ] || { echo "the fake GitHub did not start" >&2; exit 2; }
    BENCH_GITHUB_APP_ID=$(sed -n 's/^fake-github-app-id: //p' "$SCRATCH/fakes.out")
    export BENCH_GITHUB_URL BENCH_GITHUB_APP_ID
}

# target_verdict WHAT MEASURED OP GOAL UNIT (OP one of >=, <, <=): one `target:` line, met or
# MISSED and by how much (the same words as tests/it/support/targets.rs, which checks this).
target_verdict() {
    python3 - "$@" <<'PY'
import sys
what, measured, op, goal, unit = sys.argv[1], float(sys.argv[2]), sys.argv[3], float(sys.argv[4]), sys.argv[5]
def number(x):
    s = f"{x:.{0 if abs(x) >= 100 else 1 if abs(x) >= 10 else 2}f}"
    return s.rstrip("0").rstrip(".") if "." in s else s
sign, met = {">=": ("≥", measured >= goal), "<": ("<", measured < goal), "<=": ("≤", measured <= goal)}[op]
head = f"target: {what} {sign} {number(goal)}{unit}: measured {number(measured)}{unit}"
if met:
    print(f"{head}, met")
elif op == ">=":
    print(f"{head}, MISSED by {goal / measured:.2f}× short" if measured > 0 else f"{head}, MISSED by all of it")
else:
    print(f"{head}, MISSED by {measured / goal:.2f}× over" if goal > 0 else f"{head}, MISSED by {number(measured - goal)} over")
PY
}
