"""The web UI in a real browser: Debian's chromium driven by Playwright, against `modelshelf ui` run as a subprocess.

No browser is downloaded: Playwright drives the system's ``/usr/bin/chromium``
(``.ci/run`` installs it with apt where it is missing). Where chromium or
Playwright is absent the tests are skipped with the reason, unless
MODELSHELF_REQUIRE_SERVERS=1 (CI sets it), which makes that a failure.

Every page is watched: a console error, an uncaught exception or a dialog
(``alert``) fails the test, and screenshots of each view go to a temporary
directory (``MODELSHELF_SCREENSHOTS=DIR`` keeps them there instead). With
``MODELSHELF_UPDATE_SCREENSHOTS=1`` the version page's screenshot is written
to ``docs/ui-version.png``, the picture the README shows.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.ui_data import XSS, build, build_hostile

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parent.parent
README_SCREENSHOT = ROOT / "docs" / "ui-version.png"


def _unavailable(reason: str) -> None:
    message = f"no browser test: {reason}"
    if os.environ.get("MODELSHELF_REQUIRE_SERVERS") == "1":
        pytest.fail(message)
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def ui_server(home: Path, *extra: str) -> Iterator[str]:
    """``modelshelf --home HOME ui --port P`` as a real process; yields its base URL, stops it afterwards."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "registry", "--home", str(home), "ui", "--port", str(port), "--json", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None and process.stdout is not None
        announcement = process.stderr.readline()
        assert "bound to 127.0.0.1" in announcement and "this machine only" in announcement, announcement
        where = json.loads(process.stdout.readline())  # --json: where it listens, as data
        assert where["url"] == f"http://127.0.0.1:{port}/" and where["allow_writes"] == ("--allow-writes" in extra)
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert process.poll() is None, process.stderr.read()
                assert time.monotonic() < deadline, "modelshelf ui did not start listening within 30 s"
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ui-browser") / "reg"
    build(path).close()
    build_hostile(path).close()
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} is missing (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install -e '.[test]')")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture()
def shots(tmp_path: Path) -> Path:
    kept = os.environ.get("MODELSHELF_SCREENSHOTS")
    folder = Path(kept) if kept else tmp_path / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class Watched:
    """A page whose console errors, uncaught exceptions and dialogs are collected, to fail on."""

    def __init__(self, browser: Any) -> None:
        self.context = browser.new_context(viewport={"width": 1200, "height": 860})
        self.page = self.context.new_page()
        self.page.set_default_timeout(15_000)
        self.problems: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.problems.append(f"uncaught: {error}"))
        self.page.on("dialog", self._dialog)

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.problems.append(f"console error on {self.page.url}: {message.text}")

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(f"{dialog.type} on {self.page.url}: {dialog.message}")
        dialog.dismiss()

    def settle(self) -> None:
        self.page.wait_for_load_state("networkidle")

    def check(self) -> None:
        assert not self.dialogs, self.dialogs
        assert not self.problems, self.problems

    def close(self) -> None:
        self.context.close()


@pytest.fixture()
def watched(browser: Any) -> Iterator[Watched]:
    page = Watched(browser)
    yield page
    page.close()


