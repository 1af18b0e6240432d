#!/usr/bin/env bash
# Real-browser test of the live scoreboard at `/status`.
#
# Starts the server with THREADS workers, holds two idle client connections
# open, loads the page in headless Chromium (a few seconds of the page's own
# one-second refresh, in virtual time) and checks the rendered DOM: the page
# went live, it drew one cell per configured worker thread, one accept loop
# and one log writer, the two held connections as `reading head`, and its
# counts per role match the server's own /api/status. Saves a screenshot to
# target/browser-test/status.png (kept for you to look at). Then, on a
# second server with --threads 2 --job-delay 1500 and ten jobs submitted,
# checks that the timeline draws one row per worker, each with a `job run`
# span, and the queued jobs on queue rows; its screenshot is
# target/browser-test/timeline.png (the one the README shows how to make).
#
# Environment:
#   BIN       server binary (default: build target/release/le-stats-sportif)
#   DATA      CSV to serve (default: data/nutrition_activity_obesity_usa_subset.csv)
#   CHROMIUM  browser binary (default: chromium; installed with apt-get if missing)
#
# Prints `status page test: N passed, M failed`; exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

readonly THREADS=3
readonly BROWSER_DEADLINE=120
readonly VIRTUAL_TIME_BUDGET_MS=4000

