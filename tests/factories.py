"""Test data: real rows from the bundled catalog, and builders for odd ones."""

from __future__ import annotations

import gzip
import json
from functools import cache
from pathlib import Path
from typing import Any

from twinengine.catalog import service
from twinengine.catalog.demo import DEMO_CATALOG, DEMO_LABELS, DEMO_TAXONOMY
from twinengine.storage import Database


@cache
def demo_rows() -> tuple[dict[str, Any], ...]:
    """Every row of the bundled catalog (cached for the session)."""
    with gzip.open(DEMO_CATALOG, "rt", encoding="utf-8") as fh:
        return tuple(json.loads(line) for line in fh)


def sample_rows(n: int = 300) -> list[dict[str, Any]]:
    """A deterministic sample holding every language and media kind, plus labelled rows."""
    rows = demo_rows()
    labelled = {json.loads(line)["id"] for line in DEMO_LABELS.read_text().splitlines()[:40]}
    picked: dict[str, dict[str, Any]] = {}
    seen_langs: set[str] = set()
    for row in rows:
        langs = tuple(row.get("languages") or ())
        key = (langs, row["media"])
        if key not in seen_langs:
            seen_langs.add(key)  # type: ignore[arg-type]
            picked[row["id"]] = row
    for row in rows:
        if row["id"] in labelled:
            picked[row["id"]] = row
    step = max(1, len(rows) // n)
    for row in rows[::step]:
        if len(picked) >= n:
            break
        picked.setdefault(row["id"], row)
    return list(picked.values())


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    """Write rows as JSONL."""
    with path.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def load_sample(db: Database, tmp_path: Path, n: int = 300) -> list[dict[str, Any]]:
    """Load the taxonomy, a sample of real prompts, and the labels for the sampled ones."""
    rows = sample_rows(n)
    service.load_taxonomy(db, path=DEMO_TAXONOMY)
    service.ingest(db, path=write_jsonl(tmp_path / "sample.jsonl", rows))
    ids = {r["id"] for r in rows}
    labels = [
        line for line in DEMO_LABELS.read_text().splitlines() if json.loads(line)["id"] in ids
    ]
    (tmp_path / "labels.jsonl").write_text("\n".join(labels) + "\n")
    service.load_topic_labels(db, path=tmp_path / "labels.jsonl")
    return rows


def make_item(item_id: str, **fields: Any) -> dict[str, Any]:
    """A minimal valid catalog row."""
    row = {
        "id": item_id,
        "title": f"Item {item_id}",
        "description": "",
        "prompt": f"prompt text of {item_id}",
        "languages": ["en"],
        "media": "image",
        "image_urls": [],
        "collection": "test/collection",
        "licence": "CC-BY-4.0",
    }
    row.update(fields)
    return row
