"""The report in a real browser: headless Chromium, networking disabled, driven over the DevTools protocol.

Chromium is Debian's ``chromium`` package (``make browser`` installs it as root); the tests skip
without it. The DevTools connection is ``--remote-debugging-pipe`` (JSON messages separated by NUL
bytes on file descriptors 3 and 4), so no port, no websocket library and no driver are needed.
Screenshots go to ``test-artifacts/`` at the repository root.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from culturelens.report import build_report
from culturelens.schema import Mode
from culturelens.sweep import expand

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
HOFSTEDE = (
    Path(__file__).resolve().parents[2]
    / "shared"
    / "datasets"
    / "hofstede"
    / "6-dimensions-for-website-2015-08-16.csv"
)
XSS = "<script>window.__pwned=1</script><img src=x onerror=window.__pwned=2>"


#: an alignment.json in the shape culturelens.alignment writes (a survey task, one persona style)
ALIGNMENT = {
    "run": "x",
    "tasks": {
        "opinions<b>": {
            "kind": "survey", "samples": 40, "invalid": 0, "metric": "jsd", "metric_name": "1 - Jensen-Shannon distance",
            "by_condition": {"unsteered": {"questions": 20, "nearest": ["Japan"], "countries": {"jsd": [
                {"country": "Japan", "n": 20, "sim": 0.81, "ci": [0.78, 0.84], "uniform": 0.7, "normalised": 0.37,
                 "rank": 1, "rank_ci": [1, 2], "p_nearest": 0.7},
                {"country": "Kenya", "n": 20, "sim": 0.79, "ci": [0.75, 0.82], "uniform": 0.69, "rank": 2},
                {"country": "Brazil<img src=x onerror=window.__pwned=9>", "n": 18, "sim": 0.7, "ci": [0.66, 0.74], "rank": 3},
            ]}}},
            "steering": {"metric": "jsd", "styles": {"typical": {"targets": ["Japan"], "splits": {"all": {
                "questions": 20, "summary": {"all": {"gain": {"mean": 0.02, "ci": [0.0, 0.04]}, "top1": 1.0}},
                "targets": {"Japan": {"aligned": {"mean": 0.83, "ci": [0.8, 0.86]}, "gain": {"mean": 0.02, "ci": [0.0, 0.04]}}},
            }}}}},
        }
    },
}  # fmt: skip


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


class Browser:
    """Headless Chromium with a minimal DevTools-protocol client over --remote-debugging-pipe."""

    def __init__(self, exe: str, width: int = 1366, height: int = 900):
        self.profile = tempfile.mkdtemp(prefix="culturelens-chromium-")
        to_chrome_r, to_chrome_w = os.pipe()
        from_chrome_r, from_chrome_w = os.pipe()
        flags = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-default-apps",
            "--disable-extensions",
            "--no-first-run",
            "--no-default-browser-check",
            "--metrics-recording-only",
            "--disable-domain-reliability",
            "--disable-breakpad",
            "--proxy-server=http://127.0.0.1:9",
            "--proxy-bypass-list=<-loopback>",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            f"--user-data-dir={self.profile}",
            f"--window-size={width},{height}",
            "--remote-debugging-pipe",
            "about:blank",
        ]
        # Chromium reads commands on fd 3 and writes on fd 4: map our pipe ends there with bash
        script = f'exec "$0" "$@" 3<&{to_chrome_r} 4>&{from_chrome_w}'
        self.proc = subprocess.Popen(
            ["bash", "-c", script, exe, *flags],
            pass_fds=(to_chrome_r, from_chrome_w),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self.wfd, self.rfd = to_chrome_w, from_chrome_r
        fcntl.fcntl(self.wfd, fcntl.F_SETFD, fcntl.FD_CLOEXEC)
        self.next_id = 0
        self.replies: dict[int, queue.Queue] = {}
        self.events: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Network", "Log"):
            self.cmd(f"{domain}.enable")
        self.cmd(
            "Network.emulateNetworkConditions",
            {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
        )
        self.cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )

    def _read(self) -> None:
        buf = b""
        while True:
            try:
                chunk = os.read(self.rfd, 1 << 16)
            except OSError:
                return
            if not chunk:
                return
            buf += chunk
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                msg = json.loads(raw)
                if "id" in msg:
                    with self.lock:
                        q = self.replies.get(msg["id"])
                    if q is not None:
                        q.put(msg)
                else:
                    self.events.append(msg)

    def send(
        self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 30
    ) -> dict:
        with self.lock:
            self.next_id += 1
            mid = self.next_id
            self.replies[mid] = queue.Queue()
        msg: dict[str, Any] = {"id": mid, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.wfd, json.dumps(msg).encode() + b"\0")
        try:
            reply = self.replies[mid].get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"no reply to {method} in {timeout}s") from None
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def cmd(self, method: str, params: dict | None = None) -> dict:
        return self.send(method, params, session=self.session)

    def js(self, expression: str) -> Any:
        res = self.cmd(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True}
        )
        if "exceptionDetails" in res:
            raise RuntimeError(f"{expression}: {res['exceptionDetails']}")
        return res["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 10) -> Any:
        """Poll until the expression is truthy (events such as <details> toggle fire asynchronously)."""
        deadline = time.time() + timeout
        while True:
            value = self.js(expression)
            if value or time.time() > deadline:
                return value
            time.sleep(0.05)

    def open(self, path: Path, timeout: float = 30) -> None:
        self.events.clear()
        self.cmd("Page.navigate", {"url": path.resolve().as_uri()})
        deadline = time.time() + timeout
        while time.time() < deadline:
            state = self.js(
                "document.readyState === 'complete' && document.body && document.body.getAttribute('data-ready')"
            )
            if state in ("1", "error"):
                assert state == "1", self.errors()
                return
            time.sleep(0.1)
        raise TimeoutError(f"{path} did not finish drawing; errors: {self.errors()}")

    def errors(self) -> list[str]:
        out = []
        for e in self.events:
            m, p = e.get("method"), e.get("params", {})
            if m == "Runtime.exceptionThrown":
                out.append(
                    str(
                        p["exceptionDetails"].get("exception", {}).get("description") or p["exceptionDetails"]
                    )
                )
            elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert", "warning"):
                out.append(" ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", [])))
            elif m == "Log.entryAdded" and p["entry"].get("level") in ("error", "warning"):
                out.append(f"{p['entry'].get('source')}: {p['entry'].get('text')}")
        return out

    def requests(self) -> list[str]:
        return [
            e["params"]["request"]["url"]
            for e in self.events
            if e.get("method") == "Network.requestWillBeSent"
        ]

    def click(self, selector: str) -> None:
        """A real mouse click at the element's centre (scrolled into view first)."""
        box = self.js(
            f"(() => {{ const el = document.querySelector({json.dumps(selector)}); el.scrollIntoView({{block: 'center'}});"
            " const r = el.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()"
        )
        for kind in ("mousePressed", "mouseReleased"):
            self.cmd(
                "Input.dispatchMouseEvent",
                {"type": kind, "x": box[0], "y": box[1], "button": "left", "clickCount": 1},
            )

    def screenshot(self, path: Path) -> Path:
        self.js("window.scrollTo(0, 0)")
        size = self.cmd("Page.getLayoutMetrics")["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], 6000), "scale": 1}
        data = self.cmd(
            "Page.captureScreenshot", {"format": "png", "clip": clip, "captureBeyondViewport": True}
        )["data"]
        import base64

        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        with contextlib.suppress(OSError, TimeoutError, RuntimeError):
            self.send("Browser.close", timeout=5)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self.wfd, self.rfd):
            with contextlib.suppress(OSError):
                os.close(fd)
        shutil.rmtree(self.profile, ignore_errors=True)


