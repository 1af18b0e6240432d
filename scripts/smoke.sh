#!/usr/bin/env bash
# Smoke test with curl and jq: every endpoint and error of the SPEC against a
# running server. Starts its own (release build, free port, temp results dir)
# unless SERVER_URL is given; always stops what it started. Its own server is
# restarted over the results of an earlier run first, and no check assumes
# which job ids exist: it passes on a server with any history.
#   bash scripts/smoke.sh                  # own server
#   SERVER_URL=http://127.0.0.1:5000 bash scripts/smoke.sh
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/lib/need.sh
need smoke curl curl
need smoke jq jq

tmp=$(mktemp -d)
. scripts/lib/server.sh
SERVER_DIR=$tmp
cleanup() {
    server_stop || true
    rm -rf "$tmp"
}
trap cleanup EXIT

if [ -z "${SERVER_URL:-}" ]; then
    # A first life that leaves results behind, then the server under test,
    # restarted over them: ids no longer start at 1.
    server_start
    for _ in 1 2 3; do
        curl -s -X POST "$SERVER_URL/api/global_mean" \
            -d '{"question": "Percent of adults aged 18 years and older who have obesity"}' |
            jq -r .job_id | xargs -I{} curl -s -o /dev/null "$SERVER_URL/api/get_results/{}?wait=10"
    done
    server_stop || { echo "smoke: first server did not exit cleanly" >&2; exit 1; }
    server_start
fi
echo "smoke: testing $SERVER_URL"

passed=0 failed=0
Q_MIN="Percent of adults aged 18 years and older who have obesity"
Q_MAX="Percent of adults who engage in muscle-strengthening activities on 2 or more days a week"

# req METHOD PATH [BODY] -> sets $status and $body
req() {
    local args=(-s -o "$tmp/body" -w '%{http_code}' -X "$1" "$SERVER_URL$2")
    [ $# -ge 3 ] && args+=(-d "$3")
    status=$(curl "${args[@]}")
    body=$(cat "$tmp/body")
}
# check NAME EXPECTED_STATUS JQ_FILTER — the filter must print `true`, and a
# JSON body must end with a newline (every one does).
check() {
    local newline=yes
    [ -s "$tmp/body" ] && [ "$(tail -c 1 "$tmp/body" | od -An -c | tr -d ' ')" != '\n' ] && newline=no
    if [ "$status" = "$2" ] && [ "$newline" = yes ] && [ "$(jq -c "$3" <<<"$body" 2>/dev/null)" = "true" ]; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1)); echo "FAIL $1: status $status (want $2), body ${body:0:300}"
    fi
}
json() { jq -cn --arg q "$1" --arg s "${2:-}" 'if $s == "" then {question: $q} else {question: $q, state: $s} end'; }
# job ENDPOINT BODY -> submits and collects the result in one pipeline, as
# the README shows (get_results waits up to 10 s for the job); leaves the
# answer in $body.
job() {
    status=$(curl -s -X POST "$SERVER_URL/api/$1" -d "$2" | jq -r .job_id |
        xargs -I{} curl -s -o "$tmp/body" -w '%{http_code}' "$SERVER_URL/api/get_results/{}?wait=10")
    body=$(cat "$tmp/body")
    check "$1 result" 200 '.status == "done"'
}

job states_mean "$(json "$Q_MIN")";           check states_mean 200 '(.data | length) == 55 and (.data | to_entries | .[0].value <= .[1].value)'
job state_mean "$(json "$Q_MIN" Ohio)";       check state_mean 200 '.data | keys == ["Ohio"]'
job best5 "$(json "$Q_MIN")";                 check best5 200 '(.data | length) == 5'
job worst5 "$(json "$Q_MAX")";                check worst5 200 '(.data | length) == 5'
job global_mean "$(json "$Q_MIN")";           check global_mean 200 '.data.global_mean > 0'
job diff_from_mean "$(json "$Q_MIN")";        check diff_from_mean 200 '(.data | length) == 55'
job state_diff_from_mean "$(json "$Q_MIN" Guam)"; check state_diff_from_mean 200 '.data | has("Guam")'
job mean_by_category "$(json "$Q_MIN")";      check mean_by_category 200 '.data | keys | .[0] | startswith("(")'
job state_mean_by_category "$(json "$Q_MIN" Ohio)"; check state_mean_by_category 200 '.data.Ohio | length > 10'

