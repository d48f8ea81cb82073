"""Content similarity without the search index: TF-IDF over each item's title and text.

Used by the ``content`` generator (neighbours of a seed item, or of a user's recent items) so
related items and sparse-history feeds have a content signal even before embeddings exist.
Built once per catalog version and shared by every state rebuild.
"""

from __future__ import annotations

import re
import threading
from collections import Counter

import numpy as np
import scipy.sparse as sp
from sqlalchemy import func, select

from twinengine.catalog.models import items
from twinengine.storage import Database

_TOKEN = re.compile(r"[^\W_]{2,}", re.UNICODE)
_CACHE: dict[tuple[str, str, int], tuple[list[str], sp.csr_matrix]] = {}
_LOCK = threading.Lock()
BODY_CHARS = 1500  # the opening of a prompt says what it is; the rest is mostly detail


def _version(db: Database) -> tuple[str, str, int]:
    with db.read() as conn:
        last, n = conn.execute(select(func.max(items.c.updated_at), func.count())).one()
    return db.url, str(last), int(n)


def tfidf(db: Database) -> tuple[list[str], sp.csr_matrix]:
    """(item ids sorted, L2-normalised TF-IDF rows) for the current catalog (cached)."""
    key = _version(db)
    with _LOCK:
        hit = _CACHE.get(key)
        if hit is not None:
            return hit
        with db.read() as conn:
            rows = conn.execute(
                select(items.c.id, items.c.title, items.c.description, items.c.body).order_by(
                    items.c.id
                )
            ).all()
        docs = [
            Counter(_TOKEN.findall(f"{t} {t} {d} {(b or '')[:BODY_CHARS]}".lower()))
            for _, t, d, b in rows
        ]
        df: Counter[str] = Counter()
        for doc in docs:
            df.update(doc.keys())
        n = max(1, len(docs))
        # Words in half the catalog say nothing about an item; words in one item link nothing.
        vocab = {w: k for k, w in enumerate(sorted(w for w, c in df.items() if 2 <= c <= n // 2))}
        idf = np.array([np.log(n / df[w]) for w in sorted(vocab, key=vocab.get)])  # type: ignore[arg-type]
        r, c, v = [], [], []
        for i, doc in enumerate(docs):
            for w, tf in doc.items():
                k = vocab.get(w)
                if k is not None:
                    r.append(i)
                    c.append(k)
                    v.append((1.0 + np.log(tf)) * idf[k])
        m = sp.csr_matrix((v, (r, c)), shape=(len(docs), max(1, len(vocab))), dtype=np.float32)
        norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
        m = sp.csr_matrix(sp.diags(1.0 / np.where(norms > 0, norms, 1.0)) @ m)
        _CACHE.clear()  # one catalog version at a time per process
        _CACHE.clear()  # one catalog version at a time: each drop makes a new one
        _CACHE[key] = ([r_[0] for r_ in rows], m)
        return _CACHE[key]
