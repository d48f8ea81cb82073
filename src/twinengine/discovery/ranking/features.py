"""Point-in-time ranking features, computed by replaying the event log in time order.

One ``FeatureState`` serves both training and serving, so the two cannot drift apart:

- training replays every event in ``ts`` order and, when an impression arrives, emits one feature
  row per shown item from the state *before* that impression (no leakage: a row at time t sees
  only events before t), then folds the impression, clicks and conversions into the state;
- serving keeps the same state in memory, brought up to date every few seconds by replaying only
  the events newer than the last one seen, and reads candidate rows from it with numpy.

Impression events may carry generator scores in ``attributes``: ``scores`` (generator score per
slate position) and ``retrieval_scores``; both are NaN when absent and LightGBM treats NaN as
missing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import select

from twinengine.catalog.models import item_topics, items
from twinengine.discovery.events.models import SURFACES, events
from twinengine.storage import Database

# Model inputs, in matrix column order. ``position`` is a training-only input of the CTR head:
# serving sets it to 1, which asks the head for the click rate as if the item were shown first.
FEATURES: tuple[str, ...] = (
    "gen_score",  # candidate generator's score (NaN when unknown)
    "retrieval_score",  # retrieval score, e.g. BM25 or vector similarity (NaN when unknown)
    "item_ctr",  # clicks / impressions, Beta-smoothed towards the global click rate
    "item_cvr",  # conversions / clicks, Beta-smoothed towards the global conversion rate
    "item_pop",  # log1p of exponentially decayed click count
    "item_age_days",  # days since the item was published (or added)
    "topic_match",  # share of the user's past click topics that the item carries
    "emb_sim",  # cosine of the item's vector with the mean vector of the user's clicked items
    "user_clicks",  # log1p of the user's past clicks
    "user_impr",  # log1p of the user's past impressions
    "lang_match",  # share of the user's past clicks in a language the item has (0.5 if none)
    "surface",  # surface code (index in SURFACES)
    "position",  # 1-based slate position: training only
)
COL = {name: i for i, name in enumerate(FEATURES)}
VECTOR_DIM = 64
_TOKEN = re.compile(r"\w+", re.UNICODE)
_EVENT_ORDER = {"impression": 0, "click": 1, "conversion": 2, "dwell": 3}


@dataclass(frozen=True)
class FeatureConfig:
    """Smoothing and decay knobs of the features (stored with each model)."""

    half_life_days: float = 7.0
    prior_impressions: float = 50.0  # pseudo-impressions behind the CTR prior
    prior_clicks: float = 20.0  # pseudo-clicks behind the CVR prior

    def to_dict(self) -> dict[str, float]:
        """JSON-able form."""
        return {
            "half_life_days": self.half_life_days,
            "prior_impressions": self.prior_impressions,
            "prior_clicks": self.prior_clicks,
        }


def _text_vector(text: str) -> np.ndarray:
    """Hashed bag of words, L2-normalised: a dependency-free item vector (feature ``emb_sim``)."""
    vec = np.zeros(VECTOR_DIM, dtype=np.float32)
    for tok in _TOKEN.findall(text.lower()):
        h = int.from_bytes(hashlib.blake2b(tok.encode(), digest_size=4).digest(), "little")
        vec[h % VECTOR_DIM] += 1.0 if (h >> 16) & 1 else -1.0
    norm = float(np.linalg.norm(vec))
    return vec / norm if norm else vec


def _ts(value: Any) -> float:
    """Seconds since the epoch; naive datetimes are UTC (SQLite drops the zone)."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.timestamp()
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC).timestamp()
    return float(value)


