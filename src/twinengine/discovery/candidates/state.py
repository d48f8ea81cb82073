"""What the generators read, built in one pass over the catalog and the event log.

Serving must answer in milliseconds, so everything is precomputed into numpy arrays over the
catalog's items: decayed popularity, trend velocity, freshness, the user x item matrix, the
session co-occurrence matrix, per-user histories and topic profiles, and a CF model.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
from sqlalchemy import func, select

from twinengine.catalog.models import item_languages, item_topics, items
from twinengine.discovery.candidates.cf import AlsModel, EaseModel, fit_als, fit_ease
from twinengine.discovery.candidates.content import tfidf
from twinengine.discovery.events.models import events, impressions
from twinengine.errors import ModelFitError
from twinengine.storage import Database

log = logging.getLogger(__name__)

# A conversion says more than a click; dwell and impressions are not interactions here.
WEIGHTS = {"click": 1.0, "conversion": 3.0}
HISTORY = 50  # most recent interactions per user kept for serving
PRIOR = 5.0  # examined impressions the smoothed CTR prior is worth


@dataclass
class History:
    """One user's recent interactions, newest first."""

    rows: np.ndarray
    weights: np.ndarray
    ts: np.ndarray
    converted: set[int]


@dataclass
class RecState:
    """Arrays over the catalog (row n is ``ids[n]``) plus behaviour aggregates."""

    built_at: dt.datetime
    ids: list[str]
    row_of: dict[str, int]
    media: np.ndarray
    languages: list[frozenset[str]]
    item_topics: sp.csr_matrix  # items x topics, 1 where linked
    topic_norm: np.ndarray  # sqrt(1 + topics of the item)
    topic_ids: list[str]
    popular: np.ndarray
    quality: np.ndarray  # smoothed, position-weighted CTR
    trending: np.ndarray
    fresh: np.ndarray
    cooc: sp.csr_matrix  # items x items, cosine of session co-occurrence
    histories: dict[str, History]
    user_rows: dict[str, int]
    X: sp.csr_matrix  # users x items, summed interaction weights
    content: sp.csr_matrix | None = None  # items x terms, TF-IDF rows (L2-normalised)
    content_csc: sp.csc_matrix | None = None  # the same, by column (term lookups)
    cf: EaseModel | AlsModel | None = None
    cf_kind: str = ""
    cf_built_at: dt.datetime | None = None  # ``now`` of the build that fitted ``cf``
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        """Items in the catalog."""
        return len(self.ids)

    def topic_cols(self, topic_ids: list[str]) -> list[int]:
        """Column numbers of known topic ids."""
        index = {t: n for n, t in enumerate(self.topic_ids)}
        return [index[t] for t in topic_ids if t in index]


_EVENT_CHUNK = 5000


def _epoch(ts: Any) -> float:
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=dt.UTC)
    return ts.timestamp()


