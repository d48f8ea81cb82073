"""The live search state of one ``AppContext``: current snapshot, embedder, change worker."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from twinengine.catalog import service as catalog
from twinengine.context import AppContext
from twinengine.discovery.index.docs import docs_of
from twinengine.discovery.index.lifecycle import (
    Snapshot,
    apply_changes,
    changed_between,
    refresh_topics,
    stale_ids,
)
from twinengine.embedding import Embedder, load_embedder

log = logging.getLogger(__name__)

EXTRAS_KEY = "search"


class SearchState:
    """Holds the current snapshot; catalog changes are applied by one background worker.

    Readers just read ``self.snapshot`` (one attribute load, atomic under the GIL); the worker
    builds a new snapshot off to the side and assigns it when complete.
    """

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.root: Path = ctx.settings.home / "indexes" / "search"
        self.snapshot: Snapshot | None = None
        self._embedder: Embedder | None = None
        self._embedder_lock = threading.Lock()
        self._cond = threading.Condition()
        self._pending_up: set[str] = set()
        self._pending_del: set[str] = set()
        self._busy = False
        self._closed = False
        self._worker: threading.Thread | None = None
        self._listening = False

    # --- parts ------------------------------------------------------------------------------
    def embedder(self) -> Embedder:
        """The process-wide embedder (loaded on first use)."""
        if self._embedder is None:
            with self._embedder_lock:
                if self._embedder is None:
                    self._embedder = load_embedder(self.ctx.settings)
        return self._embedder

    @property
    def ready(self) -> bool:
        """Whether a query can be answered now without loading the model (seconds)."""
        return self._embedder is not None and self.snapshot is not None

    def load(self) -> Snapshot | None:
        """Load the persisted snapshot if there is one."""
        t0 = time.perf_counter()
        snap = Snapshot.load(self.root)
        if snap is not None:
            snap = refresh_topics(snap, self.ctx.db)
            old = self.snapshot
            if old is not None:
                # Another process published it (a drop): keep the items it did not change,
                # rather than re-reading all of them (seconds of CPU, and memory churn that
                # grew a server's RSS by tens of MB a drop in the soak test).
                docs_of(snap).inherit(docs_of(old), changed_between(old, snap))
            self.snapshot = snap
            self._warm(snap)
            log.info("search index: %d items loaded in %.2fs", len(snap), time.perf_counter() - t0)
        return snap

    def swap(
        self, snap: Snapshot, *, persist: bool = True, changed: Sequence[str] | None = None
    ) -> None:
        """Make ``snap`` live (and write it to disk first, so a restart finds it).

        ``changed``: the ids ``snap`` re-read since the current snapshot; the items of the
        others carry over. Without it, ``snap``'s items are read afresh in the background.
        """
        if persist:
            snap.save(self.root)
        old = self.snapshot
        if old is not None and changed is not None:
            docs_of(snap).inherit(docs_of(old), changed)
        self.snapshot = snap
        self._warm(snap, docs=changed is None)

    def _warm(self, snap: Snapshot, *, docs: bool = True) -> None:
        """In the background: the lexical tables, then (``docs``) the items of ``snap``."""

        def stop() -> bool:
            return self._closed or self.snapshot is not snap

        def warm() -> None:
            try:
                if not stop():
                    snap.lexical.warm()
            except Exception:  # the first query that needs a table builds it instead
                log.exception("search index: lexical tables not prebuilt")
            if docs:
                docs_of(snap).warm(self.ctx.db, snap.ids, stop)

        threading.Thread(target=warm, name="search-docs", daemon=True).start()

    # --- keeping current --------------------------------------------------------------------
    def listen(self) -> None:
        """Follow catalog changes from now on."""
        if not self._listening:
            catalog.add_change_listener(self.on_change)
            self._listening = True

    def on_change(self, upserted: Sequence[str], deleted: Sequence[str]) -> None:
        """Catalog listener: queue the ids; the worker applies them in the background."""
        if self.snapshot is None or self._closed:
            return
        with self._cond:
            self._pending_up.update(upserted)
            self._pending_up.difference_update(deleted)
            self._pending_del.update(deleted)
            self._ensure_worker()
            self._cond.notify_all()

    def catch_up(self) -> None:
        """Queue whatever changed in the catalog while the index was not listening."""
        snap = self.snapshot
        if snap is None:
            return
        changed, deleted = stale_ids(snap, self.ctx.db)
        if changed or deleted:
            log.info("search index: %d changed, %d deleted since saved", len(changed), len(deleted))
            self.on_change(changed, deleted)

    @property
    def pending(self) -> int:
        """Ids waiting to be applied."""
        with self._cond:
            return len(self._pending_up) + len(self._pending_del) + (1 if self._busy else 0)

    def wait_idle(self, timeout: float = 60.0) -> bool:
        """Block until every queued change is live; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._pending_up or self._pending_del or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def _ensure_worker(self) -> None:
        if self._worker is None or not self._worker.is_alive():
            self._worker = threading.Thread(target=self._run, name="search-index", daemon=True)
            self._worker.start()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not (self._pending_up or self._pending_del) and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                up, dele = sorted(self._pending_up), sorted(self._pending_del)
                self._pending_up.clear()
                self._pending_del.clear()
                self._busy = True
            try:
                snap = self.snapshot
                if snap is not None:
                    new = apply_changes(snap, self.ctx.db, self.embedder(), up, dele)
                    self.swap(new, changed=[*up, *dele])
            except Exception:  # keep serving the old snapshot; the next change retries
                log.exception("search index update failed (%d up, %d deleted)", len(up), len(dele))
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def close(self) -> None:
        """Stop listening and let the worker exit (``AppContext.close`` calls this)."""
        if self._listening:
            catalog.remove_change_listener(self.on_change)
            self._listening = False
        with self._cond:
            self._closed = True
            self._cond.notify_all()


def state_of(ctx: AppContext) -> SearchState:
    """The context's search state (created, and loaded from disk, on first use)."""
    state = ctx.extras.get(EXTRAS_KEY)
    if state is None:
        state = ctx.extras.setdefault(EXTRAS_KEY, SearchState(ctx))
        if state.load() is not None:
            state.listen()
            state.catch_up()
    return state


def attach(ctx: AppContext, state: Any) -> None:
    """Install ``state`` as the context's search state (tests, benchmarks)."""
    ctx.extras[EXTRAS_KEY] = state
