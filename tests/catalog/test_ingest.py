"""Ingest: idempotent upserts, line-numbered errors, all-or-nothing writes."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from tests.factories import make_item, write_jsonl
from twinengine.catalog import service
from twinengine.catalog.demo import DEMO_CATALOG
from twinengine.errors import InvalidInput, NotFound


def test_ingest_inserts_then_reports_unchanged(db, tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "a.jsonl", [make_item("a1"), make_item("a2", languages=["ja", "en"])]
    )
    first = service.ingest(db, path=path)
    assert (first.inserted, first.updated, first.unchanged, first.rejected) == (2, 0, 0, 0)
    second = service.ingest(db, path=path)
    assert (second.inserted, second.updated, second.unchanged) == (0, 0, 2)
    item = service.get_item(db, item_id="a2")
    assert item.languages == ["ja", "en"]
    assert item.body == "prompt text of a2"  # "prompt" maps to body by default


def test_changed_row_counts_as_updated(db, tmp_path: Path) -> None:
    service.ingest(db, path=write_jsonl(tmp_path / "a.jsonl", [make_item("a1"), make_item("a2")]))
    report = service.ingest(
        db,
        path=write_jsonl(
            tmp_path / "b.jsonl", [make_item("a1", title="New title"), make_item("a3")]
        ),
    )
    assert (report.inserted, report.updated, report.unchanged) == (1, 1, 0)
    assert service.get_item(db, item_id="a1").title == "New title"


def test_bad_file_is_refused_with_line_numbers_and_changes_nothing(db, tmp_path: Path) -> None:
    service.ingest(
        db, path=write_jsonl(tmp_path / "good.jsonl", [make_item("g1"), make_item("g2")])
    )
    before = (service.count_items(db), service.catalog_digest(db))
    bad = tmp_path / "bad.jsonl"
    lines = [
        json.dumps(make_item("g1", title="changed")),
        json.dumps(make_item("n1")),
        '{"id": "broken", "title": ',  # line 3: broken JSON
        json.dumps({k: v for k, v in make_item("x").items() if k != "id"}),  # line 4: no id
        json.dumps(make_item("n2")),
    ]
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(InvalidInput) as err:
        service.ingest(db, path=bad)
    message = err.value.message
    assert f"{bad}:3:" in message and "invalid JSON" in message
    assert f"{bad}:4: id: missing" in message
    assert (service.count_items(db), service.catalog_digest(db)) == before


def test_skip_invalid_loads_the_rest_and_writes_rejects(db, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        "\n".join(
            [json.dumps(make_item("ok1")), "{nope", json.dumps(make_item("ok2", media="hologram"))]
        )
        + "\n"
    )
    report = service.ingest(db, path=bad, skip_invalid=True, reject_file=tmp_path / "rej.jsonl")
    assert (report.inserted, report.rejected) == (1, 2)
    rejects = [json.loads(line) for line in (tmp_path / "rej.jsonl").read_text().splitlines()]
    assert [(r["line"], r["field"]) for r in rejects] == [(2, "(row)"), (3, "media")]
    assert service.count_items(db) == 1


def test_duplicate_id_in_one_file_is_an_error(db, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", [make_item("d1"), make_item("d1", title="again")])
    with pytest.raises(InvalidInput, match=r"d.jsonl:2: id: duplicate id 'd1' \(first on line 1\)"):
        service.ingest(db, path=path)


def test_csv_and_gzip_with_mapping(db, tmp_path: Path) -> None:
    csv_path = tmp_path / "items.csv.gz"
    with gzip.open(csv_path, "wt", encoding="utf-8", newline="") as fh:
        fh.write("key,name,text,languages,image_urls,published,extra\n")
        fh.write('c1,First,"a prompt, with a comma",en|ja,https://x/1.png,2026-01-02,hello\n')
        fh.write("c2,Second,second prompt,zh,,,\n")
    report = service.ingest(db, path=csv_path, mapping={"id": "key", "title": "name"})
    assert report.inserted == 2
    c1 = service.get_item(db, item_id="c1")
    assert c1.body == "a prompt, with a comma"
    assert c1.languages == ["en", "ja"] and c1.image_urls == ["https://x/1.png"]
    assert str(c1.published) == "2026-01-02" and c1.attributes == {"extra": "hello"}


def test_csv_error_names_the_line(db, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("id,title\nok,Fine\n,No id\nbad,Fine,extra\n")
    with pytest.raises(InvalidInput) as err:
        service.ingest(db, path=path)
    assert f"{path}:3: id:" in err.value.message
    assert f"{path}:4: (row): more fields than the header" in err.value.message


def test_missing_file_and_unknown_format(db, tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        service.ingest(db, path=tmp_path / "none.jsonl")
    odd = tmp_path / "items.xml"
    odd.write_text("<x/>")
    with pytest.raises(InvalidInput, match="unknown format"):
        service.ingest(db, path=odd)


@pytest.mark.slow
def test_bundled_catalog_second_ingest_changes_nothing(db) -> None:
    first = service.ingest(db, path=DEMO_CATALOG)
    assert first.inserted == 11212 and first.rejected == 0
    digest = service.catalog_digest(db)
    second = service.ingest(db, path=DEMO_CATALOG)
    assert (second.inserted, second.updated, second.unchanged) == (0, 0, 11212)
    assert service.catalog_digest(db) == digest
