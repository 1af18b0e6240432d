# Le Stats Sportif — every command a user or CI needs.
# The two set-up commands: `make run_server` and `make test`.

SHARED      ?= ../shared
SUBSET      := data/nutrition_activity_obesity_usa_subset.csv
FULL        := data/nutrition_activity_obesity_usa_cdc_full.csv
CDC_URL     := https://data.cdc.gov/api/views/hn4x-zwk7/rows.csv?accessType=DOWNLOAD
BIN         := target/release/le-stats-sportif
HOST        ?= 127.0.0.1
PORT        ?= 5000
RESULTS_DIR ?= results
LOG_FILE    ?= webserver.log
ACCESS_LOG  ?= access.log
# What `make test` builds with: the lock-order checker on every lock, and
# the endpoint that shows it catching an inversion in a spawned server
# (src/sync/lock_order.rs). `make build`, `run_server` and `bench` leave
# both out.
TEST_FEATURES := --features lock-order-selftest

.PHONY: all data build run_server test test_scripts models model_check run_unit_tests run_tests smoke cookbook access_log_check fuzz bench bench_scale jobs_listing_check browser_test lint fmt clean

all: build

# The course subset from ../shared when it is there; otherwise the full CDC
# dataset (hn4x-zwk7) from CDC's open-data portal, under its own name.
data:
	@bash scripts/fetch_data.sh "$(SHARED)" "$(SUBSET)" "$(FULL)" "$(CDC_URL)"

build:
	cargo build --release

# ARGS: more flags, e.g. make run_server ARGS="--threads 2 --job-delay 500".
run_server: data build
	$(BIN) --host $(HOST) --port $(PORT) --results-dir $(RESULTS_DIR) --log-file $(LOG_FILE) --access-log $(ACCESS_LOG) $(ARGS)

# Everything CI runs.
test: data
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings
	cargo build --release $(TEST_FEATURES)
	cargo test --release $(TEST_FEATURES)
	# Stack depth is a debug-build property: run the deep-JSON test there too.
	cargo test --test deep_json $(TEST_FEATURES)
	# The model builds are CPU-bound and the scripts mostly wait (on
	# servers, curl, a browser): run side by side, each one's output kept
	# together.
	$(MAKE) --no-print-directory -j2 --output-sync=target models test_scripts

# The end-to-end scripts, on the binary `make test` built (lock order
# checked), not a build of their own.
test_scripts:
	BIN=$(BIN) bash scripts/smoke.sh
	BIN=$(BIN) bash scripts/access_log_check.sh
	BIN=$(BIN) bash scripts/browser_test.sh
	BIN=$(BIN) bash scripts/metrics_check.sh
	BIN=$(BIN) bash scripts/status_page_test.sh

# The model tests (CONCURRENCY.md, "Model tests"): the library compiled
# with loom's or shuttle's primitives, each in its own target directory so
# that the normal build stays valid, in the cheap-to-build `models` profile.
# SHUTTLE_ITERATIONS and LOOM_MAX_PREEMPTIONS go deeper (CONCURRENCY.md).
models:
	RUSTFLAGS="--cfg loom" cargo test --profile models --lib --target-dir target/loom loom_model
	RUSTFLAGS="--cfg shuttle" cargo test --profile models --lib --target-dir target/shuttle shuttle_model

# Every mutant under tests/mutants/ (a classic concurrency bug, as a patch)
# applied to a scratch copy of the tree and caught by the model test it
# names (CONCURRENCY.md, "Your first model test"); fails when one is not
# caught or no longer applies.
model_check:
	bash scripts/model_check.sh

run_unit_tests:
	cargo test --lib

# The course's checker flow against a server already running on $(HOST):$(PORT).
run_tests:
	python3 scripts/checker.py --server http://$(HOST):$(PORT) --cases $(SHARED)/checker-cases

smoke: data build
	bash scripts/smoke.sh

# Run the README's cookbook and write what each command prints under it
# (cargo test checks it with scripts/cookbook.sh --check).
cookbook: data build
	bash scripts/cookbook.sh

# goaccess parses an access log written by a real server (installs goaccess).
access_log_check: data build
	bash scripts/access_log_check.sh

fuzz:
	FUZZ_ITERATIONS=1000000 cargo test --release --test integration http_fuzz -- --nocapture

# The server against its ceilings (bare std server, nginx, the disk's group
# commit), medians of interleaved rounds; BENCH_QUICK=1 for a one-minute
# check, BENCH_BASELINE_BIN=old to compare two binaries (docs/bench.md).
bench: data
	bash scripts/bench.sh

# Load time and query latency on the subset replicated 1, 10 and 100 times.
bench_scale: data
	bash scripts/bench.sh scale

# /api/jobs over 1M jobs: peak memory with 16 readers, num_jobs latency meanwhile.
jobs_listing_check: data build
	python3 scripts/jobs_listing_check.py

browser_test: data build
	bash scripts/browser_test.sh

lint:
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings

fmt:
	cargo fmt

clean:
	cargo clean
	rm -rf results webserver.log webserver.log.* access.log access.log.*
