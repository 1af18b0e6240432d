#!/usr/bin/env bash
# The job path: the code a `POST /api/state_mean` runs from the connection
# handler's call into the API until its file is saved and the job is
# recorded — without the HTTP parser, the stats module and the observers
# (metrics, scoreboard, trace, log). Prints each file and function in the
# order a job meets them, with its lines of code (no comments, no blank
# lines, no tests), then the totals.
#
# CONCURRENCY.md's "Follow one job" walks the same list in the same order.
# Usage: bash scripts/job_path.sh [--list FILE]   (default: the list below)
set -euo pipefail
cd "$(dirname "$0")/.."

# One function a line, in the order a job meets them: FILE ITEM, where
# ITEM is `fn_name` or `Type::fn_name` (the first `fn fn_name` inside an
# `impl` of Type). A `#` starts a comment.
read -r -d '' PATH_LIST <<'EOF' || true
src/api/mod.rs              Api::handle
src/api/mod.rs              Api::dispatch
src/api/route.rs            route
src/api/route.rs            Route::allowed_methods
src/api/mod.rs              Api::submit
src/api/mod.rs              parse_query
src/jobs/table.rs           Jobs::submit_as
src/jobs/table.rs           Jobs::submit_logged
src/jobs/table.rs           JobRecords::ready_ids
src/jobs/table.rs           JobRecords::next_id
src/pool.rs                 ThreadPool::execute
src/pool.rs                 Worker::run
src/jobs/run.rs             JobRecords::run_and_record
src/jobs/run.rs             JobRecords::compute
src/results/store.rs        ResultStore::intern
src/jobs/run.rs             JobRecords::save
src/results/store.rs        ResultStore::write_result
src/results/store.rs        ResultStore::write_in_own_dir
src/results/store.rs        ResultStore::try_write_file
src/results/store.rs        ResultStore::is_durable
src/jobs/run.rs             Persister::push
src/jobs/run.rs             spawn_persister
src/jobs/run.rs             Persister::commit_batches
src/results/store.rs        ResultStore::flush_dir
src/jobs/run.rs             JobRecords::record_flushed
src/jobs/run.rs             JobRecords::end_unsaved
src/jobs/run.rs             JobRecords::record
EOF

if [ "${1:-}" = "--list" ]; then
    PATH_LIST=$(cat "$2")
fi

JOB_PATH_LIST="$PATH_LIST" python3 - <<'PY'
import os, re, sys

def code_lines(lines):
    """Lines that are code: no blank lines, no // comments (doc or not)."""
    n = 0
    for line in lines:
        s = line.strip()
        if not s or s.startswith("//"):
            continue
        n += 1
    return n

def body_of(lines, start):
    """Lines from `start` (the fn line) to the brace that closes it."""
    depth, opened = 0, False
    for i in range(start, len(lines)):
        text = re.sub(r"\"(\\.|[^\"\\])*\"", "\"\"", lines[i])   # strings
        text = re.sub(r"//.*", "", text)                          # comments
        text = re.sub(r"'(\\.|[^'\\])'", "", text)        # chars
        for ch in text:
            if ch == "{":
                depth += 1
                opened = True
            elif ch == "}":
                depth -= 1
        if opened and depth == 0:
            return lines[start:i + 1]
        if not opened and text.rstrip().endswith(";"):
            return lines[start:i + 1]   # a declaration without a body
    sys.exit(f"job_path: unbalanced braces after line {start + 1}")

def find(lines, item):
    owner, _, name = item.rpartition("::")
    fn = re.compile(r"^\s*(pub(\([^)]*\))?\s+)?(const\s+)?fn\s+" + re.escape(name) + r"\b")
    start = 0
    if owner:
        imp = re.compile(r"^\s*impl\b.*\b" + re.escape(owner) + r"\b")
        for i, line in enumerate(lines):
            if imp.match(line):
                for j in range(i, len(lines)):
                    if fn.match(lines[j]):
                        return j
                    if j > i and lines[j].startswith("}"):
                        break
        return None
    for i in range(start, len(lines)):
        if fn.match(lines[i]):
            return i
    return None

files, total, failed = {}, 0, False
print("%-28s %-40s %5s" % ("file", "function", "lines"))
for raw in os.environ["JOB_PATH_LIST"].split("\n"):
    raw = raw.split("#", 1)[0].strip()
    if not raw:
        continue
    path, item = raw.split()
    try:
        lines = open(path, encoding="utf-8").read().split("\n")
    except OSError as error:
        print(f"job_path: {path}: {error.strerror}", file=sys.stderr)
        failed = True
        continue
    start = find(lines, item)
    if start is None:
        print(f"job_path: {path}: no function {item}", file=sys.stderr)
        failed = True
        continue
    n = code_lines(body_of(lines, start))
    files[path] = files.get(path, 0) + n
    total += n
    print(f"{path:<28} {item:<40} {n:>5}")
def file_lines(path):
    # code lines, without the #[cfg(test)] items
    lines = open(path, encoding="utf-8").read().split("\n")
    kept, i = [], 0
    while i < len(lines):
        if re.match(r"#\[cfg\((all\()?test\b", lines[i].strip()):
            body = body_of(lines, i + 1)
            i += 1 + len(body)
            continue
        kept.append(lines[i])
        i += 1
    return code_lines(kept)

print()
print("%-28s %17s %22s" % ("file", "path functions", "whole file (no tests)"))
file_total = 0
for path, n in files.items():
    whole = file_lines(path)
    file_total += whole
    print(f"{path:<28} {n:>17} {whole:>22}")
print(f"job path: {len(files)} files; {total} lines in the path's functions, {file_total} in their files")
sys.exit(1 if failed else 0)
PY