passed=0
failed=0
work="$(mktemp -d -t status-page-test.XXXXXX)"
. scripts/lib/server.sh
SERVER_DIR=$work
cleanup() {
    exec 3>&- 4>&- 2>/dev/null || true
    server_stop TERM || true
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
die() { echo "status page test: $*" >&2; exit 1; }
check() { # check NAME COMMAND...
    local name="$1"
    shift
    if "$@"; then
        passed=$((passed + 1)); echo "ok   - $name"
    else
        failed=$((failed + 1)); echo "FAIL - $name"
    fi
}

. scripts/lib/need.sh
need "status page test" curl curl
need "status page test" python3 python3
CHROMIUM="${CHROMIUM:-chromium}"
need "status page test" "$CHROMIUM" chromium

DATA="${DATA:-data/nutrition_activity_obesity_usa_subset.csv}"
[[ -f "$DATA" ]] || make data
if [[ -z "${BIN:-}" ]]; then
    cargo build --release
    BIN=target/release/le-stats-sportif
fi

# A long idle timeout keeps the two held connections open for the whole test.
server_start --threads "$THREADS" --idle-timeout-ms 120000
base=$SERVER_URL
echo "status page test: server at $base"
hostport="${base#http://}"
exec 3<>"/dev/tcp/${hostport%:*}/${hostport##*:}"
exec 4<>"/dev/tcp/${hostport%:*}/${hostport##*:}"

browser() { # browser URL ARGS...
    local url="$1"
    shift
    timeout "$BROWSER_DEADLINE" "$CHROMIUM" --headless --no-sandbox --disable-gpu \
        --disable-background-networking --disable-component-update --disable-sync \
        --no-first-run --user-data-dir="$(mktemp -d -p "$work" profile.XXXXXX)" \
        --virtual-time-budget="$VIRTUAL_TIME_BUDGET_MS" "$@" "$url" 2>>"$work/chromium.err"
}

# Summarises the dumped DOM: body state and refreshes, cells by role and state.
read -r -d '' DOM_SUMMARY <<'PY' || true
import json, sys
from html.parser import HTMLParser
class Summary(HTMLParser):
    def __init__(self):
        super().__init__()
        self.out = {"state": None, "refreshes": 0, "cells": {}, "states": {}}
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "body":
            self.out["state"] = a.get("data-state")
            self.out["refreshes"] = int(a.get("data-refreshes", "0"))
        role = a.get("data-role")
        if role and "cell" in a.get("class", "").split():
            self.out["cells"][role] = self.out["cells"].get(role, 0) + 1
            key = role + "/" + a.get("data-state", "")
            self.out["states"][key] = self.out["states"].get(key, 0) + 1
s = Summary()
s.feed(sys.stdin.read())
print(json.dumps(s.out))
PY

dom="$(browser "$base/status" --dump-dom)"
summary="$(python3 -c "$DOM_SUMMARY" <<<"$dom")"
status="$(curl -fsS "$base/api/status")"
echo "status page test: page $summary"
field() { python3 -c "import json,sys; d=json.loads(sys.argv[1]); print($2)" "$1"; }
role_count() { field "$status" "sum(1 for t in d['threads'] if t['role'] == '$1')"; }

check "the page went live and refreshed" \
    test "$(field "$summary" "d['state'] == 'live' and d['refreshes'] >= 2")" = True
check "one cell per configured worker ($THREADS)" \
    test "$(field "$summary" "d['cells'].get('worker', 0)")" = "$THREADS"
for role in worker accept log_writer; do
    check "$role cells match /api/status" \
        test "$(field "$summary" "d['cells'].get('$role', 0)")" = "$(role_count "$role")"
done
check "idle workers drawn idle" \
    test "$(field "$summary" "d['states'].get('worker/idle', 0)")" = "$THREADS"
check "the two held connections drawn as reading head" \
    test "$(field "$summary" "d['states'].get('connection/reading head', 0) >= 2")" = True

# The screenshot outlives the run (unlike $work); it goes under target/.
shots="target/browser-test"
mkdir -p "$shots"
browser "$base/status" --hide-scrollbars --window-size=1100,1000 \
    --screenshot="$shots/status.png" >/dev/null
check "screenshot written" test -s "$shots/status.png"
echo "status page test: screenshot at $shots/status.png"

# The timeline during a delayed burst: a server with two workers and
# --job-delay, ten jobs submitted, then the page loaded while they run.
server_stop TERM || true
server_start --threads 2 --job-delay 1500
base=$SERVER_URL
body='{"question": "Percent of adults aged 18 years and older who have obesity"}'
for i in $(seq 10); do
    curl -fsS -o /dev/null -X POST "$base/api/states_mean" -d "$body"
done
read -r -d '' TIMELINE_SUMMARY <<'PY' || true
import json, sys
from html.parser import HTMLParser
class Summary(HTMLParser):
    def __init__(self):
        super().__init__()
        self.rows = []
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        classes = a.get("class", "").split()
        if "tl-row" in classes:
            self.rows.append({"role": a.get("data-role"), "name": a.get("data-name"), "spans": {}})
        elif "tl-span" in classes and self.rows:
            spans = self.rows[-1]["spans"]
            spans[a.get("data-name")] = spans.get(a.get("data-name"), 0) + 1
s = Summary()
s.feed(sys.stdin.read())
workers = [r for r in s.rows if r["role"] == "worker"]
print(json.dumps({"rows": len(s.rows), "workers": len(workers),
                  "worker_job_runs": [r["spans"].get("job run", 0) for r in workers],
                  "queue_rows": sum(1 for r in s.rows if r["role"] == "queue")}))
PY
timeline="$(python3 -c "$TIMELINE_SUMMARY" <<<"$(browser "$base/status" --dump-dom)")"
echo "status page test: timeline $timeline"
check "the timeline draws one row per worker (2)" \
    test "$(field "$timeline" "d['workers']")" = 2
check "each worker row draws a job run span" \
    test "$(field "$timeline" "all(n >= 1 for n in d['worker_job_runs'])")" = True
check "queued jobs drawn on queue rows" \
    test "$(field "$timeline" "d['queue_rows'] >= 1")" = True
browser "$base/status" --hide-scrollbars --window-size=1100,1200 \
    --screenshot="$shots/timeline.png" >/dev/null
check "timeline screenshot written" test -s "$shots/timeline.png"
echo "status page test: timeline screenshot at $shots/timeline.png"
server_stop KILL || true

echo "status page test: $passed passed, $failed failed"
((failed == 0))
