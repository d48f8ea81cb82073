"""Dense retrieval: exact cosine search over unit vectors.

Exact search is one (n x 384) float32 mat-vec: about 0.7 ms for the 11k catalog on one core,
and it never misses, so we stay exact. An ANN graph (hnswlib, usearch) only pays off around a
few hundred thousand items; ``Settings.search_ann_threshold`` marks that point and the service
logs a warning when a catalog crosses it.
"""

from __future__ import annotations

import contextlib
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np


def doc_text(title: str, description: str, body: str) -> str:
    """What we embed for a document: the model reads ~256 word pieces, so lead with the summary."""
    parts = [p.strip() for p in (title, description, body) if p and p.strip()]
    return ". ".join(parts)


def top_rows(scores: np.ndarray, n: int, mask: np.ndarray | None = None) -> np.ndarray:
    """Row numbers of the ``n`` highest ``scores`` (best first), restricted to ``mask``."""
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
    n = min(n, len(scores))
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    part = np.argpartition(-scores, n - 1)[:n] if n < len(scores) else np.arange(len(scores))
    order = part[np.argsort(-scores[part], kind="stable")]
    return order[np.isfinite(scores[order])]


class DenseIndex:
    """Unit-length document vectors, searched exactly by inner product."""

    def __init__(self, matrix: np.ndarray) -> None:
        # Column-major: OpenBLAS's one-thread mat-vec over the row-major layout measured
        # 1.7-1.9 ms for the 11k catalog here, over column-major 0.7 ms (bench/search.py).
        self.matrix = np.asfortranarray(matrix, dtype=np.float32)

    @property
    def dim(self) -> int:
        """Vector width."""
        return int(self.matrix.shape[1]) if self.matrix.ndim == 2 else 0

    def scores(self, query: np.ndarray) -> np.ndarray:
        """Cosine similarity of every document to the unit vector ``query``."""
        if len(self.matrix) == 0:
            return np.zeros(0, dtype=np.float32)
        with _one_blas_thread():
            return self.matrix @ query.astype(np.float32, copy=False)

    def save(self, folder: Path) -> None:
        """Write the matrix as ``.npy``."""
        np.save(folder / "dense.npy", self.matrix)

    @classmethod
    def load(cls, folder: Path) -> DenseIndex:
        """Inverse of ``save`` (memory-mapped read, then copied so the file can be replaced)."""
        return cls(np.array(np.load(folder / "dense.npy", mmap_mode="r", allow_pickle=False)))


@lru_cache(maxsize=1)
def _blas() -> Any:
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    return ThreadpoolController().select(user_api="blas")


def _one_blas_thread() -> Any:
    """Run a mat-vec on one BLAS thread: measured 1-2 ms instead of ~12 ms on a busy 2-core box,
    where a multi-threaded BLAS call waits for both cores to be free. (Process-wide while it
    lasts, so a concurrent BLAS call elsewhere may briefly run single-threaded.)"""
    ctl = _blas()
    return ctl.limit(limits=1) if ctl is not None else contextlib.nullcontext()
