#!/usr/bin/env bash
# Real-browser test of the chart page served at `/`.
#
# Starts the server on a free port, then scripts/browser_test.py drives headless
# Chromium over the DevTools protocol and checks every view of the page (ranking,
# difference from the mean, map, state) against the server's own API answers,
# the URL round-trip and back button, a keyboard-only path, the fit at 1366x768
# and at 400 px wide, and the Content-Security-Policy. Screenshots of each view
# go to target/browser-test/ (kept for you to look at).
#
# Then scripts/browser_security_test.py attacks a second server from hostile
# pages (DNS rebinding, an <img>, a text/plain form and a no-cors fetch from
# another site) and checks that each is refused and the server untouched; it
# starts that server itself, on the port the rebinding page came from.
#
# Environment:
#   BIN         server binary to run (default: build target/release/le-stats-sportif)
#   SERVER_CMD  whole command to run instead of BIN (word-split; for a mock server)
#   DATA        CSV to serve (default: data/nutrition_activity_obesity_usa_subset.csv,
#               fetched with `make data` when missing)
#   CHROMIUM    browser binary (default: chromium; installed with apt-get if missing)
#
# Prints `browser test: N passed, M failed`; exits non-zero on any failure.
# Needs python3 (standard library only) and chromium.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Deadlines, in seconds: a wait that passes one is a failure, never a hang.
readonly STARTUP_DEADLINE=30
readonly BROWSER_DEADLINE=600 # the whole browser run (each wait in it has its own)
readonly STOP_DEADLINE=15

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

# --- tools -------------------------------------------------------------------
. scripts/lib/need.sh
need "browser test" python3 python3   # it drives the browser
CHROMIUM="${CHROMIUM:-chromium}"
need "browser test" "$CHROMIUM" chromium

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
# Created here, not by the background redirection: the loop below may read
# it before the forked shell has opened it (seen under load).
: >"$work/server.out"
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

# --- the checks --------------------------------------------------------------
# The screenshots outlive the run (unlike $work) so they can be looked at; they
# go under target/ (git-ignored), replacing the previous run's.
shots="target/browser-test"
rm -rf "$shots"
mkdir -p "$shots"
timeout "$BROWSER_DEADLINE" python3 scripts/browser_test.py --base "$base" --chromium "$CHROMIUM" \
    --shots "$shots" --work "$work"
timeout "$BROWSER_DEADLINE" python3 scripts/browser_security_test.py --chromium "$CHROMIUM" \
    --data "$DATA" --work "$work" "${server[@]}"
