#!/usr/bin/env bash
# bench.sh — `make bench`: le-stats-sportif side by side with nginx.
#
#   bash scripts/bench.sh          the throughput table, start-up time, RSS
#   bash scripts/bench.sh scale    load time and query latency on 1x/10x/100x data
#                                  (data/scaled_xN.csv, made by scale_data.sh)
#
# nginx serves the exact bytes of our idle `GET /api/num_jobs` answer from a
# `return 200` on a free loopback port: the best an HTTP server can do for
# that request on this machine, so every figure of ours is read as a ratio to
# it. nginx is measured first and last and the mean of the two runs is the
# reference, which cancels slow drift of a shared machine.
#
# Every process this script starts (nginx, servers, wrk, stdout readers) is
# recorded in PIDS and stopped by the EXIT trap, on success, failure or
# Ctrl-C alike; the temp directory goes with them.
#
# Exit status: 0 when every run completed, even if a target FAILs (the table
# is the report); non-zero only when something broke (a tool is missing, a
# server did not start, a queue did not drain in time...).
#
# Environment (all optional):
#   BENCH_DURATION     wrk duration of each run           (default 10s)
#   BENCH_THREADS      worker threads of our server        (default: CPUs)
#   BENCH_STARTS       start-ups timed for the median      (default 10)
#   BENCH_RSS_JOBS     jobs submitted before reading RSS   (default 200000)
#   BENCH_DRAIN_S      deadline for a job queue to drain   (default 600)
#   BENCH_SERVER_BIN   server binary; when set, no cargo build
#                      (default target/bench-lto/le-stats-sportif)
#   BENCH_OUT          where raw wrk outputs are kept      (default bench-out)
#   BENCH_SCALES       replication factors for `scale`     (default "1 10 100")
#   BENCH_QUERIES      timed queries per kind for `scale`  (default 20)
set -euo pipefail
# A failure inside $(...) must stop the script too, not just the subshell.
shopt -s inherit_errexit
# EPOCHREALTIME and printf must use '.' as the decimal point.
export LC_ALL=C

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LUA=$ROOT/scripts/bench
DATA=$ROOT/data/nutrition_activity_obesity_usa_subset.csv
SHARED_DATA=$ROOT/../shared/data/nutrition_activity_obesity_usa_subset.csv

DURATION=${BENCH_DURATION:-10s}
SERVER_THREADS=${BENCH_THREADS:-$(nproc)}
STARTS=${BENCH_STARTS:-10}
RSS_JOBS=${BENCH_RSS_JOBS:-200000}
DRAIN_S=${BENCH_DRAIN_S:-600}
SERVER_BIN=${BENCH_SERVER_BIN:-$ROOT/target/bench-lto/le-stats-sportif}
OUT=${BENCH_OUT:-$ROOT/bench-out}

# wrk shape of every throughput run: 2 client threads, 32 connections.
WRK_THREADS=2
WRK_CONNS=32
START_TIMEOUT_S=60 # start-up deadline (the 100x file takes a while to load)
STOP_TIMEOUT_S=30  # SIGTERM drains the queue; after this, SIGKILL
QUESTION="Percent of adults aged 18 years and older who have obesity"
STATE=Ohio

# Targets (see the table): ratios to nginx's GET req/s, then absolutes.
TARGET_GET_RATIO=0.9
TARGET_POST_RATIO=0.6
TARGET_E2E_RATIO=0.2         # with --no-fsync (nothing flushed)
TARGET_E2E_DURABLE_RATIO=0.15 # durable (default): every result flushed before `done`
TARGET_P99_MS=5
TARGET_START_MS=50
TARGET_RSS_MB=40
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
    [[ -x $SERVER_BIN ]] || die "$SERVER_BIN is not an executable"
}

# Prints a TCP port that was free on 127.0.0.1 a moment ago. nginx cannot be
# told "port 0", so it gets this one; start_nginx retries if another process
# took it in between.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# ---------------------------------------------------------------- servers

