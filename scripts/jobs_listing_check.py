#!/usr/bin/env python3
"""`make jobs_listing_check`: /api/jobs over a million jobs (issue 9, item 5).

Starts the release server on a fresh results directory, submits JOBS jobs
(pipelined POSTs on a few keep-alive connections; a 503 "queue full" is
retried), waits for the queue to drain, then lets READERS clients fetch the
whole listing ROUNDS times each, all at once, while one more client asks
`GET /api/num_jobs` over and over on its own keep-alive connection. Reports:

- the listing's size and how long one fetch took;
- the server's peak resident memory: VmHWM from /proc/PID/status, and the
  highest VmRSS sampled every 5 ms (the kernel brings VmHWM up to date
  lazily, so the samples are a cross-check);
- `num_jobs` latency (median, p99, max) while the listings run.

Targets: peak memory under 100 MB, every `num_jobs` under 50 ms. Exit status
0 when both are met, 1 when one is not, 2 when something broke. The server is
killed and its directory removed on every exit path.

Environment: JOBS (default 1000000), READERS (16), ROUNDS (3),
SERVER_BIN (default target/release/le-stats-sportif), DATA (default the
course subset under data/).
"""

import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JOBS = int(os.environ.get("JOBS", "1000000"))
READERS = int(os.environ.get("READERS", "16"))
ROUNDS = int(os.environ.get("ROUNDS", "3"))
BIN = os.environ.get("SERVER_BIN", os.path.join(ROOT, "target/release/le-stats-sportif"))
DATA = os.environ.get(
    "DATA", os.path.join(ROOT, "data/nutrition_activity_obesity_usa_subset.csv")
)
QUESTION = "Percent of adults aged 18 years and older who have obesity"
TARGET_PEAK_MB = 100
TARGET_NUM_JOBS_MS = 50
SUBMIT_CONNECTIONS = 4
BATCH = 500


def status_kb(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} for {pid}")


def submit(addr, count):
    """Submits `count` jobs on one connection, BATCH pipelined at a time."""
    body = json.dumps({"question": QUESTION}).encode()
    request = (
        b"POST /api/global_mean HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n\r\n" % len(body)
        + body
    )
    with socket.create_connection(addr) as sock:
        accepted = 0
        while accepted < count:
            batch = min(BATCH, count - accepted)
            sock.sendall(request * batch)
            # The whole batch's answers, kept until all have been seen (a
            # status line may be split between two reads). A status line is
            # never inside these small JSON bodies; the rest of the last
            # body, if it comes later, is counted as nothing next time.
            received = b""
            while received.count(b"HTTP/1.1 ") < batch:
                data = sock.recv(1 << 16)
                if not data:
                    raise RuntimeError("the server closed a submitting connection")
                received += data
            accepted += received.count(b"HTTP/1.1 200 ")


def get(conn, path):
    conn.request("GET", path)
    response = conn.getresponse()
    return response.status, response.read()


