#!/usr/bin/env bash
# bench.sh — `make bench`: le-stats-sportif against its ceilings, measured in
# the same run.
#
#   bash scripts/bench.sh          the figures below, medians of interleaved pairs
#   bash scripts/bench.sh scale    load time and query latency on 1x/10x/100x data
#                                  (data/scaled_xN.csv, made by scale_data.sh)
#
# Each figure of ours is read against a ceiling measured next to it, in
# rounds: every round runs ours and its ceiling back to back (a pair), and
# every other round runs them in the reverse order, so slow drift of a
# shared machine cancels. A figure is the median over the rounds of the
# pair's ratio. The ceilings:
#
# - the bare server (scripts/bench/bare_server.rs): a std-only
#   thread-per-connection server answering the exact bytes of our idle
#   `GET /api/num_jobs` — the design's own ceiling for GET (wrk -t2 -c32);
# - nginx (Debian's, started on a free loopback port with its own config: 2
#   workers, no access log, `return 200` with those same bytes);
# - the disk's group commit (scripts/bench/group_commit.rs), with as many
#   closed-loop clients as the end-to-end phase: `link` hard-links a durable
#   file and waits for the next directory flush, which a committer starts as
#   soon as anyone waits (a result seen before); `link-full` the same, but a
#   flush starts once every client waits (the most one flush can cover in a
#   closed loop); `newfile` writes, fdatasyncs and renames a new file first,
#   flushed as `link` (a result never seen before).
#
# The end-to-end phase (scripts/bench/e2e_client.rs): CLIENTS closed-loop
# clients, each rotating through every real (question, state) pair for
# `state_mean`, collecting each result with `?wait=`; durable (the default)
# and --no-fsync, each on a fresh server and results directory.
#
# Every process this script starts (nginx, servers, wrk, clients, stdout
# readers) is recorded in PIDS and stopped by the EXIT trap, on success,
# failure or Ctrl-C alike; the temp directory goes with them.
#
# Exit status: 0 when every run completed, even if a goal FAILs (the table
# is the report); non-zero only when something broke (a tool is missing, a
# server did not start, a queue did not drain in time...).
#
# Environment (all optional):
#   BENCH_QUICK        1: one round of 3 s runs, 3 starts, 20,000 jobs for
#                      RSS — a check of the script in about a minute
#   BENCH_ROUNDS       interleaved rounds, median taken   (default 5; quick 1)
#   BENCH_DURATION     seconds of each run                (default 10; quick 3)
#   BENCH_CLIENTS      end-to-end and group-commit clients (default 16)
#   BENCH_THREADS      worker threads of our server        (default: CPUs)
#   BENCH_STARTS       start-ups timed per binary          (default 10; quick 3)
#   BENCH_RSS_JOBS     jobs submitted before reading RSS, and the results
#                      the second start-up figure starts on (default 200000;
#                      quick 20000)
#   BENCH_DRAIN_S      deadline for a job queue to drain   (default 600)
#   BENCH_SERVER_BIN   server binary; when set, no cargo build
#                      (default target/bench-lto/le-stats-sportif)
#   BENCH_BASELINE_BIN an older server binary: every run of ours is made with
#                      it too, interleaved, and the table adds new ÷ old
#   BENCH_OUT          where raw outputs are kept          (default bench-out)
#   BENCH_SCALES       replication factors for `scale`     (default "1 10 100")
#   BENCH_QUERIES      timed queries per kind for `scale`  (default 20)
set -euo pipefail
# A failure inside $(...) must stop the script too, not just the subshell.
shopt -s inherit_errexit
# EPOCHREALTIME and printf must use '.' as the decimal point.
export LC_ALL=C

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_SRC=$ROOT/scripts/bench
TOOLS=$ROOT/target/bench-tools
DATA=$ROOT/data/nutrition_activity_obesity_usa_subset.csv
SHARED_DATA=$ROOT/../shared/data/nutrition_activity_obesity_usa_subset.csv

if [[ ${BENCH_QUICK:-0} == 1 ]]; then
    ROUNDS=${BENCH_ROUNDS:-1} DURATION=${BENCH_DURATION:-3}
    STARTS=${BENCH_STARTS:-3} RSS_JOBS=${BENCH_RSS_JOBS:-20000}
else
    ROUNDS=${BENCH_ROUNDS:-5} DURATION=${BENCH_DURATION:-10}
    STARTS=${BENCH_STARTS:-10} RSS_JOBS=${BENCH_RSS_JOBS:-200000}
fi
DURATION=${DURATION%s} # "10s" as well as "10"
CLIENTS=${BENCH_CLIENTS:-16}
SERVER_THREADS=${BENCH_THREADS:-$(nproc)}
DRAIN_S=${BENCH_DRAIN_S:-600}
SERVER_BIN=${BENCH_SERVER_BIN:-$ROOT/target/bench-lto/le-stats-sportif}
BASELINE_BIN=${BENCH_BASELINE_BIN:-}
OUT=${BENCH_OUT:-$ROOT/bench-out}

# The binaries measured, by tag: "new" always, "old" with BENCH_BASELINE_BIN.
declare -A BIN=([new]=$SERVER_BIN)
TAGS=(new)
if [[ -n $BASELINE_BIN ]]; then
    BIN[old]=$BASELINE_BIN
    TAGS+=(old)
fi

