"""Top-k metrics over ranked lists and held-out relevant sets (binary relevance).

``ranked`` is one list of item ids per user (best first); ``relevant`` the held-out items of
the same users. Users with nothing held out are skipped, as in MS Recommenders.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

_DISCOUNT = 1.0 / np.log2(np.arange(2, 1002))


def _pairs(ranked: Mapping[str, Sequence[str]], relevant: Mapping[str, set[str]]):  # type: ignore[no-untyped-def]
    for user, rel in relevant.items():
        if rel:
            yield list(ranked.get(user, ())), rel


def recall_at_k(
    ranked: Mapping[str, Sequence[str]], relevant: Mapping[str, set[str]], k: int = 10
) -> float:
    """Mean over users of |top-k ∩ relevant| / |relevant| (MS Recommenders' recall@k)."""
    vals = [len(set(r[:k]) & rel) / len(rel) for r, rel in _pairs(ranked, relevant)]
    return float(np.mean(vals)) if vals else 0.0


def precision_at_k(
    ranked: Mapping[str, Sequence[str]], relevant: Mapping[str, set[str]], k: int = 10
) -> float:
    """Mean over users of |top-k ∩ relevant| / k."""
    vals = [len(set(r[:k]) & rel) / k for r, rel in _pairs(ranked, relevant)]
    return float(np.mean(vals)) if vals else 0.0


def ndcg_at_k(
    ranked: Mapping[str, Sequence[str]], relevant: Mapping[str, set[str]], k: int = 10
) -> float:
    """Mean binary NDCG@k; the ideal ranks min(k, |relevant|) hits first."""
    vals = []
    for r, rel in _pairs(ranked, relevant):
        gains = np.array([1.0 if i in rel else 0.0 for i in r[:k]])
        dcg = float((gains * _DISCOUNT[: len(gains)]).sum())
        idcg = float(_DISCOUNT[: min(k, len(rel))].sum())
        vals.append(dcg / idcg)
    return float(np.mean(vals)) if vals else 0.0


def coverage(ranked: Mapping[str, Sequence[str]], n_items: int, k: int = 10) -> float:
    """Share of the catalog that appears in at least one user's top k."""
    shown = {i for r in ranked.values() for i in list(r)[:k]}
    return len(shown) / n_items if n_items else 0.0


def novelty(
    ranked: Mapping[str, Sequence[str]], popularity: Mapping[str, float], n_users: int, k: int = 10
) -> float:
    """Mean self-information -log2(p(i)) of recommended items, p(i) = users who had i / users."""
    vals = []
    for r in ranked.values():
        for i in list(r)[:k]:
            p = max(popularity.get(i, 0.0), 1.0) / max(n_users, 1)
            vals.append(-np.log2(p))
    return float(np.mean(vals)) if vals else 0.0
