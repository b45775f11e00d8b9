"""The web UI, server side: every route through Starlette's test client against real registries.

Status codes, what each page shows, pagination at a few hundred versions,
404s for unknown models and versions, writes refused when the UI is
read-only or the CSRF token is missing, and no user string ever reaching
a page unescaped. The browser side is tests/test_ui_browser.py.
"""

from __future__ import annotations

import html as html_module
import json
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from registry import InvalidArgument, Registry
from registry.ui import app
from registry.ui.csrf import COOKIE, FIELD
from registry.ui.server import allowed_hosts, build_app, is_loopback
from tests.ui_data import RAW_MARKERS, XSS, build, build_hostile

BASE = "http://127.0.0.1"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ui") / "reg"
    build(path).close()
    return path


@pytest.fixture()
def reg(built: Path, tmp_path: Path) -> Iterator[Registry]:
    """A copy of the built registry per test, so writes of one test never reach another."""
    shutil.copytree(built, tmp_path / "reg")
    with Registry(tmp_path / "reg") as registry:
        yield registry


@pytest.fixture()
def client(reg: Registry) -> TestClient:
    return TestClient(app(reg), base_url=BASE)


@pytest.fixture()
def writer(reg: Registry) -> TestClient:
    return TestClient(app(reg, allow_writes=True), base_url=BASE)


def text_of(html: str) -> str:
    """The page's text with tags removed and whitespace collapsed, to assert on what a reader sees."""
    return html_module.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)))


def test_models_page_lists_every_model_with_latest_count_and_aliases(client: TestClient, reg: Registry) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = text_of(response.text)
    assert "iris-lr" in page and "tiny" in page
    assert "production → 3" in page and "staging → 4" in page
    assert 'href="/models/iris-lr/versions/4"' in response.text
    last_move = reg.events("iris-lr")[-1]
    assert last_move.action == "alias.move"
    assert last_move.at.strftime("%Y-%m-%d %H:%M:%S UTC") in row_of(response.text, "iris-lr")


def row_of(html: str, model: str) -> str:
    """The models table's row of ``model``."""
    start = html.index(f'<a href="/models/{model}">')
    return html[start : html.index("</tr>", start)]


def test_models_search_takes_the_filter_language(client: TestClient) -> None:
    response = client.get("/", params={"q": "tags.team = 'nlp'"})
    assert response.status_code == 200
    assert "/models/tiny" in response.text and "/models/iris-lr" not in response.text
    response = client.get("/", params={"q": "metrics.accuracy >= 0.95 and tags.team = 'cv'"})
    assert "/models/iris-lr" in response.text and "/models/tiny" not in response.text


def test_a_malformed_filter_shows_its_position_inline(client: TestClient) -> None:
    response = client.get("/", params={"q": "metrics.accuracy >= and"})
    assert response.status_code == 400
    assert "position 20" in response.text
    assert '<mark title="position 20">a</mark>nd' in response.text
    # htmx swaps only 2xx answers: its partial carries the same error with 200
    partial = client.get("/", params={"q": "metrics.accuracy >= and"}, headers={"HX-Request": "true"})
    assert partial.status_code == 200 and "<html" not in partial.text and "position 20" in partial.text


def test_versions_page_sorts_by_a_metric_and_shows_chosen_columns(client: TestClient) -> None:
    response = client.get("/models/iris-lr", params={"sort": "metric:loss", "dir": "asc", "m": ["loss"]})
    assert response.status_code == 200
    order = re.findall(r'href="/models/iris-lr/versions/(\d+)">\d+</a></td>', response.text)
    assert order == ["4", "3", "2", "1"]  # loss falls as the version rises
    assert ">loss" in response.text and ">f1_macro" not in response.text