@pytest.fixture(scope="module")
def browser():
    exe = chromium_path()
    if exe is None:
        pytest.skip("chromium is not installed (make browser installs Debian's chromium as root)")
    b = Browser(exe)
    yield b
    b.close()


def _fake_run(out: Path, policy: str, **kwargs) -> Path:
    from culturelens.backends.fake import FakeBackend
    from culturelens.runner import RunConfig, Runner

    generate_text = kwargs.pop("generate_text", None)
    cfg = RunConfig(out=str(out), cache=str(out.parent / f"{out.name}.sqlite"), n_boot=200, **kwargs)
    return Runner(cfg, backend=FakeBackend(policy, generate_text=generate_text)).run().run_dir


def _xss_data(folder: Path) -> Path:
    rows = [
        {
            "id": f"x-{i}",
            "kind": "multiple_choice",
            "country": c,
            "topic": "food<img src=x onerror=window.__pwned=3>",
            "question": f"Q{i} </script><script>window.__pwned=4</script>",
            "options": ["<b>a</b>", "b", "c", "d"],
            "answer": i % 4,
        }
        for i, c in enumerate(["Japan", "Kenya", "Brazil", "India", "Peru", "France", "Australia", "Egypt"])
    ]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "starter.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return folder


def _outcomes(run_dir: Path) -> dict[str, int]:
    recs = [json.loads(x) for x in (run_dir / "samples.jsonl").read_text(encoding="utf-8").splitlines() if x]
    return {
        "all": len(recs),
        "correct": sum(1 for r in recs if r["valid"] and r["metrics"]["acc"] >= 0.5),
        "incorrect": sum(1 for r in recs if r["valid"] and r["metrics"]["acc"] < 0.5),
        "invalid": sum(1 for r in recs if not r["valid"]),
    }


