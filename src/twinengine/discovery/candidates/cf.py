"""Collaborative filtering on an implicit user x item matrix: EASE and ALS.

Both are fitted from a ``scipy.sparse`` matrix and score every item for a user's history row.
EASE (Steck 2019) is a closed form: ``B = I - P / diag(P)`` with ``P = (X'X + lambda I)^-1``;
it is the stronger of the two on small, dense catalogs and costs O(items^3), so it is capped
at the ``max_items`` most interacted items. ALS (``implicit``) scales to any catalog.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from twinengine.errors import MissingDependency, ModelFitError


@dataclass
class EaseModel:
    """Item-item weights ``B`` over ``cols`` (column numbers of the full item space)."""

    cols: np.ndarray
    B: np.ndarray

    def score(self, X: sp.csr_matrix) -> np.ndarray:
        """Scores of every item (full item space) for each history row of ``X``."""
        sub = X[:, self.cols]
        out = np.zeros((X.shape[0], X.shape[1]), dtype=np.float64)
        out[:, self.cols] = np.asarray(sub @ self.B)
        return out

    def score_row(self, cols: np.ndarray, weights: np.ndarray, n: int) -> np.ndarray:
        """Scores over ``n`` items for one history given as (item columns, weights)."""
        pos = self.position(n)[cols]
        keep = pos >= 0
        out = np.zeros(n)
        if keep.any():
            out[self.cols] = weights[keep] @ self.B[pos[keep]]
        return out

    def position(self, n: int) -> np.ndarray:
        """For each of ``n`` item columns, its row in ``B`` or -1."""
        cached = getattr(self, "_position", None)
        if cached is None or len(cached) != n:
            cached = np.full(n, -1, dtype=np.int64)
            cached[self.cols] = np.arange(len(self.cols))
            self._position = cached
        return cached

    def similar(self, col: int) -> np.ndarray:
        """Item-to-item weights from item ``col`` (zeros when it is outside the model)."""
        out = np.zeros(int(self.cols.max()) + 1 if len(self.cols) else 0)
        pos = np.flatnonzero(self.cols == col)
        if len(pos):
            out[self.cols] = self.B[pos[0]]
        return out


def fit_ease(X: sp.csr_matrix, *, lam: float = 500.0, max_items: int = 3000) -> EaseModel:
    """Fit EASE on the ``max_items`` columns with most interactions."""
    counts = np.asarray((X > 0).sum(axis=0)).ravel()
    cols = np.flatnonzero(counts > 0)
    if len(cols) == 0:
        raise ModelFitError("EASE needs at least one interaction")
    if len(cols) > max_items:
        cols = cols[np.argsort(-counts[cols], kind="stable")[:max_items]]
        cols.sort()
    Xs = X[:, cols].astype(np.float64)
    G = np.asarray((Xs.T @ Xs).todense())
    G[np.diag_indices_from(G)] += lam
    # In place after the inverse: a dense items x items matrix is 72 MB at 3,000 items, and
    # holding G, P and B at once tripled a server's peak every rebuild.
    B = np.linalg.inv(G)
    del G
    B /= -np.diag(B).copy()
    B[np.diag_indices_from(B)] = 0.0
    if not np.isfinite(B).all():
        raise ModelFitError("EASE produced non-finite weights")
    return EaseModel(cols=cols, B=B)


def _one_blas_thread() -> Any:
    # implicit runs its own threads; a BLAS thread pool underneath oversubscribes the cores.
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(1, "blas")


@dataclass
class AlsModel:
    """User and item factors."""

    user_factors: np.ndarray
    item_factors: np.ndarray

    def score_users(self, rows: np.ndarray) -> np.ndarray:
        """Scores of every item for the given user rows."""
        return self.user_factors[rows] @ self.item_factors.T

    def score_history(self, X: sp.csr_matrix, reg: float = 0.05) -> np.ndarray:
        """Scores for history rows of users unseen at fit time (least-squares fold-in)."""
        V = self.item_factors
        A = V.T @ V + reg * np.eye(V.shape[1])
        U = np.linalg.solve(A, (X @ V).T).T
        return U @ V.T


def fit_als(
    X: sp.csr_matrix,
    *,
    factors: int = 64,
    regularization: float = 0.05,
    iterations: int = 15,
    alpha: float = 20.0,
    seed: int = 0,
) -> AlsModel:
    """Fit implicit's ALS with confidence ``1 + alpha * x``."""
    try:
        from implicit.cpu.als import AlternatingLeastSquares
    except ImportError as exc:
        raise MissingDependency("implicit", "recs") from exc
    with _one_blas_thread():  # implicit checks the BLAS pool when the model is built
        model = AlternatingLeastSquares(
            factors=factors,
            regularization=regularization,
            iterations=iterations,
            alpha=alpha,
            random_state=seed,
            num_threads=1,
        )
        model.fit(sp.csr_matrix(X, dtype=np.float32), show_progress=False)
    uf, itf = np.asarray(model.user_factors), np.asarray(model.item_factors)
    if not (np.isfinite(uf).all() and np.isfinite(itf).all()):
        raise ModelFitError("ALS produced non-finite factors")
    return AlsModel(user_factors=uf, item_factors=itf)
