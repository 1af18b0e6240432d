#!/usr/bin/env bash
# `promtool check metrics` (Debian's `prometheus` package, installed when
# missing) on the server's /metrics, scraped twice: at rest, and after
# requests of every kind (jobs, 4xx, 404, 405) so that every family holds
# non-zero samples. Any finding by promtool is a failure.
#
# Environment:
#   BIN   server binary (default: build target/release/le-stats-sportif)
#   DATA  CSV to serve (default: data/nutrition_activity_obesity_usa_subset.csv)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

readonly JOB_DEADLINE=30

work="$(mktemp -d -t metrics-check.XXXXXX)"
. scripts/lib/server.sh
SERVER_DIR=$work
cleanup() {
    server_stop TERM || true
    rm -rf "$work"
}
trap cleanup EXIT
die() { echo "metrics check: $*" >&2; exit 1; }

. scripts/lib/need.sh
need "metrics check" promtool prometheus
need "metrics check" curl curl

DATA="${DATA:-data/nutrition_activity_obesity_usa_subset.csv}"
[[ -f "$DATA" ]] || make data
if [[ -z "${BIN:-}" ]]; then
    cargo build --release
    BIN=target/release/le-stats-sportif
fi

server_start --threads 2
base=$SERVER_URL

check() { # check NAME: scrape /metrics and run promtool on it
    local file="$work/metrics-$1.txt"
    local type
    type="$(curl -fsS -o "$file" -w '%{content_type}' "$base/metrics")" || die "$1: GET /metrics failed"
    [[ "$type" == "text/plain; version=0.0.4; charset=utf-8" ]] || die "$1: Content-Type is $type"
    local findings
    if ! findings="$(promtool check metrics <"$file" 2>&1)" || [[ -n "$findings" ]]; then
        echo "$findings" >&2
        die "$1: promtool check metrics reported problems"
    fi
    echo "ok   - promtool check metrics ($1: $(grep -vc '^#' "$file") samples)"
}

check at-rest

question='{"question": "Percent of adults aged 18 years and older who have obesity"}'
ids=()
for endpoint in states_mean best5 worst5 global_mean diff_from_mean mean_by_category; do
    ids+=("$(curl -fsS -d "$question" "$base/api/$endpoint" | sed -n 's/.*"\(job_id_[0-9]*\)".*/\1/p')")
done
curl -s -o /dev/null -d '{' "$base/api/best5"
curl -s -o /dev/null "$base/no/such/path"
curl -s -o /dev/null -X POST "$base/api/jobs"
for id in "${ids[@]}"; do
    deadline=$((SECONDS + JOB_DEADLINE))
    until curl -fsS "$base/api/get_results/$id" | grep -q '"done"'; do
        ((SECONDS < deadline)) || die "$id not done within ${JOB_DEADLINE}s"
        sleep 0.05
    done
done

check after-requests

# The README's three grep one-liners, run as written against this server:
# each must print at least one series.
greps=0
while IFS= read -r line; do
    [[ "$line" == "curl -s localhost:5000/metrics |"* ]] || continue
    command=${line/localhost:5000/${base#http://}}
    output="$(bash -c "$command")" || die "README one-liner failed: $line"
    [[ -n "$output" ]] || die "README one-liner printed nothing: $line"
    greps=$((greps + 1))
    echo "ok   - README: ${line##*# } ($(wc -l <<<"$output") lines)"
done < <(sed -n '/<!-- metrics-grep:begin -->/,/<!-- metrics-grep:end -->/p' README.md)
[[ $greps == 3 ]] || die "README shows $greps /metrics one-liners, expected 3"
echo "metrics check: passed"