# wrk shape of the GET and POST runs: 2 client threads, 32 connections.
WRK_THREADS=2
WRK_CONNS=32
START_TIMEOUT_S=60 # start-up deadline (the 100x file takes a while to load)
STOP_TIMEOUT_S=30  # SIGTERM drains the queue; after this, SIGKILL
QUESTION="Percent of adults aged 18 years and older who have obesity"
STATE=Ohio

# Goals of issue 22 (see the table).
GOAL_GET_BARE=0.95
GOAL_DURABLE_LINK=0.8
GOAL_NOFSYNC_NGINX=0.19
GOAL_P99_MS=5
GOAL_START_EMPTY_MS=25
GOAL_START_FULL_MS=100
GOAL_RSS_MB=40
# `scale`: a state-level query is answered from that state's rows, so growing
# the file must not make it slower. Noise on a shared machine is well under
# this factor; a per-query scan of the whole file is far over it at 100x.
TARGET_STATE_SLOWDOWN=2

# INVARIANT: PIDS holds exactly the background processes we started and have
# not yet stopped and reaped; stop_pid removes a pid as it reaps it, so the
# EXIT trap never signals a pid number the system may have handed on.
PIDS=()
declare -A READER # server pid -> pid of the `cat` draining its stdout
TMP=""            # our temp directory, removed by cleanup

die() {
    echo "bench: FAILED: $*" >&2
    exit 1
}

say() {
    echo "bench: $*" >&2
}

# ---------------------------------------------------------------- cleanup

# Removes a pid from PIDS (see its invariant).
forget_pid() {
    local pid kept=()
    for pid in "${PIDS[@]}"; do
        [[ $pid == "$1" ]] || kept+=("$pid")
    done
    PIDS=("${kept[@]}")
}

# Stops one of our processes: SIGTERM, then SIGKILL if it is still there
# after STOP_TIMEOUT_S; then reaps it and forgets it. Bash reaps exited
# children on its own, so `kill -0` failing means it is gone.
stop_pid() {
    local pid=$1 deadline=$((SECONDS + STOP_TIMEOUT_S))
    forget_pid "$pid"
    kill -TERM "$pid" 2>/dev/null || {
        wait "$pid" 2>/dev/null || true
        return 0
    }
    while kill -0 "$pid" 2>/dev/null; do
        if ((SECONDS >= deadline)); then
            say "pid $pid ignored SIGTERM for ${STOP_TIMEOUT_S}s; SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.05
    done
    # Reap it (our child) so it leaves no zombie; its status is not ours.
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    local pid
    for pid in "${PIDS[@]}"; do
        stop_pid "$pid"
    done
    if [[ -n $TMP && -d $TMP ]]; then
        rm -rf -- "$TMP"
    fi
    exit "$status"
}
trap cleanup EXIT
# Turn a signal into a normal exit so the EXIT trap does the cleaning.
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- set-up

