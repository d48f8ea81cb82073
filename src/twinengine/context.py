"""The running system: settings plus the open database, built once and passed down."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from twinengine.config import Settings
from twinengine.storage import Database, open_database

log = logging.getLogger(__name__)


@dataclass
class AppContext:
    """What every service call needs: settings and the database.

    Engines attach their long-lived parts (search indexes, models) to ``extras`` under their
    own key, so the context stays free of engine imports.
    """

    settings: Settings
    db: Database
    extras: dict[str, Any] = field(default_factory=dict)
    _warmers: list[threading.Thread] = field(default_factory=list, repr=False)

    def warm_in_background(self, name: str, target: Callable[[], None]) -> None:
        """Run a start-up warm-up (model loads, first encodes) on a daemon thread that
        ``close`` waits for: a process that exits while torch runs on such a thread aborts
        ("terminate called without an active exception", exit status 134)."""
        thread = threading.Thread(target=target, name=name, daemon=True)
        self._warmers.append(thread)
        thread.start()

    def close(self) -> None:
        """Release the database and anything attached that can be closed."""
        for thread in self._warmers:
            thread.join(timeout=120)
        for value in self.extras.values():
            closer = getattr(value, "close", None)
            if callable(closer):
                closer()
        self.db.dispose()


def open_context(settings: Settings, *, migrate: bool = True) -> AppContext:
    """Open the database named by ``settings`` (migrating it unless told not to)."""
    settings.ensure_home()
    db = open_database(settings.effective_database_url)
    if migrate:
        db.upgrade()
    return AppContext(settings=settings, db=db)
