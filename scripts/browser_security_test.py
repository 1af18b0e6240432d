#!/usr/bin/env python3
"""Real-browser attacks on the server, run by scripts/browser_test.sh.

Headless Chromium with `--host-resolver-rules="MAP evil.test 127.0.0.1"`: the
attacker's name resolves to this machine, as it would for a victim whose
browser visits a hostile site while the server runs on 127.0.0.1.

1. DNS rebinding. A rebinding page is loaded from the attacker's server and
   then reads its own origin again once the name points at the victim. The
   origin includes the port, so the attacker's server and ours must take
   turns on one port: a stand-in attacker server on port P serves
   http://evil.test:P/, whose script reads `/api/jobs` (same origin) in a
   loop and sees the attacker's answer; the stand-in is stopped and the
   real server started on P; the page's next reads reach the real server
   with `Host: evil.test:P`, exactly as after a rebinding, and must get 421.
2. Cross-site request forgery. A page from http://evil.test:Q/ (another
   port, another stand-in server) tries an <img> to graceful_shutdown, an
   auto-submitted text/plain <form> POST to states_mean, and a no-cors
   fetch POST to global_mean. The server's access log must show each of
   them, answered 403.
3. Afterwards the server is still serving, no job was created, and the
   server's own page at / still works (it submits jobs and draws).

Prints one `ok`/`FAIL` line per check and exits non-zero on any failure.
"""

import argparse
import http.server
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request

import browser_test
from browser_test import Browser, check

# Deadlines, in seconds: a wait that passes one is a failure, never a hang.
DEADLINE = 60
OBESITY = "Percent of adults aged 18 years and older who have obesity"

def wait_until(what, condition, deadline=DEADLINE):
    """Polls condition() until it returns a true value (returned); None at
    the deadline."""
    until = time.monotonic() + deadline
    while time.monotonic() < until:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    print(f"# timed out waiting for {what}")
    return None


# The rebinding page: reads /api/jobs on its own origin every 100 ms and
# keeps every answer's status and first bytes in window.reads.
REBIND_PAGE = """<!doctype html><title>rebind</title><script>
window.reads = [];
async function read() {
  try {
    const r = await fetch('/api/jobs', {cache: 'no-store'});
    window.reads.push({status: r.status, text: (await r.text()).slice(0, 400)});
  } catch (e) {
    window.reads.push({status: 0, text: String(e)});
  }
  setTimeout(read, 100);
}
read();
</script>"""

# The cross-site page; TARGET is the server's base URL.
ATTACK_PAGE = """<!doctype html><title>attack</title>
<img src="TARGET/api/graceful_shutdown">
<iframe name="sink"></iframe>
<form id="f" method="POST" enctype="text/plain" target="sink" action="TARGET/api/states_mean">
<input type="hidden" name='{"question": "QUESTION", "pad": "' value='"}'></form>
<script>
document.getElementById('f').submit();
window.fetched = 'pending';
fetch('TARGET/api/global_mean', {method: 'POST', mode: 'no-cors',
  body: JSON.stringify({question: 'QUESTION'})})
  .then(() => { window.fetched = 'sent'; }, (e) => { window.fetched = String(e); });
</script>"""


class StandIn:
    """The attacker's web server: serves `pages` (path -> (status, type,
    body)) on 127.0.0.1:port (0 picks one) from its own thread."""

    def __init__(self, port, pages):
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                status, ctype, body = pages.get(self.path, (404, "text/plain", "not here"))
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


