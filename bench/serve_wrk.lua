-- wrk script for bench/serve.py.
-- Sends the body in the file $WRK_BODY (POST; GET when unset) with "Authorization: Bearer $WRK_KEY"
-- when set. done() prints one line "WRK {json}" with counts and latency percentiles (microseconds).
-- With WRK_CAPTURE=1 it also counts statuses and keeps the first error body (slower: wrk then
-- hands every response to Lua, so this is only used to explain a run that had errors).

local body_file = os.getenv("WRK_BODY")
if body_file ~= nil and body_file ~= "" then
  local f = assert(io.open(body_file, "rb"))
  wrk.method = "POST"
  wrk.body = f:read("*a")
  f:close()
  wrk.headers["Content-Type"] = "application/json"
end
local key = os.getenv("WRK_KEY")
if key ~= nil and key ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. key
end

local threads = {}
local capture = os.getenv("WRK_CAPTURE") == "1"

function setup(thread)
  table.insert(threads, thread)
end

if capture then
  statuses = {}
  first_error = ""
  function response(status, headers, body)
    statuses[status] = (statuses[status] or 0) + 1
    if status > 399 and first_error == "" then
      first_error = string.format("%d %s", status, string.sub(body or "", 1, 600))
    end
  end
end

local function quote(s)
  s = string.gsub(s, "[%c\"\\]", function(c) return string.format("\\u%04x", string.byte(c)) end)
  return '"' .. s .. '"'
end

function done(summary, latency, requests)
  local e = summary.errors
  local counts, first = {}, ""
  for _, t in ipairs(threads) do
    local st = t:get("statuses")
    if st ~= nil then
      for code, n in pairs(st) do counts[code] = (counts[code] or 0) + n end
    end
    local fe = t:get("first_error")
    if fe ~= nil and fe ~= "" and first == "" then first = fe end
  end
  local parts = {}
  for code, n in pairs(counts) do table.insert(parts, string.format('"%d":%d', code, n)) end
  io.write(string.format(
    'WRK {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,' ..
    '"timeout":%d,"p50_us":%d,"p99_us":%d,"max_us":%d,"statuses":{%s},"first_error":%s}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max, table.concat(parts, ","),
    quote(first)))
end
