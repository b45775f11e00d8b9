"""Registry.versions_page: one page of a model's versions, paginated in the database, with the total."""

from __future__ import annotations

from pathlib import Path

import pytest

from registry import InvalidArgument, InvalidQuery, ModelNotFound, Registry, VersionPage


@pytest.fixture(scope="module")
def reg(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    registry = Registry(Path(tmp_path_factory.mktemp("page")))
    for i in range(1, 13):
        registry.register("m", {"i": i}, params={"i": i}, metrics={"acc": (i * 7) % 13 / 13}, tags={"odd": str(i % 2)})
    registry.register("other", {"x": 1})
    registry.delete_version("m", 5)
    return registry


def test_pages_cover_every_live_version_once_in_order(reg: Registry) -> None:
    seen: list[int] = []
    offset = 0
    while True:
        page = reg.versions_page("m", offset=offset, limit=5)
        assert isinstance(page, VersionPage) and page.total == 11 and page.offset == offset and page.limit == 5
        if not page.versions:
            break
        seen += [mv.version for mv in page.versions]
        offset += 5
    assert seen == [v for v in range(1, 13) if v != 5]


def test_ordering_filter_and_total(reg: Registry) -> None:
    page = reg.versions_page("m", where="tags.odd = '1'", order_by="metrics.acc desc", limit=3)
    assert page.total == 5  # 1, 3, 7, 9, 11 (5 is deleted)
    everything = reg.search("m", where="tags.odd = '1'", order_by="metrics.acc desc")
    assert [mv.version for mv in page.versions] == [mv.version for mv in everything[:3]]
    assert all(mv.name == "m" and mv.tags["odd"] == "1" for mv in page.versions)
    assert page.versions[0].metrics["acc"] >= page.versions[-1].metrics["acc"]


def test_bad_arguments_are_refused(reg: Registry) -> None:
    with pytest.raises(InvalidArgument, match="offset"):
        reg.versions_page("m", offset=-1)
    with pytest.raises(InvalidArgument, match="limit"):
        reg.versions_page("m", limit=0)
    with pytest.raises(InvalidQuery):
        reg.versions_page("m", where="metrics.acc >")
    with pytest.raises(ModelNotFound):
        reg.versions_page("nope")
