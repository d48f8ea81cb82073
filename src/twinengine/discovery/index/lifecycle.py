"""Index lifecycle: build from the catalog, persist, load, apply changes, swap atomically.

A ``Snapshot`` is immutable once built: queries take a reference to the current one and never
see a half-built index. Changes build a *new* snapshot (re-tokenising and re-embedding only the
changed items) and replace the reference in one assignment. On disk each snapshot is a folder
``indexes/search/<version>/`` of ``.npy`` / JSON files; ``indexes/search/CURRENT`` names the live
one and is replaced with ``os.replace``, so a crash mid-save leaves the previous index intact.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select

from twinengine.catalog.models import item_topics, items
from twinengine.catalog.store import CatalogStore, ItemFilter
from twinengine.discovery.index.dense import DenseIndex, doc_text
from twinengine.discovery.index.lexical import LexicalIndex
from twinengine.discovery.index.tokenize import tokenize
from twinengine.storage import Database

log = logging.getLogger(__name__)

FORMAT = 1
# title > description > body: a word in the title counts three times, in the description twice.
FIELD_WEIGHTS = (3, 2, 1)
# Embed the title, description and the start of the body (~90 word pieces): the description
# summarises the prompt, and the encoder's cost, most of the build time, grows with length.
DOC_CHARS = 400
_EPOCH = dt.date(1970, 1, 1)


@dataclass(frozen=True)
class Meta:
    """Per-row filter and facet data, as arrays aligned with the snapshot's rows."""

    languages: list[tuple[str, ...]]
    topics: list[tuple[str, ...]]
    collection: list[str | None]
    media: list[str]
    published: np.ndarray  # days since 1970-01-01, -1 when unknown
    hashes: list[str]
    titles: list[str]


class FacetColumn:
    """One facet field as a sparse (rows x values) 0/1 matrix: counts over any row set are one
    sparse mat-vec and a value's rows are one column slice, instead of Python loops over 11k rows
    per query (measured in ``bench/search.py``: facets of a lexical query matching most of the
    catalog went from tens of ms to well under one)."""

    def __init__(self, values_per_row: Sequence[Sequence[str]]) -> None:
        from scipy import sparse

        codes: dict[str, int] = {}
        indptr = [0]
        indices: list[int] = []
        for vals in values_per_row:
            for v in dict.fromkeys(vals):
                indices.append(codes.setdefault(v, len(codes)))
            indptr.append(len(indices))
        self.values = list(codes)
        self.code = codes
        shape = (len(values_per_row), len(codes))
        data = np.ones(len(indices), dtype=np.float32)
        self._indptr = np.asarray(indptr, dtype=np.int64)
        self._indices = np.asarray(indices, dtype=np.int64)
        self.rows_by_value = sparse.csc_matrix(
            sparse.csr_matrix((data, self._indices, self._indptr), shape=shape)
        )

    def counts(self, rows: np.ndarray) -> list[tuple[str, int]]:
        """(value, number of ``rows`` holding it), most frequent first, then by value."""
        if not len(rows) or not self.values:
            return []
        rows = np.asarray(rows, dtype=np.int64)
        if len(rows) * 8 < self.rows_by_value.shape[0]:
            # A page-sized result set (hybrid: <= 200 rows): gather its rows' value codes
            # straight from the row pointers; cheaper than a mat-vec over every row.
            starts, lengths = self._indptr[rows], np.diff(self._indptr)[rows]
            offsets = np.repeat(starts - np.cumsum(lengths) + lengths, lengths)
            codes = self._indices[offsets + np.arange(int(lengths.sum()))]
            n = np.bincount(codes, minlength=len(self.values))
        else:
            x = np.zeros(self.rows_by_value.shape[0], dtype=np.float32)
            x[rows] = 1.0
            n = np.rint(self.rows_by_value.T @ x).astype(np.int64)
        found = np.flatnonzero(n)
        pairs = [(self.values[j], int(n[j])) for j in found]
        pairs.sort(key=lambda p: (-p[1], p[0]))
        return pairs

    def has(self, value: str) -> np.ndarray:
        """Boolean row mask of the rows holding ``value``."""
        out = np.zeros(self.rows_by_value.shape[0], dtype=bool)
        j = self.code.get(value)
        if j is not None:
            m = self.rows_by_value
            out[m.indices[m.indptr[j] : m.indptr[j + 1]]] = True
        return out


