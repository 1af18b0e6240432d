#!/usr/bin/env bash
# model_check.sh — `make model_check`: every mutant under tests/mutants/ must
# be caught by the model test it names.
#
# A mutant is a small patch (git diff format) that switches on one classic
# concurrency bug in src/ (a notify before the state change, an `if` where
# a `while` belongs, a shutdown that skips the drain, ...). Its header, the
# lines before the diff, names the protocol, the bug, the checker and the
# model test that must catch it (a test of the library, as `make models`
# runs them):
#
#   Protocol: Lifecycle (src/lifecycle.rs), a request waking the main thread
#   Bug: the notify is sent before the flag is set, outside the lock
#   Checker: loom              (loom or shuttle: the --cfg the test runs under)
#   Test: lifecycle::loom_model::a_request_racing_the_wait_is_never_lost
#
# The checkout is never touched. The tree is copied once to a scratch
# directory; each mutant is applied there (`git apply`), its test built and
# run as `make models` builds it (`--cfg loom` or `--cfg shuttle`, profile
# `models`, `--lib`, in the same target directory per checker as `make
# models`, so only the patched crate rebuilds), and reverted (`git apply -R`).
# Mutants run grouped by checker. One line per mutant:
#
#   mutant NAME: caught by TEST (REASON)
#   mutant NAME: NOT CAUGHT (why)
#
# then a summary. "Caught" means the patched tree compiles and the named
# test fails with the checker's own report (a deadlock, or a panic or failed
# assertion inside the model). Not a catch, and a failure of this script: a
# patch that no longer applies (so the mutants cannot rot as the code
# changes), a header that names no checker or test, a test that does not
# exist or fails on the unpatched tree, a patched tree that does not
# compile, a test that passes, a timeout.
#
# Environment: MUTANT=NAME runs one mutant; MUTANTS_DIR (default
# tests/mutants) where the patches are; MODEL_TIMEOUT_S (default 120)
# bounds each test run. The builds go to target/model-check/loom and
# target/model-check/shuttle (never `make models`' own target/loom and
# target/shuttle, which a mutant's build must not overwrite); each test's
# output is kept in target/model-check/logs/NAME.log.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
MUTANTS=${MUTANTS_DIR:-$ROOT/tests/mutants}
MUTANTS=$(cd "$MUTANTS" && pwd)
TIMEOUT_S=${MODEL_TIMEOUT_S:-120}
TARGETS=$ROOT/target/model-check
LOGS=$TARGETS/logs
mkdir -p "$LOGS"

SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/lss-model-check.XXXXXX")
trap 'rm -rf "$SCRATCH"' EXIT
TREE=$SCRATCH/tree

# header FILE FIELD: the value of "FIELD: value" in the patch's header.
header() {
    sed -n '/^diff --git/q; s/^'"$2"': *//p' "$1" | head -n 1
}

# The project as committed plus the working tree's changes, without what
# git ignores (target/, data/, results): what cargo needs to build it.
mkdir -p "$TREE"
git -C "$ROOT" ls-files -z --cached --others --exclude-standard |
    tar -C "$ROOT" --null -T - -cf - 2>/dev/null | tar -C "$TREE" -xf -
# Newer than any earlier build in the shared target directories: cargo
# decides what to rebuild by modification time, and a copy that kept the
# checkout's times could pass for the previous run's (patched) build.
find "$TREE" -type f -exec touch {} +

# cargo_test CHECKER ARGS...: `cargo test` of the library in the scratch
# tree as `make models` runs it; output to $SCRATCH/out. Builds with no
# time limit; a test run (anything but --no-run) gets $TIMEOUT_S.
cargo_test() {
    local checker=$1
    shift
    local limit=()
    [ "$1" = --no-run ] || limit=(timeout "$TIMEOUT_S")
    (cd "$TREE" && RUSTFLAGS="--cfg $checker" "${limit[@]}" \
        cargo test --profile models --lib --target-dir "$TARGETS/$checker" "$@") \
        >"$SCRATCH/out" 2>&1
}

# reason: the checker's own words from a failed test's output: the message
# of the first panic (loom and shuttle report a deadlock as a panic too).
reason() {
    grep -m 1 -A 1 -E "panicked at" "$SCRATCH/out" | sed -n 2p | cut -c 1-150
}