def _check_clean(b: Browser, page: Path) -> None:
    assert b.errors() == [], b.errors()
    reqs = b.requests()
    assert set(reqs) <= {page.resolve().as_uri()}, reqs
    assert b.js("performance.getEntriesByType('resource').length") == 0


def _count_is(b: Browser, n: int) -> bool:
    return b.wait_for(f"document.getElementById('explorer-count').dataset.count === '{n}'", timeout=5)


def _size(b: Browser, selector: str) -> list[float]:
    return b.js(
        f"(() => {{ const r = document.querySelector({json.dumps(selector)}).getBoundingClientRect(); return [r.width, r.height]; }})()"
    )


def test_single_run_report_renders_offline(browser: Browser, tmp_path: Path):
    run = _fake_run(
        tmp_path / "sweep", "hash", limit=120, variants=expand(["option_order=identity,reversed"])
    )
    (run / "alignment.json").write_text(json.dumps(ALIGNMENT), encoding="utf-8")
    page = build_report([run], tmp_path / "report.html")
    browser.open(page)
    _check_clean(browser, page)
    # map: an SVG with size, countries with data coloured, countries without data hatched
    w, h = _size(browser, "#map-svg")
    assert w > 600 and h > 250
    n_countries = len(json.loads((run / "results.json").read_text())["tasks"]["starter"]["by"]["country"])
    coloured = browser.js("document.querySelectorAll('#map-svg .has-data').length")
    assert coloured >= n_countries - 2  # a country is a path and maybe a marker too
    assert browser.js("document.querySelectorAll('#map-svg path.no-data').length") > 100
    assert browser.js("getComputedStyle(document.querySelector('#map-svg path.no-data')).fill").startswith(
        "url("
    )
    # forest plot: one point per country plus one diamond per region
    w, h = _size(browser, "#forest-svg")
    assert w > 600 and h > 300
    assert browser.js("document.querySelectorAll('#forest-svg .forest-row .point').length") == n_countries
    # sort control re-draws the plot
    browser.js(
        "(() => { const s = document.getElementById('ctl-sort'); s.value = 'asc'; s.dispatchEvent(new Event('change')); })()"
    )
    assert browser.js("document.querySelectorAll('#forest-svg .forest-group').length") == 0
    # stability section is shown for a sweep, with its heatmap
    assert browser.js("document.getElementById('stability').hidden") is False
    assert _size(browser, "#stability svg.heatmap")[0] > 100
    # survey alignment (alignment.json): nearest countries and steerability tables
    assert browser.js("document.getElementById('alignment').hidden") is False
    assert browser.js("document.querySelectorAll('#alignment .align-table tr').length") == 1 + 3
    assert "Steerability" in browser.js("document.getElementById('alignment').textContent")
    # the nearest-countries verdict: Japan and Kenya's intervals lie above their uniform baselines
    verdict = browser.js("document.querySelector('#alignment .align-verdict').textContent")
    assert verdict.startswith("Better than evenly spread answers for 2 countries: Japan, Kenya")
    assert "not determined: Japan's rank 95% interval is 1–2" in verdict
    # explorer filter: a real click changes the count to the expected number
    expect = _outcomes(run)
    assert _count_is(browser, expect["all"])
    browser.click("#ex-outcome-incorrect")
    assert _count_is(browser, expect["incorrect"])
    assert expect["incorrect"] not in (0, expect["all"])
    browser.click("#ex-outcome-correct")
    assert _count_is(browser, expect["correct"])
    assert browser.js("document.querySelectorAll('#explorer-list details.sample').length") == min(
        50, expect["correct"]
    )
    browser.click("#ex-outcome-all")
    assert browser.errors() == []
    shot = browser.screenshot(ARTIFACTS / "report.png")
    assert shot.stat().st_size > 20_000