class Server:
    """The real server on 127.0.0.1:port; stopped with SIGINT (it drains),
    killed if it has not exited within the deadline."""

    def __init__(self, command, port, data, work):
        self.access_log = os.path.join(work, "sec-access.log")
        self.proc = subprocess.Popen(
            [*command, "--port", str(port), "--data", data,
             "--results-dir", os.path.join(work, "sec-results"),
             "--log-file", os.path.join(work, "sec-webserver.log"),
             "--access-log", self.access_log],
            stdout=subprocess.PIPE, stderr=open(os.path.join(work, "sec-server.err"), "ab"), text=True)
        # readline blocks until the line or EOF (the server exiting).
        line = self.proc.stdout.readline()
        if not line.startswith("listening on "):
            self.stop()
            raise RuntimeError(f"the server did not start on port {port}: {line!r}")
        self.base = line.split()[-1]

    def get(self, path):
        with urllib.request.urlopen(self.base + path, timeout=DEADLINE) as r:
            return json.load(r)

    def access(self):
        """(method, path, status, referer) of every access-log line so far."""
        try:
            with open(self.access_log) as f:
                text = f.read()
        except FileNotFoundError:
            return []
        line = re.compile(r'"(\S+) (\S+) HTTP/1\.\d" (\d{3}) \S+ "([^"]*)"')
        return [(m[1], m[2], int(m[3]), m[4]) for m in line.finditer(text)]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def reads(b):
    return b.eval("window.reads || []") or []


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--chromium", default="chromium")
    ap.add_argument("--data", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("server", nargs="+", help="the server command (flags are appended)")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("browser security test: terminated"))

    stand_ins, server, b = [], None, None
    try:
        # 1. Rebinding: the stand-in first owns port P ...
        first = StandIn(0, {
            "/": (200, "text/html", REBIND_PAGE),
            "/api/jobs": (200, "application/json", '{"attacker": "own answer"}'),
        })
        stand_ins.append(first)
        port = first.port
        b = Browser(args.chromium, args.work, ["--host-resolver-rules=MAP evil.test 127.0.0.1"])
        b.send("Page.navigate", {"url": f"http://evil.test:{port}/"})
        check("rebinding: the page at http://evil.test:P/ reads its own origin",
              wait_until("the first read", lambda: any(r["status"] == 200 for r in reads(b))), reads(b))
        # ... then the real server takes it.
        first.stop()
        stand_ins.remove(first)
        server = Server(args.server, port, args.data, args.work)
        print(f"# server at {server.base} (the port the page came from)")
        seen = wait_until("a read that reached the server", lambda: [
            r for r in reads(b) if r["status"] != 0 and "attacker" not in r["text"]])
        check("rebinding: the page's read of /api/jobs through evil.test got 421",
              bool(seen) and seen[0]["status"] == 421 and "--allowed-host" in seen[0]["text"], seen)
        check("rebinding: the page never read the server's job list",
              not any('"data"' in r["text"] for r in reads(b)), reads(b))
        b.send("Page.navigate", {"url": "about:blank"})
        misdirected = [a for a in server.access() if a[1] == "/api/jobs" and a[2] == 421]
        check("rebinding: the access log shows the reads answered 421", len(misdirected) >= 1, server.access())

        # 2. Cross-site forgery from http://evil.test:Q/.
        page = ATTACK_PAGE.replace("TARGET", server.base).replace("QUESTION", OBESITY)
        attacker = StandIn(0, {"/": (200, "text/html", page)})
        stand_ins.append(attacker)
        b.send("Page.navigate", {"url": f"http://evil.test:{attacker.port}/"})
        referer = f"http://evil.test:{attacker.port}/"
        wanted = {("GET", "/api/graceful_shutdown"), ("POST", "/api/states_mean"),
                  ("POST", "/api/global_mean")}

        def attacks():
            found = {(m, p): s for m, p, s, r in server.access() if r == referer and (m, p) in wanted}
            return found if len(found) == len(wanted) else None

        found = wait_until("the three attacks in the access log", attacks) or {}
        for method, path in sorted(wanted):
            check(f"forgery: {method} {path} from evil.test was refused with 403",
                  found.get((method, path)) == 403, server.access())
        check("forgery: the no-cors fetch was sent", wait_until(
            "the fetch", lambda: b.eval("window.fetched") != "pending") and b.eval("window.fetched") == "sent",
            b.eval("window.fetched"))

        # 3. The server is untouched and its own page works.
        check("afterwards the server is still serving",
              server.get("/api/status")["shutdown_phase"] == "serving")
        check("afterwards no job was created", server.get("/api/jobs")["data"] == [],
              server.get("/api/jobs"))
        query = urllib.parse.urlencode({"question": OBESITY}, quote_via=urllib.parse.quote)
        b.send("Page.navigate", {"url": f"{server.base}/?{query}"})
        status = wait_until("the server's own page", lambda: b.eval(
            "document.body && ['done', 'error'].includes(document.body.dataset.status)"
            " && document.body.dataset.status"))
        check("the server's own page at / still submits jobs and draws", status == "done"
              and server.get("/api/jobs")["data"] != [], status)
    finally:
        if b:
            b.close()
        for s in stand_ins:
            try:
                s.stop()
            except OSError:
                pass
        if server:
            server.stop()
    print(f"browser security test: {browser_test.passed} passed, {browser_test.failed} failed")
    sys.exit(1 if browser_test.failed else 0)


if __name__ == "__main__":
    main()
