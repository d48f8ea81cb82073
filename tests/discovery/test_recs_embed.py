"""The embedding-neighbour generator reads the search index's item vectors when it is built."""

from __future__ import annotations

import numpy as np
import pytest

from twinengine.discovery.candidates import generators, service


@pytest.mark.slow
def test_embed_generator_uses_item_vectors(sample_catalog) -> None:
    index = pytest.importorskip("twinengine.discovery.index.service")
    ctx = sample_catalog
    st = service.refresh(ctx)
    generators.embed(ctx, st, None, 0)  # no index yet: must not raise
    try:
        index.build_index(ctx)
    except Exception as exc:  # the search engine's own build is tested in its own tests
        pytest.skip(f"the search index cannot be built here: {exc!r}")
    ids, matrix = index.item_vectors(ctx)
    seed = st.row_of[ids[0]]
    scores = generators.embed(ctx, st, None, seed)
    assert scores is not None and scores.shape == (st.n,)
    # The seed's own vector is its best match; the ranking follows the index's cosine.
    assert int(np.argmax(scores)) == seed
    rel = service.generate(ctx, surface="related", item_id=ids[0], k=5)
    assert rel and all(c.item_id != ids[0] for c in rel)
    assert any(c.features.get("embed", 0) > 0 for c in rel)