def test_injected_script_does_not_run(browser: Browser, tmp_path: Path):
    run = _fake_run(
        tmp_path / "xss",
        "first",
        mode=Mode.GENERATE,
        data_dir=str(_xss_data(tmp_path / "data")),
        generate_text=XSS,
    )
    page = build_report([run], tmp_path / "xss.html")
    browser.open(page)
    _check_clean(browser, page)
    browser.click("#explorer-list details.sample > summary")  # open a sample: prompt + raw response
    assert browser.wait_for("!!document.querySelector('#explorer-list details.sample pre.response')")
    raw = browser.js("document.querySelector('#explorer-list details.sample pre.response').textContent")
    assert raw == XSS
    assert "</script><script>window.__pwned=4" in browser.js(
        "document.querySelector('#explorer-list pre.prompt').textContent"
    )
    assert browser.js("typeof window.__pwned") == "undefined"
    assert (
        browser.js("document.querySelectorAll('img, main script, #explorer-list b, svg[onload]').length") == 0
    )
    assert "onerror=window.__pwned=3" in browser.js("document.getElementById('explorer-list').textContent")
    assert browser.errors() == []


def test_two_run_comparison_renders(browser: Browser, tmp_path: Path):
    a = _fake_run(tmp_path / "a", "first", limit=80)
    b = _fake_run(tmp_path / "b", "hash", limit=80)
    page = build_report([a, b], tmp_path / "cmp.html")
    browser.open(page)
    _check_clean(browser, page)
    assert browser.js("document.getElementById('comparison').hidden") is False
    # the paired table leads (task, metric, B, shared items, A and B on them, A - B), then each run on all
    # of its own items (task, metric, run, score, n, baselines: a row per run)
    assert browser.js("document.querySelectorAll('#paired-table thead th').length") == 7
    assert browser.js("document.querySelectorAll('#paired-table tbody tr').length") == 1
    assert browser.js("document.querySelectorAll('#headline-table thead th').length") == 6
    assert browser.js("document.querySelectorAll('#headline-table tbody tr').length") == 2
    assert browser.js("document.querySelectorAll('#headline-table td.baselines').length") == 2
    assert browser.js("document.querySelectorAll('.item-set-warning').length") == 0  # same items
    heads = browser.js(
        "Array.from(document.querySelectorAll('#paired-table thead th')).map(t => t.textContent)"
    )
    assert sum("A − B" in t for t in heads) == 1
    assert "positive: A scored higher" in browser.js("document.getElementById('headline').textContent")
    # the page is no wider than the window: a table scrolls inside its box if it must
    assert browser.js("document.documentElement.scrollWidth <= window.innerWidth")
    assert browser.js("document.querySelectorAll('.compare-table tr').length") > 10
    n = browser.js("document.querySelectorAll('#forest-svg .forest-row').length")
    assert browser.js("document.querySelectorAll('#forest-svg .forest-row .point').length") == 2 * n
    # switching the map to run 2 recolours it
    before = browser.js(
        "Array.from(document.querySelectorAll('#map-svg .has-data')).map(p => p.getAttribute('fill')).join()"
    )
    browser.js(
        "(() => { const s = document.getElementById('ctl-run'); s.value = '1'; s.dispatchEvent(new Event('change')); })()"
    )
    after = browser.js(
        "Array.from(document.querySelectorAll('#map-svg .has-data')).map(p => p.getAttribute('fill')).join()"
    )
    assert before != after
    browser.click("#ex-run")
    assert browser.errors() == []
    browser.screenshot(ARTIFACTS / "report-compare.png")


