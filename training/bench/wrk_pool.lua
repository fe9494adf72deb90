-- wrk script of `heara bench serve` (training/bench/wrk.py runs it): POST bodies drawn from a pool
-- file without repetition, status counts per class, and one JSON line of results at the end.
--
--   wrk -c N -t T -d 20s --timeout 30s -s wrk_pool.lua URL -- POOL PATH START T
--
-- POOL holds one JSON request body per line. Thread k (0-based, numbered in setup) sends the bodies
-- at START + k, START + k + T, START + k + 2T, ... (wrapping at the end of the pool): the threads
-- take interleaved, disjoint turns, so no body is sent twice before some thread has used up its
-- share (pool size / T bodies), that is before the pool is used up when the threads keep pace.
-- done() reports the first index no thread has reached ("next", the largest cursor): a measured run
-- starts there after its warm-up, so it repeats none of the warm-up's bodies either (threads that ran
-- at different speeds leave a few bodies unused, never one used twice).
--
-- Each thread counts what it sent and the answers by class in its own Lua state; done() (run once,
-- in the main state) sums them over the threads and prints them with wrk's totals and latency
-- percentiles (microseconds) after the marker "heara-wrk ", the line training/bench/wrk.py parses.

local threads = {}

function setup(thread)
  thread:set("thread_index", #threads)
  table.insert(threads, thread)
end

function init(args)
  bodies = {}
  for line in io.lines(args[1]) do
    if #line > 0 then
      bodies[#bodies + 1] = line
    end
  end
  if #bodies == 0 then
    error("no request bodies in " .. args[1])
  end
  path = args[2]
  stride = tonumber(args[4])
  cursor = tonumber(args[3]) + thread_index
  headers = { ["Content-Type"] = "application/json" }
  sent, ok, non_2xx, status_5xx = 0, 0, 0, 0
end

function request()
  local body = bodies[(cursor % #bodies) + 1]
  cursor = cursor + stride
  sent = sent + 1
  return wrk.format("POST", path, headers, body)
end

function response(status, headers, body)
  if status >= 200 and status < 300 then
    ok = ok + 1
  else
    non_2xx = non_2xx + 1
    if status >= 500 then
      status_5xx = status_5xx + 1
    end
  end
end

function done(summary, latency, requests)
  local totals = { sent = 0, ok = 0, non_2xx = 0, status_5xx = 0 }
  local next_index = 0
  for _, thread in ipairs(threads) do
    for key, _ in pairs(totals) do
      totals[key] = totals[key] + (thread:get(key) or 0)
    end
    next_index = math.max(next_index, thread:get("cursor") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'heara-wrk {"threads": %d, "duration_us": %d, "requests": %d, "sent": %d, "next": %d, "ok": %d, '
      .. '"non_2xx": %d, "status_5xx": %d, "connect_errors": %d, "read_errors": %d, "write_errors": %d, '
      .. '"timeouts": %d, "p50_us": %d, "p99_us": %d, "max_us": %d}\n',
    #threads, summary.duration, summary.requests, totals.sent, next_index, totals.ok, totals.non_2xx,
    totals.status_5xx, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max
  ))
end