@dataclass(frozen=True)
class Snapshot:
    """One consistent search index: ids, lexical, dense and filter data, row-aligned."""

    ids: list[str]
    lexical: LexicalIndex
    dense: DenseIndex
    meta: Meta
    model: str
    built_at: str
    row_of: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.row_of:
            object.__setattr__(self, "row_of", {i: n for n, i in enumerate(self.ids)})

    def __len__(self) -> int:
        return len(self.ids)

    def facet(self, name: str) -> FacetColumn:
        """The sparse column of facet ``name`` (topics, languages, collection, media), built on
        first use and kept for the snapshot's life (snapshots never change)."""
        cache = self.__dict__.setdefault("_facets", {})
        col = cache.get(name)
        if col is None:
            raw = getattr(self.meta, name)
            if name in ("collection", "media"):
                raw = [(v,) if v else () for v in raw]
            col = cache[name] = FacetColumn(raw)
        return col

    def mask(self, flt: ItemFilter | None) -> np.ndarray | None:
        """Boolean row mask for ``flt`` (None when it filters nothing)."""
        if flt is None:
            return None
        m = self.meta
        n = len(self.ids)
        out = np.ones(n, dtype=bool)
        active = False
        for topic in flt.topics:
            out &= self.facet("topics").has(topic)
            active = True
        if flt.language:
            out &= self.facet("languages").has(flt.language)
            active = True
        if flt.collection:
            out &= self.facet("collection").has(flt.collection)
            active = True
        if flt.media:
            out &= self.facet("media").has(flt.media)
            active = True
        if flt.published_from:
            out &= m.published >= (flt.published_from - _EPOCH).days
            active = True
        if flt.published_to:
            out &= (m.published >= 0) & (m.published <= (flt.published_to - _EPOCH).days)
            active = True
        if flt.ids is not None:
            wanted = {self.row_of[i] for i in flt.ids if i in self.row_of}
            sel = np.zeros(n, dtype=bool)
            sel[list(wanted)] = True
            out &= sel
            active = True
        return out if active else None

    # --- persistence ------------------------------------------------------------------------
    def save(self, root: Path) -> Path:
        """Write under ``root/<version>/`` and point ``root/CURRENT`` at it atomically."""
        root.mkdir(parents=True, exist_ok=True)
        version = f"v{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{time.monotonic_ns() % 10**6}"
        tmp = root / f".{version}.tmp"
        tmp.mkdir()
        self.lexical.save(tmp)
        self.dense.save(tmp)
        m = self.meta
        np.save(tmp / "published.npy", m.published)
        doc = {
            "format": FORMAT,
            "model": self.model,
            "built_at": self.built_at,
            "ids": self.ids,
            "languages": [list(x) for x in m.languages],
            "topics": [list(x) for x in m.topics],
            "collection": m.collection,
            "media": m.media,
            "hashes": m.hashes,
            "titles": m.titles,
        }
        (tmp / "snapshot.json").write_text(json.dumps(doc, ensure_ascii=False))
        final = root / version
        tmp.rename(final)
        pointer = root / ".CURRENT.tmp"
        pointer.write_text(version)
        os.replace(pointer, root / "CURRENT")
        for old in root.iterdir():  # keep the live folder only
            if old.is_dir() and old.name != version and not old.name.startswith("."):
                shutil.rmtree(old, ignore_errors=True)
        return final

    @classmethod
    def load(cls, root: Path) -> Snapshot | None:
        """The snapshot ``root/CURRENT`` names, or None when there is none (or it is stale)."""
        pointer = root / "CURRENT"
        if not pointer.exists():
            return None
        folder = root / pointer.read_text().strip()
        doc = json.loads((folder / "snapshot.json").read_text())
        if doc.get("format") != FORMAT:
            log.warning("search index at %s has an old format; rebuild it", folder)
            return None
        meta = Meta(
            languages=[tuple(x) for x in doc["languages"]],
            topics=[tuple(x) for x in doc["topics"]],
            collection=doc["collection"],
            media=doc["media"],
            published=np.load(folder / "published.npy", allow_pickle=False),
            hashes=doc["hashes"],
            titles=doc["titles"],
        )
        return cls(
            ids=doc["ids"],
            lexical=LexicalIndex.load(folder),
            dense=DenseIndex.load(folder),
            meta=meta,
            model=doc["model"],
            built_at=doc["built_at"],
        )


