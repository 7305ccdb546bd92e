-- wrk script: the signed sample webhook (BENCH_BODY, BENCH_SIG) with a fresh
-- X-GitHub-Delivery per request (a GUID-shaped counter; BENCH_RUN keeps runs apart).
local f = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
local body = f:read("*a")
f:close()
local run = tonumber(os.getenv("BENCH_RUN") or "0")
local n = 0
wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"
wrk.headers["User-Agent"] = "GitHub-Hookshot/bench"
wrk.headers["X-GitHub-Event"] = "issues"
wrk.headers["X-Hub-Signature-256"] = os.getenv("BENCH_SIG")

request = function()
  n = n + 1
  wrk.headers["X-GitHub-Delivery"] = string.format("%08x-0000-4000-8000-%012x", run, n)
  return wrk.format(nil, os.getenv("BENCH_PATH"))
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT requests=%d non2xx=%d socket_errors=%d duration_us=%d p50_us=%d p99_us=%d\n",
    summary.requests, e.status, e.connect + e.read + e.write + e.timeout, summary.duration,
    latency:percentile(50), latency:percentile(99)))
end
