#!/usr/bin/env bash
# The README's cookbook, run for real. The README holds the commands; this
# script runs them and writes what they print under them, so the outputs
# shown cannot drift from what the server answers.
#
#   bash scripts/cookbook.sh           # rewrite the outputs in README.md (make cookbook)
#   bash scripts/cookbook.sh --check   # fail if README.md shows anything else
#
# The part between `<!-- cookbook:begin -->` and `<!-- cookbook:end -->` is
# read: ```sh blocks are run silently (setting variables such as Q),
# ```console blocks hold `$ command` lines, each followed by its output. All
# commands run in one bash session, in order, against `localhost:5000` —
# rewritten to the port of a server this script starts on the course
# subset. That server is not fresh: a first life submits jobs and is
# stopped, and the cookbook runs on the restarted server (ids no longer
# start at 1); with --check it then runs again after a second restart.
# The outputs of both runs must equal the README. (Carriage returns, which
# `curl -i` prints at the end of header lines, are dropped.)
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-write}
case $mode in write | --check) ;; *) echo "usage: $0 [--check]" >&2; exit 2 ;; esac
. scripts/lib/need.sh
need cookbook curl curl
need cookbook jq jq

readme=${README:-README.md}   # another file for the test that a wrong output is caught
begin='<!-- cookbook:begin -->'
end='<!-- cookbook:end -->'
grep -qx "$begin" "$readme" && grep -qx "$end" "$readme" ||
    { echo "cookbook: $readme has no $begin ... $end block" >&2; exit 2; }

tmp=$(mktemp -d)
. scripts/lib/server.sh
SERVER_DIR=$tmp
cleanup() {
    server_stop || true
    rm -rf "$tmp"
}
trap cleanup EXIT

data=${DATA:-data/nutrition_activity_obesity_usa_subset.csv}
[ -f "$data" ] || { echo "cookbook: no $data (run make data)" >&2; exit 2; }

# start_server: on a free port over $tmp/results (kept across restarts);
# sets $port. stop_server: Ctrl-C, the server drains and exits.
start_server() {
    server_start
    port=${SERVER_URL##*:}
}
stop_server() {
    server_stop || true
}

sed -n "/^$begin\$/,/^$end\$/p" "$readme" >"$tmp/block"

# run_cookbook OUT: runs the block's commands against $port, writes the
# block with fresh outputs to OUT.
run_cookbook() {
    rm -rf "$tmp/out"; mkdir "$tmp/out"
    awk -v port="$port" -v outdir="$tmp/out" '
        /^```/ { if (inblock) inblock = 0; else { inblock = 1; kind = substr($0, 4) }; next }
        !inblock { next }
        { line = $0; gsub(/localhost:5000/, "localhost:" port, line) }
        kind == "sh" && NF { print line }
        kind == "console" && /^\$ / {
            n++
            printf "{ %s\n} >\"%s/%d\" 2>&1 </dev/null\n", substr(line, 3), outdir, n
        }' "$tmp/block" >"$tmp/session.sh"
    # One session, so variables carry from one command to the next.
    timeout 120 bash "$tmp/session.sh"
    awk -v port="$port" -v outdir="$tmp/out" '
        /^```/ {
            print
            if (inblock) inblock = 0; else { inblock = 1; kind = substr($0, 4) }
            next
        }
        inblock && kind == "console" {
            if (/^\$ /) {
                print; n++; file = outdir "/" n
                while ((getline out < file) > 0) { gsub("localhost:" port, "localhost:5000", out); sub(/\r$/, "", out); print out }
                close(file)
            }
            next    # an old output line: replaced by the fresh one
        }
        { print }' "$tmp/block" >"$1"
}

start_server
# A first life that leaves jobs behind.
for _ in 1 2 3; do
    curl -s -X POST "localhost:$port/api/global_mean" \
        -d '{"question": "Percent of adults aged 18 years and older who have obesity"}' |
        jq -r .job_id | xargs -I{} curl -s -o /dev/null "localhost:$port/api/get_results/{}?wait=10"
done
stop_server
start_server
run_cookbook "$tmp/first"
stop_server

if [ "$mode" = write ]; then
    # Replace the block in place: everything before it, the new block, everything after.
    {
        sed -n "1,/^$begin\$/p" "$readme" | sed '$d'
        cat "$tmp/first"
        sed -n "/^$end\$/,\$p" "$readme" | sed '1d'
    } >"$tmp/readme"
    runs=$(grep -c '^\$ ' "$tmp/block")
    if cmp -s "$tmp/readme" "$readme"; then
        echo "cookbook: $readme unchanged ($runs commands run; every output as shown)"
    else
        cp "$tmp/readme" "$readme"
        echo "cookbook: $readme updated ($runs commands run)"
    fi
    exit 0
fi

start_server
run_cookbook "$tmp/second"
stop_server
status=0
for run in first second; do
    if ! diff -u "$tmp/block" "$tmp/$run" >"$tmp/diff"; then
        echo "cookbook: the README's outputs differ from what the commands print now ($run run):" >&2
        cat "$tmp/diff" >&2
        status=1
    fi
done
[ $status = 0 ] && echo "cookbook: $(grep -c '^\$ ' "$tmp/block") commands, README outputs match (twice, over old results)"
exit $status