req POST /api/global_mean "$(json "$Q_MIN")"; check submit 200 '.job_id | test("^job_id_[1-9][0-9]*$")'
id=$(jq -r .job_id <<<"$body"); n=${id#job_id_}
req GET "/api/get_results/$n?wait=10"; check "get_results by number, waiting" 200 '.status == "done"'
req GET "/api/get_results/$id?wait=0"; check "get_results, no wait" 200 '.status == "done"'
req GET "/api/get_results/$id?wait=31"; check "wait out of range" 400 '.reason | contains("0 to 30")'
req GET "/api/get_results/$id?wiat=1"; check "unknown query parameter" 400 '.reason | contains("wait")'
# Every job this run made is listed (ten of them, the last being $id), and
# every job, of this run or of the server's history, is done.
req GET /api/jobs;                 check jobs 200 ".status == \"done\" and (.data | length) >= 10 and (.data[-1] | has(\"$id\")) and (.data | all(.[] == \"done\"))"
req GET /api/num_jobs;             check num_jobs 200 '.num_jobs == 0'
req GET /api;                      check "api index" 200 '.status == "done" and (.data | length) == 21 and (.data[1] == {"path": "/api/state_mean", "method": "POST", "body": ["question", "state"], "about": "the mean of one state"})'
req GET /api/questions;            check questions 200 '(.data | length) == 9'
req GET /api/states;               check states 200 '(.data | length) == 55'
req GET /;                         [ "$status" = 200 ] && grep -q '<html\|<!doctype' <<<"$body" && passed=$((passed+1)) || { failed=$((failed+1)); echo "FAIL index page"; }

req GET /api/get_results/job_id_0;      check "invalid id 0" 404 '. == {"status": "error", "reason": "Invalid job_id"}'
req GET /api/get_results/job_id_99999;  check "unknown id" 404 '.reason == "Invalid job_id"'
req GET '/api/get_results/..%2f..';     check "traversal id" 404 '.reason == "Invalid job_id"'
req POST /api/states_mean "question=$Q_MIN"; check "form body" 400 '.reason | (contains("takes a JSON object") and contains("curl -s -X POST"))'
req POST /api/states_mean;              check "no body" 400 '.reason | startswith("missing body")'
req POST /api/states_mean '{"question": 1}'; check "non-string question" 400 '.status == "error"'
req POST /api/state_mean "$(json "$Q_MIN")"; check "missing state" 400 '.reason | startswith("missing field \"state\"")'
req POST /api/states_mean "$(json "Percent of nothing")"; check "unknown question" 400 '.status == "error"'
req POST /api/states_mean "$(json "fruit")"; check "question by a word" 400 '.did_you_mean == ["Percent of adults who report consuming fruit less than one time daily"]'
req POST /api/state_mean "$(json "$Q_MIN" Ohoi)"; check "unknown state" 400 '.did_you_mean[0] == "Ohio"'
req POST /api/state_mean "$(json "$Q_MIN" ohio)"; check "state in the wrong case" 400 '.did_you_mean == ["Ohio"]'
req GET /api/states_mean;               check "wrong method" 405 '.reason | contains("takes POST")'
req GET /api/nowhere;                   check "unknown path" 404 '.reason | contains("GET /api")'
req POST /api/global_mean "$(json "$Q_MIN")"; check "no job from errors" 200 ".job_id == \"job_id_$((n + 1))\""

if [ -n "${SERVER_PID:-}" ]; then   # only shut down a server we started
    req GET /api/graceful_shutdown;     check "graceful_shutdown" 200 '.status == "done" or .status == "running"'
    req POST /api/states_mean "$(json "$Q_MIN")"; check "503 after shutdown" 503 '. == {"status": "error", "reason": "shutting down: graceful_shutdown was requested; restart the server to submit jobs"}'
    req GET /api/num_jobs;              check "reads after shutdown" 200 '.num_jobs >= 0'
    server_stop && code=0 || code=$?
    [ "$code" = 0 ] && passed=$((passed+1)) || { failed=$((failed+1)); echo "FAIL Ctrl-C exit code $code"; }
fi

echo "smoke: $passed passed, $failed failed"
[ "$failed" = 0 ]