# Installs nginx, wrk, curl and python3 when missing, with one apt-get update.
ensure_tools() {
    # Debian puts nginx in /usr/sbin, which a non-login PATH may lack.
    [[ :$PATH: == *:/usr/sbin:* ]] || PATH=$PATH:/usr/sbin
    local missing=() tool
    for tool in nginx wrk curl python3; do
        command -v "$tool" >/dev/null || missing+=("$tool")
    done
    ((${#missing[@]} == 0)) && return 0
    say "installing: ${missing[*]}"
    local sudo=()
    if ((EUID != 0)); then
        command -v sudo >/dev/null || die "need root or sudo to install ${missing[*]}"
        sudo=(sudo)
    fi
    command -v apt-get >/dev/null || die "no apt-get: install ${missing[*]} by hand"
    "${sudo[@]}" apt-get update -qq || die "apt-get update failed"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" \
        || die "apt-get install failed"
}

# The `make data` step: copy the course subset from ../shared when missing.
ensure_data() {
    [[ -f $DATA ]] && return 0
    [[ -f $SHARED_DATA ]] || die "$DATA is missing and $SHARED_DATA does not exist (run 'make data')"
    mkdir -p "$(dirname "$DATA")"
    cp "$SHARED_DATA" "$DATA"
}

build() {
    if [[ -n ${BENCH_SERVER_BIN:-} ]]; then
        say "using BENCH_SERVER_BIN=$SERVER_BIN (no build)"
    else
        say "cargo build --profile bench-lto"
        (cd "$ROOT" && cargo build --profile bench-lto --quiet) || die "cargo build --profile bench-lto failed"
    fi
    local tag
    for tag in "${TAGS[@]}"; do
        [[ -x ${BIN[$tag]} ]] || die "${BIN[$tag]} ($tag) is not an executable"
    done
}

# Prints a TCP port that was free on 127.0.0.1 a moment ago. nginx cannot be
# told "port 0", so it gets this one; start_nginx retries if another process
# took it in between.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# ---------------------------------------------------------------- servers

# launch NAME COMMAND...: starts COMMAND (a server that prints one stdout
# line `listening on http://127.0.0.1:PORT` once it serves) and waits at most
# START_TIMEOUT_S for that line. Sets SERVER_PID, SERVER_URL and STARTUP_US
# (fork to that line, in µs). Stop it with stop_server.
#
# stdout goes through a FIFO so the line is read the instant it is written
# (no polling granularity in the start-up figure); a `cat` then keeps
# draining the FIFO so the server can never block on a full pipe.
launch() {
    local name=$1
    shift
    local dir=$TMP/$name
    mkdir -p "$dir"
    mkfifo "$dir/stdout"
    local t0=$EPOCHREALTIME
    "$@" >"$dir/stdout" 2>"$dir/stderr" &
    SERVER_PID=$!
    PIDS+=("$SERVER_PID")
    local fd line=""
    # Opening the read end waits for the writer; the child opened it before
    # exec, so this returns at once.
    exec {fd}<"$dir/stdout"
    read -r -t "$START_TIMEOUT_S" -u "$fd" line || true
    local t1=$EPOCHREALTIME
    cat <&"$fd" >"$dir/stdout.rest" &
    PIDS+=("$!")
    READER[$SERVER_PID]=$!
    exec {fd}<&-
    if [[ ! $line =~ ^listening\ on\ (http://127\.0\.0\.1:[0-9]+)$ ]]; then
        echo "--- $name stderr:" >&2
        tail -n 20 "$dir/stderr" >&2 || true
        die "$name: expected 'listening on http://127.0.0.1:PORT' within ${START_TIMEOUT_S}s, got '${line}'"
    fi
    SERVER_URL=${BASH_REMATCH[1]}
    STARTUP_US=$((${t1/./} - ${t0/./}))
}

# start_server NAME BINARY DATA_FILE RESULTS_DIR [FLAGS...]: our server
# (BINARY) on a free loopback port, both logs in its own temp directory,
# through `launch`.
start_server() {
    local name=$1 bin=$2 data=$3 results=$4
    shift 4
    mkdir -p "$results" "$TMP/$name"
    launch "$name" "$bin" --host 127.0.0.1 --port 0 --data "$data" --results-dir "$results" \
        --log-file "$TMP/$name/webserver.log" --access-log "$TMP/$name/access.log" \
        --threads "$SERVER_THREADS" "$@"
}

# stop_server PID: SIGTERM (the server drains and exits), SIGKILL after
# STOP_TIMEOUT_S; then its stdout reader, which ends at EOF by itself.
stop_server() {
    stop_pid "$1"
    stop_pid "${READER[$1]}"
    unset "READER[$1]"
}

# start_nginx BODY_FILE: nginx with 2 workers on a free loopback port,
# answering GET /api/num_jobs with the exact bytes of BODY_FILE as
# application/json. Sets NGINX_PID, NGINX_URL.
start_nginx() {
    local dir=$TMP/nginx attempt port body
    # Read every byte, a final newline included ($(...) alone would drop it).
    body=$(
        cat "$1"
        echo .
    )
    body=${body%.}
    # These would end the single-quoted nginx string or start a variable.
    [[ $body == *[\'\\\$]* ]] && die "cannot embed body in nginx.conf: $body"
    # nginx unescapes \n inside a quoted string.
    body=${body//$'\n'/'\n'}
    mkdir -p "$dir"
    for attempt in 1 2 3; do
        port=$(free_port)
        cat >"$dir/nginx.conf" <<EOF
# Generated by scripts/bench.sh; lives and dies with one bench run.
worker_processes 2;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events {
    worker_connections 1024;
}
http {
    access_log off;
    # Our server never closes an idle keep-alive connection after N
    # requests; neither does nginx here (its default is 1000), so both are
    # measured on persistent connections only.
    keepalive_requests 1000000;
    keepalive_timeout 75s;
    # Keep every path nginx might write inside the temp directory.
    client_body_temp_path $dir/client_body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    server {
        listen 127.0.0.1:$port;
        location = /api/num_jobs {
            default_type application/json;
            return 200 '$body';
        }
    }
}
EOF
        nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" -t -q \
            || die "nginx rejected $dir/nginx.conf"
        nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" &
        NGINX_PID=$!
        PIDS+=("$NGINX_PID")
        NGINX_URL=http://127.0.0.1:$port
        local deadline=$((SECONDS + 10))
        while kill -0 "$NGINX_PID" 2>/dev/null && ((SECONDS < deadline)); do
            if curl -fsS -o /dev/null "$NGINX_URL/api/num_jobs" 2>/dev/null; then
                return 0
            fi
            sleep 0.05
        done
        stop_pid "$NGINX_PID"
        say "nginx did not come up on port $port (attempt $attempt):"
        tail -n 5 "$dir/error.log" >&2 || true
    done
    die "nginx did not start"
}

# ---------------------------------------------------------------- helpers

# num_jobs URL: prints K from {"num_jobs": K}.
num_jobs() {
    local body
    body=$(curl -fsS "$1/api/num_jobs") || die "GET $1/api/num_jobs failed"
    [[ $body =~ \"num_jobs\"[[:space:]]*:[[:space:]]*([0-9]+) ]] || die "bad num_jobs answer: $body"
    echo "${BASH_REMATCH[1]}"
}

# wait_drained URL: polls num_jobs until 0, at most DRAIN_S seconds. Prints
# the seconds it took.
wait_drained() {
    local url=$1 t0=$EPOCHREALTIME deadline=$((SECONDS + DRAIN_S)) k
    while :; do
        k=$(num_jobs "$url")
        ((k == 0)) && break
        ((SECONDS < deadline)) || die "$k jobs still queued after ${DRAIN_S}s"
        sleep 0.05
    done
    us_to_s $((${EPOCHREALTIME/./} - ${t0/./}))
}

us_to_s() {
    awk -v us="$1" 'BEGIN { printf "%.2f", us / 1e6 }'
}

# cpu_ticks PID: the process's user + system CPU time, in 1/100 s.
cpu_ticks() {
    awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}

declare -A RESULT # run name -> its BENCH line

# run_bench NAME COMMAND...: runs a client (wrk with scripts/bench/*.lua, or
# one of the scripts/bench programs), keeps its output in OUT/NAME.txt and
# its `BENCH key=value ...` line in RESULT[NAME].
run_bench() {
    local name=$1
    shift
    say "run: $name"
    "$@" >"$OUT/$name.txt" 2>&1 || die "$name failed: $(tail -n 3 "$OUT/$name.txt")"
    RESULT[$name]=$(grep '^BENCH ' "$OUT/$name.txt") || die "$name printed no BENCH line"
}

# field NAME KEY: the value of KEY=... in RESULT[NAME].
field() {
    local word
    for word in ${RESULT[$1]}; do
        if [[ $word == "$2="* ]]; then
            echo "${word#*=}"
            return 0
        fi
    done
    die "no $2 in the $1 result"
}

# ---------------------------------------------------------------- set-up of the runs

# The ceilings and the end-to-end client, compiled with plain `rustc -O`
# (std only) into target/bench-tools, again whenever a source is newer.
build_tools() {
    mkdir -p "$TOOLS"
    local tool
    for tool in bare_server group_commit e2e_client; do
        # latency.rs is included by two of them.
        if [[ ! -x $TOOLS/$tool || $BENCH_SRC/$tool.rs -nt $TOOLS/$tool
            || $BENCH_SRC/latency.rs -nt $TOOLS/$tool ]]; then
            say "rustc -O scripts/bench/$tool.rs"
            rustc -O --edition 2021 -o "$TOOLS/$tool" "$BENCH_SRC/$tool.rs" \
                || die "rustc scripts/bench/$tool.rs failed"
        fi
    done
}

# Starts a probe server of every binary: writes TMP/num_jobs.response (the
# raw bytes of an idle `GET /api/num_jobs` answer: status line, headers,
# body), TMP/num_jobs.body (its body) and TMP/bodies.txt (one state_mean
# request body per real (question, state) pair: the questions of
# /api/questions, the states of /api/states, the pairs the data holds).
prepare_inputs() {
    local tag first=""
    for tag in "${TAGS[@]}"; do
        start_server "probe-$tag" "${BIN[$tag]}" "$DATA" "$TMP/results-probe-$tag"
        python3 - "$SERVER_URL" "$TMP/num_jobs-$tag" <<'PY' || die "cannot read GET /api/num_jobs's bytes"
import socket, sys
from urllib.parse import urlsplit
u = urlsplit(sys.argv[1])
def more(s):
    chunk = s.recv(65536)
    if not chunk:
        sys.exit("the server closed the connection before its answer ended")
    return chunk
with socket.create_connection((u.hostname, u.port)) as s:
    s.sendall(b"GET /api/num_jobs HTTP/1.1\r\nHost: %s\r\n\r\n" % u.netloc.encode())
    raw = b""
    while b"\r\n\r\n" not in raw:
        raw += more(s)
    head, body = raw.split(b"\r\n\r\n", 1)
    length = [int(l.split(b":")[1]) for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")][0]
    while len(body) < length:
        body += more(s)
open(sys.argv[2] + ".response", "wb").write(head + b"\r\n\r\n" + body)
open(sys.argv[2] + ".body", "wb").write(body)
PY
        if [[ -z $first ]]; then
            first=$tag
            python3 - "$SERVER_URL" "$DATA" >"$TMP/bodies.txt" <<'PY' || die "cannot list the (question, state) pairs"
import csv, json, sys, urllib.request
url, data = sys.argv[1], sys.argv[2]
get = lambda path: json.load(urllib.request.urlopen(url + path))["data"]
questions = {q["question"] for q in get("/api/questions")}
states = set(get("/api/states"))
with open(data, newline="") as f:
    pairs = {(r["Question"], r["LocationDesc"]) for r in csv.DictReader(f)
             if r["Question"] in questions and r["LocationDesc"] in states}
for question, state in sorted(pairs):
    print(json.dumps({"question": question, "state": state}))
PY
        elif ! cmp -s "$TMP/num_jobs-$first.body" "$TMP/num_jobs-$tag.body"; then
            say "warning: the $tag binary answers GET /api/num_jobs with other bytes than $first"
        fi
        stop_server "$SERVER_PID"
    done
    cp "$TMP/num_jobs-new.response" "$TMP/num_jobs.response"
    cp "$TMP/num_jobs-new.body" "$TMP/num_jobs.body"
    say "$(wc -l <"$TMP/bodies.txt") (question, state) pairs for the end-to-end clients"
}

# Starts the bare server on the captured answer. Sets BARE_URL.
start_bare() {
    launch bare "$TOOLS/bare_server" "$TMP/num_jobs.response"
    BARE_URL=$SERVER_URL
    curl -fsS -o "$TMP/bare.body" "$BARE_URL/api/num_jobs" || die "GET bare server failed"
    cmp -s "$TMP/num_jobs.body" "$TMP/bare.body" || die "the bare server answers other bytes than ours"
}

# ---------------------------------------------------------------- runs

# Each step is one run of a round; `round` runs them in order, or in the
# reverse order. NAME.R is the run's name in RESULT (R the round).

step_bare() {
    run_bench "bare.$1" wrk -t "$WRK_THREADS" -c "$WRK_CONNS" -d "${DURATION}s" --latency \
        -s "$BENCH_SRC/common.lua" "$BARE_URL/api/num_jobs"
}

step_nginx() {
    run_bench "nginx.$1" wrk -t "$WRK_THREADS" -c "$WRK_CONNS" -d "${DURATION}s" --latency \
        -s "$BENCH_SRC/common.lua" "$NGINX_URL/api/num_jobs"
}

# step_get ROUND TAG: a fresh server with everything on by default (access
# log, metrics, scoreboard, trace), GET /api/num_jobs.
step_get() {
    start_server "get-$2.$1" "${BIN[$2]}" "$DATA" "$TMP/results-get-$2.$1"
    run_bench "get-$2.$1" wrk -t "$WRK_THREADS" -c "$WRK_CONNS" -d "${DURATION}s" --latency \
        -s "$BENCH_SRC/common.lua" "$SERVER_URL/api/num_jobs"
    stop_server "$SERVER_PID"
}

# step_ceiling ROUND link|link-full|newfile: the disk's group-commit
# ceiling, in a directory of its own on the file system of the results
# directories.
step_ceiling() {
    local dir=$TMP/ceiling-$2.$1 args
    case $2 in
        link) args=(link "$dir" "$CLIENTS" "$DURATION" eager) ;;
        link-full) args=(link "$dir" "$CLIENTS" "$DURATION" full) ;;
        newfile) args=(newfile "$dir" "$CLIENTS" "$DURATION" eager) ;;
    esac
    mkdir -p "$dir"
    run_bench "$2.$1" "$TOOLS/group_commit" "${args[@]}"
    rm -rf -- "$dir"
}

# step_e2e ROUND TAG durable|nofsync: the end-to-end clients on a fresh
# server. Also records the server's CPU seconds during the run, next to
# the client's own, in RESULT as e2e-MODE-TAG.ROUND's server_cpu_s.
step_e2e() {
    local name=e2e-$3-$2.$1 flags=()
    [[ $3 == nofsync ]] && flags=(--no-fsync)
    start_server "$name" "${BIN[$2]}" "$DATA" "$TMP/results-$name" "${flags[@]}"
    local before
    before=$(cpu_ticks "$SERVER_PID")
    run_bench "$name" "$TOOLS/e2e_client" "${SERVER_URL#http://}" "$TMP/bodies.txt" "$CLIENTS" "$DURATION"
    RESULT[$name]+=" server_cpu_s=$(awk -v a="$before" -v b="$(cpu_ticks "$SERVER_PID")" 'BEGIN { printf "%.2f", (b - a) / 100 }')"
    stop_server "$SERVER_PID"
    # A closed loop of 16 never fills the queue: any failure is a broken
    # client or server, not a figure.
    (($(field "$name" failures) == 0)) || die "$name: $(field "$name" failures) failed jobs: $(head -n 3 "$OUT/$name.txt")"
}

# step_post ROUND TAG: the submit flood (POST states_mean as fast as 32
# connections go); its p99. The server is then killed, not drained: its
# queue is full of jobs nobody waits for, in a directory nobody reads.
step_post() {
    start_server "post-$2.$1" "${BIN[$2]}" "$DATA" "$TMP/results-post-$2.$1"
    run_bench "post-$2.$1" wrk -t "$WRK_THREADS" -c "$WRK_CONNS" -d "${DURATION}s" --latency \
        -s "$BENCH_SRC/submit.lua" "$SERVER_URL/api/states_mean"
    # disown: bash would otherwise report the kill on stderr.
    disown "$SERVER_PID"
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    stop_server "$SERVER_PID"
    rm -rf -- "$TMP/results-post-$2.$1"
}

# round R: one run of everything, pairs adjacent; odd rounds in this
# order, even rounds reversed.
round() {
    local r=$1 tag steps=()
    steps+=("step_ceiling $r link")
    for tag in "${TAGS[@]}"; do steps+=("step_e2e $r $tag durable"); done
    steps+=("step_ceiling $r link-full" "step_ceiling $r newfile" "step_bare $r")
    for tag in "${TAGS[@]}"; do steps+=("step_get $r $tag"); done
    steps+=("step_nginx $r")
    for tag in "${TAGS[@]}"; do steps+=("step_e2e $r $tag nofsync"); done
    for tag in "${TAGS[@]}"; do steps+=("step_post $r $tag"); done
    local i n=${#steps[@]}
    say "round $r of $ROUNDS"
    for ((i = 0; i < n; i++)); do
        if ((r % 2)); then
            ${steps[i]}
        else
            ${steps[n - 1 - i]}
        fi
    done
}

# Start-up (fork to `listening`) with an empty results directory, STARTS
# times per binary, interleaved. START_EMPTY[TAG.I] in µs.
declare -A START_EMPTY START_FULL RSS_KB HWM_KB RSS_FILES
startup_runs() {
    say "timing $STARTS start-ups per binary, empty results directory"
    local i tag
    for ((i = 1; i <= STARTS; i++)); do
        for tag in "${TAGS[@]}"; do
            start_server "start-$tag.$i" "${BIN[$tag]}" "$DATA" "$TMP/results-start-$tag.$i"
            START_EMPTY[$tag.$i]=$STARTUP_US
            stop_server "$SERVER_PID"
            rm -rf -- "$TMP/results-start-$tag.$i"
        done
    done
}

# rss_run TAG: submits RSS_JOBS state_mean jobs to a fresh server, waits for
# the queue to drain, and reads VmRSS / VmHWM. Leaves the results directory
# TMP/results-rss-TAG behind for the start-up runs on it.
rss_run() {
    local tag=$1
    start_server "rss-$tag" "${BIN[$tag]}" "$DATA" "$TMP/results-rss-$tag"
    local pid=$SERVER_PID url=$SERVER_URL
    say "$tag: submitting $RSS_JOBS state_mean jobs"
    # wrk runs for a fixed time; it is stopped with SIGINT (which still makes
    # it report) as soon as job RSS_JOBS exists. Its -d is only a deadline.
    wrk -t "$WRK_THREADS" -c "$WRK_CONNS" -d "${DRAIN_S}s" -s "$BENCH_SRC/submit.lua" \
        "$url/api/state_mean" -- "$STATE" >"$OUT/rss_submit-$tag.txt" 2>&1 &
    local wrk_pid=$!
    PIDS+=("$wrk_pid")
    local code
    while :; do
        code=$(curl -s -o /dev/null -w '%{http_code}' "$url/api/get_results/job_id_$RSS_JOBS") || true
        [[ $code == 200 ]] && break
        kill -0 "$wrk_pid" 2>/dev/null || die "wrk ended before job_id_$RSS_JOBS existed: $(tail -n 3 "$OUT/rss_submit-$tag.txt")"
        sleep 0.1
    done
    kill -INT "$wrk_pid"
    forget_pid "$wrk_pid"
    wait "$wrk_pid" || die "wrk (RSS submit) failed: $(tail -n 3 "$OUT/rss_submit-$tag.txt")"
    wait_drained "$url" >/dev/null
    RSS_KB[$tag]=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status")
    HWM_KB[$tag]=$(awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status")
    RSS_FILES[$tag]=$(find "$TMP/results-rss-$tag" -maxdepth 1 -name 'job_id_*.json' | wc -l)
    stop_server "$pid"
}

# Start-up on the directory of the first binary's RSS run (about RSS_JOBS
# job files), STARTS times per binary, interleaved. START_FULL[TAG.I] in µs.
full_startup_runs() {
    local dir=$TMP/results-rss-${TAGS[0]} i tag
    say "timing $STARTS start-ups per binary on $(find "$dir" -maxdepth 1 -name 'job_id_*.json' | wc -l) results"
    for ((i = 1; i <= STARTS; i++)); do
        for tag in "${TAGS[@]}"; do
            start_server "start-full-$tag.$i" "${BIN[$tag]}" "$DATA" "$dir"
            START_FULL[$tag.$i]=$STARTUP_US
            stop_server "$SERVER_PID"
        done
    done
}

# ---------------------------------------------------------------- report

# stats VALUES...: "median min max" of the values.
stats() {
    printf '%s\n' "$@" | sort -g | awk '
        { v[NR] = $1 }
        END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; print m, v[1], v[NR] }'
}

# ratio A B: A / B to 3 decimals.
ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b == 0) ? 0 : a / b }'
}

# verdict VALUE ge|le|lt LIMIT: PASS or FAIL.
verdict() {
    awk -v v="$1" -v op="$2" -v l="$3" 'BEGIN {
        ok = (op == "ge") ? (v >= l) : (op == "le") ? (v <= l) : (v < l)
        print ok ? "PASS" : "FAIL"
    }'
}

# ratios NUM KEY DEN KEY2: per round, NUM's KEY ÷ DEN's KEY2, one word
# each; NUM and DEN are run names with @ for the round (e.g. get-new.@).
ratios() {
    local r values=()
    for ((r = 1; r <= ROUNDS; r++)); do
        values+=("$(ratio "$(field "${1//@/$r}" "$2")" "$(field "${3//@/$r}" "$4")")")
    done
    echo "${values[*]}"
}

# p99s_ms NAME: per round, the p99 of run NAME (@ for the round) in ms.
p99s_ms() {
    local r values=()
    for ((r = 1; r <= ROUNDS; r++)); do
        values+=("$(ms_of_us "$(field "${1//@/$r}" p99_us)")")
    done
    echo "${values[*]}"
}

# row LABEL UNIT GOAL_OP GOAL VALUES...: one figure: median, range, goal.
row() {
    local label=$1 unit=$2 op=$3 goal=$4 median low high check=""
    shift 4
    read -r median low high <<<"$(stats "$@")"
    if [[ -n $goal ]]; then
        case $op in
            ge) check="goal >= $goal$unit: $(verdict "$median" ge "$goal")" ;;
            le) check="goal <= $goal$unit: $(verdict "$median" le "$goal")" ;;
            lt) check="goal < $goal$unit: $(verdict "$median" lt "$goal")" ;;
        esac
    fi
    printf '%-44s %10s %21s  %s\n' "$label" "$median$unit" "$low–$high" "$check"
}

# absolute LABEL NAME_PATTERN KEY: medians of a raw figure over the rounds
# (NAME_PATTERN with @ for the round).
absolute() {
    local r values=()
    for ((r = 1; r <= ROUNDS; r++)); do
        values+=("$(field "${2//@/$r}" "$3")")
    done
    local median low high
    read -r median low high <<<"$(stats "${values[@]}")"
    printf '  %-42s %10s %21s\n' "$1" "$median" "$low–$high"
}

ms_of_us() {
    awk -v u="$1" 'BEGIN { printf "%.1f", u / 1000 }'
}

# The figures are word lists on purpose: each $(per_round ...) is split
# into one argument per round.
# shellcheck disable=SC2046
print_report() {
    local t=new i
    echo
    echo "le-stats-sportif against its ceilings — $ROUNDS interleaved round(s) of ${DURATION} s runs;" \
        "GET/POST: wrk ${WRK_THREADS}t/${WRK_CONNS}c; end to end: $CLIENTS closed-loop clients over" \
        "$(wc -l <"$TMP/bodies.txt") (question, state) pairs, ?wait=30; server threads $SERVER_THREADS; $(nproc) CPUs"
    echo "binary: ${BIN[new]}"
    printf '%-44s %10s %21s  %s\n' figure median "range over rounds" goal
    row "GET /api/num_jobs ÷ bare std server" "" ge "$GOAL_GET_BARE" \
        $(ratios get-$t.@ req_s bare.@ req_s)
    row "GET /api/num_jobs ÷ nginx" "" "" "" \
        $(ratios get-$t.@ req_s nginx.@ req_s)
    row "end to end durable ÷ link ceiling" "" ge "$GOAL_DURABLE_LINK" \
        $(ratios e2e-durable-$t.@ jobs_s link.@ ops_s)
    # Durable does the per-job work of --no-fsync plus the flushes (it
    # records a batch under one lock where --no-fsync records each job: a
    # saving far below a flush), so in practice this bounds the durable
    # figure from above on the machine measured (docs/bench.md).
    row "  bound: --no-fsync ÷ link ceiling" "" "" "" \
        $(ratios e2e-nofsync-$t.@ jobs_s link.@ ops_s)
    row "end to end durable ÷ full-batch ceiling" "" "" "" \
        $(ratios e2e-durable-$t.@ jobs_s link-full.@ ops_s)
    row "end to end durable ÷ new-file ceiling" "" "" "" \
        $(ratios e2e-durable-$t.@ jobs_s newfile.@ ops_s)
    row "end to end --no-fsync ÷ nginx GET" "" ge "$GOAL_NOFSYNC_NGINX" \
        $(ratios e2e-nofsync-$t.@ jobs_s nginx.@ req_s)
    row "POST /api/states_mean flood p99" " ms" lt "$GOAL_P99_MS" \
        $(p99s_ms post-$t.@)
    row "start to listening, empty results dir" " ms" le "$GOAL_START_EMPTY_MS" \
        $(for ((i = 1; i <= STARTS; i++)); do ms_of_us "${START_EMPTY[$t.$i]}"; echo; done)
    row "start to listening, ${RSS_FILES[${TAGS[0]}]} results" " ms" le "$GOAL_START_FULL_MS" \
        $(for ((i = 1; i <= STARTS; i++)); do ms_of_us "${START_FULL[$t.$i]}"; echo; done)
    row "RSS after ${RSS_FILES[$t]} jobs (peak $(awk -v k="${HWM_KB[$t]}" 'BEGIN { printf "%.1f", k / 1024 }') MB)" " MB" lt "$GOAL_RSS_MB" \
        "$(awk -v k="${RSS_KB[$t]}" 'BEGIN { printf "%.1f", k / 1024 }')"
    echo
    echo "raw figures (median, range over rounds):"
    absolute "ours GET req/s" "get-$t.@" req_s
    absolute "bare std server GET req/s" "bare.@" req_s
    absolute "nginx GET req/s" "nginx.@" req_s
    absolute "ours durable end to end jobs/s" "e2e-durable-$t.@" jobs_s
    absolute "  its job latency p99 µs" "e2e-durable-$t.@" p99_us
    absolute "  server CPU s / client CPU s" "e2e-durable-$t.@" server_cpu_s
    absolute "" "e2e-durable-$t.@" client_cpu_s
    absolute "link ceiling ops/s" "link.@" ops_s
    absolute "  flushes in the run" "link.@" flushes
    absolute "link ceiling, full batches, ops/s" "link-full.@" ops_s
    absolute "  flushes in the run" "link-full.@" flushes
    absolute "new-file ceiling ops/s" "newfile.@" ops_s
    absolute "ours --no-fsync end to end jobs/s" "e2e-nofsync-$t.@" jobs_s
    absolute "  server CPU s / client CPU s" "e2e-nofsync-$t.@" server_cpu_s
    absolute "" "e2e-nofsync-$t.@" client_cpu_s
    absolute "ours POST answers/s" "post-$t.@" req_s
    if [[ -n $BASELINE_BIN ]]; then
        echo
        echo "new ÷ old, per round then median (old: ${BIN[old]}); above 1 = new is faster (throughput)" \
            "or slower (latency, start-up, memory)"
        row "GET /api/num_jobs req/s" "" "" "" \
            $(ratios get-new.@ req_s get-old.@ req_s)
        row "end to end durable jobs/s" "" "" "" \
            $(ratios e2e-durable-new.@ jobs_s e2e-durable-old.@ jobs_s)
        row "end to end --no-fsync jobs/s" "" "" "" \
            $(ratios e2e-nofsync-new.@ jobs_s e2e-nofsync-old.@ jobs_s)
        row "POST flood p99" "" "" "" \
            $(ratios post-new.@ p99_us post-old.@ p99_us)
        row "start to listening, empty" "" "" "" \
            $(for ((i = 1; i <= STARTS; i++)); do ratio "${START_EMPTY[new.$i]}" "${START_EMPTY[old.$i]}"; echo; done)
        row "start to listening, full" "" "" "" \
            $(for ((i = 1; i <= STARTS; i++)); do ratio "${START_FULL[new.$i]}" "${START_FULL[old.$i]}"; echo; done)
        row "RSS after the jobs" "" "" "" "$(ratio "${RSS_KB[new]}" "${RSS_KB[old]}")"
    fi
    echo
    local r errors=()
    for ((r = 1; r <= ROUNDS; r++)); do
        errors+=($(($(field "e2e-durable-$t.$r" failures) + $(field "e2e-nofsync-$t.$r" failures) \
            + $(field "get-$t.$r" errors) + $(field "get-$t.$r" non2xx))))
    done
    echo "errors per round (end-to-end failures + GET socket errors and HTTP >= 400): ${errors[*]}"
    # Other work on the machine moves every figure; say how busy it was.
    echo "load average (1/5/15 min) at start: $LOAD_START; at end: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "raw outputs: $OUT/"
}

# ---------------------------------------------------------------- scale

# query_ms URL ENDPOINT JSON COUNT: runs the job COUNT times end to end
# (submit, then poll until done) on one keep-alive connection and prints the
# median milliseconds. A Python client rather than a curl per request: a
# process start costs milliseconds, more than the queries being compared.
query_ms() {
    python3 - "$@" <<'PY'
import http.client, json, socket, statistics, sys, time
from urllib.parse import urlsplit

url, endpoint, body, count = sys.argv[1], sys.argv[2], sys.argv[3].encode(), int(sys.argv[4])
u = urlsplit(url)
conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
conn.connect()
conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

def call(method, path, payload=None):
    conn.request(method, path, body=payload, headers={"Content-Type": "application/json"})
    answer = conn.getresponse()
    data = answer.read()
    if answer.status != 200:
        sys.exit(f"{method} {path}: HTTP {answer.status}: {data[:200]!r}")
    return json.loads(data)

times = []
for _ in range(count):
    start = time.perf_counter()
    job = call("POST", "/api/" + endpoint, body)["job_id"]
    deadline = start + 60
    while (status := call("GET", "/api/get_results/" + job)["status"]) == "running":
        if time.perf_counter() > deadline:
            sys.exit(f"{job} still running after 60 s")
    if status != "done":
        sys.exit(f"{job}: status {status}")
    times.append((time.perf_counter() - start) * 1000)
print(f"{statistics.median(times):.3f}")
PY
}

scale_bench() {
    ensure_tools
    ensure_data
    build
    mkdir -p "$OUT"
    TMP=$(mktemp -d "${TMPDIR:-/tmp}/lss-bench.XXXXXX")
    local scales queries=${BENCH_QUERIES:-20}
    read -r -a scales <<<"${BENCH_SCALES:-1 10 100}"
    local n file rows=() sizes=() load=() state=() states=()
    for n in "${scales[@]}"; do
        file=$ROOT/data/scaled_x$n.csv
        [[ -f $file ]] || bash "$ROOT/scripts/scale_data.sh" "$n" "$file" >&2 \
            || die "scale_data.sh $n failed"
        say "scale x$n: start-up and $queries queries of each kind"
        start_server "scale$n" "$SERVER_BIN" "$file" "$TMP/results-scale$n"
        rows+=($(($(wc -l <"$file") - 1)))
        sizes+=("$(du -h "$file" | cut -f1)")
        load+=("$(awk -v u="$STARTUP_US" 'BEGIN { printf "%.1f", u / 1000 }')")
        state+=("$(query_ms "$SERVER_URL" state_mean "{\"question\": \"$QUESTION\", \"state\": \"$STATE\"}" "$queries")")
        states+=("$(query_ms "$SERVER_URL" states_mean "{\"question\": \"$QUESTION\"}" "$queries")")
        stop_server "$SERVER_PID"
    done
    {
        echo
        echo "Scaling (median of $queries end-to-end jobs each: submit, poll until done; one keep-alive connection)"
        printf '%-6s %10s %7s %14s %16s %16s\n' scale rows size "load ms" "state_mean ms" "states_mean ms"
        local i
        for i in "${!scales[@]}"; do
            printf '%-6s %10s %7s %14s %16s %16s\n' "x${scales[$i]}" "${rows[$i]}" "${sizes[$i]}" \
                "${load[$i]}" "${state[$i]}" "${states[$i]}"
        done
        local last=$((${#scales[@]} - 1)) slowdown
        slowdown=$(awk -v a="${state[$last]}" -v b="${state[0]}" 'BEGIN { printf "%.2f", a / b }')
        echo "state_mean x${scales[$last]} / x${scales[0]}: $slowdown (must stay < $TARGET_STATE_SLOWDOWN: $(verdict "$slowdown" lt "$TARGET_STATE_SLOWDOWN"))"
    } | tee "$OUT/scale.txt"
}

# ---------------------------------------------------------------- main

main_bench() {
    ensure_tools
    ensure_data
    build
    build_tools
    mkdir -p "$OUT"
    TMP=$(mktemp -d "${TMPDIR:-/tmp}/lss-bench.XXXXXX")
    LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
    prepare_inputs
    start_bare
    start_nginx "$TMP/num_jobs.body"
    # Both must send the same bytes, or the comparison is not like for like.
    curl -fsS -o "$TMP/nginx.body" "$NGINX_URL/api/num_jobs" || die "GET nginx failed"
    cmp -s "$TMP/num_jobs.body" "$TMP/nginx.body" \
        || die "nginx answers '$(cat "$TMP/nginx.body")', ours '$(cat "$TMP/num_jobs.body")'"
    local r tag
    for ((r = 1; r <= ROUNDS; r++)); do
        round "$r"
    done
    startup_runs
    for tag in "${TAGS[@]}"; do
        rss_run "$tag"
    done
    full_startup_runs
    print_report | tee "$OUT/table.txt"
}

case ${1:-} in
    "") main_bench ;;
    scale) scale_bench ;;
    *)
        echo "usage: $0 [scale]" >&2
        exit 2
        ;;
esac