def test_large_run_compressed_and_paginated(browser: Browser, tmp_path: Path, monkeypatch):
    """Samples embedded gzip-compressed (as for large runs) are inflated in the page; pages of 50."""
    import culturelens.report as report_mod

    monkeypatch.setattr(report_mod, "COMPRESS_OVER", 10_000)
    run = _fake_run(tmp_path / "big", "hash", variants=expand(["option_order=identity,reversed"]))
    page = build_report([run], tmp_path / "big.html")
    assert 'data-encoding="gzip+base64"' in page.read_text(encoding="utf-8")
    browser.open(page)
    _check_clean(browser, page)
    total = _outcomes(run)["all"]
    assert _count_is(browser, total)
    assert browser.js("document.querySelectorAll('#explorer-list details.sample').length") == 50
    first = browser.js("document.querySelector('#explorer-list details.sample').dataset.index")
    browser.click("#ex-next")
    assert browser.wait_for("document.getElementById('explorer-pager').textContent.includes('page 2 of')")
    assert browser.js("document.querySelector('#explorer-list details.sample').dataset.index") != first
    browser.js(
        "(() => { const s = document.getElementById('ex-country'); s.value = s.options[1].value;"
        " s.dispatchEvent(new Event('change')); })()"
    )
    assert int(browser.js("document.getElementById('explorer-count').dataset.count")) < total
    assert browser.errors() == []


@pytest.mark.slow
def test_real_model_report(browser: Browser, tmp_path: Path):
    """The embedded model's own results on the map (a small slice: the full default run is `make run`)."""
    pytest.importorskip("llama_cpp")
    from culturelens.runner import RunConfig, Runner

    run = (
        Runner(
            RunConfig(
                model="default",
                limit=12,
                out=str(tmp_path / "real"),
                cache=str(tmp_path / "c.sqlite"),
                n_boot=200,
            )
        )
        .run()
        .run_dir
    )
    page = build_report([run], tmp_path / "real.html")
    browser.open(page)
    _check_clean(browser, page)
    assert "SmolLM2" in browser.js("document.getElementById('report-title').textContent")
    assert browser.js("document.querySelectorAll('#map-svg .has-data').length") >= 10
    assert _size(browser, "#forest-svg")[1] > 200
    browser.screenshot(ARTIFACTS / "report-real-model.png")


def test_headline_shows_baselines_and_below_chance_title(browser: Browser, tmp_path: Path):
    """A run that does not clear chance is titled so, and every headline row shows its baselines."""
    run = _fake_run(tmp_path / "chance", "hash", limit=60)
    page = build_report([run], tmp_path / "chance.html")
    browser.open(page)
    _check_clean(browser, page)
    res = json.loads((run / "results.json").read_text())["tasks"]["starter"]
    lo, hi = res["metrics"]["acc"]["ci"]
    chance = res["baselines"]["chance"]["value"]
    title = browser.js("document.getElementById('report-title').textContent")
    cell = browser.js("document.querySelector('#headline-table td.baselines').textContent")
    assert f"chance {chance:.3f}" in cell and "always " in cell
    if lo > chance:
        assert "not above chance" not in title and title.startswith("Cultural competence")
    else:
        assert "not above chance on starter" in title and not title.startswith("Cultural competence")
    browser.screenshot(ARTIFACTS / "report-baselines.png")


def test_chance_line_diverging_map_and_small_n_hatching(browser: Browser, tmp_path: Path):
    """Every chart carries the chance line; the map is centred on chance; small-n countries are hatched."""
    from culturelens.report.data import build_model

    run = _fake_run(tmp_path / "small", "hash", limit=60)
    page = build_report([run], tmp_path / "small.html")
    browser.open(page)
    _check_clean(browser, page)
    t = build_model([run])["runs"][0]["tasks"]["starter"]
    chance = t["lines"]["acc"]["chance"]
    # the forest plot and the region plot draw the chance line, labelled
    for svg in ("#forest-svg", "#regions-svg"):
        assert browser.js(f"document.querySelectorAll('{svg} line.chance-line').length") == 1
        assert f"chance {chance:.2f}" in browser.js(
            f"document.querySelector('{svg} .chance-line-label').textContent"
        )
    assert browser.js("document.querySelectorAll('#map-legend .chance-tick').length") == 1
    # diverging scale: a country below chance is red-ish, one above chance blue-ish
    by_key = {c["key"]: c for c in t["countries"]}

    def fill(iso: str) -> list[int]:
        rgb = browser.js(
            f"document.querySelector('#map-svg [data-iso2=\"{iso}\"].has-data').getAttribute('fill')"
        )
        return [int(x) for x in rgb[4:-1].split(",")]

    below = [iso for iso, a in t["map"].items() if by_key[a["key"]]["metrics"]["acc"]["mean"] < chance - 0.05]
    above = [iso for iso, a in t["map"].items() if by_key[a["key"]]["metrics"]["acc"]["mean"] > chance + 0.05]
    drawn = set(
        browser.js("Array.from(document.querySelectorAll('#map-svg .has-data')).map(e => e.dataset.iso2)")
    )
    below, above = [i for i in below if i in drawn], [i for i in above if i in drawn]
    assert below and above
    assert all(fill(i)[0] > fill(i)[2] for i in below) and all(fill(i)[2] > fill(i)[0] for i in above)
    # countries under the small-n threshold are hatched (and only they)
    small = {iso for iso, a in t["map"].items() if by_key[a["key"]]["small"]}
    hatched = set(
        browser.js("Array.from(document.querySelectorAll('#map-svg .small-n')).map(e => e.dataset.iso2)")
    )
    assert hatched and hatched <= small and hatched == small & drawn
    assert "fewer than 10 scored units" in browser.js("document.getElementById('map-legend').textContent")
    # the forest plot marks them too
    assert browser.js("document.querySelectorAll('#forest-svg .forest-row.small-n').length") == sum(
        1 for c in t["countries"] if c["small"]
    )
    browser.screenshot(ARTIFACTS / "report-small-n.png")


