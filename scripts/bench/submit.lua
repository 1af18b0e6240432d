-- submit.lua: POST a computing request as fast as possible and never wait for
-- its result. This measures submission alone (parse, validate, enqueue, answer
-- with a job id); the queued jobs are drained by bench.sh before the next run.
--
--   wrk -s submit.lua http://127.0.0.1:PORT/api/states_mean
--   wrk -s submit.lua http://127.0.0.1:PORT/api/state_mean -- Ohio
--
-- The endpoint is the URL's path; the optional script argument is the state.
-- No `request()` is defined, so wrk builds the request once per thread and
-- resends the same bytes: the client costs as little as it can.

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "common.lua")

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

-- init runs in every thread before that thread builds its static request,
-- so setting the body here still yields a static (prebuilt) request.
function init(args)
   wrk.body = submit_body(args[1])
end