@dataclass
class CatalogView:
    """Static item attributes the features need, as dense arrays indexed by item position."""

    ids: list[str]
    index: dict[str, int]
    born: np.ndarray  # publication (or creation) time, epoch seconds; NaN when unknown
    topics: np.ndarray  # n_items x n_topics, topic confidence
    topic_ids: list[str]
    langs: np.ndarray  # n_items x n_langs, 0/1
    lang_ids: list[str]
    vectors: np.ndarray  # n_items x VECTOR_DIM

    @classmethod
    def load(cls, db: Database) -> CatalogView:
        """Read items and their topics from the catalog."""
        with db.read() as conn:
            rows = conn.execute(
                select(
                    items.c.id, items.c.title, items.c.description, items.c.languages,
                    items.c.published, items.c.created_at,
                ).order_by(items.c.id)
            ).all()
            links = conn.execute(
                select(item_topics.c.item_id, item_topics.c.topic_id, item_topics.c.confidence)
            ).all()
        ids = [r.id for r in rows]
        index = {item_id: i for i, item_id in enumerate(ids)}
        topic_ids = sorted({link.topic_id for link in links})
        tix = {t: j for j, t in enumerate(topic_ids)}
        topics_m = np.zeros((len(ids), len(topic_ids)), dtype=np.float32)
        for link in links:
            i = index.get(link.item_id)
            if i is not None:  # several sources may tag one pair: keep the most confident
                j = tix[link.topic_id]
                topics_m[i, j] = max(topics_m[i, j], float(link.confidence or 1.0))
        lang_ids = sorted({lang for r in rows for lang in (r.languages or [])})
        lix = {lang: j for j, lang in enumerate(lang_ids)}
        langs_m = np.zeros((len(ids), len(lang_ids)), dtype=np.float32)
        born = np.full(len(ids), np.nan)
        vectors = np.zeros((len(ids), VECTOR_DIM), dtype=np.float32)
        for i, r in enumerate(rows):
            for lang in r.languages or []:
                langs_m[i, lix[lang]] = 1.0
            when = r.published or r.created_at
            if when is not None:
                born[i] = _ts(when)
            vectors[i] = _text_vector(f"{r.title} {r.description}")
        return cls(ids, index, born, topics_m, topic_ids, langs_m, lang_ids, vectors)

    def add_unknown(self, item_id: str) -> int:
        """Give an item seen in events but not in the catalog a row of zeros."""
        i = len(self.ids)
        self.ids.append(item_id)
        self.index[item_id] = i
        self.born = np.append(self.born, np.nan)
        self.topics = np.vstack([self.topics, np.zeros((1, self.topics.shape[1]), np.float32)])
        self.langs = np.vstack([self.langs, np.zeros((1, self.langs.shape[1]), np.float32)])
        self.vectors = np.vstack([self.vectors, np.zeros((1, VECTOR_DIM), np.float32)])
        return i


@dataclass
class UserState:
    """What the log has told us about one user so far."""

    topics: np.ndarray
    langs: np.ndarray
    vec: np.ndarray
    clicks: int = 0
    impressions: int = 0


@dataclass
class TrainingFrame:
    """Feature rows of logged impressions with their outcomes, in time order."""

    X: np.ndarray  # n x len(FEATURES), float32
    group: np.ndarray  # n, request number (rows of one slate are contiguous)
    click: np.ndarray  # n, 0/1
    conversion: np.ndarray  # n, 0/1
    position: np.ndarray  # n, 1-based
    ts: np.ndarray  # n, epoch seconds
    item_ids: list[str]
    user_keys: list[str]
    explore: np.ndarray  # n, bool: the slate came from the exploration slice
    attributes: list[dict[str, Any]] = field(default_factory=list)  # one per slate

    def __len__(self) -> int:
        return len(self.click)

    @property
    def label(self) -> np.ndarray:
        """Graded relevance: 0 shown, 1 clicked, 2 converted."""
        return np.maximum(self.click, 2 * self.conversion).astype(np.int32)

    def take(self, mask: np.ndarray) -> TrainingFrame:
        """The rows where ``mask`` holds (whole slates, if the mask selects whole slates)."""
        idx = np.flatnonzero(mask)
        return TrainingFrame(
            self.X[idx], self.group[idx], self.click[idx], self.conversion[idx],
            self.position[idx], self.ts[idx], [self.item_ids[i] for i in idx],
            [self.user_keys[i] for i in idx], self.explore[idx], self.attributes,
        )


