# scripts/lib/server.sh — sourced by the check scripts: the one way they run
# a server. The caller owns a temp directory, sets SERVER_DIR to it, calls
# server_start, and calls server_stop (also from its EXIT trap).

# server_start [FLAGS...]: starts ${BIN:-target/release/le-stats-sportif}
# (built if missing) on 127.0.0.1 and a free port, on ${DATA:-the course
# subset}, with its results and both logs in SERVER_DIR, plus FLAGS. Waits,
# 30 s at most, for its one stdout line `listening on URL`: `read` blocks
# until the line comes or the server dies (EOF), so there is no polling.
# Sets SERVER_PID and SERVER_URL; exits the script with the server's stderr
# if it does not start.
server_start() {
    local bin=${BIN:-target/release/le-stats-sportif}
    [ -x "$bin" ] || cargo build --release --quiet
    local data=${DATA:-data/nutrition_activity_obesity_usa_subset.csv}
    rm -f "$SERVER_DIR/stdout"
    mkfifo "$SERVER_DIR/stdout"
    "$bin" --port 0 --data "$data" --results-dir "$SERVER_DIR/results" \
        --log-file "$SERVER_DIR/webserver.log" --access-log "$SERVER_DIR/access.log" "$@" \
        >"$SERVER_DIR/stdout" 2>"$SERVER_DIR/stderr" &
    SERVER_PID=$!
    exec {SERVER_STDOUT}<"$SERVER_DIR/stdout"
    local line
    if ! read -r -t 30 line <&"$SERVER_STDOUT" || [[ $line != "listening on "* ]]; then
        echo "$(basename "$0"): the server did not start:" >&2
        cat "$SERVER_DIR/stderr" >&2
        exit 1
    fi
    SERVER_URL=${line#listening on }
}

# server_stop [SIGNAL]: sends SIGNAL (default INT: the server drains and
# exits), waits at most 15 s, then SIGKILL; reaps it. Returns the server's
# exit status (0 when no server is running).
server_stop() {
    [ -n "${SERVER_PID:-}" ] || return 0
    local pid=$SERVER_PID until=$((SECONDS + 15)) status=0
    SERVER_PID=""
    kill -"${1:-INT}" "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < until)); do sleep 0.05; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || status=$?
    exec {SERVER_STDOUT}<&-
    return "$status"
}
