#!/usr/bin/env python3
"""Real-browser checks of the page at `/`, run by scripts/browser_test.sh.

Drives headless Chromium over the DevTools protocol (`--remote-debugging-pipe`,
standard library only) against a running server, and checks every view against
the server's own API answers:

- ranking: one bar per state (National is a reference line, not a bar), the
  values of states_mean, best/worst marks equal best5/worst5, one global-mean line;
- difference: one bar per state with the values of diff_from_mean, on the
  "better" side exactly when the question's direction says so;
- map: one tile per place of states_mean, the tiles' colours ordered like their
  values (lightness rises with the value);
- state: the bars' values equal state_mean_by_category, grouped by category;
- every bar and tile has an accessible name that contains its value;
- a shared URL (`view=map&state=Ohio`) opens that view, the back button works,
  and a keyboard-only path (Tab, arrow keys, Enter) reaches the state view;
- at 1366x768 the ranking's rows all fit without scrolling; at 400 px wide no
  view overflows horizontally;
- no script error and no Content-Security-Policy violation; the page is under
  80 KB and its "Requests" panel is collapsed and lists every job it ran.

Screenshots of each view at 1366x768 and 400 px wide go to --shots.
Prints one `ok`/`FAIL` line per check and exits non-zero on any failure.
"""

import argparse
import base64
import fcntl
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

# Deadlines, in seconds: a wait that passes one is a failure, never a hang.
JOB_DEADLINE = 30
PAGE_DEADLINE = 60
BROWSER_DEADLINE = 30
PAGE_LIMIT_BYTES = 80 * 1024

passed = 0
failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok   - {name}")
    else:
        failed += 1
        detail = str(detail)
        detail = detail if len(detail) <= 400 else detail[:400] + "..."
        print(f"FAIL - {name}" + (f": {detail}" if detail else ""))
    sys.stdout.flush()
    return ok


