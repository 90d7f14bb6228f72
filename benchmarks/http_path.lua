-- wrk script of benchmarks/http_path.py:
--
--   wrk ... -s benchmarks/http_path.lua URL -- CONTENT_TYPE BODIES_FILE
--
-- POSTs the bodies of BODIES_FILE (one per line) in turn, counts the answers by status, and
-- prints one line "http_path_result {JSON}" at the end for the benchmark to read. wrk's own
-- percentiles are in microseconds; the JSON keeps them so.

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  local headers = { ["Content-Type"] = args[1] }
  prepared = {}
  for body in io.lines(args[2]) do
    prepared[#prepared + 1] = wrk.format("POST", nil, headers, body)
  end
  position = 0
  statuses = {}
end

function request()
  position = position % #prepared + 1
  return prepared[position]
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

local function status_counts()
  local merged = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      merged[status] = (merged[status] or 0) + count
    end
  end
  local fields = {}
  for status, count in pairs(merged) do
    fields[#fields + 1] = string.format('"%d": %d', status, count)
  end
  return "{" .. table.concat(fields, ", ") .. "}"
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    'http_path_result {"requests": %d, "duration_us": %d, "statuses": %s, '
      .. '"errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d}, '
      .. '"latency_us": {"p50": %d, "p90": %d, "p99": %d, "max": %d}}\n',
    summary.requests, summary.duration, status_counts(),
    errors.connect, errors.read, errors.write, errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max
  ))
end