# start_server NAME DATA_FILE RESULTS_DIR
# Starts our server on a free loopback port and waits (at most
# START_TIMEOUT_S) for its one stdout line `listening on http://HOST:PORT`.
# Sets SERVER_PID, SERVER_URL and STARTUP_US (fork to that line, in µs).
# Stop it with stop_server.
#
# stdout goes through a FIFO so the line is read the instant it is written
# (no polling granularity in the start-up figure); a `cat` then keeps
# draining the FIFO so the server can never block on a full pipe.
start_server() {
    local name=$1 data=$2 results=$3
    local extra=("${@:4}") # more server flags, e.g. --no-fsync
    local dir=$TMP/$name
    mkdir -p "$dir" "$results"
    mkfifo "$dir/stdout"
    local t0=$EPOCHREALTIME
    "$SERVER_BIN" --host 127.0.0.1 --port 0 --data "$data" --results-dir "$results" \
        --log-file "$dir/webserver.log" --access-log "$dir/access.log" --threads "$SERVER_THREADS" "${extra[@]}" \
        >"$dir/stdout" 2>"$dir/stderr" &
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

# submit URL ENDPOINT JSON: POSTs one job and prints its id.
submit() {
    local answer
    answer=$(curl -fsS -X POST -H 'Content-Type: application/json' -d "$3" "$1/api/$2") \
        || die "POST /api/$2 failed"
    [[ $answer =~ \"job_id\"[[:space:]]*:[[:space:]]*\"(job_id_[0-9]+)\" ]] \
        || die "POST /api/$2: no job id in $answer"
    echo "${BASH_REMATCH[1]}"
}

# wait_done URL JOB_ID: polls the job (at most DRAIN_S s) until "done".
wait_done() {
    local deadline=$((SECONDS + DRAIN_S)) answer
    while :; do
        answer=$(curl -fsS "$1/api/get_results/$2") || die "GET /api/get_results/$2 failed"
        case $answer in
            *'"status": "done"'* | *'"status":"done"'*) return 0 ;;
            *'"status": "running"'* | *'"status":"running"'*) ;;
            *) die "$2: unexpected answer ${answer:0:200}" ;;
        esac
        ((SECONDS < deadline)) || die "$2 not done after ${DRAIN_S}s"
        sleep 0.02
    done
}

declare -A RESULT # run name -> its BENCH line

# start_scraper URL: GETs URL/metrics once a second in the background, as a
# Prometheus server would, until stop_scraper. Sets SCRAPER_PID.
start_scraper() {
    (while :; do
        curl -fsS -o /dev/null "$1/metrics" || exit 1
        sleep 1
    done) &
    SCRAPER_PID=$!
    PIDS+=("$SCRAPER_PID")
}

stop_scraper() {
    stop_pid "$SCRAPER_PID"
}

