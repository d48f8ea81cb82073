"""Fusing lexical and dense rankings: reciprocal rank fusion or normalised score blending.

Both are pure functions over candidate rows and their scores; ``Fusion.parse`` reads the
``"rrf:K"`` / ``"blend:W"`` form used by settings and the benchmark. The benchmark picks the
fusion on SciFact's *train* queries only and applies it once to test.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from twinengine.errors import InvalidInput

# Chosen on SciFact *train* (809 queries) by bench/search.py's grid over rrf:K and blend:W:
# blend:0.6 scored nDCG@10 0.7259 on train (blend:0.5 0.7256, rrf:5 0.7166); test was only
# evaluated afterwards, once. See bench/results/search.json "beir.fusion_tuning_train_ndcg10".
DEFAULT_FUSION = "blend:0.6"


@dataclass(frozen=True)
class Fusion:
    """How to fuse: ``method`` is rrf or blend; ``param`` is RRF's k or blend's lexical weight."""

    method: str
    param: float

    @classmethod
    def parse(cls, spec: str | None) -> Fusion:
        """``"rrf:60"`` or ``"blend:0.3"``; empty means the tuned default."""
        spec = (spec or DEFAULT_FUSION).strip()
        method, _, raw = spec.partition(":")
        fusers = {"rrf": 60.0, "blend": 0.5}
        if method not in fusers:
            raise InvalidInput(f"fusion must be one of {sorted(fusers)} (got {spec!r})")
        try:
            param = float(raw) if raw else fusers[method]
        except ValueError as exc:
            raise InvalidInput(f"bad fusion parameter in {spec!r}") from exc
        return cls(method, param)

    def __str__(self) -> str:
        return f"{self.method}:{self.param:g}"


def fuse(
    lex_rows: np.ndarray,
    lex_scores: np.ndarray,
    dense_rows: np.ndarray,
    dense_scores: np.ndarray,
    fusion: Fusion,
) -> tuple[np.ndarray, np.ndarray]:
    """Fused (rows, scores), best first, over the union of both candidate lists.

    ``lex_scores`` / ``dense_scores`` are full-length score arrays indexed by row, so a document
    found by only one side still gets its real score from the other in blending.
    """
    rows = np.union1d(lex_rows, dense_rows)
    if len(rows) == 0:
        return rows, np.zeros(0, dtype=np.float32)
    if fusion.method == "rrf":
        k = fusion.param
        fused = np.zeros(len(rows), dtype=np.float64)
        for ranked in (lex_rows, dense_rows):
            rank = {int(r): i for i, r in enumerate(ranked)}
            fused += np.array(
                [1.0 / (k + rank[r] + 1) if r in rank else 0.0 for r in rows.tolist()]
            )
    else:
        w = fusion.param
        fused = w * _minmax(lex_scores[rows], lex_scores[lex_rows]) + (1 - w) * _minmax(
            dense_scores[rows], dense_scores[dense_rows]
        )
    order = np.argsort(-fused, kind="stable")
    return rows[order], fused[order].astype(np.float32)


def _minmax(values: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Scale ``values`` by the min and max of the side's own candidate list (clipped to 0..1)."""
    if len(reference) == 0:
        return np.zeros(len(values))
    lo, hi = float(reference.min()), float(reference.max())
    if hi <= lo:
        return (values >= hi).astype(np.float64)
    return np.clip((values.astype(np.float64) - lo) / (hi - lo), 0.0, 1.0)
