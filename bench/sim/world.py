"""The simulated world: latent item topics and appeal over the real catalog, and users.

Item topic vectors come from what the catalog has: human (and any other) topic links, plus
taxonomy keywords found in the item's text, so every item of the real catalog has a latent
topic mix even before a tagger has run. Item appeal (``quality``) is drawn once per item.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import select

from twinengine.catalog.models import item_topics, items, topics
from twinengine.context import AppContext

_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass
class World:
    """The catalog as the simulator sees it.

    ``topic_matrix[i, t]`` in [0, 1] is how surely item i is about topic t (a labelled topic is
    1; keyword evidence adds up to 1; at most ``keep_topics`` keyword topics an item);
    ``quality[i]`` is its appeal to everyone (standard normal); ``usefulness[i]`` (standard
    normal, independent of appeal) is how worth copying it is once opened: a catchy title that
    delivers little, or a plain one that does (used only when ``SimConfig.copy_w_usefulness``).
    """

    item_ids: list[str]
    topic_ids: list[str]
    topic_matrix: np.ndarray
    quality: np.ndarray
    index: dict[str, int] = field(default_factory=dict)
    usefulness: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.index = {iid: n for n, iid in enumerate(self.item_ids)}
        if self.usefulness is None:
            self.usefulness = np.zeros(len(self.item_ids))

    @property
    def n_items(self) -> int:
        """How many items the world holds."""
        return len(self.item_ids)

    def rows(self, item_ids: list[str]) -> np.ndarray:
        """Row numbers of ``item_ids`` (-1 for items the world does not know)."""
        return np.array([self.index.get(i, -1) for i in item_ids], dtype=np.int64)


def _tokens(text: str) -> tuple[set[str], set[str], set[str]]:
    words = _WORD.findall(text.lower().replace("-", " "))
    uni = set(words)
    bi = {f"{a} {b}" for a, b in zip(words, words[1:], strict=False)}
    tri = {f"{a} {b} {c}" for a, b, c in zip(words, words[1:], words[2:], strict=False)}
    return uni, bi, tri


def build_world(
    ctx: AppContext, *, seed: int = 0, body_chars: int = 3000, keep_topics: int = 5
) -> World:
    """Latent topics and appeal for every catalog item (deterministic for a seed)."""
    rng = np.random.default_rng([seed, 7])
    with ctx.db.read() as conn:
        item_rows = conn.execute(
            select(items.c.id, items.c.title, items.c.description, items.c.body).order_by(
                items.c.id
            )
        ).all()
        topic_rows = conn.execute(
            select(topics.c.id, topics.c.keywords).order_by(topics.c.id)
        ).all()
        links = conn.execute(
            select(item_topics.c.item_id, item_topics.c.topic_id, item_topics.c.confidence)
        ).all()
    item_ids = [r[0] for r in item_rows]
    topic_ids = [r[0] for r in topic_rows]
    if not item_ids or not topic_ids:
        raise ValueError("the simulator needs a catalog with items and a taxonomy")
    t_index = {t: n for n, t in enumerate(topic_ids)}
    i_index = {i: n for n, i in enumerate(item_ids)}
    m = np.zeros((len(item_ids), len(topic_ids)), dtype=np.float64)
    # Keyword hints: plain words and phrases by token n-grams; CJK ones by substring.
    plain: dict[str, list[int]] = {}
    cjk: list[tuple[str, int]] = []
    for tid, kws in topic_rows:
        for kw in kws or []:
            kw = kw.lower().replace("-", " ").strip()
            if not kw:
                continue
            if kw.isascii():
                plain.setdefault(" ".join(_WORD.findall(kw)), []).append(t_index[tid])
            else:
                cjk.append((kw, t_index[tid]))
    for n, (_, title, desc, body) in enumerate(item_rows):
        text = f"{title}\n{desc}\n{(body or '')[:body_chars]}"
        uni, bi, tri = _tokens(text)
        for gram in uni | bi | tri:
            for t in plain.get(gram, ()):
                m[n, t] += 0.35
        low = text.lower()
        for kw, t in cjk:
            if kw in low:
                m[n, t] += 0.35
    np.minimum(m, 1.0, out=m)  # three keyword hits make a sure topic
    # Keep an item's strongest few keyword topics: long prompts mention many things in passing.
    if m.shape[1] > keep_topics:
        weak = np.argsort(-m, axis=1)[:, keep_topics:]
        np.put_along_axis(m, weak, 0.0, axis=1)
    for item_id, topic_id, conf in links:
        if item_id in i_index and topic_id in t_index:
            m[i_index[item_id], t_index[topic_id]] = max(float(conf or 1.0), 0.5)
    empty = m.sum(axis=1) == 0
    m[empty, rng.integers(0, len(topic_ids), size=int(empty.sum()))] = 1.0
    quality = rng.standard_normal(len(item_ids))
    # Its own stream: worlds built before usefulness existed keep every other draw.
    usefulness = np.random.default_rng([seed, 8]).standard_normal(len(item_ids))
    return World(
        item_ids=item_ids,
        topic_ids=topic_ids,
        topic_matrix=m,
        quality=quality,
        usefulness=usefulness,
    )


@dataclass
class SimUser:
    """A simulated person: a stable key, latent topic preferences and a habit of returning.

    Policies may read ``key`` (what the real system knows); ``prefs`` are the hidden truth
    that only oracle baselines and metrics may use.
    """

    key: str
    prefs: np.ndarray
    return_rate: float
    joined_day: int
    copied: set[str] = field(default_factory=set)
    clicked: set[str] = field(default_factory=set)
    satisfaction: float = 0.0


def make_user(world: World, rng: np.random.Generator, key: str, joined_day: int) -> SimUser:
    """A user who cares about 1-4 topics, weighted towards topics the catalog has items on."""
    freq = world.topic_matrix.sum(axis=0)
    p = np.sqrt(freq) / np.sqrt(freq).sum()
    k = int(min(4, 1 + rng.poisson(1.0)))
    chosen = rng.choice(len(world.topic_ids), size=k, replace=False, p=p)
    prefs = np.full(len(world.topic_ids), 0.02 / len(world.topic_ids))
    prefs[chosen] += rng.dirichlet(np.ones(k)) * 0.98
    return SimUser(
        key=key, prefs=prefs, return_rate=float(rng.beta(2.0, 4.0)), joined_day=joined_day
    )
