"""Index lifecycle: build, persist, reload, incremental add/update/delete, atomic swap."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.factories import demo_rows, make_item, write_jsonl
from twinengine.catalog import service as catalog
from twinengine.context import AppContext, open_context
from twinengine.discovery.index import service
from twinengine.discovery.index.lifecycle import Snapshot
from twinengine.discovery.index.state import state_of
from twinengine.errors import BackendUnavailable

pytestmark = pytest.mark.slow  # loads the embedding model (~6 s once per process)


def _ingest(ctx: AppContext, tmp_path: Path, rows: list[dict], name: str = "rows") -> None:
    catalog.ingest(ctx.db, path=write_jsonl(tmp_path / f"{name}.jsonl", rows))


def _real(*ids: str) -> list[dict]:
    wanted = set(ids)
    return [r for r in demo_rows() if r["id"] in wanted]


def _seed(ctx: AppContext, tmp_path: Path) -> None:
    rows = _real("gptimg2-17907", "nbp-xa82fc73d35", "gptimg2-17979") + [
        make_item("t-1", title="Lighthouse in a storm", prompt="waves crash on a lighthouse"),
        make_item("t-2", title="Bowl of ramen", prompt="steaming noodles, chopsticks"),
    ]
    _ingest(ctx, tmp_path, rows, "seed")
    service.build_index(ctx)


def test_search_without_an_index_says_how_to_build_it(ctx: AppContext) -> None:
    with pytest.raises(BackendUnavailable, match="index build"):
        service.search(ctx, q="anything")


def test_incremental_add_update_delete(ctx: AppContext, tmp_path: Path) -> None:
    _seed(ctx, tmp_path)
    state = state_of(ctx)
    before = state.snapshot
    assert service.search(ctx, q="zeppelin", mode="lexical").hits == []
    _ingest(ctx, tmp_path, [make_item("t-3", title="Zeppelin over Paris")], "add")
    assert state.wait_idle(60)
    res = service.search(ctx, q="zeppelin", k=3, mode="lexical")
    assert [h.id for h in res.hits] == ["t-3"]
    # The old snapshot was replaced whole, never mutated: a reader holding it is unaffected.
    assert before is not None and "t-3" not in before.row_of and len(before) == 5

    _ingest(ctx, tmp_path, [make_item("t-3", title="Hot air balloon over Paris")], "update")
    assert state.wait_idle(60)
    assert service.search(ctx, q="zeppelin", mode="lexical").hits == []
    hits = service.search(ctx, q="balloon", k=3, mode="lexical").hits
    assert [h.id for h in hits] == ["t-3"]
    # Hits carry the item as the new snapshot holds it, not the one cached with the old.
    assert hits[0].item.title == "Hot air balloon over Paris"

    catalog.delete_item(ctx.db, item_id="t-3")
    assert state.wait_idle(60)
    assert service.search(ctx, q="balloon", mode="lexical").hits == []
    assert "t-3" not in state.snapshot.row_of
    vec_ids, matrix = service.item_vectors(ctx)
    assert len(vec_ids) == matrix.shape[0] == 5


def test_topic_changes_reach_the_filters(ctx: AppContext, tmp_path: Path) -> None:
    _seed(ctx, tmp_path)
    catalog.load_taxonomy(ctx.db, path=_taxonomy(tmp_path))
    flt = catalog.make_filter(topics=["sea"])
    assert service.search(ctx, q="lighthouse", flt=flt, mode="lexical").hits == []
    catalog.set_item_topics(ctx.db, links=[("t-1", "sea", 1.0)], source="human")
    assert state_of(ctx).wait_idle(60)
    hits = service.search(ctx, q="lighthouse", flt=flt, mode="lexical").hits
    assert [h.id for h in hits] == ["t-1"]
    assert [t.topic_id for t in hits[0].item.topics] == ["sea"]


def _taxonomy(tmp_path: Path) -> Path:
    import json

    path = tmp_path / "tax.json"
    path.write_text(
        json.dumps(
            {
                "facets": [{"id": "subject", "name": "Subject"}],
                "topics": [{"id": "sea", "facet": "subject", "name": "Sea"}],
            }
        )
    )
    return path


def test_restart_loads_the_saved_index_and_catches_up(ctx: AppContext, tmp_path: Path) -> None:
    _seed(ctx, tmp_path)
    saved = state_of(ctx).snapshot
    # Changes made while no index is listening (another process, a restore) ...
    state_of(ctx).close()
    _ingest(ctx, tmp_path, [make_item("t-9", title="Origami crane")], "offline")
    catalog.delete_item(ctx.db, item_id="t-2")
    # ... are found by content hash when a fresh process loads the index.
    other = open_context(ctx.settings)
    try:
        state = state_of(other)
        assert state.snapshot is not None
        np.testing.assert_array_equal(state.snapshot.dense.matrix[:1], saved.dense.matrix[:1])
        assert state.wait_idle(60)
        assert [h.id for h in service.search(other, q="origami", mode="lexical").hits] == ["t-9"]
        assert "t-2" not in state.snapshot.row_of
    finally:
        other.close()


def test_save_is_atomic_and_keeps_one_version(ctx: AppContext, tmp_path: Path) -> None:
    _seed(ctx, tmp_path)
    root = state_of(ctx).root
    service.build_index(ctx)
    versions = [p for p in root.iterdir() if p.is_dir()]
    assert len(versions) == 1 and (root / "CURRENT").read_text() == versions[0].name
    # A half-written folder left by a crash is ignored: CURRENT still names a complete one.
    (root / ".vcrashed.tmp").mkdir()
    snap = Snapshot.load(root)
    assert snap is not None and len(snap) == 5


def test_traced_query_encoder_matches_the_eager_one(ctx: AppContext) -> None:
    # encode_query runs a TorchScript trace made on one example length; every other length,
    # up to truncation, must give what the eager int8 encoder gives for that one text
    # (one at a time: dynamic quantisation scales activations per batch).
    embedder = state_of(ctx).embedder()
    texts = ["fox", "a watercolour fox in misty woods", "城市夜景 neon rain", "tile " * 400]
    got = np.stack([embedder.encode_query(t, cache=False) for t in texts])
    assert embedder._single is not None and embedder._single is not embedder._fast[1]
    want = np.concatenate([embedder.encode([t], quantised=True) for t in texts])
    np.testing.assert_allclose(got, want, atol=1e-5)
