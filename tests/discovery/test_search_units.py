"""Search building blocks without a model: facet columns."""

from __future__ import annotations

import numpy as np
import pytest

from twinengine.discovery.index.lifecycle import FacetColumn


def _brute(values: list[tuple[str, ...]], rows: np.ndarray) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in rows:
        for v in set(values[r]):
            out[v] = out.get(v, 0) + 1
    return out


@pytest.mark.parametrize("n", [0, 1, 7, 60, 124, 125, 600, 1000])
def test_facet_counts_match_a_brute_force_count(n: int) -> None:
    # Small row sets take the row-pointer path, large ones the mat-vec: both must agree.
    rng = np.random.default_rng(n)
    values = [
        tuple(f"t{j}" for j in rng.choice(30, rng.integers(0, 6), replace=False))
        for _ in range(1000)
    ]
    rows = rng.permutation(1000)[:n]
    values[int(rows[0]) if n else 0] = ("t1", "t1", "t2")  # a repeat counts once per row
    col = FacetColumn(values)
    counts = col.counts(rows)
    assert dict(counts) == _brute(values, rows)
    assert counts == sorted(counts, key=lambda p: (-p[1], p[0]))
