"""Keep a running server's search index current with drops made by worker processes.

A worker's drop writes the new index snapshot to ``home/indexes/search/`` and flips the
``CURRENT`` pointer atomically. A server process holds its own snapshot in memory; this
follower watches the pointer and, when another process moved it, loads that snapshot and swaps
it in (one assignment: queries never see a half-built index), then queues anything still
missing (``catch_up``). Started by the API's start-up hook; stopped when the context closes.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from twinengine.context import AppContext

log = logging.getLogger(__name__)

EXTRAS_KEY = "drop_index_follower"


class IndexFollower:
    """A daemon thread polling ``indexes/search/CURRENT`` (see module docstring)."""

    def __init__(self, ctx: AppContext, *, interval_s: float = 2.0) -> None:
        self.ctx = ctx
        self.interval_s = interval_s
        self.pointer: Path = ctx.settings.home / "indexes" / "search" / "CURRENT"
        self._seen = self._stamp()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="drop-index-follower", daemon=True)

    def _stamp(self) -> tuple[int, str] | None:
        try:
            return self.pointer.stat().st_mtime_ns, self.pointer.read_text(encoding="utf-8")
        except OSError:
            return None

    def start(self) -> IndexFollower:
        """Start polling."""
        self._thread.start()
        return self

    def check(self) -> bool:
        """Swap in a snapshot another process published; True when one was loaded."""
        stamp = self._stamp()
        if stamp is None or stamp == self._seen:
            return False
        self._seen = stamp
        state = self.ctx.extras.get("search")
        if state is None or getattr(state, "snapshot", None) is None:
            return False  # this process serves no index: nothing to swap
        before = state.snapshot
        loaded = state.load()
        if loaded is None:
            return False
        state.catch_up()
        log.info("search index: swapped in %d items published by another process", len(loaded))
        return loaded is not before

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.check()
            except Exception:  # keep serving the current snapshot; try again next tick
                log.exception("search index follower failed")

    def close(self) -> None:
        """Stop polling (``AppContext.close`` calls this)."""
        self._stop.set()


def follow_index(ctx: AppContext) -> None:
    """Start-up hook: follow index snapshots published by workers (once per context)."""
    if EXTRAS_KEY not in ctx.extras:
        ctx.extras[EXTRAS_KEY] = IndexFollower(ctx).start()
