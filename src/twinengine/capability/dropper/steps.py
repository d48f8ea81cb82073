"""The content drop's steps: small, idempotent functions, each a DBOS checkpoint.

Every step reads and writes only through the run's work folder (``home/drops/<run id>/``),
the catalog (upserts by id) and the object store (puts by key), so running a step again after
a crash writes the same things again and nothing twice. Retry policy sits on the decorators.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from dbos import DBOS

from twinengine.capability.dropper.dedupe import find_duplicates, item_text
from twinengine.capability.dropper.markdown import parse_readme
from twinengine.capability.workflows import runtime
from twinengine.catalog import ingest as catalog_ingest
from twinengine.catalog import service as catalog
from twinengine.catalog.models import items
from twinengine.errors import BackendUnavailable, InvalidInput, NotFound
from twinengine.storage.objects import open_object_store

log = logging.getLogger(__name__)

INPUT_SUFFIXES = (".jsonl", ".jsonl.gz", ".ndjson", ".json", ".csv", ".csv.gz", ".md")
MAX_ERRORS_KEPT = 50


def _transient(exc: BaseException) -> bool:
    # retry what a later attempt can fix (a locked database, an unreachable store), not bad input
    return isinstance(exc, (BackendUnavailable, OSError, TimeoutError))


def work_dir(run_id: str) -> Path:
    """The run's private folder of intermediate files."""
    path = runtime.context().settings.home / "drops" / run_id
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    """Write rows atomically (temp file + rename), so a killed step leaves no half file."""
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
    os.replace(tmp, path)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Rows of a JSONL file (missing file: none)."""
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def input_files(source: Path) -> list[Path]:
    """The drop's files: the file itself, or a folder's supported files in name order."""
    if not source.exists():
        raise NotFound(f"{source}: no such file or folder")
    if source.is_file():
        return [source]
    files = [
        p
        for p in sorted(source.rglob("*"))
        if p.is_file()
        and p.name.lower().endswith(INPUT_SUFFIXES)
        and not p.name.startswith(".")
        and not p.name.endswith(".rejects.jsonl")
    ]
    if not files:
        raise InvalidInput(f"{source}: no .jsonl, .csv or .md files in the folder")
    return files


@DBOS.step(
    retries_allowed=True,
    max_attempts=3,
    interval_seconds=0.5,
    backoff_rate=2.0,
    should_retry=_transient,
)
def stage_input(run_id: str, source: str, collection: str | None, licence: str | None) -> dict:
    """Read and validate the drop (JSONL/CSV through the catalog's own parser, READMEs first
    converted to rows); keep the valid rows in ``valid.jsonl``."""
    t0 = time.perf_counter()
    folder = work_dir(run_id)
    valid: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    rows = rejected = 0
    seen: dict[str, str] = {}
    files = input_files(Path(source))
    for n, path in enumerate(files):
        parse_path = path
        if path.name.lower().endswith(".md"):
            md_rows = parse_readme(path, collection=collection, licence=licence)
            parse_path = folder / f"readme-{n}.jsonl"
            write_jsonl(parse_path, md_rows)
        try:
            parsed = catalog_ingest.parse_file(parse_path)
        except ValueError as exc:
            raise InvalidInput(str(exc)) from exc
        bad_lines = {e.line for e in parsed.errors}  # one row may fail on several fields
        rows += len(parsed.items) + len(bad_lines)
        rejected += len(bad_lines)
        errors.extend(
            {"file": str(path), "line": e.line, "field": e.field, "reason": e.message}
            for e in parsed.errors[:MAX_ERRORS_KEPT]
        )
        for line, item in parsed.items:
            if item.id in seen:
                rejected += 1
                errors.append(
                    {
                        "file": str(path),
                        "line": line,
                        "field": "id",
                        "reason": f"duplicate id {item.id!r} (also in {seen[item.id]})",
                    }
                )
                continue
            seen[item.id] = str(path)
            row = item.model_dump(mode="json")
            if collection and not row.get("collection"):
                row["collection"] = collection
            if licence and not row.get("licence"):
                row["licence"] = licence
            valid.append(row)
    write_jsonl(folder / "valid.jsonl", valid)
    return {
        "files": [str(p) for p in files],
        "rows": rows,
        "valid": len(valid),
        "rejected": rejected,
        "errors": errors[:MAX_ERRORS_KEPT],
        "seconds": round(time.perf_counter() - t0, 3),
    }


def _catalog_texts() -> list[tuple[str, str]]:
    db = runtime.context().db
    with db.read() as conn:
        result = conn.execute(
            items.select().with_only_columns(
                items.c.id, items.c.title, items.c.description, items.c.body
            )
        )
        return [(r.id, item_text(r._asdict())) for r in result]


@DBOS.step(
    retries_allowed=True,
    max_attempts=3,
    interval_seconds=0.5,
    backoff_rate=2.0,
    should_retry=_transient,
)
def find_duplicate_items(run_id: str, threshold: float) -> dict:
    """Exact and near duplicates of the valid rows against the catalog and each other."""
    t0 = time.perf_counter()
    folder = work_dir(run_id)
    rows = read_jsonl(folder / "valid.jsonl")
    dups = find_duplicates(
        _catalog_texts(), [(r["id"], item_text(r)) for r in rows], threshold=threshold
    )
    dup_ids = {d.id for d in dups}
    accepted = [r for r in rows if r["id"] not in dup_ids]
    write_jsonl(folder / "accepted.jsonl", accepted)
    return {
        "duplicates": [d.__dict__ for d in dups],
        "accepted_ids": [r["id"] for r in accepted],
        "exact": sum(1 for d in dups if d.kind == "exact"),
        "near": sum(1 for d in dups if d.kind == "near"),
        "seconds": round(time.perf_counter() - t0, 3),
    }


@DBOS.step(
    retries_allowed=True,
    max_attempts=4,
    interval_seconds=0.5,
    backoff_rate=2.0,
    should_retry=_transient,
)
def ingest_items(run_id: str) -> dict:
    """Upsert the accepted rows with ``catalog.service.ingest`` (idempotent by id and hash)."""
    path = work_dir(run_id) / "accepted.jsonl"
    if not read_jsonl(path):
        return {"inserted": 0, "updated": 0, "unchanged": 0, "rows": 0}
    report = catalog.ingest(runtime.context().db, path=path)
    return report.model_dump(exclude={"file", "reject_file"})


def _tagger() -> Any:
    try:
        from twinengine.capability.tagging import service as tagging
    except ImportError:
        return None
    return getattr(tagging, "tag_items", None)


def _as_dict(obj: Any) -> dict[str, Any]:
    if hasattr(obj, "model_dump"):
        return obj.model_dump(mode="json")
    if isinstance(obj, dict):
        return obj
    return dict(getattr(obj, "__dict__", {}))


@DBOS.step(
    retries_allowed=True,
    max_attempts=4,
    interval_seconds=1.0,
    backoff_rate=2.0,
    should_retry=_transient,
)
def tag_batch(run_id: str, item_ids: list[str], allow_llm: bool) -> dict:
    """Tag one batch with the auto-tagger (local cascade, LLM escalation within budget).

    The router answers a call this run already completed from its ledger (keyed by run id,
    step and input), so re-running a batch after a crash repeats no paid LLM call.
    """
    tag_items = _tagger()
    if tag_items is None:
        return {"skipped": "auto-tagger not installed", "items": len(item_ids)}
    try:
        report = tag_items(
            runtime.context(), item_ids=item_ids, allow_llm=allow_llm, run_id=run_id
        )
    except (NotFound, InvalidInput) as exc:
        # no trained tagger, or trained on another taxonomy: publish untagged, say why
        return {"skipped": exc.message, "items": len(item_ids)}
    return _as_dict(report)


@DBOS.step(
    retries_allowed=True,
    max_attempts=3,
    interval_seconds=1.0,
    backoff_rate=2.0,
    should_retry=_transient,
)
def embed_and_index(run_id: str, item_ids: list[str]) -> dict:
    """Embed the new items into the search index and swap the new snapshot in atomically.

    The search engine's ``SearchState`` re-embeds only changed items, persists the snapshot and
    replaces the live one in one assignment (other processes pick up ``indexes/search/CURRENT``).
    """
    t0 = time.perf_counter()
    try:
        from twinengine.discovery.index.state import state_of
    except ImportError:
        return {"skipped": "search index not installed"}
    state = state_of(runtime.context())
    if state.snapshot is None:
        return {"skipped": "no search index built (run `twinengine index build`)"}
    state.listen()
    state.catch_up()
    if not state.wait_idle(timeout=600):
        raise BackendUnavailable("search index update did not finish in 600 s")
    snap = state.snapshot
    live = set(snap.ids) if snap is not None else set()
    return {
        "indexed": sum(1 for i in item_ids if i in live),
        "index_items": len(live),
        "seconds": round(time.perf_counter() - t0, 3),
    }


@DBOS.step(
    retries_allowed=True,
    max_attempts=5,
    interval_seconds=1.0,
    backoff_rate=2.0,
    should_retry=_transient,
)
def publish_batch(run_id: str, item_ids: list[str]) -> dict:
    """Put each item's JSON (with its topics) at ``items/<id>.json`` in the object store."""
    ctx = runtime.context()
    store = open_object_store(ctx.settings)
    try:
        published = catalog.get_items(ctx.db, ids=item_ids)
        for item in published:
            store.put(f"items/{item.id}.json", item.model_dump_json(indent=None))
        return {"published": len(published), "missing": len(item_ids) - len(published)}
    finally:
        store.close()


