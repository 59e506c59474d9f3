"""The HTML leaderboard in headless Chromium, driven over the DevTools protocol (websocket-client).

Chromium is Debian's ``chromium`` (``$NEGBENCH_CHROMIUM`` overrides). When it is missing, the set-up
installs it with apt-get if running as root; otherwise the test is skipped and the reason printed.
Set ``$NEGBENCH_SCREENSHOT_DIR`` to keep the screenshot.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from negbench.report.pages import write_report
from negbench.testing.results import synthetic_steps, synthetic_store

XSS = "<img src=x onerror=alert(1)>|x"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-dev-shm-usage",
    "--remote-debugging-port=0",
]


def _skip(reason: str) -> None:
    print(f"\nSKIPPED browser test: {reason}", file=sys.__stderr__, flush=True)  # visible despite capture
    pytest.skip(reason)


def find_chromium() -> tuple[str | None, str]:
    """(path to a Chromium binary, or None with the reason); installs Debian's chromium as root."""
    override = os.environ.get("NEGBENCH_CHROMIUM")
    if override:
        return (override, "") if Path(override).is_file() else (None, f"NEGBENCH_CHROMIUM={override} not found")
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path, ""
    if not shutil.which("apt-get"):
        return None, "no chromium on PATH and no apt-get to install it"
    if os.geteuid() != 0:
        return None, "no chromium on PATH and not root, so cannot apt-get install chromium"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]):
        try:
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return None, f"{' '.join(cmd)} failed: {exc}"
        if done.returncode != 0:
            return None, f"{' '.join(cmd)} failed: {done.stderr.strip().splitlines()[-1:]}"
    path = shutil.which("chromium")
    return (path, "") if path else (None, "apt-get installed chromium but it is not on PATH")


