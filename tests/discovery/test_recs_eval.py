"""Offline evaluation: metrics against hand-worked values, splits, the ML-100k loader."""

from __future__ import annotations

import math

import numpy as np
import pytest

from twinengine.discovery.evaluation.datasets import load_movielens_100k
from twinengine.discovery.evaluation.metrics import (
    coverage,
    ndcg_at_k,
    novelty,
    precision_at_k,
    recall_at_k,
)
from twinengine.discovery.evaluation.protocol import choose, run_protocol
from twinengine.discovery.evaluation.splits import random_split, relevant_sets, time_split
from twinengine.errors import InvalidInput, NotFound


def test_metrics_by_hand() -> None:
    ranked = {"u": ["a", "x", "b"], "v": ["y", "z", "c"], "w": ["q"]}
    rel = {"u": {"a", "b"}, "v": {"c", "d", "e", "f"}, "w": set()}
    assert recall_at_k(ranked, rel, 3) == pytest.approx((2 / 2 + 1 / 4) / 2)
    assert precision_at_k(ranked, rel, 3) == pytest.approx((2 / 3 + 1 / 3) / 2)

    def d(p: int) -> float:
        return 1 / math.log2(p)

    u = (d(2) + d(4)) / (d(2) + d(3))
    v = d(4) / (d(2) + d(3) + d(4))
    assert ndcg_at_k(ranked, rel, 3) == pytest.approx((u + v) / 2)
    assert coverage(ranked, 10, 3) == pytest.approx(7 / 10)
    assert novelty({"u": ["a"]}, {"a": 2}, 8, 1) == pytest.approx(2.0)


def test_splits() -> None:
    rows = [(f"u{u}", f"i{i}", float(i)) for u in range(5) for i in range(8)]
    train, test = random_split(rows, ratio=0.75, seed=42)
    assert len(train) == 30 and len(test) == 10
    assert {r[0] for r in test} == {r[0] for r in train}
    assert random_split(rows, ratio=0.75, seed=42) == (train, test)
    tr, te = time_split(rows, at=6.0)
    assert all(r[2] < 6 for r in tr) and all(r[2] >= 6 for r in te)
    assert relevant_sets(te)["u0"] == {"i6", "i7"}


def _write_udata(path, n_users=60, n_items=40, seed=0):  # type: ignore[no-untyped-def]
    """A small file in GroupLens's u.data layout with two taste groups."""
    rng = np.random.default_rng(seed)
    lines = []
    for u in range(1, n_users + 1):
        group = u % 2
        for i in rng.choice(n_items // 2, size=12, replace=False):
            item = 1 + int(i) + group * (n_items // 2)
            lines.append(f"{u}\t{item}\t{rng.integers(1, 6)}\t{881250949 + u * 100 + item}")
    path.mkdir()
    (path / "u.data").write_text("\n".join(lines) + "\n", encoding="latin-1")
    return path


def test_movielens_loader_and_protocol(tmp_path) -> None:
    folder = _write_udata(tmp_path / "ml-100k")
    rows = load_movielens_100k(folder)
    assert len(rows) == 60 * 12
    user, item, ts, rating = rows[0]
    assert user == "1" and isinstance(ts, float) and 1 <= rating <= 5
    assert load_movielens_100k(folder / "u.data") == rows
    out = run_protocol([(u, i, t) for u, i, t, _ in rows], factors=8)
    m = out["models"]
    assert set(m) == {"popularity", "ease", "ease_tuned", "als", "blend"}
    # Two clean taste groups: CF must beat popularity.
    assert m["ease"]["ndcg10"] > m["popularity"]["ndcg10"]
    # The reported figure is the method validation chose, and the choice saw the training
    # part only: repeating it from the train split alone gives the same lambda and weights.
    assert out["best"] == "blend" and out["best_ndcg10"] == m["blend"]["ndcg10"]
    triples = [(u, i, t) for u, i, t, _ in rows]
    train, test = random_split(triples, ratio=0.75, seed=42)
    users, items = sorted({r[0] for r in triples}), sorted({r[1] for r in triples})
    assert choose(train, users, items, factors=8) == out["validation"]
    assert m["blend"]["weights"] == out["validation"]["weights"]
    # The whole training part has 4/3 the fitting part's interactions: lambda scales with it.
    assert m["blend"]["lambda"] == pytest.approx(
        out["validation"]["lambda"] * len(train) / out["validation"]["fit_pairs"], abs=0.1
    )


def test_movielens_loader_errors(tmp_path) -> None:
    with pytest.raises(NotFound):
        load_movielens_100k(tmp_path)
    bad = tmp_path / "u.data"
    bad.write_text("1\t2\t3\n")
    with pytest.raises(InvalidInput, match="u.data:1"):
        load_movielens_100k(bad)