@DBOS.step(
    retries_allowed=True,
    max_attempts=3,
    interval_seconds=0.5,
    backoff_rate=2.0,
    should_retry=_transient,
)
def llm_cost(run_id: str) -> dict:
    """What this run spent on LLM calls, from the router's cost ledger."""
    try:
        from twinengine.capability.router import service as router
    except ImportError:
        return {"usd": 0.0, "calls": 0}
    ctx = runtime.context()
    entries = router.list_ledger(ctx, limit=100_000, run_id=run_id)
    by_status: dict[str, int] = {}
    for entry in entries:
        status = str(getattr(entry, "status", "") or "call")
        by_status[status] = by_status.get(status, 0) + 1
    return {
        "usd": round(router.spent(ctx, run_id=run_id), 6),
        "calls": len(entries),
        "by_status": by_status,
        "repeated": [list(r) for r in router.repeated_calls(ctx, run_id=run_id)],
    }


@DBOS.step(
    retries_allowed=True,
    max_attempts=5,
    interval_seconds=1.0,
    backoff_rate=2.0,
    should_retry=_transient,
)
def publish_manifest(run_id: str, report: dict, item_ids: list[str]) -> dict:
    """Put the drop manifest and report at ``drops/<run id>/`` in the object store."""
    ctx = runtime.context()
    store = open_object_store(ctx.settings)
    try:
        manifest = {
            "run_id": run_id,
            "published_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "items": [
                {"id": i, "key": f"items/{i}.json", "url": store.url(f"items/{i}.json")}
                for i in item_ids
            ],
            "report": report,
        }
        url = store.put(f"drops/{run_id}/manifest.json", json.dumps(manifest, ensure_ascii=False))
        store.put(f"drops/{run_id}/report.json", json.dumps(report, ensure_ascii=False))
        return {"manifest_url": url}
    finally:
        store.close()


@DBOS.step(
    retries_allowed=True,
    max_attempts=3,
    interval_seconds=1.0,
    backoff_rate=2.0,
    should_retry=_transient,
)
def claim_inbox(day: str) -> str | None:
    """Move the inbox's files into ``inbox/claimed/<day>/`` (once); None when there are none."""
    settings = runtime.context().settings
    inbox = Path(settings.drop_inbox) if settings.drop_inbox else settings.home / "inbox"
    claimed = inbox / "claimed" / day
    if claimed.exists() and any(claimed.iterdir()):
        return str(claimed)  # claimed by an earlier attempt of this same scheduled run
    if not inbox.exists():
        return None
    files = [
        p
        for p in sorted(inbox.iterdir())
        if p.is_file() and p.name.lower().endswith(INPUT_SUFFIXES)
    ]
    if not files:
        return None
    claimed.mkdir(parents=True, exist_ok=True)
    for path in files:
        shutil.move(str(path), claimed / path.name)
    return str(claimed)
