#!/usr/bin/env bash
# Real-browser test of the chart page served at `/`.
#
# Starts the server on a free port, loads the page in headless Chromium for one
# "lower is better" and one "higher is better" question, and checks the rendered
# DOM against the server's own API answers: the page finished (status "done"),
# it drew exactly one bar per state of states_mean, marked the best and worst 5,
# drew the global mean, and its #best5 list equals the best5 answer in order.
# It also checks that an unknown ?question= ends in the error state, and saves
# a screenshot to target/browser-test/page.png (kept for you to look at).
#
# Environment:
#   BIN         server binary to run (default: build target/release/le-stats-sportif)
#   SERVER_CMD  whole command to run instead of BIN (word-split; for a mock server)
#   DATA        CSV to serve (default: data/nutrition_activity_obesity_usa_subset.csv,
#               fetched with `make data` when missing)
#   CHROMIUM    browser binary (default: chromium; installed with apt-get if missing)
#
# Prints `browser test: N passed, M failed`; exits non-zero on any failure.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Deadlines, in seconds: a wait that passes one is a failure, never a hang.
readonly STARTUP_DEADLINE=30
readonly JOB_DEADLINE=30
readonly BROWSER_DEADLINE=120
readonly STOP_DEADLINE=15
# Virtual time the page may use: Chromium fast-forwards the page's timers and
# pauses this clock while requests are in flight, so --dump-dom runs after the
# page's polling has finished (or hit its own 30 s deadline).
readonly VIRTUAL_TIME_BUDGET_MS=60000

passed=0
failed=0
server_pid=""
work="$(mktemp -d -t browser-test.XXXXXX)"

cleanup() {
    if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
        # SIGTERM asks for a drain; a server that has not exited by the
        # deadline is killed, so this script never hangs on exit.
        kill "$server_pid" 2>/dev/null || true
        local until=$((SECONDS + STOP_DEADLINE))
        while kill -0 "$server_pid" 2>/dev/null && ((SECONDS < until)); do
            sleep 0.1
        done
        if kill -0 "$server_pid" 2>/dev/null; then
            echo "browser test: server ignored SIGTERM for ${STOP_DEADLINE}s; killing it" >&2
            kill -KILL "$server_pid" 2>/dev/null || true
        fi
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

die() {
    echo "browser test: $*" >&2
    exit 1
}

check() { # check NAME COMMAND...: runs COMMAND, counts and reports the result.
    local name="$1"
    shift
    if "$@"; then
        passed=$((passed + 1))
        echo "ok   - $name"
    else
        failed=$((failed + 1))
        echo "FAIL - $name"
    fi
}

# --- tools -------------------------------------------------------------------
command -v curl >/dev/null || die "curl is required"
command -v python3 >/dev/null || die "python3 is required (JSON and HTML parsing)"
CHROMIUM="${CHROMIUM:-chromium}"
if ! command -v "$CHROMIUM" >/dev/null; then
    echo "browser test: $CHROMIUM not found; installing Debian's chromium" >&2
    sudo=""
    if [[ "$(id -u)" != 0 ]]; then
        command -v sudo >/dev/null || die "need root (or sudo) to install chromium"
        sudo="sudo"
    fi
    $sudo apt-get update
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y chromium
    command -v "$CHROMIUM" >/dev/null || die "chromium still not found after installing"
fi

# --- data and server ---------------------------------------------------------
DATA="${DATA:-data/nutrition_activity_obesity_usa_subset.csv}"
if [[ ! -f "$DATA" ]]; then
    echo "browser test: $DATA missing; running make data" >&2
    make data
    [[ -f "$DATA" ]] || die "$DATA still missing after make data"
fi

if [[ -n "${SERVER_CMD:-}" ]]; then
    read -r -a server <<<"$SERVER_CMD"
else
    if [[ -z "${BIN:-}" ]]; then
        cargo build --release
        BIN=target/release/le-stats-sportif
    fi
    [[ -x "$BIN" ]] || die "server binary $BIN is not executable"
    server=("$BIN")
fi

mkdir -p "$work/results"
"${server[@]}" --port 0 --data "$DATA" --results-dir "$work/results" \
    --log-file "$work/log" --access-log "$work/access.log" >"$work/server.out" 2>"$work/server.err" &
server_pid=$!

# The server prints `listening on http://HOST:PORT` once it accepts connections.
base=""
deadline=$((SECONDS + STARTUP_DEADLINE))
while [[ -z "$base" ]]; do
    base="$(sed -n 's|^listening on \(http://[^[:space:]]*\).*|\1|p' "$work/server.out" | head -n 1)"
    [[ -n "$base" ]] && break
    if ! kill -0 "$server_pid" 2>/dev/null; then
        cat "$work/server.err" >&2
        die "server exited before listening"
    fi
    ((SECONDS < deadline)) || die "server did not print its address within ${STARTUP_DEADLINE}s"
    sleep 0.1
done
echo "browser test: server at $base"

# --- helpers -----------------------------------------------------------------
json() { # json EXPR: evaluates a Python expression on the JSON document on stdin (as `d`).
    python3 -c 'import json, sys; d = json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"
}

result_of() { # result_of ENDPOINT QUESTION: submits a job, prints its `data` as JSON.
    local body job answer status
    body="$(python3 -c 'import json, sys; print(json.dumps({"question": sys.argv[1]}))' "$2")"
    job="$(curl -fsS -H 'Content-Type: application/json' -d "$body" "$base/api/$1" | json 'd["job_id"]')"
    local until=$((SECONDS + JOB_DEADLINE))
    while :; do
        answer="$(curl -fsS "$base/api/get_results/$job")"
        status="$(json 'd["status"]' <<<"$answer")"
        case "$status" in
        done)
            json 'json.dumps(d["data"])' <<<"$answer"
            return
            ;;
        running) ;;
        *) die "$1 job $job: $answer" ;;
        esac
        ((SECONDS < until)) || die "$1 job $job still running after ${JOB_DEADLINE}s"
        sleep 0.05
    done
}

