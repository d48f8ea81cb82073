"""The auto-tagger: training, persistence, the local model, and the LLM escalation cascade.

The tests that need a trained model share one (trained once per module, ~20 s on an idle
core) and are marked slow.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.factories import demo_rows, write_jsonl
from tests.llm_server import Fail, LLMServer
from twinengine.capability.router import service as router
from twinengine.capability.tagging import service as tagging
from twinengine.capability.tagging.model import TaggerModel
from twinengine.catalog import service as catalog
from twinengine.catalog.demo import DEMO_LABELS, DEMO_TAXONOMY
from twinengine.config import Settings
from twinengine.context import AppContext, open_context

N_LABELLED = 120
N_OTHER = 30


def _labels() -> list[dict[str, Any]]:
    return [json.loads(line) for line in DEMO_LABELS.read_text().splitlines()[:N_LABELLED]]


def _rows() -> list[dict[str, Any]]:
    labelled = {r["id"] for r in _labels()}
    rows = [r for r in demo_rows() if r["id"] in labelled]
    return rows + [r for r in demo_rows()[::97] if r["id"] not in labelled][:N_OTHER]


def _load(ctx: AppContext, tmp: Path) -> Path:
    catalog.load_taxonomy(ctx.db, path=DEMO_TAXONOMY)
    catalog.ingest(ctx.db, path=write_jsonl(tmp / "rows.jsonl", _rows()))
    return write_jsonl(tmp / "labels.jsonl", _labels())


@pytest.fixture(scope="module")
def trained_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home holding a tagger trained on 120 bundled labels (once per module)."""
    tmp = tmp_path_factory.mktemp("tagger")
    ctx = open_context(Settings(home=tmp / "home", database_url=f"sqlite:///{tmp / 't.db'}"))
    try:
        tagging.train(ctx, labels_path=_load(ctx, tmp))
    finally:
        ctx.close()
    return tmp / "home"


def _ready(ctx: AppContext, trained_home: Path, tmp: Path) -> Path:
    for part in ("models", "cache"):
        shutil.copytree(trained_home / part, ctx.settings.home / part, dirs_exist_ok=True)
    return _load(ctx, tmp)


def _other_ids() -> list[str]:
    labelled = {r["id"] for r in _labels()}
    return [r["id"] for r in _rows() if r["id"] not in labelled]


@pytest.mark.slow
def test_model_files_are_plain_and_round_trip(trained_home: Path, ctx, tmp_path) -> None:
    folder = trained_home / "models" / "tagger"
    assert sorted(p.name for p in folder.iterdir()) == ["meta.txt", "model.json", "model.npz"]
    with np.load(folder / "model.npz", allow_pickle=False) as z:  # refuses pickled objects
        assert z["y"].shape == (N_LABELLED, 151)
    _ready(ctx, trained_home, tmp_path)
    model = tagging.load_model(ctx)
    docs = tagging._docs(ctx, _other_ids()[:5])
    emb = tagging._embed(ctx, docs)
    proba = model.predict_proba(docs, emb)
    again = TaggerModel.load(folder).predict_proba(docs, emb)
    assert proba.shape == (5, 151) and np.allclose(proba, again)
    assert ((proba >= 0) & (proba <= 1)).all()


@pytest.mark.slow
def test_fits_the_training_labels(trained_home: Path, ctx, tmp_path) -> None:
    """On its own training prompts the model must be far better than chance."""
    labels = _ready(ctx, trained_home, tmp_path)
    report = tagging.evaluate(ctx, labels_path=labels, allow_llm=False)
    assert report.items == N_LABELLED
    assert report.scores.micro_f1 > 0.6
    assert set(report.scores.per_facet) >= {"subject", "technique", "deliverable"}
    assert report.escalated == 0 and report.cost_usd == 0


@pytest.mark.slow
def test_tag_items_local_respects_human_links(trained_home: Path, ctx, tmp_path) -> None:
    _ready(ctx, trained_home, tmp_path)
    human_id = _labels()[0]["id"]
    catalog.load_topic_labels(ctx.db, path=write_jsonl(tmp_path / "h.jsonl", [_labels()[0]]))
    ids = [*_other_ids()[:10], human_id]
    report = tagging.tag_items(ctx, item_ids=ids, allow_llm=True)  # no route: local only
    assert report.tagged == 10 and report.skipped_human == 1 and report.escalated == 0
    assert 10 <= report.model_links <= 80 and report.llm_links == 0
    item = catalog.get_item(ctx.db, item_id=ids[0])
    assert item.topics and {t.source for t in item.topics} == {"model"}
    assert all(0 < t.confidence <= 1 for t in item.topics)
    human = catalog.get_item(ctx.db, item_id=human_id)
    assert {t.source for t in human.topics} == {"human"}
    # Tagging again replaces the model's links instead of piling them up.
    again = tagging.tag_items(ctx, item_ids=ids[:3], allow_llm=False)
    after = catalog.get_item(ctx.db, item_id=ids[0])
    assert again.tagged == 3 and len(after.topics) == len(item.topics)


def _llm_answer(request: dict[str, Any]) -> str:
    """Pick the first two candidate topics the prompt lists (a deterministic 'LLM')."""
    text = request["messages"][-1]["content"]
    cands = re.findall(r"^- ([a-z0-9-]+) \(", text, flags=re.M)
    return json.dumps({"topics": cands[:2] + ["not-a-topic"]})


def _llm_ctx(settings: Settings, server: LLMServer, **extra: Any) -> AppContext:
    return open_context(
        settings.model_copy(
            update={
                "llm_base_url": server.url,
                "llm_model": "tagger-llm",
                "llm_backoff_s": 0.01,
                "llm_price_in_per_1k": 0.01,
                "llm_price_out_per_1k": 0.03,
                "tagger_escalate_margin": 0.3,
                **extra,
            }
        )
    )


