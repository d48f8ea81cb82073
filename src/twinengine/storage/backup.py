"""Backups: SQLite's online backup API, or pg_dump / pg_restore for Postgres."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from pathlib import Path

from sqlalchemy.engine import make_url

from twinengine.errors import BackendUnavailable, InvalidInput, NotFound
from twinengine.storage.database import Database


def backup(db: Database, *, target: Path) -> Path:
    """Write a consistent copy of the database to ``target`` while it stays online."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    if db.dialect == "sqlite":
        source = _sqlite_path(db)
        tmp = target.with_name(target.name + ".part")
        # The online backup API copies a consistent snapshot even while writers are active.
        with sqlite3.connect(source) as src, sqlite3.connect(tmp) as dst:
            src.backup(dst)
        tmp.replace(target)  # atomic: a half-written backup never has the final name
        return target
    _run(["pg_dump", "--format=custom", "--no-owner", f"--file={target}", _libpq_url(db)])
    return target


def restore(db: Database, *, source: Path) -> None:
    """Replace the database's content with a backup made by ``backup``."""
    source = Path(source)
    if not source.exists():
        raise NotFound(f"{source}: no such backup")
    if db.dialect == "sqlite":
        try:
            with sqlite3.connect(f"file:{source}?mode=ro", uri=True) as check:
                check.execute("PRAGMA schema_version").fetchone()
        except sqlite3.DatabaseError as exc:
            raise InvalidInput(f"{source}: not a SQLite backup ({exc})") from exc
        db.dispose()
        with sqlite3.connect(source) as src, sqlite3.connect(_sqlite_path(db)) as dst:
            src.backup(dst)
        return
    db.dispose()
    _run(
        [
            "pg_restore",
            "--clean",
            "--if-exists",
            "--no-owner",
            "--single-transaction",
            f"--dbname={_libpq_url(db)}",
            str(source),
        ]
    )


def _sqlite_path(db: Database) -> str:
    path = make_url(db.url).database
    if not path or path == ":memory:":
        raise InvalidInput("an in-memory SQLite database cannot be backed up")
    return path


def _libpq_url(db: Database) -> str:
    return make_url(db.url).set(drivername="postgresql").render_as_string(hide_password=False)


def _run(cmd: list[str]) -> None:
    if shutil.which(cmd[0]) is None:
        raise BackendUnavailable(f"{cmd[0]} is not installed (apt-get install postgresql-client)")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        raise BackendUnavailable(f"{cmd[0]} failed: {proc.stderr.strip()[:500]}")
