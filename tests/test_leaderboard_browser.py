"""The static leaderboard page in a real headless Chromium (Debian's `chromium`): it loads from file://, the
tables hold the rows, and the PR/ROC figures render (naturalWidth > 0). Skips when chromium is absent.

The page is driven through the DevTools protocol over a pipe (--remote-debugging-pipe: JSON messages ending
in a NUL byte on file descriptors 3 and 4), so the page under test is exactly what `facebench leaderboard`
wrote, with no script injected into it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.test_leaderboard import write_synthetic_results

CHROMIUM_NAMES = ("chromium", "chromium-browser")
PROBE = """(() => {
  const tables = [...document.querySelectorAll('table.leaderboard')].map(t => ({
    benchmark: t.dataset.benchmark,
    rows: t.querySelectorAll('tbody tr').length,
    kinds: [...t.querySelectorAll('tbody tr')].map(r => r.dataset.kind),
    names: [...t.querySelectorAll('tbody tr')].map(r => r.cells[1].textContent)}));
  const images = [...document.images].map(i => ({src: i.src.slice(0, 40), complete: i.complete,
                                                 width: i.naturalWidth, height: i.naturalHeight}));
  return JSON.stringify({title: document.title, tables, images});
})()"""


def chromium_binary() -> str | None:
    """Path of the system Chromium, or None."""
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


class DevTools:
    """A minimal DevTools-protocol client over --remote-debugging-pipe."""

    def __init__(self, binary: str, profile: str) -> None:
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        args = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--no-default-browser-check", "--remote-debugging-pipe",
                f"--user-data-dir={profile}", "about:blank"]

        def child_fds() -> None:  # the browser reads commands on fd 3 and writes replies on fd 4
            import fcntl

            # Move both ends above 3/4 first, so neither dup2 overwrites the other.
            read_end = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD, 100)
            write_end = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD, 100)
            os.dup2(read_end, 3)
            os.dup2(write_end, 4)

        self.process = subprocess.Popen(args, preexec_fn=child_fds, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, close_fds=False)
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []

    def send(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float = 30.0) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_event(self, method: str, timeout: float = 30.0) -> dict:
        for event in self.events:
            if event.get("method") == method:
                self.events.remove(event)
                return event
        deadline = time.monotonic() + timeout
        while True:
            event = self._read(deadline)
            if event.get("method") == method:
                return event
            self.events.append(event)

    def _read(self, deadline: float) -> dict:
        import select

        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no reply from chromium")
            ready, _, _ = select.select([self._from_browser], [], [], left)
            if ready:
                chunk = os.read(self._from_browser, 1 << 16)
                if not chunk:
                    raise RuntimeError("chromium closed the DevTools pipe")
                self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=5)
        except Exception:
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)


def load_page(binary: str, url: str) -> dict:
    """Open url in a fresh headless tab, wait for the load event, return what PROBE reports."""
    with tempfile.TemporaryDirectory() as profile:
        tools = DevTools(binary, profile)
        try:
            target = tools.send("Target.createTarget", {"url": "about:blank"})["targetId"]
            session = tools.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            tools.send("Page.enable", session=session)
            tools.send("Page.navigate", {"url": url}, session=session)
            tools.wait_event("Page.loadEventFired")
            value = tools.send("Runtime.evaluate", {"expression": PROBE, "returnByValue": True},
                               session=session)["result"]["value"]
            return json.loads(value)
        finally:
            tools.close()


@pytest.fixture(scope="module")
def chromium() -> str:
    binary = chromium_binary()
    if binary is None:
        pytest.skip("chromium not installed (Debian: apt-get install chromium)")
    return binary


@pytest.fixture(scope="module")
def pages(chromium: str, tmp_path_factory) -> Path:
    """The synthetic leaderboard written once by the CLI: figures embedded (board.html) and beside
    (site/index.html with site/index_figures/)."""
    from facebench.cli import main

    root = tmp_path_factory.mktemp("pages")
    results = write_synthetic_results(root / "results")
    main(["leaderboard", "--results", str(results), "--format", "html", "--out", str(root / "board.html")])
    main(["leaderboard", "--results", str(results), "--format", "html", "--out", str(root / "site" / "index.html"),
          "--figures", "files"])
    return root


def test_page_with_embedded_figures_renders(pages: Path, chromium: str) -> None:
    report = load_page(chromium, (pages / "board.html").as_uri())
    assert report["title"] == "facebench leaderboard"
    tables = {t["benchmark"]: t for t in report["tables"]}
    assert set(tables) == {"widerface-val", "fddb", "afw"}
    assert tables["widerface-val"]["rows"] == 4  # three detectors, one of them on two protocol versions
    assert tables["widerface-val"]["names"][0] == "strong"  # sorted by hard AP
    assert tables["fddb"]["rows"] == 2 and tables["afw"]["rows"] == 1
    assert len(report["images"]) == 3
    for image in report["images"]:
        assert image["complete"] and image["width"] > 0 and image["height"] > 0, image
        assert image["src"].startswith("data:image/png;base64,")


def test_page_with_figure_files_beside_it_renders(pages: Path, chromium: str) -> None:
    site = pages / "site"
    assert sorted(p.name for p in (site / "index_figures").iterdir()) == ["afw.png", "fddb.png",
                                                                           "widerface-val.png"]
    report = load_page(chromium, (site / "index.html").as_uri())
    assert sum(t["rows"] for t in report["tables"]) == 7
    assert len(report["images"]) == 3
    assert all(i["width"] > 0 and i["src"].startswith("file://") for i in report["images"])


def test_broken_figure_is_detected(pages: Path, tmp_path: Path, chromium: str) -> None:
    """The probe really sees image failures: with one figure file missing, that image has width 0."""
    site = tmp_path / "site"
    shutil.copytree(pages / "site", site)
    (site / "index_figures" / "fddb.png").unlink()
    report = load_page(chromium, (site / "index.html").as_uri())
    widths = sorted(i["width"] for i in report["images"])
    assert widths[0] == 0 and widths[1] > 0


def test_real_leaderboard_page_with_published_rows(tmp_path: Path, chromium: str, shared_data: Path) -> None:
    """results/baselines plus the published references of ../shared/data: every row and figure renders."""
    from facebench.leaderboard import build_leaderboard, write_leaderboard
    from facebench.store import scan
    from tests.test_leaderboard import real_references

    repo = Path(__file__).resolve().parent.parent
    board = build_leaderboard(scan(repo / "results" / "baselines"), real_references(shared_data),
                              benchmarks=["widerface-val", "afw"])
    page = tmp_path / "real.html"
    write_leaderboard(board, "html", page)
    report = load_page(chromium, page.as_uri())
    tables = {t["benchmark"]: t for t in report["tables"]}
    wider = tables["widerface-val"]
    assert wider["kinds"].count("published") == 41
    assert wider["kinds"].count("evaluated") >= 6
    assert "MogFace" in wider["names"] and "yolov7-tiny-leak" in wider["names"]
    assert tables["afw"]["kinds"].count("published") == 11
    assert len(report["images"]) == 2 and all(i["width"] > 0 for i in report["images"])
