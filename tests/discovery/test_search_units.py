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


def test_term_spans_match_the_tokenizer_on_real_prompts() -> None:
    # term_spans skips stemming most words; the tokenizer's own spans are the oracle, on real
    # catalog rows in English, Chinese and Japanese, for query terms drawn from those rows.
    import gzip
    import json
    import random

    from twinengine.catalog.demo import DEMO_CATALOG
    from twinengine.discovery.index.snippets import term_spans
    from twinengine.discovery.index.tokenize import tokenize, words

    rng = random.Random(3)
    with gzip.open(DEMO_CATALOG, "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line, _ in zip(fh, range(800), strict=False)]
    texts = [" ".join(str(r.get(k) or "") for k in ("title", "prompt")) for r in rows]
    texts += ["猫 黒猫 猫猫猫 a猫b", "tying ties dying lying skies cities happy happier"]
    checked = 0
    for text in texts:
        toks = list(dict.fromkeys(tokenize(text)))
        terms = set(rng.sample(toks, min(len(toks), 4))) | {"猫", "citi", "tie", "happi", "cat"}
        expected = [(s, e) for tok, s, e in words(text) if tok in terms]
        assert term_spans(text, terms) == expected, text[:80]
        checked += len(expected)
    assert checked > 800
    assert term_spans("", {"cat"}) == [] and term_spans("cat", set()) == []