patches=()
for patch in "$MUTANTS"/*.patch; do
    [ -e "$patch" ] || continue
    name=$(basename "$patch" .patch)
    if [ -z "${MUTANT:-}" ] || [ "$MUTANT" = "$name" ]; then
        patches+=("$patch")
    fi
done
[ ${#patches[@]} -gt 0 ] || { echo "model check: no mutants in $MUTANTS" >&2; exit 1; }

caught=0
failed=0
declare -A baseline # "checker test" -> ok | the reason it is not
runnable=()

# First, cheaply: every header complete, every patch applicable.
for patch in "${patches[@]}"; do
    name=$(basename "$patch" .patch)
    checker=$(header "$patch" Checker)
    test_name=$(header "$patch" Test)
    if [[ "$checker" != loom && "$checker" != shuttle ]] || [ -z "$test_name" ]; then
        echo "mutant $name: NOT CAUGHT (its header names no Checker: loom|shuttle or no Test:)"
        failed=$((failed + 1))
    elif ! (cd "$TREE" && git apply --check "$patch") 2>"$SCRATCH/apply"; then
        echo "mutant $name: NOT CAUGHT (the patch no longer applies: $(head -n 1 "$SCRATCH/apply"))"
        failed=$((failed + 1))
    else
        runnable+=("$checker $name")
    fi
done

# Then by checker, so that each target directory is built against once per
# mutant with nothing else in between.
while read -r checker name; do
    [ -n "$name" ] || continue
    patch=$MUTANTS/$name.patch
    test_name=$(header "$patch" Test)

    # The test must exist and pass on the unpatched tree (once per test).
    key="$checker $test_name"
    if [ -z "${baseline[$key]:-}" ]; then
        if ! cargo_test "$checker" --no-run; then
            baseline[$key]="the unpatched tree does not build: $(grep -m 1 -E '^error' "$SCRATCH/out")"
        elif ! cargo_test "$checker" "$test_name" -- --exact; then
            cp "$SCRATCH/out" "$LOGS/$name.unpatched.log"
            baseline[$key]="$test_name fails on the unpatched tree: $(reason || true)"
        elif ! grep -q "test result: ok. 1 passed" "$SCRATCH/out"; then
            baseline[$key]="no test $test_name under --cfg $checker"
        else
            baseline[$key]=ok
        fi
    fi
    if [ "${baseline[$key]}" != ok ]; then
        echo "mutant $name: NOT CAUGHT (${baseline[$key]})"
        failed=$((failed + 1))
        continue
    fi

    (cd "$TREE" && git apply "$patch")
    status=0
    if ! cargo_test "$checker" --no-run; then
        echo "mutant $name: NOT CAUGHT (the patched tree does not compile:" \
            "$(grep -m 1 -E '^error' "$SCRATCH/out"))"
        failed=$((failed + 1))
    else
        cargo_test "$checker" "$test_name" -- --exact || status=$?
        cp "$SCRATCH/out" "$LOGS/$name.log"
        why=$(reason || true)
        if [ "$status" -eq 124 ]; then
            echo "mutant $name: NOT CAUGHT ($test_name ran out of its ${TIMEOUT_S} s)"
            failed=$((failed + 1))
        elif [ "$status" -eq 0 ]; then
            echo "mutant $name: NOT CAUGHT ($test_name passed)"
            failed=$((failed + 1))
        elif [ -z "$why" ] || ! grep -qE "^thread '$test_name'.* panicked at" "$SCRATCH/out"; then
            echo "mutant $name: NOT CAUGHT ($test_name failed (exit $status) without a checker report)"
            failed=$((failed + 1))
        else
            echo "mutant $name: caught by $test_name ($why)"
            caught=$((caught + 1))
        fi
    fi
    (cd "$TREE" && git apply -R "$patch")
done < <(printf '%s\n' "${runnable[@]+"${runnable[@]}"}" | sort)

echo "model check: ${#patches[@]} mutants, $caught caught, $failed not caught"
[ "$failed" -eq 0 ] && [ "$caught" -gt 0 ]