def main():
    import http.client

    if not os.path.exists(BIN):
        print(f"no server binary at {BIN} (run `cargo build --release`)", file=sys.stderr)
        return 2
    tmp = tempfile.mkdtemp(prefix="lss-jobs-listing-")
    server = subprocess.Popen(
        [BIN, "--port", "0", "--threads", "2", "--data", DATA,
         "--results-dir", os.path.join(tmp, "results"),
         "--log-file", os.path.join(tmp, "webserver.log")],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        line = server.stdout.readline().strip()
        if not line.startswith("listening on http://"):
            print(f"the server did not start: {line!r}", file=sys.stderr)
            return 2
        host, port = line.removeprefix("listening on http://").rsplit(":", 1)
        addr = (host, int(port))
        pid = server.pid

        started = time.monotonic()
        shares = [JOBS // SUBMIT_CONNECTIONS + (i < JOBS % SUBMIT_CONNECTIONS)
                  for i in range(SUBMIT_CONNECTIONS)]
        errors = []

        def submitter(n):
            try:
                submit(addr, n)
            except Exception as e:  # reported below
                errors.append(e)

        threads = [threading.Thread(target=submitter, args=(n,)) for n in shares]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            print(f"submitting failed: {errors[0]}", file=sys.stderr)
            return 2
        probe = http.client.HTTPConnection(*addr, timeout=60)
        deadline = time.monotonic() + 600
        while json.loads(get(probe, "/api/num_jobs")[1])["num_jobs"] != 0:
            if time.monotonic() > deadline:
                print("the queue did not drain in 600 s", file=sys.stderr)
                return 2
            time.sleep(0.2)
        print(f"{JOBS} jobs submitted and finished in {time.monotonic() - started:.1f} s")

        one = http.client.HTTPConnection(*addr, timeout=60)
        t0 = time.monotonic()
        status, body = get(one, "/api/jobs")
        single_s = time.monotonic() - t0
        listed = len(json.loads(body)["data"])
        if status != 200 or listed != JOBS:
            print(f"the listing is wrong: status {status}, {listed} jobs", file=sys.stderr)
            return 2
        print(f"one listing: {len(body):,} bytes in {single_s * 1000:.0f} ms "
              f"({len(body) / single_s / 1e6:.0f} MB/s)")
        idle_hwm = status_kb(pid, "VmHWM:")
        idle_rss = status_kb(pid, "VmRSS:")

        done = threading.Event()
        sampled = [idle_rss]

        def sampler():
            while not done.is_set():
                sampled.append(status_kb(pid, "VmRSS:"))
                time.sleep(0.005)

        # The readers are curl processes, not threads here: Python threads
        # parsing megabytes would hold the interpreter lock and delay the
        # num_jobs probe below, which would then time our client, not the
        # server.
        url = f"http://{host}:{port}/api/jobs"

        def reader():
            out = subprocess.run(
                ["curl", "-s", "-w", "%{http_code} %{size_download}\n"]
                + [url, "-o", "/dev/null"] * ROUNDS,
                capture_output=True, text=True, timeout=600,
            ).stdout.split("\n")
            for line in filter(None, out):
                code, size = line.split()
                if code != "200" or int(size) != len(body):
                    errors.append(f"a listing came back {code}, {size} bytes")

        latencies = []

        reconnects = []

        def num_jobs_probe():
            conn = http.client.HTTPConnection(*addr, timeout=60)
            while not done.is_set():
                t = time.perf_counter()
                try:
                    status, _ = get(conn, "/api/num_jobs")
                except (http.client.RemoteDisconnected, ConnectionError):
                    # The server closed the keep-alive connection (its idle
                    # timeout, if this thread was starved that long): counted
                    # and reported, then a fresh connection.
                    reconnects.append(time.perf_counter() - t)
                    conn.close()
                    conn = http.client.HTTPConnection(*addr, timeout=60)
                    continue
                latencies.append(time.perf_counter() - t)
                if status != 200:
                    errors.append(f"num_jobs answered {status}")
                time.sleep(0.002)

        watchers = [threading.Thread(target=sampler), threading.Thread(target=num_jobs_probe)]
        for t in watchers:
            t.start()
        t0 = time.monotonic()
        readers = [threading.Thread(target=reader) for _ in range(READERS)]
        for t in readers:
            t.start()
        for t in readers:
            t.join()
        busy_s = time.monotonic() - t0
        done.set()
        for t in watchers:
            t.join()
        if errors:
            print(f"failed: {errors[0]}", file=sys.stderr)
            return 2

        hwm = status_kb(pid, "VmHWM:")
        peak = max(hwm, max(sampled))
        lat_ms = sorted(x * 1000 for x in latencies)
        p99 = lat_ms[min(len(lat_ms) - 1, int(len(lat_ms) * 0.99))]
        print(f"{READERS} readers x {ROUNDS} listings: {busy_s:.1f} s "
              f"({READERS * ROUNDS * len(body) / busy_s / 1e6:.0f} MB/s in all)")
        print(f"memory: idle VmRSS {idle_rss / 1024:.1f} MB, VmHWM before the readers "
              f"{idle_hwm / 1024:.1f} MB; during: VmHWM {hwm / 1024:.1f} MB, highest sampled "
              f"VmRSS {max(sampled) / 1024:.1f} MB ({len(sampled)} samples)")
        print(f"num_jobs during the listings: {len(lat_ms)} requests, median "
              f"{statistics.median(lat_ms):.2f} ms, p99 {p99:.2f} ms, max {lat_ms[-1]:.2f} ms "
              f"(slowest five: {', '.join(f'{x:.1f}' for x in lat_ms[-5:])}); "
              f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
              + (f"; {len(reconnects)} keep-alive connection(s) closed by the server"
                 if reconnects else ""))
        ok_mem = peak < TARGET_PEAK_MB * 1024
        ok_lat = lat_ms[-1] < TARGET_NUM_JOBS_MS
        print(f"peak memory {peak / 1024:.1f} MB < {TARGET_PEAK_MB} MB: "
              f"{'PASS' if ok_mem else 'FAIL'}")
        print(f"slowest num_jobs {lat_ms[-1]:.2f} ms < {TARGET_NUM_JOBS_MS} ms: "
              f"{'PASS' if ok_lat else 'FAIL'}")
        return 0 if ok_mem and ok_lat else 1
    finally:
        server.kill()
        server.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
