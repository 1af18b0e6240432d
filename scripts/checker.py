#!/usr/bin/env python3
"""The course checker's flow against a running server, standard library only.

For every case in CASES/<endpoint>/input/in-N.json: POST the body to
/api/<endpoint>, poll /api/get_results/<job_id> until it is done (with a
deadline), and compare `data` with output/out-N.json: the same keys in the
same order, numbers within --tolerance. Prints "N passed, M failed" last and
exits non-zero if anything failed.
"""
import argparse
import http.client
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request


def start_hint(server):
    """The `make run_server` that serves at `server` (http://HOST:PORT)."""
    url = urllib.parse.urlsplit(server)
    hint = "make run_server"
    # An IPv6 host would not survive the Makefile's http://$(HOST):$(PORT).
    if url.hostname and url.hostname != "127.0.0.1" and ":" not in url.hostname:
        hint += f" HOST={url.hostname}"
    port = url.port or 80
    if port != 5000:
        hint += f" PORT={port}"
    return hint


def call(server, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(server + path, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def same(expected, got, tolerance):
    """Same members, numbers within tolerance, in the same order -- except
    that members with equal values may be in any order among themselves
    (the course sorted with numpy's unstable quicksort; we break ties by
    name)."""
    if isinstance(expected, dict):
        if not isinstance(got, dict) or set(expected) != set(got):
            return False
        if not all(same(expected[k], got[k], tolerance) for k in expected):
            return False
        return all(ek == gk or same(expected[ek], got[gk], tolerance)
                   for ek, gk in zip(expected, got))
    if isinstance(expected, (int, float)) and isinstance(got, (int, float)):
        return abs(expected - got) <= tolerance
    return expected == got


def run_case(server, endpoint, body, expected, tolerance, deadline_s):
    status, answer = call(server, "POST", f"/api/{endpoint}", body)
    if status != 200 or "job_id" not in answer:
        return f"submit answered {status} {answer}"
    job_id = answer["job_id"]
    deadline = time.monotonic() + deadline_s
    delay = 0.001
    while True:
        status, result = call(server, "GET", f"/api/get_results/{job_id}")
        if status != 200:
            return f"get_results({job_id}) answered {status} {result}"
        if result.get("status") == "done":
            break
        if result.get("status") != "running":
            return f"get_results({job_id}) answered {result}"
        if time.monotonic() > deadline:
            return f"{job_id} still running after {deadline_s}s"
        time.sleep(delay)  # a client polling politely, not a test waiting
        delay = min(delay * 2, 0.05)
    if not same(expected, result["data"], tolerance):
        return f"{job_id}: expected {json.dumps(expected)[:200]}..., got {json.dumps(result['data'])[:200]}..."
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default="http://127.0.0.1:5000")
    parser.add_argument("--cases", default=os.path.join(os.path.dirname(__file__), "..", "..", "shared", "checker-cases"))
    parser.add_argument("--tolerance", type=float, default=1e-9)
    parser.add_argument("--deadline", type=float, default=30.0)
    args = parser.parse_args()
    if not os.path.isdir(args.cases):
        print(f"checker: no cases at {args.cases}", file=sys.stderr)
        return 2
    try:
        call(args.server, "GET", "/api/num_jobs")
    except (OSError, ValueError, http.client.HTTPException) as err:
        # OSError covers URLError (nothing listening) and timeouts;
        # ValueError a non-JSON answer; HTTPException a non-HTTP one.
        print(f"checker: no le-stats-sportif server answers at {args.server} ({err}); "
              f"start one first, e.g. `{start_hint(args.server)}` in another terminal", file=sys.stderr)
        return 2
    passed = failed = 0
    for endpoint in sorted(os.listdir(args.cases)):
        inputs = os.path.join(args.cases, endpoint, "input")
        for name in sorted(os.listdir(inputs), key=lambda n: int(n[3:-5])):
            with open(os.path.join(inputs, name)) as f:
                body = json.load(f)
            out = os.path.join(args.cases, endpoint, "output", name.replace("in-", "out-"))
            with open(out) as f:
                expected = json.load(f)
            problem = run_case(args.server, endpoint, body, expected, args.tolerance, args.deadline)
            if problem:
                failed += 1
                print(f"FAIL {endpoint}/{name}: {problem}")
            else:
                passed += 1
    print(f"checker: {passed} passed, {failed} failed")
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
