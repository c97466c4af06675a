-- wrk script: POST pre-signed Stripe events, each once, and stop after BENCH_COUNT responses.
-- Requests come from BENCH_REQUESTS, records of "<Stripe-Signature>\t<length>\n<body>".
-- The file holds a few spare events beyond BENCH_COUNT so that the requests still in flight
-- when wrk stops are new events too, never repeats. Run with one thread (-t1): the count is per thread.

local requests = {}
local index = 0
local responses = 0
local count = tonumber(os.getenv("BENCH_COUNT"))

function init(args)
  local f = assert(io.open(os.getenv("BENCH_REQUESTS"), "rb"))
  while true do
    local line = f:read("*l")
    if not line then break end
    local header, length = line:match("^(.-)\t(%d+)$")
    local body = f:read(tonumber(length))
    requests[#requests + 1] = wrk.format("POST", "/stripe/webhook/", {
      ["Content-Type"] = "application/json",
      ["Stripe-Signature"] = header,
    }, body)
  end
  f:close()
end

function request()
  index = index + 1
  if index > #requests then index = #requests end
  return requests[index]
end

function response(status, headers, body)
  responses = responses + 1
  if responses == count then
    wrk.thread:stop()
    -- wrk's main thread sleeps for the whole -d duration: tell the bench, which interrupts
    -- it (SIGINT), so that the summary's duration is the time the COUNT requests took.
    local f = io.open(os.getenv("BENCH_DONE"), "w")
    f:write("done\n")
    f:close()
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests": %d, "duration_us": %d, "p50_us": %d, "p95_us": %d, "p99_us": %d, "max_us": %d, ' ..
    '"mean_us": %.1f, "non_2xx": %d, "connect_errors": %d, "read_errors": %d, "write_errors": %d, "timeouts": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95), latency:percentile(99),
    latency.max, latency.mean, e.status, e.connect, e.read, e.write, e.timeout))
end