class FeatureState:
    """Running counters over the event log, readable at any instant as feature rows."""

    def __init__(self, catalog: CatalogView, config: FeatureConfig | None = None) -> None:
        self.catalog = catalog
        self.config = config or FeatureConfig()
        n = len(catalog.ids)
        self.impr = np.zeros(n)
        self.clicks = np.zeros(n)
        self.convs = np.zeros(n)
        self.pop = np.zeros(n)  # decayed clicks as of pop_ts
        self.pop_ts = np.zeros(n)
        self.users: dict[str, UserState] = {}
        self.total_impr = 0.0
        self.total_clicks = 0.0
        self.total_convs = 0.0
        self.last_ts = -math.inf
        self.seen_events = 0
        self._tau = self.config.half_life_days * 86400.0 / math.log(2.0)

    # --- updates -----------------------------------------------------------------------------
    def _idx(self, item_id: str) -> int:
        i = self.catalog.index.get(item_id)
        if i is None:
            i = self.catalog.add_unknown(item_id)
            for name in ("impr", "clicks", "convs", "pop", "pop_ts"):
                setattr(self, name, np.append(getattr(self, name), 0.0))
        return i

    def _user(self, user_key: str) -> UserState:
        user = self.users.get(user_key)
        if user is None:
            user = UserState(
                np.zeros(self.catalog.topics.shape[1], np.float32),
                np.zeros(self.catalog.langs.shape[1], np.float32),
                np.zeros(VECTOR_DIM, np.float32),
            )
            self.users[user_key] = user
        return user

    def apply(self, ev: Mapping[str, Any]) -> None:
        """Fold one event (a row of ``events``) into the counters."""
        t = _ts(ev["ts"])
        self.last_ts = max(self.last_ts, t)
        self.seen_events += 1
        kind = ev["type"]
        user = self._user(ev["user_key"]) if ev.get("user_key") else None
        if kind == "impression":
            slate = ev.get("slate") or []
            for item_id in slate:
                self.impr[self._idx(item_id)] += 1
            self.total_impr += len(slate)
            if user is not None:
                user.impressions += len(slate)
            return
        item_id = ev.get("item_id")
        if not item_id:
            return
        i = self._idx(item_id)
        if kind == "click":
            self.clicks[i] += 1
            self.total_clicks += 1
            self.pop[i] = self.pop[i] * math.exp(-(t - self.pop_ts[i]) / self._tau) + 1.0
            self.pop_ts[i] = t
            if user is not None:
                user.clicks += 1
                user.topics += self.catalog.topics[i]
                user.langs += self.catalog.langs[i]
                user.vec += self.catalog.vectors[i]
        elif kind == "conversion":
            self.convs[i] += 1
            self.total_convs += 1

    # --- reads -------------------------------------------------------------------------------
    def rows(
        self,
        idx: np.ndarray,
        *,
        user_key: str | None,
        surface: str | None,
        t: float,
        gen_scores: Sequence[float] | np.ndarray | None = None,
        retrieval_scores: Sequence[float] | np.ndarray | None = None,
        positions: np.ndarray | None = None,
    ) -> np.ndarray:
        """Feature matrix (len(idx) x len(FEATURES)) for items ``idx`` shown at time ``t``."""
        cfg = self.config
        n = len(idx)
        X = np.empty((n, len(FEATURES)), dtype=np.float32)
        ctr_prior = (self.total_clicks + 1.0) / (self.total_impr + 20.0)
        cvr_prior = (self.total_convs + 1.0) / (self.total_clicks + 10.0)
        X[:, COL["gen_score"]] = np.nan if gen_scores is None else gen_scores
        X[:, COL["retrieval_score"]] = np.nan if retrieval_scores is None else retrieval_scores
        X[:, COL["item_ctr"]] = (self.clicks[idx] + cfg.prior_impressions * ctr_prior) / (
            self.impr[idx] + cfg.prior_impressions
        )
        X[:, COL["item_cvr"]] = (self.convs[idx] + cfg.prior_clicks * cvr_prior) / (
            self.clicks[idx] + cfg.prior_clicks
        )
        decay = np.exp(-np.maximum(t - self.pop_ts[idx], 0.0) / self._tau)
        X[:, COL["item_pop"]] = np.log1p(self.pop[idx] * decay)
        X[:, COL["item_age_days"]] = (t - self.catalog.born[idx]) / 86400.0
        user = self.users.get(user_key) if user_key else None
        if user is None or user.clicks == 0:
            X[:, COL["topic_match"]] = 0.0
            X[:, COL["emb_sim"]] = 0.0
            X[:, COL["lang_match"]] = 0.5
        else:
            # Row-wise products, not ``@``: a BLAS call on a 200-row matrix costs more in thread
            # hand-off than the arithmetic, and stalls badly when the CPU is busy.
            mass = float(user.topics.sum())
            X[:, COL["topic_match"]] = _dot(self.catalog.topics[idx], user.topics) / max(mass, 1e-9)
            norm = float(np.sqrt((user.vec * user.vec).sum()))
            X[:, COL["emb_sim"]] = _dot(self.catalog.vectors[idx], user.vec) / max(norm, 1e-9)
            X[:, COL["lang_match"]] = _dot(self.catalog.langs[idx], user.langs) / user.clicks
        X[:, COL["user_clicks"]] = math.log1p(user.clicks) if user else 0.0
        X[:, COL["user_impr"]] = math.log1p(user.impressions) if user else 0.0
        X[:, COL["surface"]] = surface_code(surface)
        X[:, COL["position"]] = 1.0 if positions is None else positions
        return X

    def indices(self, item_ids: Sequence[str]) -> np.ndarray:
        """Row numbers of ``item_ids``; unknown items get a fresh (all-prior) row."""
        get = self.catalog.index.get
        out = np.fromiter((get(i, -1) for i in item_ids), dtype=np.int64, count=len(item_ids))
        if (out < 0).any():
            for k in np.flatnonzero(out < 0):
                out[k] = self._idx(item_ids[k])
        return out