# run_wrk NAME WRK_ARGS...: runs wrk, keeps its output in OUT/NAME.txt and
# its BENCH line (see scripts/bench/common.lua) in RESULT[NAME].
run_wrk() {
    local name=$1
    shift
    say "wrk: $name"
    wrk "$@" >"$OUT/$name.txt" 2>&1 || die "wrk $name failed: $(tail -n 3 "$OUT/$name.txt")"
    RESULT[$name]=$(grep '^BENCH ' "$OUT/$name.txt") || die "wrk $name printed no BENCH line"
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

# ---------------------------------------------------------------- runs

throughput_runs() {
    local wrk_args=(-t "$WRK_THREADS" -c "$WRK_CONNS" -d "$DURATION" --latency)

    start_server main "$DATA" "$TMP/results-main"
    local main_pid=$SERVER_PID main_url=$SERVER_URL
    curl -fsS -o "$TMP/ours.body" "$main_url/api/num_jobs" || die "GET /api/num_jobs failed"
    [[ $(num_jobs "$main_url") == 0 ]] || die "a fresh server has queued jobs: $(cat "$TMP/ours.body")"

    start_nginx "$TMP/ours.body"
    # Both must send the same bytes, or the comparison is not like for like.
    curl -fsS -o "$TMP/nginx.body" "$NGINX_URL/api/num_jobs" || die "GET nginx failed"
    cmp -s "$TMP/ours.body" "$TMP/nginx.body" \
        || die "nginx answers '$(cat "$TMP/nginx.body")', ours '$(cat "$TMP/ours.body")'"

    run_wrk nginx1 "${wrk_args[@]}" -s "$LUA/common.lua" "$NGINX_URL/api/num_jobs"
    run_wrk get "${wrk_args[@]}" -s "$LUA/common.lua" "$main_url/api/num_jobs"
    # The same with /metrics scraped every second: the cost of being watched.
    start_scraper "$main_url"
    run_wrk get_scraped "${wrk_args[@]}" -s "$LUA/common.lua" "$main_url/api/num_jobs"
    stop_scraper

    run_wrk post "${wrk_args[@]}" -s "$LUA/submit.lua" "$main_url/api/states_mean"
    say "draining the $(($(field post requests) - $(field post non2xx))) accepted states_mean jobs"
    POST_DRAIN_S=$(wait_drained "$main_url")

    # The submit flood left some 10^5 result files and job entries behind;
    # the end-to-end run gets a fresh server (and results directory) so that
    # it measures its own workload, not the previous run's leftovers.
    stop_server "$main_pid"
    start_server e2e "$DATA" "$TMP/results-e2e"
    main_pid=$SERVER_PID main_url=$SERVER_URL

    # One connection per wrk thread: see the INVARIANT in end_to_end.lua.
    # Durable (the default: every result flushed before its job is done)...
    run_wrk e2e -t "$WRK_CONNS" -c "$WRK_CONNS" -d "$DURATION" --latency \
        -s "$LUA/end_to_end.lua" "$main_url/"
    wait_drained "$main_url" >/dev/null

    # ...the same, durable, with /metrics scraped every second, on its own
    # fresh server...
    stop_server "$main_pid"
    start_server e2e_scraped "$DATA" "$TMP/results-e2e-scraped"
    main_pid=$SERVER_PID main_url=$SERVER_URL
    start_scraper "$main_url"
    run_wrk e2e_scraped -t "$WRK_CONNS" -c "$WRK_CONNS" -d "$DURATION" --latency \
        -s "$LUA/end_to_end.lua" "$main_url/"
    stop_scraper
    wait_drained "$main_url" >/dev/null

    # ...and the same workload with --no-fsync, on its own fresh server.
    stop_server "$main_pid"
    start_server e2e_nofsync "$DATA" "$TMP/results-e2e-nofsync" --no-fsync
    main_pid=$SERVER_PID main_url=$SERVER_URL
    run_wrk e2e_nofsync -t "$WRK_CONNS" -c "$WRK_CONNS" -d "$DURATION" --latency \
        -s "$LUA/end_to_end.lua" "$main_url/"
    wait_drained "$main_url" >/dev/null

    local job
    job=$(submit "$main_url" mean_by_category "{\"question\": \"$QUESTION\"}")
    wait_done "$main_url" "$job"
    run_wrk result "${wrk_args[@]}" -s "$LUA/common.lua" "$main_url/api/get_results/$job"

    run_wrk nginx2 "${wrk_args[@]}" -s "$LUA/common.lua" "$NGINX_URL/api/num_jobs"

    stop_server "$main_pid"
    stop_pid "$NGINX_PID"
}

# Median start-up (fork to `listening`) over STARTS runs on the real data,
# each with an empty results directory.
startup_runs() {
    say "timing $STARTS start-ups"
    local i times=()
    for ((i = 1; i <= STARTS; i++)); do
        start_server "start$i" "$DATA" "$TMP/results-start"
        times+=("$STARTUP_US")
        stop_server "$SERVER_PID"
    done
    echo "${times[*]}" >"$OUT/startup_us.txt"
    STARTUP_MEDIAN_MS=$(printf '%s\n' "${times[@]}" | sort -n | awk '
        { v[NR] = $1 }
        END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.1f", m / 1000 }')
}

# Submits RSS_JOBS state_mean jobs to a fresh server, waits for the queue to
# drain, and reads VmRSS / VmHWM and the results directory size.
rss_run() {
    start_server rss "$DATA" "$TMP/results-rss"
    local pid=$SERVER_PID url=$SERVER_URL
    say "submitting $RSS_JOBS state_mean jobs"
    # wrk runs for a fixed time; it is stopped with SIGINT (which still makes
    # it report) as soon as job RSS_JOBS exists. Its -d is only a deadline.
    wrk -t "$WRK_THREADS" -c "$WRK_CONNS" -d "${DRAIN_S}s" -s "$LUA/submit.lua" \
        "$url/api/state_mean" -- "$STATE" >"$OUT/rss_submit.txt" 2>&1 &
    local wrk_pid=$!
    PIDS+=("$wrk_pid")
    local code
    while :; do
        code=$(curl -s -o /dev/null -w '%{http_code}' "$url/api/get_results/job_id_$RSS_JOBS") || true
        [[ $code == 200 ]] && break
        kill -0 "$wrk_pid" 2>/dev/null || die "wrk ended before job_id_$RSS_JOBS existed: $(tail -n 3 "$OUT/rss_submit.txt")"
        sleep 0.1
    done
    kill -INT "$wrk_pid"
    forget_pid "$wrk_pid"
    wait "$wrk_pid" || die "wrk (RSS submit) failed: $(tail -n 3 "$OUT/rss_submit.txt")"
    RSS_DRAIN_S=$(wait_drained "$url")
    RSS_JOB_FILES=$(find "$TMP/results-rss" -maxdepth 1 -name 'job_id_*.json' | wc -l)
    RSS_KB=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status")
    HWM_KB=$(awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status")
    RESULTS_DU=$(du -sh "$TMP/results-rss" | cut -f1)
    stop_server "$pid"
}

# ---------------------------------------------------------------- report

# verdict VALUE OP LIMIT: PASS or FAIL (OP is ge or lt).
verdict() {
    awk -v v="$1" -v op="$2" -v l="$3" 'BEGIN {
        ok = (op == "ge") ? (v >= l) : (v < l)
        print ok ? "PASS" : "FAIL"
    }'
}

# jobs_row RUN LABEL TARGET: the completed-jobs/s row of an end-to-end run.
jobs_row() {
    local run=$1 label=$2 target=$3 jobs_s ratio per_job
    jobs_s=$(field "$run" jobs_s)
    ratio=$(awk -v a="$jobs_s" -v b="$NGINX_REF" 'BEGIN { printf "%.2f", a / b }')
    # Requests per completed job: 2 would mean the first poll always found
    # the job done; more means the clients saw it queued or running.
    per_job=$(awk -v r="$(field "$run" requests)" -v j="$(field "$run" jobs)" \
        'BEGIN { if (j > 0) printf "%.1f", r / j; else print "-" }')
    printf '%-38s %11s %9s %9s %8s %7s  %s\n' "$label" "$jobs_s" "" "" "$ratio" \
        "$(($(field "$run" failures) + $(field "$run" overlaps)))" \
        "x nginx >= $target $(verdict "$ratio" ge "$target"); $per_job requests per job"
}

print_table() {
    local n1 n2
    n1=$(field nginx1 req_s)
    n2=$(field nginx2 req_s)
    NGINX_REF=$(awk -v a="$n1" -v b="$n2" 'BEGIN { printf "%.1f", (a + b) / 2 }')

    local rows=(nginx1 get get_scraped post e2e e2e_scraped e2e_nofsync result nginx2)
    declare -A label=(
        [nginx1]="nginx GET /api/num_jobs (first)"
        [get]="ours GET /api/num_jobs"
        [get_scraped]="  same, /metrics scraped every 1 s"
        [post]="ours POST /api/states_mean (answers)"
        [e2e]="ours end to end state_mean (all req)"
        [e2e_scraped]="  same, /metrics scraped every 1 s"
        [e2e_nofsync]="  same, --no-fsync (all req)"
        [result]="ours GET finished mean_by_category"
        [nginx2]="nginx GET /api/num_jobs (last)"
    )
    declare -A ratio_target=([get]=$TARGET_GET_RATIO)

    echo
    echo "le-stats-sportif vs nginx $(nginx -v 2>&1 | sed 's/.*nginx\///') — wrk ${WRK_THREADS}t/${WRK_CONNS}c, $DURATION per run, server threads $SERVER_THREADS, $(nproc) CPUs"
    printf '%-38s %11s %9s %9s %8s %7s  %s\n' run "req/s" "p50 ms" "p99 ms" "x nginx" errors targets
    local r req p50 p99 ratio errs targets
    for r in "${rows[@]}"; do
        req=$(field "$r" req_s)
        p50=$(awk -v u="$(field "$r" p50_us)" 'BEGIN { printf "%.3f", u / 1000 }')
        p99=$(awk -v u="$(field "$r" p99_us)" 'BEGIN { printf "%.3f", u / 1000 }')
        ratio=$(awk -v a="$req" -v b="$NGINX_REF" 'BEGIN { printf "%.2f", a / b }')
        errs=$(($(field "$r" errors) + $(field "$r" non2xx)))
        targets=""
        if [[ $r != nginx* ]]; then
            if [[ -n ${ratio_target[$r]:-} ]]; then
                targets+="x nginx >= ${ratio_target[$r]} $(verdict "$ratio" ge "${ratio_target[$r]}"); "
            fi
            targets+="p99 < ${TARGET_P99_MS} ms $(verdict "$p99" lt "$TARGET_P99_MS")"
        fi
        printf '%-38s %11s %9s %9s %8s %7s  %s\n' "${label[$r]}" "$req" "$p50" "$p99" "$ratio" "$errs" "$targets"
        if [[ $r == post ]]; then
            # The server caps queued jobs (503 past the cap) and a states_mean
            # job takes longer to run than to submit, so a long submit run
            # fills the queue: its answers/s is the speed of the submit path,
            # its accepted/s (the target) is bounded by the drain rate.
            local ok ok_ratio
            ok=$(field post ok_req_s)
            ok_ratio=$(awk -v a="$ok" -v b="$NGINX_REF" 'BEGIN { printf "%.2f", a / b }')
            printf '%-38s %11s %9s %9s %8s %7s  %s\n' "ours POST states_mean: accepted/s" "$ok" "" "" \
                "$ok_ratio" "" "x nginx >= $TARGET_POST_RATIO $(verdict "$ok_ratio" ge "$TARGET_POST_RATIO")"
        fi
    done
    jobs_row e2e "ours end to end: jobs/s, durable" "$TARGET_E2E_DURABLE_RATIO"
    jobs_row e2e_scraped "  same, /metrics scraped every 1 s" "$TARGET_E2E_DURABLE_RATIO"
    jobs_row e2e_nofsync "ours end to end: jobs/s, --no-fsync" "$TARGET_E2E_RATIO"
    echo
    printf '%-38s %11s  %s\n' "nginx reference GET req/s (mean)" "$NGINX_REF" ""
    printf '%-38s %11s  %s\n' "states_mean jobs accepted by POST run" \
        "$(($(field post requests) - $(field post non2xx)))" \
        "$(field post non2xx) answers >= 400 (503: queue full); queue drained ${POST_DRAIN_S} s after the run"
    printf '%-38s %11s  %s\n' "start-up to listening, median ms" "$STARTUP_MEDIAN_MS" \
        "of $STARTS; < $TARGET_START_MS ms $(verdict "$STARTUP_MEDIAN_MS" lt "$TARGET_START_MS")"
    local rss_mb hwm_mb
    rss_mb=$(awk -v k="$RSS_KB" 'BEGIN { printf "%.1f", k / 1024 }')
    hwm_mb=$(awk -v k="$HWM_KB" 'BEGIN { printf "%.1f", k / 1024 }')
    printf '%-38s %11s  %s\n' "RSS MB after $RSS_JOB_FILES jobs" "$rss_mb" \
        "< $TARGET_RSS_MB MB $(verdict "$rss_mb" lt "$TARGET_RSS_MB"); peak $hwm_mb MB; results dir $RESULTS_DU; drained in ${RSS_DRAIN_S} s"
    echo
    echo "errors = socket errors + HTTP >= 400 (+ unexpected answers and broken-invariant counts on the jobs/s row)."
    # Other work on the machine moves every figure; say how busy it was.
    echo "load average (1/5/15 min) at start: $LOAD_START; at end: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "Raw wrk output: $OUT/"
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
        start_server "scale$n" "$file" "$TMP/results-scale$n"
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

main_bench() {
    ensure_tools
    ensure_data
    build
    mkdir -p "$OUT"
    TMP=$(mktemp -d "${TMPDIR:-/tmp}/lss-bench.XXXXXX")
    LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
    throughput_runs
    startup_runs
    rss_run
    print_table | tee "$OUT/table.txt"
}

case ${1:-} in
    "") main_bench ;;
    scale) scale_bench ;;
    *)
        echo "usage: $0 [scale]" >&2
        exit 2
        ;;
esac
