-- bench/flags/bulk.lua — wrk script of bench/flags: one bulk evaluation of every flag per request,
-- for a random visitor (targeting key), device and path, against either server:
--
--   wrk … -s bulk.lua http://127.0.0.1:PORT -- ofrep   pk_…     POST /ofrep/v1/evaluate/flags
--   wrk … -s bulk.lua http://127.0.0.1:PORT -- unleash TOKEN    POST /api/frontend (Unleash's
--                                                               frontend API: all flags, one context)
--
-- The two bodies carry the same context (Unleash names the unit userId and puts other fields
-- under properties). done() prints one JSON line: requests/s, latency percentiles, errors
-- (non-2xx answers and socket errors).

local mode, token
local devices = { "desktop", "mobile", "tablet" }
local paths = { "/", "/product/mug", "/cart", "/checkout/shipping", "/checkout/payment" }
local thread_no = 0

function setup(thread)
   thread_no = thread_no + 1
   thread:set("seed", thread_no)
end

function init(args)
   mode = args[1] or "ofrep"
   token = args[2] or ""
   -- A different sequence per thread and per run.
   math.randomseed(os.time() * 1000 + (seed or 0) * 7919 + math.floor((os.clock() * 1e6) % 1e6))
end

local function unit()
   return string.format("v-%08x%08x", math.random(0, 0x7fffffff), math.random(0, 0x7fffffff))
end

function request()
   local device = devices[math.random(#devices)]
   local path = paths[math.random(#paths)]
   if mode == "unleash" then
      return wrk.format("POST", "/api/frontend",
         { ["Content-Type"] = "application/json", ["Authorization"] = token },
         '{"context":{"userId":"' .. unit() .. '","properties":{"device":"' .. device ..
         '","path":"' .. path .. '"}}}')
   end
   return wrk.format("POST", "/ofrep/v1/evaluate/flags",
      { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token },
      '{"context":{"targetingKey":"' .. unit() .. '","device":"' .. device .. '","path":"' ..
      path .. '"}}')
end

function done(summary, latency, requests)
   local secs = summary.duration / 1e6
   local e = summary.errors
   io.write(string.format(
      '{"requests":%d,"seconds":%.3f,"requests_per_s":%.1f,"p50_ms":%.3f,"p90_ms":%.3f,' ..
      '"p99_ms":%.3f,"max_ms":%.3f,"non_2xx":%d,"socket_errors":%d}\n',
      summary.requests, secs, summary.requests / secs, latency:percentile(50) / 1000,
      latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
      e.status, e.connect + e.read + e.write + e.timeout))
end
