"""Backup and restore answer the same queries."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.factories import make_item, write_jsonl
from twinengine.catalog import service
from twinengine.errors import InvalidInput, NotFound
from twinengine.storage.backup import backup, restore


def test_backup_then_restore(db, tmp_path: Path) -> None:
    service.ingest(
        db, path=write_jsonl(tmp_path / "a.jsonl", [make_item(f"b{i}") for i in range(20)])
    )
    digest = service.catalog_digest(db)
    page = service.list_items(db, flt=service.make_filter(q="b1"), limit=50)
    target = backup(db, target=tmp_path / "backups" / "db.bak")
    assert target.exists() and target.stat().st_size > 0
    service.delete_item(db, item_id="b1")
    service.ingest(db, path=write_jsonl(tmp_path / "c.jsonl", [make_item("extra")]))
    assert service.catalog_digest(db) != digest
    restore(db, source=target)
    assert service.catalog_digest(db) == digest
    assert service.list_items(db, flt=service.make_filter(q="b1"), limit=50) == page


def test_restore_refuses_missing_or_bad_files(db, tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        restore(db, source=tmp_path / "none.bak")
    if db.dialect == "sqlite":
        bad = tmp_path / "bad.bak"
        bad.write_text("not a database")
        with pytest.raises(InvalidInput):
            restore(db, source=bad)
