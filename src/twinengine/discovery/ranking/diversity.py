"""Business rules after scoring: hidden items, freshness boost, MMR and topic caps, pins.

Order of application: hidden items are dropped; a freshness boost is added to the min-max
normalised relevance; maximal marginal relevance (Carbonell and Goldstein, 1998) picks the top
``k`` greedily, ``argmax lambda * rel - (1 - lambda) * max cosine(topics, chosen)``, skipping items
whose main topic already fills its cap; finally pinned items move to their positions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field


class Rules(BaseModel):
    """Diversity and merchandising rules of one surface."""

    model_config = ConfigDict(extra="forbid")

    mmr_lambda: float = Field(
        default=1.0, ge=0.0, le=1.0, description="relevance weight of MMR; 1 turns MMR off"
    )
    topic_cap: int | None = Field(
        default=None, ge=1, le=1000, description="most items sharing a main topic in the top k"
    )
    freshness_boost: float = Field(
        default=0.0, ge=0.0, le=10.0, description="added to normalised relevance of a new item"
    )
    freshness_half_life_days: float = Field(
        default=14.0, gt=0.0, le=3650.0, description="age at which the boost halves"
    )
    pins: dict[str, int] = Field(
        default_factory=dict, description="item id -> 1-based position (if it is a candidate)"
    )
    hidden: list[str] = Field(default_factory=list, description="item ids never shown")

    @property
    def is_noop(self) -> bool:
        """Whether applying the rules cannot change a plain top-k."""
        return (
            self.mmr_lambda >= 1.0 and self.topic_cap is None and self.freshness_boost == 0.0
            and not self.pins and not self.hidden
        )


def apply_rules(
    item_ids: list[str],
    scores: np.ndarray,
    k: int,
    rules: Rules,
    *,
    topics: np.ndarray | None = None,
    age_days: np.ndarray | None = None,
) -> list[int]:
    """Indices into ``item_ids`` of the final top ``k``, in order.

    Parameters
    ----------
    item_ids : candidate ids.
    scores : relevance per candidate (higher is better).
    k : how many to return.
    rules : the surface's rules.
    topics : n x n_topics topic weights per candidate (MMR and caps; skipped when None).
    age_days : item age per candidate (freshness; NaN means unknown, no boost).
    """
    n = len(item_ids)
    alive = np.ones(n, bool)
    if rules.hidden:
        hidden = set(rules.hidden)
        alive &= np.fromiter((i not in hidden for i in item_ids), bool, count=n)
    rel = np.asarray(scores, dtype=float)
    finite = np.isfinite(rel)
    rel = np.where(finite, rel, np.nanmin(rel[finite]) if finite.any() else 0.0)
    span = rel.max() - rel.min() if n else 0.0
    rel = (rel - rel.min()) / span if span > 0 else np.zeros(n)
    if rules.freshness_boost and age_days is not None:
        fresh = np.exp2(-np.maximum(np.nan_to_num(age_days, nan=np.inf), 0.0)
                        / rules.freshness_half_life_days)
        rel = rel + rules.freshness_boost * fresh
    use_topics = topics is not None and topics.shape[1] > 0 and (
        rules.mmr_lambda < 1.0 or rules.topic_cap is not None
    )
    if not use_topics:
        order = [int(i) for i in np.argsort(-rel, kind="stable") if alive[i]][:k]
    else:
        order = _greedy(rel, alive, k, rules, topics)  # type: ignore[arg-type]
    return _pin(order, item_ids, alive, rules.pins, k)


def _greedy(rel: np.ndarray, alive: np.ndarray, k: int, rules: Rules,
            topics: np.ndarray) -> list[int]:
    norms = np.linalg.norm(topics, axis=1, keepdims=True)
    unit = np.divide(topics, norms, out=np.zeros_like(topics, dtype=float), where=norms > 0)
    main = np.where(norms[:, 0] > 0, topics.argmax(axis=1), -1)
    lam = rules.mmr_lambda
    max_sim = np.zeros(len(rel))
    cap_count: dict[int, int] = {}
    avail = alive.copy()
    order: list[int] = []
    while len(order) < k and avail.any():
        value = lam * rel - (1.0 - lam) * max_sim
        value[~avail] = -np.inf
        pick = int(np.argmax(value))
        avail[pick] = False
        topic = int(main[pick])
        if rules.topic_cap is not None and topic >= 0:
            if cap_count.get(topic, 0) >= rules.topic_cap:
                continue
            cap_count[topic] = cap_count.get(topic, 0) + 1
        order.append(pick)
        if lam < 1.0:
            np.maximum(max_sim, (unit * unit[pick]).sum(axis=1), out=max_sim)  # no BLAS: tiny
    return order


def _pin(order: list[int], item_ids: list[str], alive: np.ndarray,
         pins: Mapping[str, int], k: int) -> list[int]:
    if not pins:
        return order
    where = {item_id: i for i, item_id in enumerate(item_ids) if alive[i]}
    pinned = sorted(((pos, where[item]) for item, pos in pins.items() if item in where),
                    key=lambda t: t[0])
    pinned_idx = {i for _, i in pinned}
    rest = [i for i in order if i not in pinned_idx]
    for pos, i in pinned:
        rest.insert(min(max(pos, 1), len(rest) + 1) - 1, i)
    return rest[:k]


def rules_from(raw: Mapping[str, Any] | None) -> Rules:
    """Rules from stored JSON (empty means the defaults)."""
    return Rules.model_validate(dict(raw or {}))