class DevTools:
    """A minimal Chrome DevTools protocol client over one page's websocket."""

    def __init__(self, ws_url: str) -> None:
        import websocket

        self.ws = websocket.create_connection(ws_url, timeout=30, suppress_origin=True)
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        msg_id = self.next_id
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self.events.append(msg)

    def wait_for(self, method: str, timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events:
                if event.get("method") == method:
                    self.events.remove(event)
                    return event
            if time.monotonic() > deadline:
                raise TimeoutError(method)
            self.events.append(json.loads(self.ws.recv()))

    def eval(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def click(self, selector: str) -> None:
        """A real mouse click (pressed + released) at the centre of the first element matching selector."""
        box = self.eval(
            f"(() => {{ const el = document.querySelector({json.dumps(selector)});"
            "el.scrollIntoView({block: 'center'}); const r = el.getBoundingClientRect();"
            "return {x: r.x + r.width / 2, y: r.y + r.height / 2}; })()"
        )
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.send(
                "Input.dispatchMouseEvent",
                type=kind,
                x=box["x"],
                y=box["y"],
                button="left",
                clickCount=0 if kind == "mouseMoved" else 1,
            )

    def screenshot(self, path: Path, width: int = 1280) -> Path:
        """A full-page PNG of the current page."""
        self.send("Emulation.setDeviceMetricsOverride", width=width, height=900, deviceScaleFactor=1, mobile=False)
        size = self.send("Page.getLayoutMetrics")["cssContentSize"]
        shot = self.send(
            "Page.captureScreenshot",
            format="png",
            captureBeyondViewport=True,
            clip={"x": 0, "y": 0, "width": width, "height": size["height"], "scale": 1},
        )
        import base64

        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def close(self) -> None:
        self.ws.close()


class Browser:
    """A headless Chromium with a fresh profile, and one page to drive."""

    def __init__(self, binary: str) -> None:
        self.profile = tempfile.mkdtemp(prefix="negbench-chromium-")
        self.proc = subprocess.Popen(
            [binary, *FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port_file = Path(self.profile) / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.is_file() and len(port_file.read_text().splitlines()) >= 2):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.quit()
                raise RuntimeError("chromium did not start its DevTools endpoint")
            time.sleep(0.1)
        port = int(port_file.read_text().splitlines()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as resp:
            pages = [t for t in json.load(resp) if t.get("type") == "page"]
        self.page = DevTools(pages[0]["webSocketDebuggerUrl"])

    def open(self, path: Path) -> DevTools:
        page = self.page
        for domain in ("Page", "Runtime", "Log"):
            page.send(f"{domain}.enable")
        page.send("Page.navigate", url=path.resolve().as_uri())
        page.wait_for("Page.loadEventFired")
        return page

    def quit(self) -> None:
        if getattr(self, "page", None) is not None:
            with contextlib.suppress(Exception):
                self.page.send("Browser.close")
            self.page.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        shutil.rmtree(self.profile, ignore_errors=True)


def screenshot_report(html_path: Path, png_path: Path, binary: str | None = None) -> Path:
    """Screenshot an HTML report (used by the test, and handy by hand)."""
    binary = binary or find_chromium()[0]
    if binary is None:
        raise RuntimeError("no chromium")
    browser = Browser(binary)
    try:
        return browser.open(html_path).screenshot(png_path)
    finally:
        browser.quit()


@pytest.fixture(scope="module")
def browser():
    pytest.importorskip("websocket", reason="websocket-client is not installed (pip install websocket-client)")
    binary, reason = find_chromium()
    if binary is None:
        _skip(reason)
    try:
        b = Browser(binary)
    except Exception as exc:
        _skip(f"chromium at {binary} could not be started: {exc}")
    yield b
    b.quit()


def rows_of(page: DevTools, col: int) -> list[str]:
    return page.eval(
        "Array.from(document.querySelector('table.sortable').tBodies[0].rows)"
        f".map(r => r.cells[{col}].getAttribute('data-sort'))"
    )


def test_leaderboard_in_chromium(browser, tmp_path) -> None:
    store = synthetic_store(
        tmp_path / "store",
        {"in-batch": 0.0, "bm25": 0.06, XSS: 0.02, "none": -0.1, "dense": 0.03},
        n_queries=40,
        noise=0.03,
    )
    _, html_path = write_report(store.directory, tmp_path / "site")
    page = browser.open(html_path)

    headers = page.eval("Array.from(document.querySelectorAll('table.sortable thead th')).map(h => h.innerText)")
    metric_col = next(i for i, h in enumerate(headers) if h.startswith("ndcg@10"))
    page.click(f"table.sortable thead th:nth-child({metric_col + 1}) button")
    values = [float(v) for v in rows_of(page, metric_col)]
    assert values == sorted(values, reverse=True)  # numeric columns sort descending first
    assert (
        page.eval(f"document.querySelectorAll('table.sortable thead th')[{metric_col}].getAttribute('aria-sort')")
        == "descending"
    )
    page.click(f"table.sortable thead th:nth-child({metric_col + 1}) button")
    assert [float(v) for v in rows_of(page, metric_col)] == sorted(values)
    page.click("table.sortable thead th:nth-child(1) button")
    names = rows_of(page, 0)
    assert names == sorted(names, key=str.lower) and len(names) == 5

    # the hostile label is text: no <img> element, no dialog, the literal string is visible
    srcs = page.eval("Array.from(document.images).map(i => i.getAttribute('src'))")
    assert srcs and all(src.startswith("data:image/svg+xml;base64,") for src in srcs)  # only the figures
    assert page.eval(f"document.body.innerText.includes({json.dumps(XSS)})")
    assert not [e for e in page.events if e.get("method") == "Page.javascriptDialogOpening"]
    csp_errors = [
        e
        for e in page.events
        if e.get("method") == "Log.entryAdded" and "Content Security Policy" in e["params"]["entry"].get("text", "")
    ]
    assert not csp_errors, csp_errors

    png = page.screenshot(tmp_path / "leaderboard.png")
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    keep = os.environ.get("NEGBENCH_SCREENSHOT_DIR")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(png, Path(keep) / png.name)


def test_diagnostics_render_in_chromium(browser, tmp_path) -> None:
    """Learning curves, hardness series, overlap heat map and rank summary: visible, zero CSP violations."""
    effects = {"in-batch": 0.0, "bm25": 0.06, "dense": 0.03, "none": -0.1}
    store = synthetic_store(tmp_path / "store", effects, datasets=("a", "b", "c"), n_queries=20, seeds=(0, 1))
    synthetic_steps(store.rows(), effects).write_parquet(store.directory / "steps.parquet")
    for k, row in enumerate(store.rows().filter(pl.col("strategy").is_in(["bm25", "dense"])).iter_rows(named=True)):
        store.write_negatives(
            row["run_id"],
            {"query_id": ["q1", "q2"], "positive_id": ["p1", "p2"], "doc_id": ["x", "y" if k % 2 else "z"]},
        )
    _, html_path = write_report(store.directory, tmp_path / "site")

    page = browser.page
    page.send("Page.enable")
    page.send(  # runs before the page's own code and is not subject to its CSP: counts every violation
        "Page.addScriptToEvaluateOnNewDocument",
        source="window.__csp = []; document.addEventListener('securitypolicyviolation', "
        "e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));",
    )
    page = browser.open(html_path)
    assert page.eval("window.__csp") == []
    assert not [
        e
        for e in page.events
        if e.get("method") == "Log.entryAdded" and "Content Security Policy" in e["params"]["entry"].get("text", "")
    ]
    for selector, count in (
        (".learning-curves img.plot", 3),
        (".hardness img.plot", 3),
        (".overlap img.plot", 3),
        ("table.rank-summary", 1),
    ):
        boxes = page.eval(
            f"Array.from(document.querySelectorAll({json.dumps(selector)})).map(el => {{"
            "const r = el.getBoundingClientRect(); return [r.width, r.height, el.naturalWidth || 1, "
            "el.complete === undefined ? true : el.complete]; })"
        )
        assert len(boxes) == count, (selector, boxes)
        assert all(w > 50 and h > 50 and nw > 0 and done for w, h, nw, done in boxes), (selector, boxes)
    imgs = page.eval("Array.from(document.images).map(i => [i.naturalWidth, i.naturalHeight])")
    assert len(imgs) == 15 and all(w > 100 and h > 100 for w, h in imgs)  # 5 figures per dataset, all decoded
    ranks = page.eval(
        "Array.from(document.querySelectorAll('table.rank-summary tbody tr')).map(r => r.cells[0].innerText)"
    )
    assert ranks == ["bm25", "dense", "in-batch", "none"]
    png = page.screenshot(tmp_path / "diagnostics.png")
    assert len(png.read_bytes()) > 50_000
    keep = os.environ.get("NEGBENCH_SCREENSHOT_DIR")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(png, Path(keep) / png.name)


def test_primary_table_fits_1400_px(browser, tmp_path) -> None:
    """Sixteen strategies, one with a long budget note: at 1,400 px the page does not scroll sideways and the
    primary table (label, metric, Δ with CI, Holm p, detectable Δ, seeds, budget) is whole on screen."""
    names = ["in-batch", "random", "bm25", "dense", "positive-aware", "ance", "tas-b", "ngame", "simans", "star"]
    names += ["neighbourhood", "rs2", "large-batch", "in-batch-last", "progressive", "none"]
    store = synthetic_store(tmp_path / "store", {n: 0.01 * (i % 5) for i, n in enumerate(names)}, seeds=(0,))
    rows = store.rows().with_columns(
        pl.when(pl.col("strategy") == "rs2")
        .then(pl.lit("rs2: fraction 0.5 of the examples per epoch (by design)"))
        .otherwise(pl.lit("equal"))
        .alias("budget")
    )
    store.results_path.unlink()
    rows.write_parquet(store.results_path)
    _, html_path = write_report(store.directory, tmp_path / "site")
    page = browser.open(html_path)
    page.send("Emulation.setDeviceMetricsOverride", width=1400, height=900, deviceScaleFactor=1, mobile=False)
    box = page.eval(
        "(() => { const t = document.querySelector('table.sortable'); const r = t.getBoundingClientRect();"
        "const s = t.closest('.scroll') || t.parentElement; return {right: r.right,"
        "page: document.documentElement.scrollWidth, scrolls: s.scrollWidth > s.clientWidth,"
        "heads: Array.from(t.tHead.rows[0].cells).map(c => c.innerText)}; })()"
    )
    assert box["right"] <= 1400 and box["page"] <= 1400 and not box["scrolls"], box
    heads = [h.rstrip(" ↕") for h in box["heads"]]
    assert heads == ["strategy", "seeds", "ndcg@10", "Δ vs baseline [95% CI]", "Holm p", "detectable Δ", "budget"]


def test_missing_chromium_gives_a_reason(monkeypatch) -> None:
    monkeypatch.delenv("NEGBENCH_CHROMIUM", raising=False)
    monkeypatch.setattr(shutil, "which", lambda name: "/usr/bin/apt-get" if name == "apt-get" else None)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    path, reason = find_chromium()
    assert path is None and "not root" in reason
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert "no apt-get" in find_chromium()[1]
    monkeypatch.setenv("NEGBENCH_CHROMIUM", "/nonexistent/chromium")
    assert find_chromium() == (None, "NEGBENCH_CHROMIUM=/nonexistent/chromium not found")
