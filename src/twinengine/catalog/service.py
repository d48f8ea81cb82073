"""Catalog service: the only place catalog logic lives. API, web and CLI call these."""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from twinengine.catalog import ingest as _ingest
from twinengine.catalog.schemas import (
    FacetCounts,
    FacetPublic,
    IngestReport,
    ItemPage,
    ItemPublic,
    TaxonomyCreate,
    TopicPublic,
    ValueCount,
)
from twinengine.catalog.store import CatalogStore, ItemFilter, content_hash
from twinengine.errors import InvalidInput, NotFound
from twinengine.storage import Database

log = logging.getLogger(__name__)

# Hooks other engines register to hear about catalog changes (the search index keeps itself
# current this way) without the catalog importing them.
ChangeListener = Callable[[Sequence[str], Sequence[str]], None]  # (upserted ids, deleted ids)
_listeners: list[ChangeListener] = []


def add_change_listener(listener: ChangeListener) -> None:
    """Call ``listener(upserted_ids, deleted_ids)`` after every committed catalog change."""
    _listeners.append(listener)


def remove_change_listener(listener: ChangeListener) -> None:
    """Stop calling ``listener``."""
    if listener in _listeners:
        _listeners.remove(listener)


def _notify(upserted: Sequence[str], deleted: Sequence[str] = ()) -> None:
    for listener in list(_listeners):
        try:
            listener(upserted, deleted)
        except Exception:  # a listener must never undo a committed write
            log.exception("catalog change listener failed")


# --- ingest ----------------------------------------------------------------------------------
def ingest(
    db: Database,
    *,
    path: Path,
    mapping: Mapping[str, str] | None = None,
    skip_invalid: bool = False,
    reject_file: Path | None = None,
    on_row: Callable[[], None] | None = None,
) -> IngestReport:
    """Validate every row of ``path``, then upsert the valid ones in one transaction.

    Without ``skip_invalid`` a single bad row refuses the whole file and nothing is written;
    the error names each bad row's file:line and field.
    """
    path = Path(path)
    if not path.exists():
        raise NotFound(f"{path}: no such file")
    try:
        parsed = _ingest.parse_file(path, mapping=mapping, on_row=on_row)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from exc
    except (UnicodeDecodeError, OSError, EOFError) as exc:
        raise InvalidInput(f"{path}: cannot read file: {exc}") from exc
    if parsed.errors and not skip_invalid:
        shown = "\n".join(str(e) for e in parsed.errors[:20])
        more = len(parsed.errors) - 20
        raise InvalidInput(
            f"{path}: {len(parsed.errors)} invalid row(s); nothing was written"
            f" (use --skip-invalid to load the rest)\n{shown}"
            + (f"\n... and {more} more" if more > 0 else ""),
            details=[e.__dict__ | {"raw": None} for e in parsed.errors[:100]],
        )
    store = CatalogStore(db)
    hashed = [(item, content_hash(item)) for _, item in parsed.items]
    with db.write() as conn:
        existing = store.existing_hashes(conn, [item.id for item, _ in hashed])
        changed = [(i, h) for i, h in hashed if existing.get(i.id) != h]
        store.write_items(conn, changed)
    inserted = sum(1 for i, _ in changed if i.id not in existing)
    report = IngestReport(
        file=str(path),
        rows=len(parsed.items) + len(parsed.errors),
        inserted=inserted,
        updated=len(changed) - inserted,
        unchanged=len(hashed) - len(changed),
        rejected=len(parsed.errors),
    )
    if parsed.errors:
        target = reject_file or path.with_name(path.name + ".rejects.jsonl")
        with target.open("w", encoding="utf-8") as fh:
            for err in parsed.errors:
                fh.write(
                    json.dumps(
                        {
                            "file": err.file,
                            "line": err.line,
                            "field": err.field,
                            "reason": err.message,
                            "raw": err.raw,
                        },
                        ensure_ascii=False,
                    )
                    + "\n"
                )
        report.reject_file = str(target)
    if changed:
        _notify([i.id for i, _ in changed])
    return report