# --- the API -----------------------------------------------------------------
class Api:
    def __init__(self, base):
        self.base = base

    def get(self, path):
        with urllib.request.urlopen(self.base + path, timeout=JOB_DEADLINE) as r:
            return json.load(r)

    def result(self, endpoint, **body):
        req = urllib.request.Request(
            f"{self.base}/api/{endpoint}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=JOB_DEADLINE) as r:
            job = json.load(r)["job_id"]
        deadline = time.monotonic() + JOB_DEADLINE
        while True:
            answer = self.get(f"/api/get_results/{job}")
            if answer["status"] == "done":
                return answer["data"]
            if answer["status"] != "running" or time.monotonic() > deadline:
                raise RuntimeError(f"{endpoint} {body}: {answer}")
            time.sleep(0.02)

    def suggestions(self, **body):
        """The server's did_you_mean for a computing request it refuses."""
        req = urllib.request.Request(
            f"{self.base}/api/global_mean",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        try:
            urllib.request.urlopen(req, timeout=JOB_DEADLINE).close()
        except urllib.error.HTTPError as refused:
            return json.load(refused).get("did_you_mean", [])
        raise RuntimeError(f"{body} was accepted")


# --- the browser -------------------------------------------------------------
class Browser:
    """Headless Chromium driven over --remote-debugging-pipe: commands are
    NUL-terminated JSON written to the browser's fd 3, answers and events are
    read from its fd 4. `extra_args` are more Chromium flags."""

    def __init__(self, chromium, workdir, extra_args=()):
        to_browser_r, self.to_browser = os.pipe()
        self.from_browser, from_browser_w = os.pipe()

        # In the child: the pipe ends become fds 3 and 4 (copied out of the way
        # first, so neither dup2 clobbers the other). Every other descriptor
        # Python opened is close-on-exec.
        def wire_fds():
            a = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD_CLOEXEC, 10)
            b = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD_CLOEXEC, 10)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--no-first-run", "--hide-scrollbars",
             "--remote-debugging-pipe", *extra_args,
             f"--user-data-dir={tempfile.mkdtemp(dir=workdir, prefix='profile.')}",
             "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(workdir, "chromium.err"), "ab"),
            preexec_fn=wire_fds, close_fds=False,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self.buffer = b""
        self.next_id = 0
        self.session = None
        self.log = []  # console errors, exceptions, CSP reports
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.send(f"{domain}.enable")

    def send(self, method, params=None, deadline=BROWSER_DEADLINE):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if self.session and not method.startswith("Target."):
            msg["sessionId"] = self.session
        os.write(self.to_browser, json.dumps(msg).encode() + b"\0")
        until = time.monotonic() + deadline
        while True:
            while b"\0" not in self.buffer:
                left = until - time.monotonic()
                if left <= 0 or not select.select([self.from_browser], [], [], left)[0]:
                    raise TimeoutError(f"{method}: no answer within {deadline}s")
                chunk = os.read(self.from_browser, 1 << 20)
                if not chunk:
                    raise RuntimeError("the browser closed its pipe")
                self.buffer += chunk
            raw, self.buffer = self.buffer.split(b"\0", 1)
            answer = json.loads(raw)
            if answer.get("id") == self.next_id:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer.get("result", {})
            self.event(answer)

    def event(self, msg):
        method, params = msg.get("method"), msg.get("params", {})
        if method == "Runtime.exceptionThrown":
            self.log.append(json.dumps(params["exceptionDetails"])[:400])
        elif method == "Log.entryAdded":
            entry = params["entry"]
            # A missing favicon is a network error, not the page's.
            if entry["level"] == "error" and "favicon" not in entry.get("url", ""):
                self.log.append(f"{entry['source']}: {entry['text']}")

    def eval(self, expression):
        result = self.send("Runtime.evaluate", {
            "expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression[:60]}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def size(self, width, height):
        self.send("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})

    def wait_for(self, condition, what):
        """Polls a JS condition until it is true; False at the deadline."""
        until = time.monotonic() + PAGE_DEADLINE
        while time.monotonic() < until:
            try:
                if self.eval(condition):
                    return True
            except RuntimeError:
                pass  # a navigation in progress destroyed the context
            time.sleep(0.05)
        print(f"# timed out waiting for {what}")
        return False

    def open(self, url, view=None):
        """Loads url and waits until the page has finished (done or error)."""
        self.eval("document.body && (document.body.dataset.status = 'navigating')")
        self.send("Page.navigate", {"url": url})
        return self.settled(view)

    def settled(self, view=None):
        cond = "['done', 'error'].includes(document.body.dataset.status)"
        if view:
            cond += f" && document.body.dataset.view === {json.dumps(view)}"
        return self.wait_for(cond, f"the page to settle ({view or 'any view'})")

    def key(self, key, code=None, vk=0, text=None):
        base = {"key": key, "code": code or key, "windowsVirtualKeyCode": vk, "nativeVirtualKeyCode": vk}
        self.send("Input.dispatchKeyEvent", dict(base, type="keyDown", **({"text": text} if text else {})))
        self.send("Input.dispatchKeyEvent", dict(base, type="keyUp"))

    def screenshot(self, path, full_page=False):
        params = {"format": "png"}
        if full_page:
            w, h = self.eval("[document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
            params.update(captureBeyondViewport=True, clip={"x": 0, "y": 0, "width": w, "height": h, "scale": 1})
        data = self.send("Page.captureScreenshot", params)["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))

    def close(self):
        try:
            self.send("Browser.close", deadline=5)
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# What the page drew, read from its DOM.
BARS = """[...document.querySelectorAll('rect.bar[data-state], .state-dot')].map((r) => ({
  state: r.dataset.state, value: Number(r.dataset.value), classes: r.getAttribute('class').split(' '),
  name: r.getAttribute('aria-label') || '', category: r.dataset.category, strat: r.dataset.stratification,
  bottom: r.getBoundingClientRect().bottom }))"""
TILES = """[...document.querySelectorAll('g.tile')].map((g) => ({
  state: g.dataset.state, value: g.querySelector('rect').dataset.value,
  fill: getComputedStyle(g.querySelector('rect')).fill, name: g.getAttribute('aria-label') || '',
  selected: g.classList.contains('selected') }))"""
# Chart texts that reach past the window's edges (SVG overflow is visible, so
# it does not count in scrollWidth).
CUT_TEXT = """[...document.querySelectorAll('#chart text, #legend li')].filter((t) => {
  const r = t.getBoundingClientRect(); return r.width > 0 && (r.left < 0 || r.right > innerWidth); })
  .map((t) => t.textContent)"""
OVERFLOW = "document.documentElement.scrollWidth - document.documentElement.clientWidth"


def names_value(name, x):
    """True if an accessible name shows x to two decimals (either rounding of a tie)."""
    return any(f"{v:.2f}" in name for v in (x, x + 1e-9, x - 1e-9))


def lightness(fill):
    r, g, b = (int(c) / 255 for c in fill[fill.index("(") + 1:fill.index(")")].split(","))
    lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in (r, g, b)]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def page_url(base, **params):
    return f"{base}/?{urllib.parse.urlencode(params, quote_via=urllib.parse.quote)}"


def check_question(b, api, base, q, direction, label, shots):
    means = api.result("states_mean", question=q)
    places = set(means) - {"National"}

    # Ranking.
    b.size(1366, 768)
    check(f"{label}: ranking loads", b.open(page_url(base, question=q, view="ranking"), "ranking")
          and b.eval("document.body.dataset.status") == "done")
    bars = b.eval(BARS)
    check(f"{label}: ranking has one bar per state ({len(places)}), National not among them",
          sorted(x["state"] for x in bars) == sorted(places), [x["state"] for x in bars])
    check(f"{label}: ranking bars carry the states_mean values",
          all(x["value"] == means[x["state"]] for x in bars))
    if direction:
        best, worst = api.result("best5", question=q), api.result("worst5", question=q)
        check(f"{label}: bars marked best are the best5 answer",
              sorted(x["state"] for x in bars if "best" in x["classes"]) == sorted(best))
        check(f"{label}: bars marked worst are the worst5 answer",
              sorted(x["state"] for x in bars if "worst" in x["classes"]) == sorted(worst))
        order = [x["state"] for x in bars]
        check(f"{label}: ranked best first", order[:5] == list(best) and order[-5:] == list(worst)[::-1],
              order)
    refs = b.eval("[...document.querySelectorAll('#chart line.ref')].map((l) => [l.getAttribute('class'), "
                  "Number(l.dataset.value)])")
    gm = api.result("global_mean", question=q)["global_mean"]
    check(f"{label}: a global-mean line in each column at global_mean",
          {v for c, v in refs if "global-mean" in c} == {gm}, refs)
    check(f"{label}: National is a reference line at its mean",
          {v for c, v in refs if "national" in c} == ({means["National"]} if "National" in means else set()), refs)
    check(f"{label}: every ranking bar's accessible name has its value",
          all(names_value(x["name"], x["value"]) for x in bars))
    fits = b.eval(f"Math.max(...{BARS}.map((x) => x.bottom)) <= innerHeight")
    check(f"{label}: at 1366x768 all {len(bars)} ranking rows fit without scrolling", fits)
    b.screenshot(f"{shots}/{label}-ranking-1366.png")

    # The zoom option: the axis spans the data instead of starting at 0.
    b.eval("document.querySelector('#zoom').click()")
    lowest = min(v for s, v in means.items())
    settled = b.settled("ranking")
    ticks = b.eval("[...document.querySelectorAll('#chart .axis text')].map((t) => Number(t.textContent))")
    check(f"{label}: zoom puts zoom=1 in the URL and starts the axis near the lowest value",
          settled and b.eval("new URLSearchParams(location.search).get('zoom')") == "1"
          and ticks and 0 < min(ticks) <= lowest, (ticks, lowest))
    b.screenshot(f"{shots}/{label}-ranking-zoom-1366.png")

    # Difference from the mean.
    diffs = api.result("diff_from_mean", question=q)
    check(f"{label}: diff view loads", b.open(page_url(base, question=q, view="diff"), "diff")
          and b.eval("document.body.dataset.status") == "done")
    bars = b.eval(BARS)
    check(f"{label}: diff has one bar per state with the diff_from_mean values",
          sorted(x["state"] for x in bars) == sorted(places)
          and all(x["value"] == diffs[x["state"]] for x in bars))
    # diff = global mean - state mean: positive is better when lower is better.
    sides = {"min": lambda v: "better" if v >= 0 else "worse", "max": lambda v: "better" if v <= 0 else "worse",
             None: lambda v: "above" if v <= 0 else "below"}[direction]
    check(f"{label}: diff bars are on the side the direction says",
          all(sides(x["value"]) in x["classes"] for x in bars))
    check(f"{label}: every diff bar's accessible name has its value",
          all(names_value(x["name"], abs(x["value"])) for x in bars))
    b.screenshot(f"{shots}/{label}-diff-1366.png")

    # Map.
    check(f"{label}: map loads", b.open(page_url(base, question=q, view="map"), "map")
          and b.eval("document.body.dataset.status") == "done")
    tiles = b.eval(TILES)
    check(f"{label}: one tile per place of states_mean ({len(means)})",
          sorted(t["state"] for t in tiles) == sorted(means), [t["state"] for t in tiles])
    check(f"{label}: tiles carry the states_mean values",
          all(float(t["value"]) == means[t["state"]] for t in tiles))
    ranked = sorted((t for t in tiles if t["state"] != "National"), key=lambda t: float(t["value"]))
    light = [lightness(t["fill"]) for t in ranked]
    check(f"{label}: map colours are ordered like the values",
          all(a <= b_ + 1e-12 for a, b_ in zip(light, light[1:])) and light[0] < light[-1],
          [(t["state"], t["fill"]) for t in ranked])
    check(f"{label}: every tile's accessible name has its value",
          all(names_value(t["name"], float(t["value"])) for t in tiles))
    b.screenshot(f"{shots}/{label}-map-1366.png")


def check_state_view(b, api, base, q, state, shots, label):
    by_cat = api.result("state_mean_by_category", question=q, state=state)[state]
    check(f"{label}: state view for {state} loads",
          b.open(page_url(base, question=q, view="state", state=state), "state")
          and b.eval("document.body.dataset.status") == "done")
    bars = b.eval(BARS)
    shown = {f"('{x['category']}', '{x['strat']}')": x["value"] for x in bars}
    check(f"{label}: state view's dots carry the state_mean_by_category values ({len(by_cat)} groups)",
          shown == by_cat and len(bars) == len(by_cat), (shown, by_cat))
    groups = b.eval("[...document.querySelectorAll('#chart h3')].map((h) => h.textContent)")
    cats = sorted({k.split("', '")[0][2:] for k in by_cat})
    check(f"{label}: state view groups by category {cats}", sorted(groups) == cats, groups)
    check(f"{label}: every state-view dot's accessible name has its value",
          all(names_value(x["name"], x["value"]) for x in bars))
    b.screenshot(f"{shots}/{label}-state-1366.png", full_page=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True)
    ap.add_argument("--chromium", default="chromium")
    ap.add_argument("--shots", required=True)
    ap.add_argument("--work", required=True)
    args = ap.parse_args()
    # `timeout` in the shell script sends SIGTERM: leave through `finally`,
    # which closes the browser.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("browser test: terminated"))
    base, shots = args.base, args.shots
    os.makedirs(shots, exist_ok=True)
    api = Api(base)

    # The HTML response itself.
    with urllib.request.urlopen(base + "/", timeout=JOB_DEADLINE) as r:
        html, ctype, csp = r.read(), r.headers.get("Content-Type", ""), r.headers.get("Content-Security-Policy", "")
    check(f"GET / is text/html (got {ctype!r})", ctype.lower().startswith("text/html"))
    check(f"the page is under 80 KB ({len(html)} bytes)", len(html) < PAGE_LIMIT_BYTES)
    check("GET / carries a Content-Security-Policy that denies by default and allows only this server",
          csp.startswith("default-src 'none'") and "connect-src 'self'" in csp and "http" not in csp, csp)
    check("the page names no other host", b"http://" not in html.replace(b"http://www.w3.org/2000/svg", b"")
          and b"https://" not in html)

    questions = api.get("/api/questions")["data"]
    min_q = next(q["question"] for q in questions if q["direction"] == "min")
    max_q = next(q["question"] for q in questions if q["direction"] == "max")

    b = Browser(args.chromium, args.work)
    try:
        check_question(b, api, base, min_q, "min", "min", shots)
        check_question(b, api, base, max_q, "max", "max", shots)
        check_state_view(b, api, base, min_q, "Ohio", shots, "min")
        check_state_view(b, api, base, max_q, "Guam", shots, "max")

        # A shared URL opens its view, with its state picked.
        url = page_url(base, question=min_q, view="map", state="Ohio")
        check("URL view=map&state=Ohio opens the map with Ohio selected",
              b.open(url, "map") and b.eval("document.body.dataset.state") == "Ohio"
              and [t["state"] for t in b.eval(TILES) if t["selected"]] == ["Ohio"]
              and b.eval("document.querySelector('#state').value") == "Ohio")
        x, y = b.eval("(() => { const r = document.querySelector('g.tile[data-state=Texas]')"
                      ".getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()")
        b.send("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y})
        info = b.eval("$('info').textContent")
        check(f"hovering a tile shows its value and rank ({info!r})", info.startswith("Texas: ") and " rank " in info)
        check("the URL keeps its parameters",
              b.eval("new URLSearchParams(location.search).get('view') + '|' + "
                     "new URLSearchParams(location.search).get('state')") == "map|Ohio")

        # Keyboard only: Tab to the tabs, arrow to Map, Tab into the tiles, Enter.
        b.open(page_url(base, question=min_q), "ranking")
        for _ in range(40):
            if b.eval("document.activeElement.getAttribute('role')") == "tab":
                break
            b.key("Tab", vk=9)
        check("keyboard: Tab reaches the selected tab",
              b.eval("document.activeElement.id") == "tab-ranking")
        b.key("ArrowRight", vk=39)
        b.key("ArrowRight", vk=39)
        check("keyboard: arrow keys switch to the map", b.settled("map")
              and b.eval("document.activeElement.id") == "tab-map")
        for _ in range(40):
            if b.eval("document.activeElement.classList.contains('tile')"):
                break
            b.key("Tab", vk=9)
        tile = b.eval("document.activeElement.dataset.state")
        check(f"keyboard: Tab reaches a map tile ({tile})", bool(tile))
        info = b.eval("$('info').textContent")
        check(f"focusing a tile shows its value and rank ({info!r})",
              info.startswith(f"{tile}: ") and " rank " in info)
        b.key("Enter", vk=13, text="\r")
        check(f"keyboard: Enter on the tile opens the state view for {tile}", b.settled("state")
              and b.eval("document.body.dataset.state") == tile
              and b.eval("document.body.dataset.status") == "done"
              and b.eval("document.querySelectorAll('.state-dot').length") > 0)
        check("keyboard: the state view is in the URL",
              b.eval("new URLSearchParams(location.search).get('view')") == "state")
        calls = b.eval("document.querySelectorAll('#request-rows tr').length")
        b.eval("history.back()")
        check("the back button returns to the map", b.settled("map")
              and b.eval("new URLSearchParams(location.search).get('view')") == "map")
        check("a view shown again reuses its answers (no new request)",
              b.eval("document.querySelectorAll('#request-rows tr').length") == calls)
        b.eval("document.querySelector('[role=tab][data-view=ranking]').click()")
        b.settled("ranking")
        bar = b.eval("document.querySelector('#chart rect.bar').focus(), document.activeElement.dataset.state")
        b.key(" ", code="Space", vk=32, text=" ")
        check(f"keyboard: Space on a ranking bar opens the state view for {bar}", b.settled("state")
              and b.eval("document.body.dataset.state") == bar)

        # The Requests panel: collapsed, one row per job, each with its id.
        rows = b.eval("[...document.querySelectorAll('#request-rows tr')].map((r) => "
                      "[...r.cells].map((c) => c.textContent))")
        check("Requests panel is collapsed", b.eval("document.querySelector('details#requests').open") is False)
        check(f"Requests panel lists every job with its id and time ({len(rows)} rows)",
              len(rows) >= 2 and all(r[2].startswith("job_id_") and r[3] == "done" and r[4].endswith(" ms")
                                     for r in rows), rows)

        # 400 px wide: no view overflows; full-page screenshots.
        b.size(400, 800)
        for view in ("ranking", "diff", "map", "state"):
            b.open(page_url(base, question=max_q, view=view, state="Ohio"), view)
            over = b.eval(OVERFLOW)
            check(f"400 px: {view} view has no horizontal overflow ({over} px)", over == 0)
            cut = b.eval(CUT_TEXT)
            check(f"400 px: no text of the {view} view is cut at the window's edges", not cut, cut)
            b.screenshot(f"{shots}/max-{view}-400.png", full_page=True)
        b.size(1366, 768)

        check("no script error, failed request or CSP violation", not b.log,
              f"{len(b.log)} errors, first: {b.log[:3]}")

        # An unknown question in the URL ends in the error state, with the
        # server's suggestions as links and no direction under the empty picker.
        b.open(page_url(base, question="No such question"))
        check("an unknown ?question= ends in the error state", b.eval("document.body.dataset.status") == "error")
        b.open(page_url(base, question="obesity"))
        expected = api.suggestions(question="obesity")
        links = b.eval("[...document.querySelectorAll('#message a')].map((a) => [a.textContent, a.getAttribute('href')])")
        check(f"?question=obesity shows the server's suggestions ({len(expected)}) as links to them",
              bool(expected) and links == [[q, "/?" + urllib.parse.urlencode({"question": q, "view": "ranking"})]
                                            for q in expected], (links, expected))
        check("no direction text without a question",
              b.eval("document.querySelector('#direction') === null")
              and "direction" not in b.eval("$('question-text').textContent"),
              b.eval("$('question-text').textContent"))
        b.eval("document.querySelector('#message a').click()")
        check("a suggestion link opens the page on that question",
              b.settled("ranking") and b.eval("document.body.dataset.status") == "done"
              and b.eval("document.body.dataset.question") == expected[0]
              and b.eval("$('question').value") == expected[0], b.eval("location.search"))
        b.open(page_url(base, question=min_q, view="state", state="Ohoi"))
        state_links = b.eval("[...document.querySelectorAll('#message a')].map((a) => a.textContent)")
        check("an unknown state in the state view is an error that suggests the right name as a link",
              b.eval("document.body.dataset.status") == "error" and state_links == ["Ohio"], state_links)
        b.eval("document.querySelector('#message a').click()")
        check("the state suggestion opens the state view on Ohio",
              b.settled("state") and b.eval("document.body.dataset.status") == "done"
              and b.eval("document.body.dataset.state") == "Ohio")
    finally:
        b.close()

    print(f"browser test: screenshots in {shots}/")
    print(f"browser test: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