def test_sweep_headline_leads_with_the_variant_mean(browser: Browser, tmp_path: Path):
    from culturelens.report.data import build_model

    run = _fake_run(tmp_path / "sw", "first", limit=60, variants=expand(["option_order=rotate"]))
    page = build_report([run], tmp_path / "sw.html")
    browser.open(page)
    _check_clean(browser, page)
    a = build_model([run])["runs"][0]["tasks"]["starter"]["across"]
    text = browser.js("document.querySelector('#headline-table .across').textContent")
    assert f"mean of 4 variants {a['mean']:.3f}" in text and f"range {a['min']:.3f}–{a['max']:.3f}" in text
    assert f'primary variant "{a["primary"]}"' in browser.js(
        "document.querySelector('#headline-table .primary').textContent"
    )
    # the per-country views show the primary variant, and say so
    for title in ("map-title", "forest-title", "regions-title"):
        assert f'primary variant "{a["primary"]}" (of 4)' in browser.js(
            f"document.getElementById('{title}').textContent"
        )
    # the answer-distribution panel shows the label preference a sweep exposes
    panel = browser.js("document.querySelector('.answers-panel').textContent")
    assert (
        'Items labelled A/B/C/D: fake-first picked "A" in 100%' in panel
        and "strong label preference" in panel
    )
    browser.screenshot(ARTIFACTS / "report-sweep.png")


def test_comparison_with_different_item_sets_warns(browser: Browser, tmp_path: Path):
    from culturelens.compare import compare_runs

    a = _fake_run(tmp_path / "a", "first", limit=80)
    b = _fake_run(tmp_path / "b", "hash", limit=20)
    page = build_report([a, b], tmp_path / "diff.html")
    browser.open(page)
    _check_clean(browser, page)
    shared = compare_runs(a, b)["tasks"]["starter"]["rows"][0]["n"]
    warn = browser.js("document.querySelector('.item-set-warning').textContent")
    assert "different item sets" in warn and f"{shared} shared" in warn and "80 items" in warn
    assert browser.js("document.querySelector('#paired-table td.shared-n').textContent") == str(shared)
    assert "not comparable with each other" in browser.js("document.getElementById('headline').textContent")
    assert browser.js("document.documentElement.scrollWidth <= window.innerWidth")
    browser.screenshot(ARTIFACTS / "report-compare-different-items.png")


def test_survey_sample_shows_model_and_human_distributions(browser: Browser, tmp_path: Path):
    run = _fake_run(
        tmp_path / "op",
        "first",
        tasks=["opinions"],
        data_dir=str(Path(__file__).parent / "fixtures" / "opinions" / "global_opinions.csv"),
    )
    page = build_report([run], tmp_path / "op.html")
    browser.open(page)
    _check_clean(browser, page)
    # no right or wrong for a survey: no correct/incorrect filter, no such badge
    assert browser.js("document.getElementById('ex-outcome-correct')") is None
    badges = browser.js(
        "Array.from(document.querySelectorAll('#explorer-list .badge')).map(b => b.textContent)"
    )
    assert badges and not any("correct" in b for b in badges)
    browser.click("#explorer-list details.sample > summary")
    assert browser.wait_for("!!document.querySelector('#explorer-list .survey-view')")
    assert browser.js("document.querySelectorAll('#explorer-list .human-dist tr.model-dist').length") == 1
    assert browser.js("document.querySelectorAll('#explorer-list .human-dist tr.ref-dist').length") >= 1
    assert "Jensen-Shannon" in browser.js("document.querySelector('#explorer-list .survey-view').textContent")
    assert "Survey: no right answer" in browser.js("document.getElementById('headline-table').textContent")
    assert browser.js("document.getElementById('report-title').textContent").startswith("Survey answers")
    assert "(nearest: " in browser.js("document.querySelector('#explorer-list .answer-line').textContent")
    browser.screenshot(ARTIFACTS / "report-survey.png")


