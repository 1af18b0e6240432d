-- end_to_end.lua: the whole life of a job, as a client sees it.
--
-- Each connection loops: POST /api/state_mean, then GET
-- /api/get_results/<id> until the answer is "done", then starts over. The
-- figure of merit is completed jobs per second (`jobs_s` in the BENCH line);
-- `req_s`, p50 and p99 cover every request, submissions and polls alike.
--
-- INVARIANT: exactly one connection per wrk thread (`-t C -c C`). Every wrk
-- thread has its own Lua state, but wrk does not tell `response()` which
-- connection an answer came from; with one connection per thread the state
-- below *is* that connection's state, and a "running" answer unambiguously
-- belongs to `job_id`. Two requests without an answer in between (a second
-- connection, or a reconnect after a socket error) are counted in `overlaps`
-- so a broken invariant shows up in the report instead of skewing it. Only
-- after the first answer, though: wrk calls request() once on thread 1 before
-- the run to validate the script, and that request is never sent.

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "common.lua")

local STATE = "Ohio"
local HEADERS = { ["Content-Type"] = "application/json" }

-- Per-thread (= per-connection) state. Globals, not locals, so that done()
-- can read them with thread:get().
completed = 0 -- jobs seen "done"
failures = 0 -- answers that were neither a job id nor a job status
overlaps = 0 -- request() called while the previous request was unanswered

local job_id = nil -- nil: the next request submits a new job
local in_flight = false -- a request was built and its answer has not come
local answered = false -- at least one answer has come on this thread

function request()
   if in_flight and answered then
      overlaps = overlaps + 1
   end
   in_flight = true
   if job_id then
      return wrk.format("GET", "/api/get_results/" .. job_id)
   end
   return wrk.format("POST", "/api/state_mean", HEADERS, submit_body(STATE))
end

function response(status, headers, body)
   in_flight = false
   answered = true
   if status ~= 200 then
      failures = failures + 1
      job_id = nil
   elseif job_id == nil then
      job_id = body:match('"job_id"%s*:%s*"(job_id_%d+)"')
      if not job_id then
         failures = failures + 1
      end
   elseif body:find('"status"%s*:%s*"done"') then
      completed = completed + 1
      job_id = nil
   elseif not body:find('"status"%s*:%s*"running"') then
      failures = failures + 1
      job_id = nil
   end
   -- "running": keep job_id and poll it again.
end

-- setup() and done() run in the main Lua state; the counters live in the
-- threads' states and are collected here.
local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function done(summary, latency, requests)
   local total = { completed = 0, failures = 0, overlaps = 0 }
   for _, thread in ipairs(threads) do
      for name, _ in pairs(total) do
         total[name] = total[name] + thread:get(name)
      end
   end
   local seconds = summary.duration / 1e6
   bench_report(summary, latency, {
      string.format("jobs=%d", total.completed),
      string.format("jobs_s=%.1f", total.completed / seconds),
      string.format("failures=%d", total.failures),
      string.format("overlaps=%d", total.overlaps),
   })
end