def load_taxonomy(db: Database, *, path: Path) -> tuple[int, int]:
    """Load a taxonomy JSON file (facets, topics); returns (facets, topics) written."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        taxonomy = TaxonomyCreate.model_validate(data)
    except FileNotFoundError as exc:
        raise NotFound(f"{path}: no such file") from exc
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{path}:{exc.lineno}: invalid JSON: {exc.msg}") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise InvalidInput(f"{path}: {loc}: {first['msg']} ({exc.error_count()} error(s))") from exc
    facet_ids = {f.id for f in taxonomy.facets}
    for t in taxonomy.topics:
        if t.facet not in facet_ids:
            raise InvalidInput(f"{path}: topic {t.id!r} names unknown facet {t.facet!r}")
    facet_rows = [
        {"id": f.id, "name": f.name, "description": f.description, "position": float(n)}
        for n, f in enumerate(taxonomy.facets)
    ]
    topic_rows = [
        {
            "id": t.id,
            "facet_id": t.facet,
            "name": t.name,
            "definition": t.definition,
            "keywords": t.keywords,
        }
        for t in taxonomy.topics
    ]
    with db.write() as conn:
        CatalogStore(db).write_taxonomy(conn, facet_rows, topic_rows)
    return len(facet_rows), len(topic_rows)


def load_topic_labels(db: Database, *, path: Path, source: str = "human") -> int:
    """Attach topics from a labels JSONL (``{"id", "topics": [...]}``) to catalog items.

    Unknown items or topics are refused with their line number; nothing is written then.
    """
    store = CatalogStore(db)
    links: list[tuple[str, str, float]] = []
    ids: list[str] = []
    errors: list[str] = []
    with db.read() as conn:
        known_topics = store.topic_ids(conn)
    with _ingest.open_text(Path(path)) as fh:
        rows = [(n, line) for n, line in enumerate(fh, start=1) if line.strip()]
    with db.read() as conn:
        known_items = set(
            store.existing_hashes(
                conn, [json.loads(line).get("id", "") for _, line in rows if _is_json(line)]
            )
        )
    for lineno, line in rows:
        if not _is_json(line):
            errors.append(f"{path}:{lineno}: invalid JSON")
            continue
        row = json.loads(line)
        if row.get("id") not in known_items:
            errors.append(f"{path}:{lineno}: id: unknown item {row.get('id')!r}")
            continue
        bad = [t for t in row.get("topics", []) if t not in known_topics]
        if bad:
            errors.append(f"{path}:{lineno}: topics: unknown topic(s) {', '.join(bad)}")
            continue
        ids.append(row["id"])
        links.extend((row["id"], t, 1.0) for t in row.get("topics", []))
    if errors:
        raise InvalidInput("\n".join(errors[:20]))
    with db.write() as conn:
        n = store.set_item_topics(conn, links, source=source, replace_for=ids)
    _notify(ids)
    return n


def _is_json(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except json.JSONDecodeError:
        return False


def set_item_topics(
    db: Database,
    *,
    links: Iterable[tuple[str, str, float]],
    source: str,
    replace_for: Sequence[str] | None = None,
) -> int:
    """Write topic links from one source (``rule``, ``model``, ``llm`` or ``human``)."""
    links = list(links)
    with db.write() as conn:
        n = CatalogStore(db).set_item_topics(conn, links, source=source, replace_for=replace_for)
    _notify(sorted({i for i, _, _ in links} | set(replace_for or [])))
    return n


# --- reads -------------------------------------------------------------------------------------
def get_item(db: Database, *, item_id: str) -> ItemPublic:
    """One item, or ``NotFound``."""
    with db.read() as conn:
        rows = CatalogStore(db).get_items(conn, [item_id])
    if item_id not in rows:
        raise NotFound(f"no item with id {item_id!r}")
    return ItemPublic.model_validate(rows[item_id])


def get_items(db: Database, *, ids: Sequence[str]) -> list[ItemPublic]:
    """Items in the order of ``ids``; unknown ids are skipped."""
    with db.read() as conn:
        rows = CatalogStore(db).get_items(conn, list(ids))
    return [ItemPublic.model_validate(rows[i]) for i in ids if i in rows]


def list_items(
    db: Database,
    *,
    flt: ItemFilter,
    limit: int = 20,
    cursor: str | None = None,
    with_count: bool = True,
) -> ItemPage:
    """A page of items matching ``flt``, newest first."""
    if limit < 1:
        raise InvalidInput("limit must be at least 1")
    store = CatalogStore(db)
    with db.read() as conn:
        rows, next_cursor = store.list_page(conn, flt, limit=limit, cursor=cursor)
        count = store.count(conn, flt) if with_count else len(rows)
    return ItemPage(
        data=[ItemPublic.model_validate(r) for r in rows], count=count, next_cursor=next_cursor
    )


def count_items(db: Database, *, flt: ItemFilter | None = None) -> int:
    """How many items match."""
    with db.read() as conn:
        return CatalogStore(db).count(conn, flt)


def catalog_digest(db: Database) -> str:
    """A hash of the whole catalog's content and topic links."""
    with db.read() as conn:
        return CatalogStore(db).digest(conn)


