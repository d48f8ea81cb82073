"""Candidate generators: each scores every catalog item (a dense vector) for one request.

A generator is ``fn(ctx, state, user_key, item_row) -> np.ndarray | None`` (None: it has nothing
to say for this request, e.g. CF for a brand-new user). ``GENERATORS`` maps names to them; the
names are the ``source`` a candidate carries and the keys of its ``features``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp

from twinengine.context import AppContext
from twinengine.discovery.candidates.cf import AlsModel, EaseModel
from twinengine.discovery.candidates.state import RecState

log = logging.getLogger(__name__)

Generator = Callable[[AppContext, RecState, "str | None", "int | None"], "np.ndarray | None"]


def weighted_rows(M: sp.csr_matrix, rows: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``sum_k weights[k] * M[rows[k]]`` as a dense vector, without scipy's slicing overhead."""
    out = np.zeros(M.shape[1])
    indptr, indices, data = M.indptr, M.indices, M.data
    for r, w in zip(rows.tolist(), weights.tolist(), strict=False):
        s, e = indptr[r], indptr[r + 1]
        if e > s:
            out[indices[s:e]] += w * data[s:e]  # column ids are unique within a row
    return out


def popular(ctx: AppContext, st: RecState, user: str | None, row: int | None) -> np.ndarray:
    """Clicks and conversions, each halving in weight every half-life."""
    return st.popular


def quality(ctx: AppContext, st: RecState, user: str | None, row: int | None) -> np.ndarray:
    """Clicks per examined impression (1/position prior), smoothed towards the mean."""
    return st.quality


def trending(ctx: AppContext, st: RecState, user: str | None, row: int | None) -> np.ndarray:
    """Velocity: the last day's interactions against the previous six days' daily mean."""
    return st.trending


def fresh(ctx: AppContext, st: RecState, user: str | None, row: int | None) -> np.ndarray:
    """Newest published first (halving every 30 days)."""
    return st.fresh


def affinity(ctx: AppContext, st: RecState, user: str | None, row: int | None) -> np.ndarray | None:
    """Items on the topics the user engaged with (or the seed item's topics), decayed."""
    if row is not None:
        profile = weighted_rows(st.item_topics, np.array([row]), np.ones(1))
    else:
        hist = st.histories.get(user or "")
        if hist is None or st.item_topics.nnz == 0:
            return None
        profile = weighted_rows(st.item_topics, hist.rows, hist.weights)
    if not profile.any():
        return None
    profile = profile / profile.sum()
    # Dividing by sqrt(topic count) keeps items tagged with everything from winning by volume.
    return np.asarray(st.item_topics @ profile).ravel() / st.topic_norm


def cooc(ctx: AppContext, st: RecState, user: str | None, row: int | None) -> np.ndarray | None:
    """Items seen in the same sessions as the seed item, or as the user's recent items."""
    if row is not None:
        out = weighted_rows(st.cooc, np.array([row]), np.ones(1))
    else:
        hist = st.histories.get(user or "")
        if hist is None:
            return None
        out = weighted_rows(st.cooc, hist.rows, hist.weights)
    return out if out.any() else None


def cf(ctx: AppContext, st: RecState, user: str | None, row: int | None) -> np.ndarray | None:
    """Collaborative filtering (EASE or ALS) on the user's history, or item-to-item weights."""
    model = st.cf
    if model is None:
        return None
    if row is not None:
        if isinstance(model, EaseModel):
            sim = model.similar(row)
            out = np.zeros(st.n)
            out[: len(sim)] = sim
            return out if out.any() else None
        v = model.item_factors
        return np.clip(v @ v[row], 0.0, None)
    hist = st.histories.get(user or "")
    if hist is None:
        return None
    u = st.user_rows.get(user or "")
    if isinstance(model, EaseModel):
        if u is not None:
            s, e = st.X.indptr[u], st.X.indptr[u + 1]
            return model.score_row(st.X.indices[s:e], st.X.data[s:e], st.n)
        return model.score_row(hist.rows, hist.weights, st.n)
    if isinstance(model, AlsModel):
        if u is not None:
            return model.score_users(np.array([u]))[0]
        return model.score_history(_history_row(st, hist))[0]
    return None


QUERY_TERMS = 48


def content(ctx: AppContext, st: RecState, user: str | None, row: int | None) -> np.ndarray | None:
    """TF-IDF neighbours of the seed item, or of the user's recent items (weighted)."""
    V = st.content
    if V is None:
        return None
    if row is not None:
        q = weighted_rows(V, np.array([row]), np.ones(1))
    else:
        hist = st.histories.get(user or "")
        if hist is None:
            return None
        q = weighted_rows(V, hist.rows[:20], hist.weights[:20])
    nz = np.flatnonzero(q)
    if not len(nz):
        return None
    # The query's strongest terms carry nearly all of the cosine and keep this sub-millisecond.
    terms = nz[np.argsort(-q[nz])[:QUERY_TERMS]]
    cols = st.content_csc[:, terms]
    return np.asarray(cols @ q[terms].astype(np.float64)).ravel()


def _history_row(st: RecState, hist: Any) -> Any:
    import scipy.sparse as sp

    return sp.csr_matrix(
        (hist.weights, (np.zeros(len(hist.rows), dtype=np.int64), hist.rows)), shape=(1, st.n)
    )


def embed(ctx: AppContext, st: RecState, user: str | None, row: int | None) -> np.ndarray | None:
    """Embedding neighbours of the seed item or of the user's recent items (search index)."""
    try:
        from twinengine.discovery.index import service as index
    except ImportError:
        return None
    try:
        ids, matrix = index.item_vectors(ctx)
    except Exception as exc:  # no index built yet: the other generators still answer
        log.debug("no item vectors: %s", exc)
        return None
    key = ("embed_map", id(matrix), len(ids))
    rows = st.extras.get(key)
    if rows is None:
        rows = np.array([st.row_of.get(i, -1) for i in ids], dtype=np.int64)
        st.extras.clear()
        st.extras[key] = rows
    if row is not None:
        seed = np.flatnonzero(rows == row)
        if not len(seed):
            return None
        q = matrix[seed[0]]
    else:
        hist = st.histories.get(user or "")
        if hist is None:
            return None
        pos = {r: k for k, r in enumerate(rows.tolist())}
        picks = [
            (pos[r], w)
            for r, w in zip(hist.rows[:10].tolist(), hist.weights[:10], strict=False)
            if r in pos
        ]
        if not picks:
            return None
        q = np.average(matrix[[p for p, _ in picks]], axis=0, weights=[w for _, w in picks])
    sims = matrix @ q.astype(matrix.dtype)
    out = np.zeros(st.n)
    ok = rows >= 0
    out[rows[ok]] = np.clip(sims[ok], 0.0, None)
    return out


GENERATORS: dict[str, Generator] = {
    "popular": popular,
    "quality": quality,
    "trending": trending,
    "fresh": fresh,
    "affinity": affinity,
    "cooc": cooc,
    "cf": cf,
    "content": content,
    "embed": embed,
}
