-- wrk script: single-finding EventBridge "Security Hub Findings - Imported" events (BENCH_BODY,
-- a template whose __N__ becomes a fresh number per request: a new event id, finding id and
-- resource, so every event is a new finding) with the ingest bearer token (BENCH_TOKEN).
local f = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
local template = f:read("*a")
f:close()
local run = tonumber(os.getenv("BENCH_RUN") or "0")
local n = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")

request = function()
  n = n + 1
  local id = string.format("%08x%012x", run, n)
  return wrk.format(nil, "/events/securityhub", nil, (template:gsub("__N__", id)))
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT requests=%d non2xx=%d socket_errors=%d duration_us=%d p50_us=%d p99_us=%d\n",
    summary.requests, e.status, e.connect + e.read + e.write + e.timeout, summary.duration,
    latency:percentile(50), latency:percentile(99)))
end
