"""Taxonomy loading, listing with filters and cursors, facet counts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.factories import make_item, write_jsonl
from twinengine.catalog import service
from twinengine.catalog.demo import DEMO_TAXONOMY
from twinengine.errors import InvalidInput


def test_taxonomy_loads_the_customer_file(db) -> None:
    assert service.load_taxonomy(db, path=DEMO_TAXONOMY) == (11, 151)
    facets = service.list_facets(db)
    assert [f.id for f in facets][:2] == ["deliverable", "photo"]
    assert sum(len(f.topics) for f in facets) == 151


def test_taxonomy_with_unknown_facet_is_refused(db, tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text(
        json.dumps(
            {
                "facets": [{"id": "a", "name": "A"}],
                "topics": [{"id": "x", "facet": "b", "name": "X"}],
            }
        )
    )
    with pytest.raises(InvalidInput, match="unknown facet 'b'"):
        service.load_taxonomy(db, path=path)
    path.write_text('{"facets": [')
    with pytest.raises(InvalidInput, match=r"t.json:1: invalid JSON"):
        service.load_taxonomy(db, path=path)


def test_sample_catalog_filters(sample_catalog) -> None:
    db = sample_catalog.db
    total = service.count_items(db)
    ja = service.list_items(db, flt=service.make_filter(language="ja"), limit=100)
    assert ja.count > 0 and all("ja" in i.languages for i in ja.data)
    video = service.list_items(db, flt=service.make_filter(media="video"), limit=100)
    assert video.count > 0 and all(i.media == "video" for i in video.data)
    assert service.count_items(db, flt=service.make_filter(language="ja")) < total


def test_topic_filter_and_counts_agree(sample_catalog) -> None:
    db = sample_catalog.db
    counts = service.facet_counts(db, flt=service.make_filter())
    top = counts.topics[0]
    page = service.list_items(db, flt=service.make_filter(topics=[top.value]), limit=100)
    assert page.count == top.count
    assert all(any(t.topic_id == top.value for t in i.topics) for i in page.data)


def test_cursor_pagination_walks_everything_once(db, tmp_path: Path) -> None:
    rows = [make_item(f"p{i:02d}", published=f"2026-01-{1 + i % 5:02d}") for i in range(23)]
    rows += [make_item("undated1"), make_item("undated2")]
    service.ingest(db, path=write_jsonl(tmp_path / "p.jsonl", rows))
    seen: list[str] = []
    cursor = None
    while True:
        page = service.list_items(db, flt=service.make_filter(), limit=4, cursor=cursor)
        seen.extend(i.id for i in page.data)
        cursor = page.next_cursor
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == 25
    assert seen[-2:] == ["undated2", "undated1"]  # undated items come last
    dates = [service.get_item(db, item_id=i).published for i in seen[:-2]]
    assert dates == sorted(dates, reverse=True)


def test_keyword_filter_escapes_like_wildcards(db, tmp_path: Path) -> None:
    service.ingest(
        db,
        path=write_jsonl(
            tmp_path / "k.jsonl",
            [make_item("k1", title="100% cotton"), make_item("k2", title="cotton")],
        ),
    )
    assert [
        i.id for i in service.list_items(db, flt=service.make_filter(q="100%"), limit=10).data
    ] == ["k1"]
    assert service.list_items(db, flt=service.make_filter(q="COTTON"), limit=10).count == 2


def test_unknown_labels_are_refused(sample_catalog, tmp_path: Path) -> None:
    path = tmp_path / "labels.jsonl"
    path.write_text('{"id": "no-such-item", "topics": ["infographic"]}\n')
    with pytest.raises(InvalidInput, match="labels.jsonl:1: id: unknown item"):
        service.load_topic_labels(sample_catalog.db, path=path)
