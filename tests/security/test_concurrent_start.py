"""Several processes starting at once against one Postgres database all migrate it safely.

The soak starts two API processes and two workers together; before the migrations were
serialised, one worker died at start-up with `DROP INDEX ... does not exist` because two
processes ran the same migration at the same time.
"""

from __future__ import annotations

import subprocess
import sys

from twinengine.storage.database import open_database
from twinengine.storage.migrate import current

STARTER = """
import sys
from twinengine.storage.database import open_database
from twinengine.storage.migrate import upgrade
db = open_database(sys.argv[1])
upgrade(db)
db.dispose()
"""


def test_processes_migrating_at_once_all_succeed(pg_database_url: str) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", STARTER, pg_database_url],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for _ in range(4)
    ]
    outputs = [p.communicate(timeout=180)[0].decode() for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, "\n".join(outputs)[-3000:]
    db = open_database(pg_database_url)
    try:
        assert current(db)  # at the heads, once
    finally:
        db.dispose()