# --- building from the catalog ---------------------------------------------------------------
def item_tokens(row: dict[str, Any]) -> list[str]:
    """Lexical tokens of one catalog row, fields weighted by repetition (BM25F-style)."""
    wt, wd, wb = FIELD_WEIGHTS
    return (
        tokenize(row.get("title") or "") * wt
        + tokenize(row.get("description") or "") * wd
        + tokenize(row.get("body") or "") * wb
    )


def _meta_rows(rows: Sequence[dict[str, Any]]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {k: [] for k in Meta.__dataclass_fields__}
    for r in rows:
        out["languages"].append(tuple(r.get("languages") or ()))
        out["topics"].append(tuple(sorted({t["topic_id"] for t in r.get("topics") or []})))
        out["collection"].append(r.get("collection"))
        out["media"].append(r.get("media") or "image")
        pub = r.get("published")
        out["published"].append((pub - _EPOCH).days if isinstance(pub, dt.date) else -1)
        out["hashes"].append(r.get("content_hash") or "")
        out["titles"].append(r.get("title") or "")
    return out


def _make_meta(cols: dict[str, list[Any]]) -> Meta:
    return Meta(**{**cols, "published": np.asarray(cols["published"], dtype=np.int32)})


def fetch_rows(db: Database, ids: Sequence[str]) -> list[dict[str, Any]]:
    """Catalog rows (with topics and content hash) for ``ids``, in that order."""
    store = CatalogStore(db)
    found: dict[str, dict[str, Any]] = {}
    with db.read() as conn:
        for start in range(0, len(ids), 2000):
            chunk = list(ids[start : start + 2000])
            found.update(store.get_items(conn, chunk))
            hashes = conn.execute(
                select(items.c.id, items.c.content_hash).where(items.c.id.in_(chunk))
            )
            for rid, h in hashes:
                if rid in found:
                    found[rid]["content_hash"] = h
    return [found[i] for i in ids if i in found]


def all_ids(db: Database) -> list[str]:
    """Every catalog item id, sorted."""
    with db.read() as conn:
        return sorted(r[0] for r in conn.execute(select(items.c.id)))


def embed_rows(
    embedder: Any, rows: Sequence[dict[str, Any]], progress: Callable | None = None
) -> np.ndarray:
    """Dense vectors of catalog rows, in batches (``progress(n_done)`` after each)."""
    texts = [
        doc_text(r.get("title") or "", r.get("description") or "", r.get("body") or "")[:DOC_CHARS]
        for r in rows
    ]
    out = np.zeros((len(texts), embedder.dim), dtype=np.float32)
    # Longest first, in chunks of similar length: little padding, and progress is reported.
    order = np.argsort([-len(t) for t in texts], kind="stable")
    step = 256
    for start in range(0, len(order), step):
        chunk = order[start : start + step]
        out[chunk] = embedder.encode([texts[i] for i in chunk], batch_size=32, quantised=True)
        if progress:
            progress(min(start + step, len(texts)))
    return out


def build_snapshot(db: Database, embedder: Any, progress: Callable | None = None) -> Snapshot:
    """A fresh snapshot of the whole catalog."""
    rows = fetch_rows(db, all_ids(db))
    lexical = LexicalIndex.from_tokens([item_tokens(r) for r in rows])
    dense = DenseIndex(embed_rows(embedder, rows, progress))
    return Snapshot(
        ids=[r["id"] for r in rows],
        lexical=lexical,
        dense=dense,
        meta=_make_meta(_meta_rows(rows)),
        model=embedder.name,
        built_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    )


def apply_changes(
    snap: Snapshot, db: Database, embedder: Any, upserted: Sequence[str], deleted: Sequence[str]
) -> Snapshot:
    """A new snapshot with ``upserted`` re-read from the catalog and ``deleted`` removed.

    Only items whose content hash changed are re-tokenised and re-embedded; topic-only changes
    just refresh the filter data.
    """
    gone = set(deleted)
    rows = fetch_rows(db, sorted(set(upserted) - gone))
    gone |= set(upserted) - {r["id"] for r in rows}  # upserted then deleted before we looked
    keep = [n for n, i in enumerate(snap.ids) if i not in gone]
    ids = [snap.ids[n] for n in keep]
    tokens = [
        snap.lexical.indices[snap.lexical.indptr[n] : snap.lexical.indptr[n + 1]] for n in keep
    ]
    matrix = snap.dense.matrix[keep] if keep else np.zeros((0, embedder.dim), np.float32)
    cols = {k: [getattr(snap.meta, k)[n] for n in keep] for k in Meta.__dataclass_fields__}
    row_of = {i: n for n, i in enumerate(ids)}
    fresh = _meta_rows(rows)
    changed_text: list[int] = []
    new_rows: list[np.ndarray] = []
    for n, r in enumerate(rows):
        at = row_of.get(r["id"])
        if at is None:
            at = row_of[r["id"]] = len(ids)
            ids.append(r["id"])
            tokens.append(np.zeros(0, np.int32))
            new_rows.append(np.zeros((1, embedder.dim), np.float32))
            for k in cols:
                cols[k].append(None)
            changed_text.append(n)
        elif cols["hashes"][at] != fresh["hashes"][n]:
            changed_text.append(n)
        for k in cols:
            cols[k][at] = fresh[k][n]
    if new_rows:
        matrix = np.concatenate([matrix, *new_rows])
    vocab = list(snap.lexical.vocab)
    token_id = dict(snap.lexical.token_id)
    if changed_text:
        changed = [rows[n] for n in changed_text]
        vecs = embed_rows(embedder, changed)
        for r, vec in zip(changed, vecs, strict=True):
            at = row_of[r["id"]]
            matrix[at] = vec
            ids_ = []
            for tok in item_tokens(r):
                tid = token_id.get(tok)
                if tid is None:
                    tid = token_id[tok] = len(vocab)
                    vocab.append(tok)
                ids_.append(tid)
            tokens[at] = np.asarray(ids_, dtype=np.int32)
    lengths = np.fromiter((len(t) for t in tokens), np.int64, len(tokens))
    indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    indices = np.concatenate(tokens).astype(np.int32) if tokens else np.zeros(0, np.int32)
    lexical = LexicalIndex(vocab, indptr, indices, k1=snap.lexical.k1, b=snap.lexical.b)
    return replace(
        snap,
        ids=ids,
        lexical=lexical,
        dense=DenseIndex(matrix),
        meta=_make_meta(cols),
        built_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        row_of={},
    )


def stale_ids(snap: Snapshot, db: Database) -> tuple[list[str], list[str]]:
    """(changed or new ids, deleted ids) between the snapshot and the catalog, by content hash."""
    with db.read() as conn:
        current = dict(conn.execute(select(items.c.id, items.c.content_hash)).all())
    known = dict(zip(snap.ids, snap.meta.hashes, strict=True))
    changed = [i for i, h in current.items() if known.get(i) != h]
    deleted = [i for i in known if i not in current]
    return changed, deleted


def changed_between(old: Snapshot, new: Snapshot) -> set[str]:
    """Ids of ``old`` whose item differs in ``new`` (content hash or topics) or is gone."""
    now = {i: (h, t) for i, h, t in zip(new.ids, new.meta.hashes, new.meta.topics, strict=True)}
    return {
        i
        for i, h, t in zip(old.ids, old.meta.hashes, old.meta.topics, strict=True)
        if now.get(i) != (h, t)
    }


def refresh_topics(snap: Snapshot, db: Database) -> Snapshot:
    """The snapshot with topic links re-read (topic edits do not change content hashes)."""
    links: dict[str, set[str]] = {}
    with db.read() as conn:
        for item_id, topic_id in conn.execute(
            select(item_topics.c.item_id, item_topics.c.topic_id)
        ):
            links.setdefault(item_id, set()).add(topic_id)
    topics = [tuple(sorted(links.get(i, ()))) for i in snap.ids]
    if topics == snap.meta.topics:
        return snap
    return replace(snap, meta=replace(snap.meta, topics=topics))