def _vsm(tmp_path: Path, persona: str | None) -> Path:
    from culturelens.alignment import analyze_alignment
    from culturelens.backends.fake import FakeBackend
    from culturelens.runner import RunConfig, Runner
    from culturelens.schema import Variant

    cfg = RunConfig(
        model="fake:hash",
        tasks=["vsm"],
        countries=["Japan", "United States", "Brazil", "Germany", "Sweden"],
        variants=expand(["option_order=identity,reversed"], base=Variant(persona=persona)),
        out=str(tmp_path / f"vsm-{persona is not None}"),
        cache=str(tmp_path / "vsm.sqlite"),
        n_boot=200,
    )
    run = Runner(cfg, backend=FakeBackend("hash")).run().run_dir
    analyze_alignment(run, hofstede_file=HOFSTEDE if HOFSTEDE.exists() else None)
    return run


def test_vsm_values_are_tables_and_a_persona_less_run_says_countries_are_not_compared(
    browser: Browser, tmp_path: Path
):
    blind = _vsm(tmp_path, None)
    page = build_report([blind], tmp_path / "vsm-blind.html")
    browser.open(page)
    _check_clean(browser, page)
    # one row (no persona), the six indices as numbers; no JSON on the page
    assert browser.js("document.querySelectorAll('#alignment .vsm-table tr').length") == 2
    assert browser.js("document.querySelectorAll('#alignment .vsm-table td.num').length") == 6
    assert "{" not in browser.js("document.getElementById('alignment').textContent")
    assert "per-country differences in this run are chance" in browser.js(
        "document.querySelector('#headline-table .country-blind').textContent"
    )
    assert "per-country differences in this run are chance" in browser.js(
        "document.getElementById('map-note').textContent"
    )
    assert browser.js("document.documentElement.scrollWidth <= window.innerWidth")
    asked = _vsm(tmp_path, "typical:@item")
    page = build_report([asked], tmp_path / "vsm.html")
    browser.open(page)
    _check_clean(browser, page)
    assert browser.js("document.querySelectorAll('#headline-table .country-blind').length") == 0
    rows = browser.js(
        "Array.from(document.querySelectorAll('#alignment .vsm-table tr td:first-child')).map(t => t.textContent)"
    )
    assert sorted(rows) == sorted(
        f"{c} (typical persona)" for c in ["Japan", "United States", "Brazil", "Germany", "Sweden"]
    )
    # two presentations per country: each index shows its spread over them
    assert " ± " in browser.js("document.querySelector('#alignment .vsm-table td.num').textContent")
    # position bias per condition: a table with one row per persona, not raw records
    assert browser.js("document.querySelectorAll('#alignment .bias-table tr').length") == 1 + 5
    assert "{" not in browser.js("document.getElementById('alignment').textContent")
    if HOFSTEDE.exists():  # agreement with the published scores: one row per dimension, with its explanation
        assert browser.js("document.querySelectorAll('#alignment .vsm-hofstede tr').length") == 1 + 6
        assert "Spearman ρ: do the countries rank" in browser.js(
            "document.getElementById('alignment').textContent"
        )
    browser.screenshot(ARTIFACTS / "report-vsm.png")