def build_state(
    db: Database,
    *,
    now: dt.datetime,
    half_life_days: float = 7.0,
    cf: str = "ease",
    history_days: float = 90.0,
    reuse_cf: RecState | None = None,
) -> RecState:
    """Read the catalog and the last ``history_days`` of clicks and conversions as of ``now``.

    ``reuse_cf``: a recent state whose EASE model is kept instead of refitted when the catalog
    rows are the same (item-item weights move slowly; the refit is most of a rebuild's CPU).
    """
    with db.read() as conn:
        item_rows = conn.execute(
            select(items.c.id, items.c.media, items.c.published).order_by(items.c.id)
        ).all()
        lang_rows = conn.execute(select(item_languages.c.item_id, item_languages.c.lang)).all()
        link_rows = conn.execute(
            select(item_topics.c.item_id, item_topics.c.topic_id).distinct()
        ).all()
        since = now - dt.timedelta(days=history_days)
        # Exposure per item, each impression weighted by a 1/position examination prior.
        exposure_rows = conn.execute(
            select(impressions.c.item_id, func.sum(1.0 / impressions.c.position))
            .where(impressions.c.ts >= since, impressions.c.ts <= now)
            .group_by(impressions.c.item_id)
        ).all()
        ids = [r[0] for r in item_rows]
        row_of = {i: n for n, i in enumerate(ids)}
        # Streamed in chunks: fetching every event of the window at once held the GIL for
        # hundreds of ms in the driver's C code (stalling a server's event loop).
        stream = conn.execution_options(stream_results=True, yield_per=_EVENT_CHUNK).execute(
            select(events.c.user_key, events.c.item_id, events.c.type, events.c.ts)
            .where(events.c.type.in_(list(WEIGHTS)), events.c.ts >= since, events.c.ts <= now)
            .order_by(events.c.ts)
        )
        # Each chunk becomes numpy columns at once (25 bytes an event): a Python tuple per
        # event (about 200 bytes with its floats and ints) made the peak grow with the log.
        user_code: dict[str, int] = {}
        cols: list[tuple[np.ndarray, ...]] = []
        for chunk in stream.partitions():
            keep = [r for r in chunk if r[1] in row_of]
            k = len(keep)
            cols.append(
                (
                    np.fromiter((user_code.setdefault(r[0], len(user_code)) for r in keep),
                                np.int64, k),
                    np.fromiter((row_of[r[1]] for r in keep), np.int64, k),
                    np.fromiter((r[2] == "conversion" for r in keep), bool, k),
                    np.fromiter((_epoch(r[3]) for r in keep), np.float64, k),
                )
            )
    n = len(ids)
    media = np.array([r[1] for r in item_rows], dtype=object)
    langs: list[set[str]] = [set() for _ in range(n)]
    for item_id, lang in lang_rows:
        if item_id in row_of:
            langs[row_of[item_id]].add(lang)
    topic_ids = sorted({t for _, t in link_rows})
    t_index = {t: k for k, t in enumerate(topic_ids)}
    pairs = [(row_of[i], t_index[t]) for i, t in link_rows if i in row_of]
    it = sp.csr_matrix(
        (np.ones(len(pairs)), ([p[0] for p in pairs], [p[1] for p in pairs])),
        shape=(n, max(1, len(topic_ids))),
    )
    now_s = now.timestamp()
    # Freshness: published date, halving every 30 days; undated items count as old.
    pub = np.array(
        [(now.date() - r[2]).days if r[2] is not None else 3650 for r in item_rows],
        dtype=np.float64,
    )
    fresh = 0.5 ** (np.clip(pub, 0, None) / 30.0)

    # Interactions as arrays; user rows in sorted key order (stable across backends).
    users = sorted(user_code)
    user_rows = {u: k for k, u in enumerate(users)}
    if cols:
        rank = np.empty(len(users), dtype=np.int64)
        rank[[user_code[u] for u in users]] = np.arange(len(users))
        u_idx = rank[np.concatenate([c[0] for c in cols])]
        i_idx = np.concatenate([c[1] for c in cols])
        is_conv = np.concatenate([c[2] for c in cols])
        ts = np.concatenate([c[3] for c in cols])
    else:
        u_idx = i_idx = np.zeros(0, dtype=np.int64)
        is_conv = np.zeros(0, dtype=bool)
        ts = np.zeros(0)
    del cols
    w = np.where(is_conv, WEIGHTS["conversion"], WEIGHTS["click"])
    age_days = (now_s - ts) / 86400.0
    decay = 0.5 ** (age_days / half_life_days)
    popular = np.bincount(i_idx, weights=w * decay, minlength=n).astype(np.float64)
    # Trending: the last day against the daily mean of the six days before it.
    recent = np.bincount(i_idx, weights=w * (age_days <= 1.0), minlength=n)
    base = np.bincount(i_idx, weights=w * ((age_days > 1.0) & (age_days <= 7.0)), minlength=n) / 6
    trending = np.where(recent > 0, (recent - base) / np.sqrt(base + 1.0), 0.0)
    trending = np.clip(trending, 0.0, None)
    # Quality: clicks per examined impression, smoothed towards the catalog mean (a Beta prior
    # worth PRIOR examined impressions), so a few lucky clicks do not make an item "good".
    exposure = np.zeros(n)
    for item_id, weight in exposure_rows:
        if item_id in row_of:
            exposure[row_of[item_id]] = float(weight or 0.0)
    clicks = np.bincount(i_idx, weights=(w == WEIGHTS["click"]).astype(float), minlength=n)
    mean_ctr = clicks.sum() / exposure.sum() if exposure.sum() > 0 else 0.0
    quality = (clicks + PRIOR * mean_ctr) / (exposure + PRIOR)
    X = sp.csr_matrix((w, (u_idx, i_idx)), shape=(len(users), n))
    X.data = np.minimum(X.data, 5.0)  # a few enthusiastic repeats must not swamp the rest

    # Session co-occurrence: a session is one user's interactions on one UTC day.
    day = (ts // 86400).astype(np.int64)
    sess_keys, s_idx = np.unique(u_idx * (1 << 24) + day, return_inverse=True)
    S = sp.csr_matrix((np.ones(len(s_idx)), (s_idx, i_idx)), shape=(len(sess_keys), n))
    S.data[:] = 1.0
    S.sum_duplicates()
    S.data[:] = 1.0
    C = (S.T @ S).tocsr()
    diag = C.diagonal()
    C.setdiag(0)
    C.eliminate_zeros()
    norm = np.sqrt(np.maximum(diag, 1.0))
    C = sp.csr_matrix(sp.diags(1.0 / norm) @ C @ sp.diags(1.0 / norm))

    # Newest first per user (ties keep log order), grouped by user with two stable sorts.
    histories: dict[str, History] = {}
    order = np.argsort(-ts, kind="stable")
    order = order[np.argsort(u_idx[order], kind="stable")]
    bounds = np.flatnonzero(np.r_[True, np.diff(u_idx[order]) != 0, True]) if len(order) else []
    for a, b in itertools.pairwise(bounds):
        ks = order[a:b]
        conv = {int(x) for x in i_idx[ks[is_conv[ks]]]}
        ks = ks[:HISTORY]
        histories[users[int(u_idx[ks[0]])]] = History(
            rows=i_idx[ks], weights=w[ks] * decay[ks], ts=ts[ks], converted=conv
        )

    state = RecState(
        built_at=now,
        ids=ids,
        row_of=row_of,
        media=media,
        languages=[frozenset(s) for s in langs],
        item_topics=it,
        topic_norm=np.sqrt(np.asarray(it.sum(axis=1)).ravel() + 1.0),
        topic_ids=topic_ids,
        popular=popular,
        quality=quality,
        trending=trending,
        fresh=fresh,
        cooc=C,
        histories=histories,
        user_rows=user_rows,
        X=X,
    )
    try:
        c_ids, c_matrix = tfidf(db)
        if c_ids == ids:
            state.content = c_matrix
        else:  # the catalog changed between the two reads: align by id
            pos = {i: k for k, i in enumerate(c_ids)}
            take = np.array([pos.get(i, -1) for i in ids])
            rows_ = c_matrix[np.where(take >= 0, take, 0)]
            state.content = sp.csr_matrix(sp.diags((take >= 0).astype(np.float32)) @ rows_)
        state.content_csc = sp.csc_matrix(state.content)
    except Exception:  # content is a bonus signal; never fail serving over it
        log.exception("content vectors could not be built")
    if (
        reuse_cf is not None
        and cf == "ease" == reuse_cf.cf_kind
        and isinstance(reuse_cf.cf, EaseModel)
        and reuse_cf.ids == ids
    ):
        state.cf, state.cf_kind, state.cf_built_at = reuse_cf.cf, cf, reuse_cf.cf_built_at
    elif X.nnz >= 20:
        try:
            if cf == "als":
                state.cf = fit_als(X)
            else:
                state.cf = fit_ease(X, lam=_ease_lambda(X))
            state.cf_kind = cf
            state.cf_built_at = now
        except ModelFitError:
            log.warning("collaborative filtering model could not be fitted; serving without it")
    return state


def _ease_lambda(X: sp.csr_matrix) -> float:
    # EASE's regulariser scales with the interaction counts on the Gram diagonal.
    per_item = X.nnz / max(1, X.shape[1])
    return float(max(10.0, min(500.0, 50.0 * math.sqrt(per_item + 1.0))))
