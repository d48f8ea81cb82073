"""The MS Recommenders top-k protocol on implicit interactions, for the CF models we serve.

Per-user random 75/25 split (seed 42), every rating an interaction, training items removed
from each user's list, binary relevance, k = 10. Hyper-parameters and blend weights are
chosen on a second 75/25 split of the training part only, never on the test part, and the
method reported as the result (``best``) is the one validation chose: the test split is only
ever scored, so the figure is not the luckiest of several test scores.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from twinengine.discovery.candidates.cf import fit_als, fit_ease
from twinengine.discovery.evaluation.metrics import ndcg_at_k, precision_at_k, recall_at_k
from twinengine.discovery.evaluation.splits import random_split, relevant_sets

Scorer = Callable[[sp.csr_matrix], np.ndarray]


def _matrix(
    rows: Sequence[tuple[str, str, float]], users: list[str], items: list[str]
) -> sp.csr_matrix:
    u = {k: n for n, k in enumerate(users)}
    i = {k: n for n, k in enumerate(items)}
    pairs = {(u[a], i[b]) for a, b, _ in rows if a in u and b in i}
    r = np.array([p[0] for p in pairs], dtype=np.int64)
    c = np.array([p[1] for p in pairs], dtype=np.int64)
    return sp.csr_matrix((np.ones(len(pairs)), (r, c)), shape=(len(users), len(items)))


def _topk(
    scores: np.ndarray, X: sp.csr_matrix, users: list[str], items: list[str], k: int
) -> dict[str, list[str]]:
    s = scores.astype(np.float64, copy=True)
    s[X.nonzero()] = -np.inf  # seen items never come back
    top = np.argpartition(-s, k, axis=1)[:, :k]
    out = {}
    for n, user in enumerate(users):
        row = top[n][np.argsort(-s[n, top[n]], kind="stable")]
        out[user] = [items[j] for j in row]
    return out


def _pairs(rows: Sequence[tuple[str, str, float]]) -> int:
    """Distinct (user, item) interactions: what fills the Gram matrix."""
    return len({(r[0], r[1]) for r in rows})


def _norm(s: np.ndarray) -> np.ndarray:
    m = np.abs(s).max(axis=1, keepdims=True)
    return s / np.where(m > 0, m, 1.0)


def model_scores(X: sp.csr_matrix, *, lam: float, factors: int, seed: int) -> dict[str, np.ndarray]:
    """Score matrices (users x items) of popularity, EASE and ALS fitted on ``X``."""
    pop = np.asarray(X.sum(axis=0)).ravel()
    ease = fit_ease(X, lam=lam, max_items=X.shape[1])
    als = fit_als(X, factors=factors, iterations=15, regularization=0.05, alpha=10.0, seed=seed)
    return {
        "popularity": np.tile(pop, (X.shape[0], 1)).astype(np.float64),
        "ease": ease.score(X),
        "als": als.score_users(np.arange(X.shape[0])),
    }


def _evaluate(ranked: dict[str, list[str]], rel: dict[str, set[str]], k: int) -> dict[str, float]:
    return {
        "ndcg10": round(ndcg_at_k(ranked, rel, k), 4),
        "precision10": round(precision_at_k(ranked, rel, k), 4),
        "recall10": round(recall_at_k(ranked, rel, k), 4),
    }


def _blend(scores: dict[str, np.ndarray], w: dict[str, float]) -> np.ndarray:
    return sum(wt * _norm(scores[m]) for m, wt in w.items() if wt)  # type: ignore[return-value]


BLEND_GRID = [
    {"ease": 1.0},
    {"ease": 1.0, "als": 0.3},
    {"ease": 1.0, "als": 0.6},
    {"ease": 1.0, "als": 1.0},
    {"ease": 1.0, "als": 0.3, "popularity": 0.1},
    {"ease": 1.0, "popularity": 0.1},
]
LAMBDAS = [50.0, 100.0, 200.0, 300.0, 500.0, 800.0, 1200.0, 2000.0]


def choose(
    train: Sequence[tuple[str, str, float]],
    users: list[str],
    items: list[str],
    *,
    k: int = 10,
    seed: int = 42,
    factors: int = 64,
) -> dict[str, Any]:
    """EASE's lambda and the blend weights, picked on a 75/25 split of ``train`` alone."""
    fit, val = random_split(train, ratio=0.75, seed=seed + 1)
    Xf = _matrix(fit, users, items)
    val_rel = relevant_sets(val)
    best_lam, best_val = 500.0, -1.0
    for lam in LAMBDAS:
        s = fit_ease(Xf, lam=lam, max_items=Xf.shape[1]).score(Xf)
        v = ndcg_at_k(_topk(s, Xf, users, items, k), val_rel, k)
        if v > best_val:
            best_lam, best_val = lam, v
    vs = model_scores(Xf, lam=best_lam, factors=factors, seed=seed)
    best_w, best_wv = BLEND_GRID[0], -1.0
    for w in BLEND_GRID:
        v = ndcg_at_k(_topk(_blend(vs, w), Xf, users, items, k), val_rel, k)
        if v > best_wv:
            best_w, best_wv = w, v
    return {
        "lambda": best_lam,
        "ndcg10_lambda": round(best_val, 4),
        "weights": best_w,
        "ndcg10_blend": round(best_wv, 4),
        "fit_pairs": _pairs(fit),
    }


def run_protocol(
    rows: Sequence[tuple[str, str, float]], *, k: int = 10, seed: int = 42, factors: int = 64
) -> dict[str, Any]:
    """Popularity, EASE (lambda 500), ALS and the validation-chosen blend, on the test split."""
    train, test = random_split(rows, ratio=0.75, seed=seed)
    users = sorted({r[0] for r in rows})
    items = sorted({r[1] for r in rows})
    rel = relevant_sets(test)
    picked = choose(train, users, items, k=k, seed=seed, factors=factors)
    best_lam, best_w = picked["lambda"], picked["weights"]
    # X'X grows with the number of interactions, so the same shrinkage on the whole training
    # part (1/0.75 of the fitting part's interactions) takes a proportionally larger lambda.
    lam = best_lam * _pairs(train) / max(picked["fit_pairs"], 1)
    X = _matrix(train, users, items)
    scores = model_scores(X, lam=500.0, factors=factors, seed=seed)
    models = {name: _evaluate(_topk(s, X, users, items, k), rel, k) for name, s in scores.items()}
    models["ease"]["lambda"] = 500.0
    tuned = model_scores(X, lam=lam, factors=factors, seed=seed)
    models["ease_tuned"] = {
        **_evaluate(_topk(tuned["ease"], X, users, items, k), rel, k),
        "lambda": round(lam, 1),
    }
    models["blend"] = {
        **_evaluate(_topk(_blend(tuned, best_w), X, users, items, k), rel, k),
        "lambda": round(lam, 1),
        "weights": best_w,
    }
    # What validation chose (EASE alone is one point of the blend grid); never a test max.
    best = "blend"
    return {
        "users": len(users),
        "items": len(items),
        "train": len(train),
        "test": len(test),
        "models": models,
        "best": best,
        "best_ndcg10": models[best]["ndcg10"],
        "validation": picked,
    }