@pytest.mark.slow
def test_escalation_runs_against_local_llm(trained_home, settings, llm_server, tmp_path) -> None:
    llm_server.reply(_llm_answer)
    ctx = _llm_ctx(settings, llm_server)
    try:
        _ready(ctx, trained_home, tmp_path)
        ids = _other_ids()[:8]
        report = tagging.tag_items(ctx, item_ids=ids, run_id="drop-1")
        assert report.escalated >= 1 and llm_server.calls == report.escalated
        assert report.llm_links >= 1 and report.cost_usd > 0
        first = llm_server.requests[0]["messages"]
        assert "Candidate topics" in first[-1]["content"]
        assert "Similar labelled" in first[-1]["content"]
        assert llm_server.requests[0]["response_format"] == {"type": "json_object"}
        sources = {t.source for i in ids for t in catalog.get_item(ctx.db, item_id=i).topics}
        assert "llm" in sources
        ledger = router.list_ledger(ctx, run_id="drop-1")
        assert {r.task for r in ledger} == {"tagging"} and all(r.status == "ok" for r in ledger)
        # Resume: the same run re-tags the same items without a single new LLM call.
        calls = llm_server.calls
        again = tagging.tag_items(ctx, item_ids=ids, run_id="drop-1")
        assert llm_server.calls == calls and again.escalated == report.escalated
        assert router.repeated_calls(ctx, run_id="drop-1") == []
    finally:
        ctx.close()


@pytest.mark.slow
def test_budget_exhaustion_falls_back_to_local(trained_home, settings, llm_server, tmp_path):
    llm_server.reply(_llm_answer)
    ctx = _llm_ctx(settings, llm_server, llm_budget_run_usd=0.0001)
    try:
        _ready(ctx, trained_home, tmp_path)
        ids = _other_ids()[:12]
        report = tagging.tag_items(ctx, item_ids=ids, run_id="poor")
        assert report.budget_stopped and report.escalated <= 2
        assert llm_server.calls == report.escalated
        assert report.tagged == 12 and report.model_links > 0  # everything still got tags
        assert all(catalog.get_item(ctx.db, item_id=i).topics for i in ids)
    finally:
        ctx.close()


@pytest.mark.slow
def test_llm_failures_fall_back_to_local(trained_home, settings, llm_server, tmp_path) -> None:
    llm_server.queue(*[Fail(500)] * 60)
    ctx = _llm_ctx(settings, llm_server, llm_max_retries=1)
    try:
        _ready(ctx, trained_home, tmp_path)
        ids = _other_ids()[:4]
        report = tagging.tag_items(ctx, item_ids=ids)
        assert report.escalated == 0 and report.llm_failed >= 1
        assert all(catalog.get_item(ctx.db, item_id=i).topics for i in ids)
    finally:
        ctx.close()


def test_untrained_tagger_is_not_found(sample_catalog) -> None:
    from twinengine.errors import NotFound

    with pytest.raises(NotFound, match="tag train"):
        tagging.tag_items(sample_catalog, item_ids=["x"])
    assert tagging.predict_text_topics(sample_catalog, text="a cat") == []


def test_score_figures() -> None:
    pred = np.array([[1, 1, 0], [0, 1, 0]], dtype=bool)
    true = np.array([[1, 0, 0], [0, 1, 1]], dtype=bool)
    s = tagging.score(pred, true, ["a", "b", "c"], ["f", "f", "g"])
    assert s.micro_f1 == pytest.approx(2 * 2 / (3 + 3))
    assert s.per_topic == {"a": 1.0, "b": pytest.approx(2 / 3), "c": 0.0}
    assert s.macro_f1 == pytest.approx((1 + 2 / 3 + 0) / 3)
    assert s.per_facet == {"f": pytest.approx(2 * 2 / (3 + 2)), "g": 0.0}


def test_bad_labels_file(ctx, tmp_path) -> None:
    from twinengine.errors import InvalidInput, NotFound

    with pytest.raises(NotFound):
        tagging.read_labels(tmp_path / "missing.jsonl")
    (tmp_path / "bad.jsonl").write_text('{"id": "a", "topics": []}\nnot json\n')
    with pytest.raises(InvalidInput, match="bad.jsonl:2"):
        tagging.read_labels(tmp_path / "bad.jsonl")


def test_cooccurrence_features_follow_the_labels() -> None:
    """A topic never labelled with another loses expectation when that other one scores high."""
    model = TaggerModel(topic_ids=["a", "b", "c"], facets=["f", "f", "g"], keywords=[[], [], []])
    y = np.array([[1, 0, 1], [1, 0, 1], [0, 1, 0], [0, 1, 0], [1, 0, 0], [0, 1, 1]], dtype=float)
    model._labels_stats(y)
    ridge = np.array([[0.9, 0.1, 0.1], [0.1, 0.9, 0.1]])
    expect, lift, rival, *_ = model._cooc(ridge)
    assert expect[0, 2] > expect[1, 2]  # "c" goes with "a", rarely with "b"
    assert lift[1, 0] < 0 < lift[0, 0]
    # The rival is the best other topic of the same facet; "c" is alone in its facet.
    assert rival[0].tolist() == [0.1, 0.9, 0.0]


def test_old_model_format_is_refused(tmp_path) -> None:
    from twinengine.errors import NotFound

    (tmp_path / "model.json").write_text(json.dumps({"format": 1}))
    with pytest.raises(NotFound, match="train it again"):
        TaggerModel.load(tmp_path)
