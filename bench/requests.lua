-- wrk script for `make bench`: sends pre-made requests, one per line of a file, in order.
--
--   wrk -t1 -c16 -d10s -s bench/requests.lua http://127.0.0.1:PORT/ -- FILE OFFSET RATE MODE [LIMIT]
--
-- FILE    one request per line, tab-separated: METHOD, TARGET, BODY, then "Name: value" headers
--         (Host included: it is the signed authority). Bodies contain no tab or newline.
-- OFFSET  skip this many lines first (the lines an earlier run of the same set already sent).
-- RATE    0 = as fast as the connections go (saturation); N > 0 = pace the whole run at N
--         requests/s with delay() (wrk has no fixed-rate mode; latency is measured from when each
--         request is written, so it is not corrected for coordinated omission).
-- MODE    "cycle"  wrap around at the end (configs without replay protection);
--         "strict" never expected to run out: if it does it wraps, which replays a jti, so
--                  proofgate answers 401 and the run fails loudly (non-2xx, exhausted=true);
--         "stop"   at the end send GET /healthz (exempt, touches no replay entry) and stop.
-- LIMIT   load at most this many lines after OFFSET (0 or absent = all): a large single-use set
--         handed out a slice per run does not have to be loaded whole every time. The end of the
--         slice is "the end" for MODE.
--
-- done() prints one line, "BENCHJSON {...}", that bench/bench.py parses: wrk's counts and
-- latency percentiles (microseconds) and how many requests the script handed out (`used`; it
-- includes the one wrk takes at start-up to check the script, which is never sent).

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]]
local ts = ffi.new("bench_timespec")
local function now_us()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1e6 + tonumber(ts.tv_nsec) / 1e3
end

-- Globals (not locals) so that done() can read them through thread:get().
used = 0
exhausted = false
loaded = 0

local reqs, n, i = {}, 0, 0
local mode = "strict"
local healthz = nil
local interval, next_at = 0, nil

local function build(line)
  local f = {}
  for field in (line .. "\t"):gmatch("([^\t]*)\t") do
    f[#f + 1] = field
  end
  local method, target, body = f[1], f[2], f[3] or ""
  local out = { method .. " " .. target .. " HTTP/1.1" }
  local host = nil
  for k = 4, #f do
    if f[k] ~= "" then
      out[#out + 1] = f[k]
      if f[k]:lower():sub(1, 5) == "host:" then host = true end
    end
  end
  if not host then
    out[#out + 1] = "Host: " .. wrk.headers["Host"]
  end
  if body ~= "" then
    out[#out + 1] = "Content-Length: " .. #body
  end
  return table.concat(out, "\r\n") .. "\r\n\r\n" .. body
end

function init(args)
  local file = args[1]
  local offset = tonumber(args[2] or "0")
  local rate = tonumber(args[3] or "0")
  mode = args[4] or "strict"
  local limit = tonumber(args[5] or "0")
  local k = 0
  for line in io.lines(file) do
    k = k + 1
    if limit > 0 and n >= limit then break end
    if k > offset and line ~= "" then
      n = n + 1
      reqs[n] = build(line)
    end
  end
  loaded = n
  if n == 0 then
    io.stderr:write("requests.lua: no requests in " .. file .. " after offset " .. offset .. "\n")
    os.exit(2)
  end
  healthz = "GET /healthz HTTP/1.1\r\nHost: " .. wrk.headers["Host"] .. "\r\n\r\n"
  if rate > 0 then
    interval = 1e6 / rate -- one wrk thread carries the whole rate
    delay = function()
      local now = now_us()
      if next_at == nil or next_at < now - 100000 then
        next_at = now -- start, or more than 100 ms behind: do not burst to catch up
      end
      local slot = next_at
      next_at = next_at + interval
      local ms = (slot - now) / 1000
      if ms < 0 then return 0 end
      return math.floor(ms)
    end
  end
end

function request()
  if i >= n then
    exhausted = true
    if mode == "stop" then
      wrk.thread:stop()
      return healthz
    end
    i = 0
  end
  i = i + 1
  used = used + 1
  return reqs[i]
end

local threads = {}

function setup(thread)
  threads[#threads + 1] = thread
end

function done(summary, latency, requests)
  local u, ex, ld = 0, false, 0
  for _, t in ipairs(threads) do
    u = u + t:get("used")
    ex = ex or t:get("exhausted")
    ld = ld + t:get("loaded")
  end
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests":%d,"duration_us":%d,"bytes":%d,"non2xx":%d,"connect_errors":%d,' ..
    '"read_errors":%d,"write_errors":%d,"timeouts":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
    '"p999_us":%d,"max_us":%d,"mean_us":%.1f,"used":%d,"loaded":%d,"exhausted":%s}\n',
    summary.requests, summary.duration, summary.bytes, e.status, e.connect, e.read, e.write,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max, latency.mean, u, ld, tostring(ex)))
end
