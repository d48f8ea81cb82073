"""Starting content drops: in this process (CLI) or on the queue for a worker (API)."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from pathlib import Path
from typing import Any

from twinengine.capability.workflows import runtime
from twinengine.context import AppContext
from twinengine.errors import InvalidInput, NotFound

_SUFFIX = {"jsonl": ".jsonl", "markdown": ".md", "csv": ".csv"}


def drop_id(source: Path) -> str:
    """A run id from the input's bytes: dropping the same content again is the same run."""
    digest = hashlib.sha256()
    paths = [source] if source.is_file() else sorted(p for p in source.rglob("*") if p.is_file())
    for path in paths:
        digest.update(path.name.encode() + b"\0")
        with path.open("rb") as fh:
            for block in iter(lambda fh=fh: fh.read(1 << 20), b""):
                digest.update(block)
    return f"drop-{digest.hexdigest()[:16]}"


def _source(path: Path) -> Path:
    path = Path(path).expanduser().resolve()
    if not path.exists():
        raise NotFound(f"{path}: no such file or folder")
    return path


def options(
    *,
    collection: str | None = None,
    licence: str | None = None,
    allow_llm: bool | None = None,
    batch_size: int | None = None,
) -> dict[str, Any]:
    """The drop's options, blanks dropped."""
    out = {
        "collection": collection,
        "licence": licence,
        "allow_llm": allow_llm,
        "batch_size": batch_size,
    }
    return {k: v for k, v in out.items() if v is not None}


def run_drop(
    ctx: AppContext, *, path: Path, run_id: str | None = None, **opts: Any
) -> dict[str, Any]:
    """Run a drop in this process (launching the runtime if needed); returns its report."""
    source = _source(path)
    run_id = run_id or drop_id(source)
    if runtime.is_launched():
        return runtime.run_flow(
            "drop", source=str(source), params=options(**opts), workflow_id=run_id
        )
    with runtime.running(ctx):
        return runtime.run_flow(
            "drop", source=str(source), params=options(**opts), workflow_id=run_id
        )


def enqueue_drop(ctx: AppContext, *, path: Path, run_id: str | None = None, **opts: Any) -> str:
    """Queue a drop for a worker (``twinengine worker``); returns the run id."""
    from twinengine.capability.workflows.service import client_of

    source = _source(path)
    return client_of(ctx).enqueue(
        "drop", source=str(source), params=options(**opts), workflow_id=run_id or drop_id(source)
    )


def save_upload(ctx: AppContext, *, content: str, fmt: str) -> Path:
    """Write an uploaded drop into ``home/uploads/`` so a worker can read it."""
    if fmt not in _SUFFIX:
        raise InvalidInput(f"format must be one of {', '.join(_SUFFIX)}")
    folder = ctx.settings.home / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    path = folder / f"{stamp}-{uuid.uuid4().hex[:8]}{_SUFFIX[fmt]}"
    path.write_text(content, encoding="utf-8")
    return path


def replay_day(ctx: AppContext, *, day: dt.date, source: Path | None = None) -> Path:
    """Write the catalog rows ``published`` on ``day`` as a drop file (the realistic stream).

    Replaying the bundled catalog day by day reproduces the daily content drop it came from.
    """
    import gzip
    import json

    from twinengine.catalog.demo import DEMO_CATALOG

    src = Path(source or DEMO_CATALOG)
    opener = gzip.open if src.suffix == ".gz" else open
    folder = ctx.settings.home / "replay"
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"{day.isoformat()}.jsonl"
    n = 0
    with opener(src, "rt", encoding="utf-8") as fh, out.open("w", encoding="utf-8") as dst:
        for line in fh:
            if f'"published": "{day.isoformat()}"' not in line:
                continue  # cheap pre-filter before parsing
            row = json.loads(line)
            if row.get("published") == day.isoformat():
                dst.write(json.dumps(row, ensure_ascii=False) + "\n")
                n += 1
    if n == 0:
        out.unlink()
        raise NotFound(f"no catalog rows published on {day.isoformat()}")
    return out