def test_versions_page_paginates_in_the_database(tmp_path: Path) -> None:
    with Registry(tmp_path / "many") as reg:
        for i in range(1, 76):
            reg.register("many", {"i": i}, metrics={"acc": i / 200})
        client = TestClient(app(reg), base_url=BASE)
        first = client.get("/models/many")
        assert first.status_code == 200
        assert "75 versions" in first.text and "page 1 of 2" in first.text
        shown = re.findall(r'href="/models/many/versions/(\d+)">\d+</a></td>', first.text)
        assert shown == [str(v) for v in range(75, 25, -1)]
        assert 'rel="next"' in first.text and 'rel="prev"' not in first.text
        last = client.get("/models/many", params={"page": 2})
        assert re.findall(r'href="/models/many/versions/(\d+)">\d+</a></td>', last.text) == [
            str(v) for v in range(25, 0, -1)
        ]
        assert 'rel="next"' not in last.text and 'rel="prev"' in last.text
        oldest_first = client.get("/models/many", params={"dir": "asc", "per": 100})
        found = re.findall(r'href="/models/many/versions/(\d+)">\d+</a></td>', oldest_first.text)
        assert found == [str(v) for v in range(1, 76)] and "page 1 of 1" in oldest_first.text
        beyond = client.get("/models/many", params={"page": 9})
        assert beyond.status_code == 200 and "No versions on this page." in beyond.text
        partial = client.get("/models/many", params={"page": 2}, headers={"HX-Request": "true"})
        assert partial.text.lstrip().startswith('<section id="versions">')


def _pager_link(page_html: str, rel: str) -> str | None:
    found = re.search(rf'<a href="([^"]+)"[^>]*rel="{rel}"', page_html)
    return None if found is None else html_module.unescape(found.group(1))


def test_versions_pages_follow_cursors_not_offsets(tmp_path: Path) -> None:
    """Next pages after the last row shown, so a version registered meanwhile shifts nothing; previous comes back."""
    with Registry(tmp_path / "many") as reg:
        for i in range(1, 131):
            reg.register("many", {"i": i})
        client = TestClient(app(reg), base_url=BASE)

        def shown(page_html: str) -> list[int]:
            return [int(v) for v in re.findall(r'href="/models/many/versions/(\d+)">\d+</a></td>', page_html)]

        first = client.get("/models/many")
        assert shown(first.text) == list(range(130, 80, -1)) and _pager_link(first.text, "prev") is None
        second_link = _pager_link(first.text, "next")
        assert second_link is not None and "after=" in second_link and "page=2" in second_link
        reg.register("many", {"i": 131})  # after page 1 was read: an offset would now repeat version 81 on page 2
        second = client.get(second_link)
        assert second.status_code == 200 and shown(second.text) == list(range(80, 30, -1))
        assert "page 2 of 3" in second.text and _pager_link(second.text, "prev") == "/models/many?" + (
            "page=1&per=50&sort=version&dir=desc&q="
        )
        third_link = _pager_link(second.text, "next")
        assert third_link is not None and "back=" in third_link
        third = client.get(third_link)
        assert shown(third.text) == list(range(30, 0, -1)) and _pager_link(third.text, "next") is None
        back_link = _pager_link(third.text, "prev")
        assert back_link is not None and "after=" in back_link and "page=2" in back_link
        assert shown(client.get(back_link).text) == list(range(80, 30, -1))  # previous, by the kept cursor
        forged = client.get("/models/many", params={"page": 2, "after": "not-a-cursor"})
        assert forged.status_code == 400 and "after=" in forged.text and "next_cursor" in forged.text
        other_order = client.get(second_link.replace("dir=desc", "dir=asc"))
        assert other_order.status_code == 400 and "another model, filter or order" in other_order.text