browser() { # browser URL ARGS...: runs headless Chromium on URL with extra ARGS.
    local url="$1"
    shift
    timeout "$BROWSER_DEADLINE" "$CHROMIUM" --headless --no-sandbox --disable-gpu \
        --disable-background-networking --disable-component-update --disable-sync \
        --no-first-run --user-data-dir="$(mktemp -d -p "$work" profile.XXXXXX)" \
        --virtual-time-budget="$VIRTUAL_TIME_BUDGET_MS" "$@" "$url" 2>>"$work/chromium.err"
}

# Summarises a dumped DOM as JSON: body status, bars (state, classes), #best5 names.
read -r -d '' DOM_SUMMARY <<'PY' || true
import json, sys
from html.parser import HTMLParser

class Summary(HTMLParser):
    def __init__(self):
        super().__init__()
        self.out = {"status": None, "bars": [], "best5": [], "global_mean_lines": 0}
        self.in_best5 = False
        self.in_name = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        if tag == "body":
            self.out["status"] = a.get("data-status")
        elif tag == "rect" and "bar" in classes:
            self.out["bars"].append({"state": a.get("data-state"), "classes": classes})
        elif tag == "line" and "global-mean" in classes:
            self.out["global_mean_lines"] += 1
        elif tag == "ol":
            self.in_best5 = a.get("id") == "best5"
        elif tag == "span" and self.in_best5 and "name" in classes:
            self.in_name = True
            self.out["best5"].append("")

    def handle_endtag(self, tag):
        if tag == "ol":
            self.in_best5 = False
        elif tag == "span":
            self.in_name = False

    def handle_data(self, data):
        if self.in_name:
            self.out["best5"][-1] += data

parser = Summary()
parser.feed(sys.stdin.read())
print(json.dumps(parser.out))
PY

page_url() { # page_url QUESTION: the page's address with ?question= encoded.
    python3 -c 'import sys, urllib.parse as u; print(sys.argv[1] + "/?question=" + u.quote(sys.argv[2], safe=""))' \
        "$base" "$1"
}

# Checks the page for one question against the API's answers.
check_question() {
    local question="$1" label="$2" means best worst dom summary
    means="$(result_of states_mean "$question")"
    best="$(result_of best5 "$question")"
    worst="$(result_of worst5 "$question")"
    dom="$(browser "$(page_url "$question")" --dump-dom)"
    summary="$(python3 -c "$DOM_SUMMARY" <<<"$dom")"
    # One document for the assertions: {"page": ..., "means": ..., "best": ..., "worst": ...}.
    local facts
    facts="$(printf '{"page": %s, "means": %s, "best": %s, "worst": %s}' \
        "$summary" "$means" "$best" "$worst")"

    check "$label: page status is done" \
        test "$(json 'd["page"]["status"]' <<<"$facts")" = done
    check "$label: one bar per state ($(json 'len(d["means"])' <<<"$facts") states)" \
        test "$(json 'sorted(b["state"] for b in d["page"]["bars"]) == sorted(d["means"])' <<<"$facts")" = True
    check "$label: #best5 equals the best5 answer, in order" \
        test "$(json 'd["page"]["best5"] == list(d["best"])' <<<"$facts")" = True
    check "$label: bars marked best are exactly the best5 answer" \
        test "$(json 'sorted(b["state"] for b in d["page"]["bars"] if "best" in b["classes"]) == sorted(d["best"])' <<<"$facts")" = True
    check "$label: bars marked worst are exactly the worst5 answer" \
        test "$(json 'sorted(b["state"] for b in d["page"]["bars"] if "worst" in b["classes"]) == sorted(d["worst"])' <<<"$facts")" = True
    check "$label: one global-mean line" \
        test "$(json 'd["page"]["global_mean_lines"]' <<<"$facts")" = 1
}

# --- the checks --------------------------------------------------------------
content_type="$(curl -fsS -o /dev/null -w '%{content_type}' "$base/")"
check "GET / is served as text/html (got '$content_type')" \
    python3 -c 'import sys; sys.exit(not sys.argv[1].lower().startswith("text/html"))' "$content_type"

questions="$(curl -fsS "$base/api/questions")"
min_question="$(json 'next(q["question"] for q in d["data"] if q["direction"] == "min")' <<<"$questions")"
max_question="$(json 'next(q["question"] for q in d["data"] if q["direction"] == "max")' <<<"$questions")"

check_question "$min_question" "min question"
check_question "$max_question" "max question"

error_dom="$(browser "$(page_url "No such question")" --dump-dom)"
check "unknown ?question= ends in the error state" \
    test "$(python3 -c "$DOM_SUMMARY" <<<"$error_dom" | json 'd["status"]')" = error

# The screenshot outlives the run (unlike $work) so it can be looked at; it
# goes under target/ (git-ignored), replacing the previous run's.
shots="target/browser-test"
mkdir -p "$shots"
browser "$(page_url "$min_question")" --hide-scrollbars --window-size=1280,1900 \
    --screenshot="$shots/page.png" >/dev/null
check "screenshot written" test -s "$shots/page.png"
echo "browser test: screenshot at $shots/page.png"

echo "browser test: $passed passed, $failed failed"
((failed == 0))
