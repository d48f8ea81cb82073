"""The catalog items behind search hits, kept in memory with each snapshot.

Search engines return documents from their own store (Meilisearch's LMDB, Typesense's RAM), not
from a second database round trip: reading ten items from the catalog was ~1-3 ms of a ~12 ms
query here (two SELECTs plus validating ten prompts). A snapshot is replaced whenever any item
or topic link changes (every catalog write notifies the index), so the items held with a
snapshot are exactly as fresh as the ranking they are shown with. A new snapshot inherits the
unchanged items of the one it replaces, and a freshly loaded one fills itself in the background.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from twinengine.catalog import service as catalog
from twinengine.catalog.schemas import ItemPublic
from twinengine.storage import Database

if TYPE_CHECKING:
    from twinengine.discovery.index.lifecycle import Snapshot

log = logging.getLogger(__name__)

_WARM_CHUNK = 500


class HitDocs:
    """Items by id for one snapshot; misses are read from the catalog and kept."""

    def __init__(self) -> None:
        self._items: dict[str, ItemPublic] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, db: Database, ids: Sequence[str]) -> dict[str, ItemPublic]:
        """The items of ``ids`` that exist (a just-deleted one may be missing)."""
        items = self._items
        found = {i: items[i] for i in ids if i in items}
        if len(found) < len(ids):
            fetched = {
                it.id: it for it in catalog.get_items(db, ids=[i for i in ids if i not in found])
            }
            with self._lock:
                items.update(fetched)
            found.update(fetched)
        return found

    def inherit(self, older: HitDocs, drop: Iterable[str]) -> None:
        """Take ``older``'s items except the ``drop`` ids (changed or deleted since)."""
        gone = set(drop)
        with older._lock:
            kept = {i: it for i, it in older._items.items() if i not in gone}
        with self._lock:
            self._items = {**kept, **self._items}

    def warm(self, db: Database, ids: Sequence[str], stop: Callable[[], bool]) -> None:
        """Read every item of ``ids`` not held yet, in chunks, until ``stop()`` says so."""
        todo = [i for i in ids if i not in self._items]
        try:
            for start in range(0, len(todo), _WARM_CHUNK):
                if stop():
                    return
                self.get(db, todo[start : start + _WARM_CHUNK])
        except Exception as exc:  # noqa: BLE001 - a cold cache only costs speed
            log.debug("search documents not warmed: %s", exc)


def docs_of(snap: Snapshot) -> HitDocs:
    """The item store of ``snap`` (created on first use; snapshots never change)."""
    found = snap.__dict__.get("_docs")
    if found is None:
        found = snap.__dict__.setdefault("_docs", HitDocs())
    return found