def test_bad_query_parameters_are_400_naming_them(client: TestClient) -> None:
    response = client.get("/models/iris-lr", params={"page": "x"})
    assert response.status_code == 400 and "page=" in response.text
    # "²" passes str.isdigit but not int(); past 64 bits SQLite's driver overflows: each was a 500
    for key, value in [("page", "²"), ("page", "9" * 23), ("per", "²"), ("per", "9" * 23), ("page", "9" * 5000)]:
        response = client.get("/models/iris-lr", params={key: value})
        assert response.status_code == 400 and f"{key}=" in response.text, (key, value[:30])
    largest = client.get("/models/iris-lr", params={"page": str(2**63 // 50), "per": "50"})
    assert largest.status_code == 200 and "No versions on this page." in largest.text
    assert client.get("/models/iris-lr", params={"page": str(2**63 // 50 + 1)}).status_code == 400
    for version in ("²", "9" * 23):
        assert client.get(f"/models/iris-lr/versions/{version}").status_code == 404, version
    assert client.get("/audit", params={"action": "nope"}).status_code == 400
    assert client.get("/models/iris-lr/aliases", params={"as_of": "yesterday"}).status_code == 400
    assert client.get("/compare", params={"ref": "iris-lr:1"}).status_code == 400


def test_a_page_size_not_offered_is_400_naming_the_sizes(client: TestClient) -> None:
    """``per=7`` is refused, not silently shown as 50 rows (the offered sizes are listed)."""
    response = client.get("/models/iris-lr", params={"per": "7"})
    assert response.status_code == 400 and "per=7" in response.text and "50, 100, 200, 500" in response.text
    assert client.get("/models/iris-lr", params={"per": "100"}).status_code == 200


def test_sizes_are_spelled_as_the_command_line_spells_them(client: TestClient, reg: Registry) -> None:
    from registry.humanize import human_size

    mv = reg.get("iris-lr:3")
    assert mv.size >= 1024  # so that a unit is printed
    page = text_of(client.get("/models/iris-lr/versions/3").text)
    assert f"Size {human_size(mv.size)} ({mv.size} bytes)" in page and "KiB" not in page
    assert human_size(mv.size) in text_of(client.get("/models/iris-lr").text)


def test_metrics_come_from_every_version_not_only_the_newest(tmp_path: Path) -> None:
    """A newest version with no metrics yet hides nothing: the chart and the columns use every version's keys."""
    with Registry(tmp_path / "r") as reg:
        reg.register("m", {"x": 1}, metrics={"acc": 0.5, "loss": 0.9})
        reg.register("m", {"x": 2}, metrics={"acc": 0.7})
        reg.register("m", {"x": 3})  # just registered: evaluated later
        client = TestClient(app(reg), base_url=BASE)
        metrics = client.get("/models/m/metrics")
        assert metrics.status_code == 200 and "This model has no metrics." not in metrics.text
        panels = re.findall(r"<svg .*?</svg>", metrics.text, flags=re.S)
        assert len(panels) == 2 and 'aria-label="acc across 2 versions"' in panels[0]
        assert 'aria-label="loss across 1 version' in panels[1]
        versions = client.get("/models/m")
        header = versions.text[versions.text.index("<thead>") : versions.text.index("</thead>")]
        assert ">acc" in header and ">loss" in header


def test_unknown_models_and_versions_are_404(client: TestClient) -> None:
    for url in (
        "/models/nope",
        "/models/nope/versions/1",
        "/models/iris-lr/versions/99",
        "/models/iris-lr/versions/x",
        "/models/nope/metrics",
        "/models/nope/aliases",
        "/compare?ref=iris-lr:1&ref=iris-lr:99",
        "/no/such/page",
    ):
        response = client.get(url)
        assert response.status_code == 404, url
        assert "Not found" in response.text, url


def test_version_page_shows_everything_recorded(client: TestClient, reg: Registry) -> None:
    response = client.get("/models/iris-lr/versions/3")
    assert response.status_code == 200
    page = text_of(response.text)
    mv = reg.get("iris-lr:3")
    assert mv.checksum in page and "Signed no" in page and "rows recorded" in page  # its canary, not re-run
    assert "clf__C 1.0" in page and "scale__with_mean true" in page  # pipeline params flattened
    assert "step 0: 0.6 · step 1: 0.8" in page  # the metric's step history
    assert mv.description is not None and mv.description in page
    assert (
        'reg.load("iris-lr:3")' in page and "modelshelf show iris-lr:3" in page and "modelshelf fetch iris-lr:3" in page
    )
    assert "sepal length (cm)" in page and "classification" in page  # input signature
    assert "sklearn.linear_model._logistic.LogisticRegression" in page  # import inventory
    assert "scikit-learn" in page  # environment
    graph = response.text[response.text.index("<svg") : response.text.index("</svg>")]
    assert all(f"iris-lr:{v}" in graph for v in (1, 2, 3)) and "iris-lr:4" not in graph
    assert 'href="/models/iris-lr/versions/1"' in graph


def test_long_values_are_folded(client: TestClient) -> None:
    response = client.get("/models/iris-lr/versions/1")
    steps = response.text[response.text.index("<code>steps</code>") :]
    assert steps.index('<details class="fold">') < steps.index("</tr>")


def test_metric_chart_has_a_panel_per_metric_and_marks_alias_moves(client: TestClient) -> None:
    response = client.get("/models/iris-lr/metrics", params={"m": ["accuracy", "loss"]})
    assert response.status_code == 200
    panels = re.findall(r"<svg .*?</svg>", response.text, flags=re.S)
    assert len(panels) == 2
    assert 'aria-label="accuracy across 4 versions"' in panels[0]
    assert "production, staging → version 2" in panels[0] and "production → version 3" in panels[0]
    assert panels[1].count("<circle") == 4
    assert 'href="/models/iris-lr/versions/4"' in panels[1]


def test_compare_highlights_changed_rows(client: TestClient) -> None:
    response = client.get("/compare", params={"ref": ["iris-lr:2", "iris-lr:4"]})
    assert response.status_code == 200
    found = re.findall(r'<tr class="(changed|same)"><th scope="row"><code>([^<]+)</code>', response.text)
    rows = {key: kind for kind, key in found}
    changed = {key for key, kind in rows.items() if kind == "changed"}
    assert {"clf__C", "accuracy", "stage"} <= changed
    assert "team" not in changed and "python" not in changed and "data" not in changed
    assert "team" in rows and "data" in rows  # same rows are listed too
    only = client.get("/compare", params={"ref": ["iris-lr:2", "iris-lr:4"], "changed": "1"})
    assert "<code>team</code>" not in only.text and "<code>stage</code>" in only.text


def test_alias_timeline_and_as_of(client: TestClient, reg: Registry) -> None:
    response = client.get("/models/iris-lr/aliases")
    assert response.status_code == 200
    page = text_of(response.text)
    assert "production" in page and "staging" in page and "now" in page
    moved = reg.alias_history("iris-lr", "production")[1].since
    response = client.get("/models/iris-lr/aliases", params={"as_of": moved.isoformat()})
    assert "version 3" in text_of(response.text[response.text.index("As of") :])
    response = client.get("/models/iris-lr/aliases", params={"as_of": "2000-01-01"})
    assert "pointed at nothing" in response.text


def test_audit_log_filters_by_model_alias_and_action(client: TestClient) -> None:
    everything = client.get("/audit")
    assert everything.status_code == 200 and "tiny" in everything.text
    moves = client.get("/audit", params={"model": "iris-lr", "action": "alias.move"})
    assert moves.text.count("<code>alias.move</code>") == 2 and "<code>register</code>" not in moves.text
    staging = client.get("/audit", params={"alias": "staging"})
    assert staging.text.count("<code>alias.") == 2
    assert "production" not in text_of(staging.text.split("<tbody>")[1])


def test_every_response_forbids_inline_script_and_framing(client: TestClient) -> None:
    for url in ("/", "/models/iris-lr", "/models/nope", "/static/style.css"):
        headers = client.get(url).headers
        assert "script-src 'self'" in headers["content-security-policy"], url
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert headers["x-content-type-options"] == "nosniff"


def test_a_foreign_host_header_is_refused(reg: Registry) -> None:
    """A DNS-rebinding page reaches 127.0.0.1 under its own name: the UI does not answer it."""
    client = TestClient(app(reg), base_url="http://evil.example")
    assert client.get("/").status_code == 400


def test_a_rebinding_page_cannot_move_an_alias_on_a_wildcard_bind(reg: Registry) -> None:
    """``--host 0.0.0.0 --allow-writes``: a page on evil.example rebinds its name to this machine.

    It is then same-origin, so with the Host check off it could read the
    form's token and submit it. The app the command builds for every
    interface answers only this machine's names and ``--allowed-host``.
    """
    application = build_app(reg, host="0.0.0.0", allow_writes=True, extra_hosts=["box.lan"])
    evil = TestClient(application, base_url="http://evil.example:8765")
    refused = evil.get("/models/iris-lr/aliases")
    assert refused.status_code == 400  # it cannot read the page and its token
    assert "'evil.example'" in refused.text and "--allowed-host" in refused.text  # what to do, to a real user
    assert (
        "localhost" not in refused.text and "box.lan" not in refused.text
    )  # not the names it answers: the page reads this
    legit = TestClient(application, base_url="http://box.lan:8765")
    token = _token(legit, "/models/iris-lr/aliases")  # even holding a valid token and cookie, it is refused
    evil.cookies.set(COOKIE, token)
    response = evil.post("/models/iris-lr/aliases", data={"alias": "production", "version": "1", FIELD: token})
    assert response.status_code in (400, 403)
    assert reg.get("iris-lr@production").version == 3
    for host in ("127.0.0.1", "localhost", "[::1]", "LocalHost", socket.gethostname(), "box.lan"):
        assert TestClient(application, base_url=f"http://{host}:8765").get("/").status_code == 200, host
    assert "*" not in allowed_hosts("0.0.0.0") and "*" not in allowed_hosts("::")
    with pytest.raises(InvalidArgument, match="allowed_hosts"):
        app(reg, allowed_hosts=["*"])
    with pytest.raises(InvalidArgument, match="allowed host"):
        allowed_hosts("0.0.0.0", ["*.example"])


def test_only_loopback_addresses_and_localhost_are_announced_as_this_machine_only() -> None:
    assert all(is_loopback(host) for host in ("127.0.0.1", "127.1.2.3", "::1", "localhost", "LOCALHOST"))
    assert not any(is_loopback(host) for host in ("127.evil.com", "0.0.0.0", "::", "", "10.0.0.1", "box.lan"))


def test_htmx_is_vendored_with_its_license(client: TestClient) -> None:
    script = client.get("/static/htmx.min.js")
    assert script.status_code == 200 and "htmx" in script.text[:200]
    assert "Zero-Clause BSD" in client.get("/static/htmx.LICENSE.txt").text
    assert '<script src="/static/htmx.min.js"' in client.get("/").text


def test_checking_the_bytes_reports_intact_then_a_tampered_blob(client: TestClient, reg: Registry) -> None:
    page = client.get("/models/iris-lr/versions/2").text
    assert "not checked by this server yet" in page
    response = client.post("/models/iris-lr/versions/2/verify", follow_redirects=False)
    assert response.status_code == 303  # allowed read-only: it reads and hashes, it changes nothing
    assert "✓ intact" in text_of(client.get("/models/iris-lr/versions/2").text)
    mv = reg.get("iris-lr:2")
    (blob,) = [path for path in Path(reg.store_location).rglob("*") if path.is_file() and mv.digest[2:] in path.name]
    blob.chmod(0o644)
    data = bytearray(blob.read_bytes())
    data[-1] ^= 1  # same size, other bytes
    blob.write_bytes(bytes(data))
    client.post("/models/iris-lr/versions/2/verify")
    shown = text_of(client.get("/models/iris-lr/versions/2").text)
    assert "✗ failed" in shown and "failed verification" in shown
    cross = client.post("/models/iris-lr/versions/2/verify", headers={"Origin": "http://evil.example"})
    assert cross.status_code == 403


# -- writes --------------------------------------------------------------


def _token(client: TestClient, url: str) -> str:
    page = client.get(url)
    match = re.search(rf'name="{FIELD}" value="([^"]+)"', page.text)
    assert match is not None, "the page offers no write form"
    assert client.cookies.get(COOKIE) == match.group(1)
    return match.group(1)


def test_writes_are_refused_when_read_only(client: TestClient, reg: Registry) -> None:
    assert f'name="{FIELD}"' not in client.get("/models/iris-lr/aliases").text  # no form offered
    response = client.post("/models/iris-lr/aliases", data={"alias": "production", "version": "1"})
    assert response.status_code == 403 and "--allow-writes" in response.text
    response = client.post("/models/iris-lr/versions/1/tags", data={"key": "k", "value": "v"})
    assert response.status_code == 403
    assert reg.get("iris-lr@production").version == 3 and "k" not in reg.get("iris-lr:1").tags


def test_moving_an_alias_goes_through_set_alias_and_the_audit_trail(writer: TestClient, reg: Registry) -> None:
    token = _token(writer, "/models/iris-lr/aliases")
    response = writer.post(
        "/models/iris-lr/aliases", data={"alias": "production", "version": "1", FIELD: token}, follow_redirects=False
    )
    assert response.status_code == 303 and response.headers["location"] == "/models/iris-lr/aliases"
    assert reg.get("iris-lr@production").version == 1
    last = reg.events("iris-lr")[-1]
    assert (last.action, last.alias, last.old, last.new) == ("alias.move", "production", 3, 1)
    bad = writer.post("/models/iris-lr/aliases", data={"alias": "Bad Alias", "version": "1", FIELD: token})
    assert bad.status_code == 400 and "alias" in bad.text
    for version in ("²", "9" * 23, "-1", ""):  # "²" passed str.isdigit and made int() raise: a 500
        bad = writer.post("/models/iris-lr/aliases", data={"alias": "production", "version": version, FIELD: token})
        assert bad.status_code == 400 and "version=" in bad.text, version
    assert reg.get("iris-lr@production").version == 1


def test_tags_are_set_and_removed_with_a_token(writer: TestClient, reg: Registry) -> None:
    token = _token(writer, "/models/iris-lr/versions/2")
    writer.post(
        "/models/iris-lr/versions/2/tags", data={"key": "reviewed", "value": "yes", "action": "set", FIELD: token}
    )
    assert reg.get("iris-lr:2").tags["reviewed"] == "yes"
    writer.post("/models/iris-lr/versions/2/tags", data={"key": "stage", "action": "remove", FIELD: token})
    assert "stage" not in reg.get("iris-lr:2").tags
    assert [e.action for e in reg.events("iris-lr")[-2:]] == ["tags.set", "tags.set"]


def test_writes_without_a_valid_token_or_from_another_origin_are_refused(writer: TestClient, reg: Registry) -> None:
    token = _token(writer, "/models/iris-lr/aliases")
    form = {"alias": "production", "version": "1"}
    assert writer.post("/models/iris-lr/aliases", data=form).status_code == 403  # no token in the form
    assert writer.post("/models/iris-lr/aliases", data={**form, FIELD: "0" * 32 + "." + "0" * 64}).status_code == 403
    cross = writer.post(
        "/models/iris-lr/aliases", data={**form, FIELD: token}, headers={"Origin": "http://evil.example"}
    )
    assert cross.status_code == 403 and "another site" in cross.text
    fresh = TestClient(writer.app, base_url=BASE)  # the token, but not the cookie: a forged form elsewhere
    assert fresh.post("/models/iris-lr/aliases", data={**form, FIELD: token}).status_code == 403
    other = TestClient(app(reg, allow_writes=True), base_url=BASE)  # another process: another secret
    other.cookies.set(COOKIE, token)
    assert other.post("/models/iris-lr/aliases", data={**form, FIELD: token}).status_code == 403
    assert reg.get("iris-lr@production").version == 3


# -- escaping --------------------------------------------------------------


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with build_hostile(tmp_path_factory.mktemp("hostile") / "reg") as reg:
        yield reg


def hostile_urls() -> list[str]:
    """Every page of the hostile registry, with the payloads also in the query strings."""
    urls = ["/", "/?q=tags.plain+%3D+%27x%27", "/models/hostile", "/models/hostile/metrics", "/models/hostile/aliases"]
    urls += [f"/models/hostile/versions/{v}" for v in range(1, len(XSS) + 1)]
    urls += ["/compare?ref=hostile:1&ref=hostile:2&ref=hostile:3", "/audit", "/audit?model=hostile"]
    urls += ["/models/hostile?sort=metric:" + XSS[0], "/models/hostile?m=" + XSS[1], "/?q=" + XSS[2]]
    urls += ["/audit?alias=" + XSS[3], "/models/hostile/aliases?as_of=" + XSS[4]]
    return urls


def test_no_user_string_reaches_a_page_unescaped(hostile: Registry) -> None:
    for allow_writes in (False, True):
        client = TestClient(app(hostile, allow_writes=allow_writes), base_url=BASE)
        for url in hostile_urls():
            response = client.get(url)
            assert response.status_code in (200, 400), (url, response.status_code)
            lowered = response.text.lower()
            for marker in RAW_MARKERS:
                assert marker.lower() not in lowered, (url, marker)
    shown = TestClient(app(hostile), base_url=BASE).get("/models/hostile/versions/1").text
    assert "&lt;script&gt;alert(&#39;xss-1&#39;)&lt;/script&gt;" in shown  # shown, as text


def test_the_ui_command_says_where_it_listens_and_how_to_get_the_extra() -> None:
    from click.testing import CliRunner

    from registry.cli import cli

    result = CliRunner().invoke(cli, ["ui", "--help"])
    assert result.exit_code == 0
    assert "--allow-writes" in result.output and "127.0.0.1" in result.output and "8765" in result.output
    refused = CliRunner().invoke(cli, ["ui", "--port", "70000"])
    assert refused.exit_code == 2 and "70000" in refused.output
    both = CliRunner().invoke(cli, ["--read-only", "ui", "--allow-writes"])
    assert both.exit_code == 2 and "contradict" in both.output


def test_writes_on_every_interface_need_an_allowed_host(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from registry.cli import cli

    home = ["--home", str(tmp_path / "reg")]
    for host in ("0.0.0.0", "::"):
        refused = CliRunner().invoke(cli, [*home, "ui", "--host", host, "--allow-writes"])
        assert refused.exit_code == 2 and "needs --allowed-host" in refused.output, refused.output
    star = CliRunner().invoke(cli, [*home, "ui", "--host", "0.0.0.0", "--allowed-host", "*"])
    assert star.exit_code == 2 and "--allowed-host" in star.output and "'*'" in star.output


def test_a_missing_extra_is_named_and_a_bug_in_the_ui_is_not_hidden(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only an ImportError of starlette, jinja2, uvicorn or multipart means "install the extra"."""
    import sys

    from click.testing import CliRunner

    from registry.cli import cli
    from registry.cli.ui import _missing_extra

    assert _missing_extra(ImportError("x", name="jinja2.ext")) == "jinja2"
    assert _missing_extra(ImportError("x", name="python_multipart")) == "python-multipart"
    assert _missing_extra(ImportError("x")) is None  # no name: it was "needs None"
    assert _missing_extra(ImportError("x", name="registry.ui.views")) is None
    monkeypatch.delitem(sys.modules, "registry.ui.server")
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # as if uvicorn were not installed
    missing = CliRunner().invoke(cli, ["ui"])
    assert missing.exit_code == 2 and "needs uvicorn" in missing.output and "modelshelf[ui]" in missing.output
    monkeypatch.setitem(sys.modules, "registry.ui.server", None)  # an import inside registry.ui that fails
    broken = CliRunner().invoke(cli, ["ui"])
    assert isinstance(broken.exception, ImportError) and "modelshelf[ui]" not in broken.output


def _ui_process(home: Path, port: int) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "registry", "--home", str(home), "ui", "--port", str(port), "--json"]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_the_json_line_comes_once_listening_with_the_port_bound(built: Path) -> None:
    """``--port 0``: the line names the port the system chose, and that port already answers."""
    import urllib.request

    process = _ui_process(built, 0)
    try:
        assert process.stdout is not None and process.stderr is not None
        where = json.loads(process.stdout.readline())
        assert where["port"] != 0 and where["url"] == f"http://127.0.0.1:{where['port']}/"
        assert f"at http://127.0.0.1:{where['port']}/" in process.stderr.readline()
        with urllib.request.urlopen(where["url"], timeout=10) as response:  # no wait: it listens already
            assert response.status == 200
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_a_port_taken_announces_nothing_and_says_so(built: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = _ui_process(built, port)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 1 and out == ""
    assert f"could not listen on http://127.0.0.1:{port}/" in err and "serving" not in err


def test_the_version_page_shows_a_recorded_canary_without_running_it(tmp_path: Path) -> None:
    """The page reads the canary's rows and methods; re-running it would unpickle the model, so it only names how."""
    from sklearn.linear_model import LogisticRegression

    X = [[float(i), float(i % 2)] for i in range(10)]
    y = [i % 2 for i in range(10)]
    with Registry(tmp_path / "r") as reg:
        reg.register("clf", LogisticRegression().fit(X, y), input_example=X)
        page = TestClient(app(reg), base_url="http://127.0.0.1").get("/models/clf/versions/1").text
    assert "10 rows recorded (decision_function, predict, predict_proba)" in page
    assert "modelshelf check clf:1" in page and "no canary" not in page
