-- common.lua: what every bench run shares: the request body and the report.
--
-- wrk's own summary prints human units ("850.12us", "1.20ms", "12.34k"), which
-- are easy to misparse. Instead every run ends with exactly one line
--
--   BENCH requests=N duration_s=S req_s=R p50_us=P p99_us=Q errors=E non2xx=X
--         ok_req_s=K [extra...]
--
-- that scripts/bench.sh reads with plain field splitting. All latencies are
-- microseconds, as wrk records them.
--
-- Used directly (`wrk -s common.lua URL`) for plain GET runs, or loaded from
-- another script with `dofile`, which then calls `bench_report` from its own
-- `done` to append its extra fields.

QUESTION = "Percent of adults aged 18 years and older who have obesity"

-- Returns the JSON body of a computing request, with a state when one is
-- given. Built by hand: the question and the state names used by the bench
-- contain no character that JSON would need to escape.
function submit_body(state)
   if state then
      return string.format('{"question": "%s", "state": "%s"}', QUESTION, state)
   end
   return string.format('{"question": "%s"}', QUESTION)
end

-- Prints the BENCH line for one wrk run. `extra` is an optional list of
-- "key=value" strings appended as they are.
function bench_report(summary, latency, extra)
   local seconds = summary.duration / 1e6
   local e = summary.errors
   local fields = {
      string.format("requests=%d", summary.requests),
      string.format("duration_s=%.3f", seconds),
      string.format("req_s=%.1f", summary.requests / seconds),
      string.format("p50_us=%d", latency:percentile(50)),
      string.format("p99_us=%d", latency:percentile(99)),
      -- Socket-level failures: the request got no HTTP answer at all.
      string.format("errors=%d", e.connect + e.read + e.write + e.timeout),
      -- wrk counts every status above 399 here.
      string.format("non2xx=%d", e.status),
      -- Answers below 400 per second: for a submit run, jobs accepted.
      string.format("ok_req_s=%.1f", (summary.requests - e.status) / seconds),
   }
   for _, kv in ipairs(extra or {}) do
      fields[#fields + 1] = kv
   end
   io.write("BENCH ", table.concat(fields, " "), "\n")
end

function done(summary, latency, requests)
   bench_report(summary, latency)
end