def _dot(rows: np.ndarray, vec: np.ndarray) -> np.ndarray:
    return (rows * vec).sum(axis=1)


def surface_code(surface: str | None) -> float:
    """Numeric code of a surface for the ``surface`` feature."""
    return float(SURFACES.index(surface)) if surface in SURFACES else float(len(SURFACES))


# --- reading the log --------------------------------------------------------------------------
_EVENT_COLUMNS = (
    events.c.event_id, events.c.type, events.c.ts, events.c.user_key, events.c.request_id,
    events.c.surface, events.c.item_id, events.c.position, events.c.slate, events.c.attributes,
)


def read_events(
    db: Database,
    *,
    after: dt.datetime | None = None,
    until: dt.datetime | None = None,
    batch: int = 20000,
) -> Iterator[dict[str, Any]]:
    """Impression, click and conversion events in time order (impressions first on ties)."""
    stmt = select(*_EVENT_COLUMNS).where(events.c.type.in_(("impression", "click", "conversion")))
    if after is not None:
        stmt = stmt.where(events.c.ts > after)
    if until is not None:
        stmt = stmt.where(events.c.ts < until)
    with db.read() as conn:
        result = conn.execute(stmt.order_by(events.c.ts, events.c.event_id))
        while chunk := result.fetchmany(batch):
            rows = [row._asdict() for row in chunk]
            rows.sort(key=lambda r: (_ts(r["ts"]), _EVENT_ORDER.get(r["type"], 9)))
            yield from rows


def build_training_frame(
    state: FeatureState,
    log: Iterable[Mapping[str, Any]],
    *,
    surfaces: Sequence[str] | None = None,
) -> TrainingFrame:
    """Replay ``log`` into ``state`` and return one feature row per shown item.

    Each impression's rows are read from the state before that impression is applied; clicks
    and conversions become labels of the impression with the same ``request_id`` and item.
    """
    blocks: list[np.ndarray] = []
    groups: list[np.ndarray] = []
    positions: list[np.ndarray] = []
    stamps: list[float] = []
    item_ids: list[str] = []
    user_keys: list[str] = []
    explore: list[bool] = []
    attrs: list[dict[str, Any]] = []
    slot: dict[tuple[str, str], int] = {}  # (request_id, item_id) -> row
    clicked: list[int] = []
    converted: list[int] = []
    n_rows = 0
    for ev in log:
        kind = ev["type"]
        if kind == "impression":
            slate = ev.get("slate") or []
            if slate and (surfaces is None or ev.get("surface") in surfaces):
                a = ev.get("attributes") or {}
                t = _ts(ev["ts"])
                pos = np.arange(1, len(slate) + 1, dtype=np.float32)
                scores = a.get("scores")
                retr = a.get("retrieval_scores")
                blocks.append(state.rows(
                    state.indices(slate), user_key=ev["user_key"], surface=ev.get("surface"), t=t,
                    gen_scores=_floats(scores, len(slate)), positions=pos,
                    retrieval_scores=_floats(retr, len(slate)),
                ))
                groups.append(np.full(len(slate), len(attrs), dtype=np.int64))
                positions.append(pos)
                stamps.extend([t] * len(slate))
                item_ids.extend(slate)
                user_keys.extend([ev["user_key"]] * len(slate))
                moved = a.get("explore") or a.get("swap") or a.get("orig_positions")
                explore.extend([bool(moved)] * len(slate))
                attrs.append(a)
                rid = ev.get("request_id") or ev["event_id"]
                for k, item_id in enumerate(slate):
                    slot.setdefault((rid, item_id), n_rows + k)
                n_rows += len(slate)
        elif kind in ("click", "conversion") and ev.get("request_id") and ev.get("item_id"):
            row = slot.get((ev["request_id"], ev["item_id"]))
            if row is not None:
                (clicked if kind == "click" else converted).append(row)
        state.apply(ev)
    click = np.zeros(n_rows, dtype=np.int32)
    conv = np.zeros(n_rows, dtype=np.int32)
    click[clicked] = 1
    conv[converted] = 1
    click = np.maximum(click, conv)  # a conversion implies the item was clicked
    width = len(FEATURES)
    return TrainingFrame(
        np.vstack(blocks) if blocks else np.zeros((0, width), np.float32),
        np.concatenate(groups) if groups else np.zeros(0, np.int64),
        click, conv,
        np.concatenate(positions) if positions else np.zeros(0, np.float32),
        np.asarray(stamps), item_ids, user_keys, np.asarray(explore, dtype=bool), attrs,
    )


def _floats(values: Any, n: int) -> np.ndarray | None:
    if not isinstance(values, list) or len(values) != n:
        return None
    return np.asarray([np.nan if v is None else float(v) for v in values], dtype=np.float32)