def facet_counts(db: Database, *, flt: ItemFilter) -> FacetCounts:
    """Counts for every filterable field over the items ``flt`` selects."""
    store = CatalogStore(db)
    with db.read() as conn:
        counts = store.value_counts(conn, flt)
        total = store.count(conn, flt)
    return FacetCounts(
        total=total,
        **{k: [ValueCount(value=v, count=c) for v, c in vals] for k, vals in counts.items()},
    )


def list_facets(db: Database) -> list[FacetPublic]:
    """Facets with their topics and item counts."""
    store = CatalogStore(db)
    with db.read() as conn:
        facet_rows = store.facet_rows(conn)
        topic_rows = store.topics_with_counts(conn)
    by_facet: dict[str, list[TopicPublic]] = {f["id"]: [] for f in facet_rows}
    for t in topic_rows:
        by_facet.setdefault(t["facet_id"], []).append(_topic(t))
    return [
        FacetPublic(
            id=f["id"], name=f["name"], description=f["description"], topics=by_facet[f["id"]]
        )
        for f in facet_rows
    ]


def list_topics(db: Database) -> list[TopicPublic]:
    """Every topic with its item count."""
    with db.read() as conn:
        return [_topic(t) for t in CatalogStore(db).topics_with_counts(conn)]


def get_topic(db: Database, *, topic_id: str) -> TopicPublic:
    """One topic, or ``NotFound``."""
    for t in list_topics(db):
        if t.id == topic_id:
            return t
    raise NotFound(f"no topic with id {topic_id!r}")


def _topic(row: dict[str, Any]) -> TopicPublic:
    return TopicPublic(
        id=row["id"],
        facet=row["facet_id"],
        name=row["name"],
        definition=row["definition"],
        keywords=list(row["keywords"] or []),
        count=row.get("count", 0),
    )


def delete_item(db: Database, *, item_id: str) -> None:
    """Delete an item and its links."""
    with db.write() as conn:
        if not CatalogStore(db).delete_item(conn, item_id):
            raise NotFound(f"no item with id {item_id!r}")
    _notify([], [item_id])


def make_filter(
    *,
    topics: Sequence[str] = (),
    language: str | None = None,
    collection: str | None = None,
    media: str | None = None,
    published_from: dt.date | None = None,
    published_to: dt.date | None = None,
    q: str | None = None,
) -> ItemFilter:
    """Build an ``ItemFilter`` from request parameters, dropping blanks."""
    if published_from and published_to and published_from > published_to:
        raise InvalidInput("published_from is after published_to")
    return ItemFilter(
        topics=tuple(t for t in topics if t),
        language=language or None,
        collection=collection or None,
        media=media or None,
        published_from=published_from,
        published_to=published_to,
        q=(q or "").strip() or None,
    )
