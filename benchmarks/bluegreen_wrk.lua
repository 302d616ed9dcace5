-- wrk script for benchmarks/bluegreen_load.py and benchmarks/reload_vs_symlink.py.
-- POSTs the JSON body in $WRK_BODY to $WRK_PATH (default /predict) on every keep-alive connection;
-- each thread counts response statuses, non-2xx answers and the x-model-version header values;
-- done() adds the threads' counts up and prints one line "WRKJSON {...}" for the Python side.
local f = assert(io.open(os.getenv("WRK_BODY"), "r"))
local body = f:read("*a")
f:close()
wrk.method = "POST"
wrk.path = os.getenv("WRK_PATH") or "/predict"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"

local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

-- per-thread state (each wrk thread runs its own Lua state)
non2xx = 0
statuses = {}
versions = {}

function response(status, headers, _)
  if status < 200 or status > 299 then non2xx = non2xx + 1 end
  local s = tostring(status)
  statuses[s] = (statuses[s] or 0) + 1
  local v = headers["x-model-version"] or headers["X-Model-Version"] or "none"
  versions[v] = (versions[v] or 0) + 1
end

local function json_map(t)
  local parts = {}
  for k, v in pairs(t) do parts[#parts + 1] = string.format("%q:%d", k, v) end
  return "{" .. table.concat(parts, ",") .. "}"
end

function done(summary, latency, _)
  local total_non2xx, all_statuses, all_versions = 0, {}, {}
  for _, thread in ipairs(threads) do
    total_non2xx = total_non2xx + thread:get("non2xx")
    for k, v in pairs(thread:get("statuses")) do all_statuses[k] = (all_statuses[k] or 0) + v end
    for k, v in pairs(thread:get("versions")) do all_versions[k] = (all_versions[k] or 0) + v end
  end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"non2xx":%d,"errors":{"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d},"latency_us":{"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d,"mean":%.1f},' ..
    '"statuses":%s,"versions":%s}\n',
    summary.requests, summary.duration, total_non2xx, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.max, latency.mean, json_map(all_statuses), json_map(all_versions)))
end