def test_click_through_models_versions_a_version_compare_and_aliases(home: Path, watched: Watched, shots: Path) -> None:
    page = watched.page
    with ui_server(home) as base:
        page.goto(base + "/")
        assert page.locator("h1").inner_text() == "Models"
        assert page.locator("header .mode").inner_text() == "read-only"
        row = page.locator("#models tr", has=page.locator("a", has_text="iris-lr"))
        assert "production → 3" in row.inner_text()
        page.screenshot(path=shots / "models.png", full_page=True)

        # the filter language, its error position marked inline (htmx swaps the table in)
        page.fill("#q", "metrics.accuracy >= and")
        page.press("#q", "Enter")
        page.wait_for_selector(".query-error mark")
        assert page.locator(".query-error mark").get_attribute("title") == "position 20"
        page.screenshot(path=shots / "models-query-error.png")
        page.fill("#q", "tags.team = 'nlp'")
        page.press("#q", "Enter")
        page.wait_for_selector("#models a:has-text('tiny')")
        assert page.locator("#models a", has_text="iris-lr").count() == 0
        assert "q=tags.team" in page.url  # the filter is in the address, so it can be shared
        page.goto(base + "/")

        page.click("#models a:text-is('iris-lr')")
        page.wait_for_url(re.compile(r"/models/iris-lr$"))
        assert "4 versions" in page.locator(".summary").inner_text()
        versions = page.locator("#versions tbody tr td:nth-child(2)")
        assert versions.all_inner_texts() == ["4", "3", "2", "1"]
        page.click("#versions a.sort:has-text('loss')")  # sort by a metric: htmx swaps the table
        page.wait_for_selector("#versions a.sort.active:has-text('loss')")
        page.click("#versions a.sort:has-text('loss')")  # and the other way
        page.wait_for_selector("#versions a.sort.active:has-text('loss ▲')")
        assert versions.all_inner_texts() == ["4", "3", "2", "1"]
        page.screenshot(path=shots / "versions.png", full_page=True)

        page.check("input[aria-label='select iris-lr:2']")
        page.check("input[aria-label='select iris-lr:4']")
        page.click("button.compare")
        page.wait_for_url(re.compile(r"/compare\?"))
        changed = page.locator("table.compare tr.changed th code").all_inner_texts()
        assert {"clf__C", "accuracy", "stage"} <= set(changed) and "team" not in changed
        page.screenshot(path=shots / "compare.png", full_page=True)

        page.click("th a:has-text('iris-lr:4')")
        page.wait_for_url(re.compile(r"/versions/4$"))
        assert page.locator("h1").inner_text().startswith("iris-lr:4")
        facts = page.locator(".card").nth(1).inner_text()
        assert "sha256:" in facts and "rows recorded" in facts and "modelshelf check iris-lr:4" in facts
        assert page.locator(".lineage rect").count() == 4
        page.click("button:has-text('Check the bytes now')")  # allowed read-only: it only re-hashes
        page.wait_for_selector(".verified")
        assert "✓ intact" in page.locator("#trust").inner_text()
        page.screenshot(path=shots / "version.png", full_page=True)
        if os.environ.get("MODELSHELF_UPDATE_SCREENSHOTS") == "1":
            README_SCREENSHOT.parent.mkdir(exist_ok=True)
            # down to the lineage graph: the facts below it name this machine's paths and host
            page.evaluate("window.scrollTo(0, 0)")  # the check's answer scrolled to #trust
            bottom = page.locator(".graph").bounding_box()
            assert bottom is not None
            height = bottom["y"] + bottom["height"] + 4
            page.screenshot(path=README_SCREENSHOT, clip={"x": 0, "y": 0, "width": 1200, "height": height})

        page.click(".lineage a")  # the graph's boxes open the ancestors
        page.wait_for_url(re.compile(r"/versions/[123]$"))

        page.click("nav.tabs a:has-text('Metrics')")
        page.wait_for_url(re.compile(r"/metrics$"))
        assert page.locator("figure.panel svg").count() == 4
        assert page.locator("figure.panel svg").first.locator("line[stroke-dasharray]").count() == 3
        page.screenshot(path=shots / "metrics.png", full_page=True)

        page.click("nav.tabs a:has-text('Alias timeline')")
        page.wait_for_url(re.compile(r"/aliases$"))
        assert page.locator("section h2 .alias").all_inner_texts() == ["production", "staging"]
        page.fill("#as_of", "2000-01-01")
        page.click("button:has-text('Show')")
        page.wait_for_selector(".as-of")
        assert "pointed at nothing" in page.locator(".as-of").inner_text()
        page.screenshot(path=shots / "aliases.png", full_page=True)

        page.click("nav.tabs a:has-text('Audit log')")
        page.wait_for_url(re.compile(r"/audit\?model=iris-lr"))
        page.select_option("select[name=action]", "alias.move")
        page.click("button:has-text('Filter')")
        page.wait_for_url(re.compile(r"action=alias.move"))
        assert page.locator("tbody tr").count() == 2
        page.screenshot(path=shots / "audit.png", full_page=True)
        watched.settle()
    watched.check()


def test_an_alias_moved_from_the_browser_is_in_the_audit_trail(home: Path, watched: Watched, tmp_path: Path) -> None:
    import shutil

    from registry import Registry

    copy = tmp_path / "reg"
    shutil.copytree(home, copy)
    page = watched.page
    with ui_server(copy, "--allow-writes") as base:
        page.goto(base + "/models/iris-lr/aliases")
        assert page.locator("header .mode").inner_text() == "writes allowed"
        page.fill("input[name=alias]", "production")
        page.fill("input[name=version]", "1")
        page.click("button:has-text('Point it there')")
        page.wait_for_selector("section:has(h2 .alias:text-is('production')) tr.current")
        current = page.locator("section:has(h2 .alias:text-is('production')) tr.current td").first.inner_text()
        assert current == "1"
        watched.settle()
    watched.check()
    with Registry(copy) as reg:
        assert reg.get("iris-lr@production").version == 1
        assert reg.events("iris-lr")[-1].action == "alias.move"


def test_no_payload_runs_or_injects_an_element_in_any_view(home: Path, watched: Watched) -> None:
    page = watched.page
    urls = ["/", "/models/hostile", "/models/hostile/metrics", "/models/hostile/aliases", "/audit?model=hostile"]
    urls += [f"/models/hostile/versions/{v}" for v in range(1, len(XSS) + 1)]
    urls += ["/compare?ref=hostile:1&ref=hostile:2&ref=hostile:3&ref=hostile:4"]
    with ui_server(home) as base:
        for url in urls:
            page.goto(base + url)
            watched.settle()
            for folded in page.locator("details").all():  # open what is folded: nothing may run there either
                folded.evaluate("element => { element.open = true; }")
            injected = page.locator("[id^=xss], iframe, body script:not([src]), img[src=x], style:not([data-htmx])")
            assert injected.count() == 0, url
            assert page.evaluate("document.scripts.length") == 1, url  # htmx alone
        page.goto(base + "/")  # through htmx's swap as well
        page.fill("#q", XSS[1])
        page.press("#q", "Enter")
        page.wait_for_selector(".query-error")
        assert page.locator("[id^=xss]").count() == 0
        watched.settle()
    watched.check()