def test_judged_task_shows_its_judge_reliability(browser: Browser, tmp_path: Path):
    """A pairwise judge that always prefers the first answer shown: swap consistency 0, flagged."""
    import culturelens as cl

    fix = Path(__file__).parent / "fixtures" / "calmqa"
    done = cl.run(
        model="fake:hash",
        tasks=["calmqa"],
        data_dir=str(fix),
        judges=["fake:first"],
        out=str(tmp_path / "judged"),
        cache=str(tmp_path / "j.sqlite"),
        report=False,
    )
    page = build_report([done.run_dir], tmp_path / "judged.html")
    browser.open(page)
    _check_clean(browser, page)
    ask = done.results["tasks"]["calmqa"]["judge"]["asks"]["vs_human"]
    assert ask["swap_consistency"] == 0.0
    panel = browser.js("document.querySelector('.judge-panel').textContent")
    assert "Judge reliability" in panel and "position-swap consistency 0.00 < 0.8" in panel
    head = browser.js(
        "Array.from(document.querySelectorAll('.judge-table th.unreliable')).map(t => t.textContent)"
    )
    assert head == ["vs_human (pairwise) ⚠"]
    cell = "document.querySelector('.judge-table tr[data-measure={}] td.num').textContent"
    assert browser.js(cell.format("swap_consistency")) == "0.00"
    assert browser.js(cell.format("first_position_rate")) == "100%"
    assert browser.js(cell.format("judge_alpha")) == "not measured"
    assert browser.js("document.documentElement.scrollWidth <= window.innerWidth")
    browser.screenshot(ARTIFACTS / "report-judge.png")


def test_improve_lict_and_crosslingual_sections(browser: Browser, tmp_path: Path):
    """An improve folder: the before/after section with its forest plot and change map (diverging on 0,
    small n hatched); a lict run and a run with crosslingual.json: their sections."""
    from report_fixtures import LICT_DATA, fake_improve
    from test_crosslingual import build_scripted_run

    from culturelens import crosslingual as xl
    from culturelens.report.data import build_model

    s = fake_improve(tmp_path / "imp")
    page = build_report([tmp_path / "imp"], tmp_path / "improve.html")
    browser.open(page)
    _check_clean(browser, page)
    assert browser.js("document.getElementById('improve').hidden") is False
    iv = build_model([tmp_path / "imp"])["improve"][0]
    for key, sp in iv["splits"].items():
        sid = f"improve-0-{key}"
        n_rows = browser.js(f"document.querySelectorAll('#{sid}-forest .forest-row').length")
        assert n_rows == len(sp["countries"])
        assert browser.js(f"document.querySelectorAll('#{sid}-forest .forest-row.small-n').length") == sum(
            c["small"] for c in sp["countries"]
        )
        drawn = browser.js(
            f"Array.from(document.querySelectorAll('#{sid}-map path.has-data')).map(e => [e.dataset.iso2, e.getAttribute('fill'), +e.dataset.change])"
        )
        assert drawn
        for _iso, fill, change in drawn:  # red below 0, blue above, white-ish at 0
            r, _g, b = (int(x) for x in fill[4:-1].split(","))
            assert (r > b) if change < 0 else (b > r) if change > 0 else abs(r - b) < 3
        hatched = set(
            browser.js(
                f"Array.from(document.querySelectorAll('#{sid}-map path.small-n')).map(e => e.dataset.iso2)"
            )
        )
        assert hatched == {c["iso2"] for c in sp["countries"] if c["small"]} & {d[0] for d in drawn}
    text = browser.js("document.getElementById('improve-blocks').textContent")
    for needle in (
        "held-out items",
        "held-out countries",
        "robust (right under every variant)",
        "Position check",
        "Transfer: starter",
        "Control cost",
        s["verdicts"][0],
    ):
        assert needle in text, needle
    assert browser.js("document.querySelectorAll('.positions-table td.hot').length") > 0  # the collapse
    browser.screenshot(ARTIFACTS / "report-improve.png")
    # lict and cross-lingual consistency
    xrun = build_scripted_run(tmp_path / "xl")
    (xrun / "crosslingual.json").write_text(json.dumps(xl.analyze(xrun)), encoding="utf-8")
    runs = [xrun]
    if LICT_DATA.is_dir():
        from report_fixtures import lict_run

        runs.insert(0, lict_run(tmp_path / "lict", limit=20))
    page = build_report(runs, tmp_path / "translation.html")
    browser.open(page)
    _check_clean(browser, page)
    assert browser.js("document.getElementById('translation').hidden") is False
    assert "Spain" in browser.js("document.querySelector('.crosslingual-block').textContent")
    if len(runs) == 2:
        txt = browser.js("document.querySelector('.lict-block').textContent")
        assert "Haiti" in txt and "p (Holm)" in txt
        assert browser.js("document.querySelectorAll('#lict-0-acc .forest-row').length") == 3
    browser.screenshot(ARTIFACTS / "report-translation.png")
