#!/usr/bin/env bash
# The access log is read by a real log tool: starts the server (release
# build, free port, temp dir), sends a mix of requests (jobs, reads, a query
# string, 400/404/405, a request line that does not parse, hostile and
# Latin-1 User-Agents, HTTP/1.2), stops it, and has goaccess parse the access log in the
# Combined Log Format: every request must be counted and none invalid.
#   bash scripts/access_log_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/lib/need.sh
need access_log_check goaccess goaccess
need access_log_check curl curl
need access_log_check jq jq

tmp=$(mktemp -d)
. scripts/lib/server.sh
SERVER_DIR=$tmp
cleanup() {
    server_stop || true
    rm -rf "$tmp"
}
trap cleanup EXIT

server_start
url=$SERVER_URL
port=${url##*:}
log="$tmp/access.log"

sent=0
# req ARGS... : one curl request (its status does not matter here).
req() { curl -s -o /dev/null "$@"; sent=$((sent + 1)); }
Q='{"question": "Percent of adults aged 18 years and older who have obesity"}'
req "$url/api/states_mean?x=1" -d "$Q"
req "$url/api/best5" -d "$Q" -H 'Referer: http://example.com/page?a=1'
req "$url/api/num_jobs"
req "$url/api/jobs?verbose=1&x=%22y%22"
req "$url/api/get_results/job_id_1"
req "$url/api/get_results/job_id_999"            # 404
req "$url/api/nowhere"                           # 404
req -X GET "$url/api/states_mean"                # 405
req "$url/api/states_mean" -d 'not json'         # 400
req -I "$url/api/num_jobs"                       # HEAD
req "$url/" -A 'evil" 200 1 "-" "forged'         # a quote in the User-Agent
req "$url/api" -A $'tab\there'                   # a control byte
req "$url/api/states" -A $'Mozilla caf\xe9'      # Latin-1, not UTF-8: logged as \xe9
# A request line that does not parse (400), and one in HTTP/1.0.
exec 5<>"/dev/tcp/127.0.0.1/$port"; printf 'NOT A REQUEST\r\n\r\n' >&5; cat <&5 >/dev/null; exec 5<&-
sent=$((sent + 1))
exec 5<>"/dev/tcp/127.0.0.1/$port"; printf 'GET /api/num_jobs HTTP/1.0\r\n\r\n' >&5; cat <&5 >/dev/null; exec 5<&-
sent=$((sent + 1))
# HTTP/1.2 is served as HTTP/1.1 (RFC 9110 §2.5).
exec 5<>"/dev/tcp/127.0.0.1/$port"; printf 'GET /api/num_jobs HTTP/1.2\r\nHost: t\r\nConnection: close\r\n\r\n' >&5; cat <&5 >/dev/null; exec 5<&-
sent=$((sent + 1))

# SIGTERM: the server flushes its logs before it exits.
server_stop TERM && code=0 || code=$?
[ "$code" = 0 ] || { echo "access_log_check: server exited $code" >&2; exit 1; }

lines=$(wc -l <"$log")
# COMBINED ends at the User-Agent; goaccess ignores the duration after it.
goaccess "$log" --no-global-config --log-format=COMBINED -o "$tmp/report.json" 2>"$tmp/goaccess.err" || {
    echo "access_log_check: goaccess failed:" >&2; cat "$tmp/goaccess.err" >&2; exit 1; }
total=$(jq '.general.total_requests' "$tmp/report.json")
valid=$(jq '.general.valid_requests' "$tmp/report.json")
failed=$(jq '.general.failed_requests' "$tmp/report.json")
echo "access_log_check: sent $sent, logged $lines lines; goaccess: total $total, valid $valid, failed $failed"
grep -qF '"GET /api/states HTTP/1.1" 200' "$log" && grep -qF '"Mozilla caf\xe9"' "$log" || {
    echo "access_log_check: FAIL: the Latin-1 User-Agent is not logged as \\xe9:" >&2; cat "$log" >&2; exit 1; }
if [ "$lines" != "$sent" ] || [ "$total" != "$sent" ] || [ "$valid" != "$sent" ] || [ "$failed" != 0 ]; then
    echo "access_log_check: FAIL; the log:" >&2
    cat "$log" >&2
    goaccess "$log" --no-global-config --log-format=COMBINED --invalid-requests="$tmp/invalid" -o "$tmp/r2.json" 2>/dev/null || true
    echo "invalid lines:" >&2; cat "$tmp/invalid" >&2 || true
    exit 1
fi
echo "access_log_check: ok"
