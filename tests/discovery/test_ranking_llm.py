"""The LLM re-rank stage against the local OpenAI-compatible test server, and its fallbacks."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.capability.conftest import llm_ctx, llm_server, llm_settings  # noqa: F401
from tests.factories import load_sample
from tests.llm_server import Fail, LLMServer, Slow
from twinengine.capability.router import service as router
from twinengine.catalog.models import items
from twinengine.context import AppContext
from twinengine.discovery.candidates.schemas import Candidate
from twinengine.discovery.ranking.features import CatalogView
from twinengine.discovery.ranking.llm import LLMStage, llm_rerank

# The test server's prices are high ($0.5 / $1.5 per 1k tokens): a call costs about $1 here.
RICH = 5.0


def _ranked(ctx: AppContext, n: int = 15) -> list[Candidate]:
    ids = CatalogView.load(ctx.db).ids[:n]
    return [Candidate(item_id=i, score=float(n - k), source="test") for k, i in enumerate(ids)]


@pytest.fixture
def catalog_ctx(llm_ctx: AppContext, tmp_path: Path) -> AppContext:  # noqa: F811
    load_sample(llm_ctx.db, tmp_path, n=40)
    return llm_ctx


def _shown_ids(request: dict) -> list[str]:
    brief = json.loads(request["messages"][-1]["content"].split("\n", 1)[1])
    return [c["id"] for c in brief["candidates"]]


def test_without_an_llm_the_learned_order_stays(ctx: AppContext, tmp_path: Path) -> None:
    load_sample(ctx.db, tmp_path, n=20)
    ranked = _ranked(ctx)
    out, outcome = llm_rerank(ctx, ranked, surface="feed", user_key="u1")
    assert outcome.status == "not_configured" and out == ranked


def test_llm_reorders_the_top_n_only(catalog_ctx: AppContext, llm_server: LLMServer) -> None:  # noqa: F811
    ranked = _ranked(catalog_ctx)
    llm_server.reply(lambda req: json.dumps({"order": _shown_ids(req)[::-1]}))
    out, outcome = llm_rerank(
        catalog_ctx,
        ranked,
        surface="search",
        query="cyberpunk portrait",
        stage=LLMStage(top_n=5, budget_usd=RICH),
    )
    assert outcome.status == "reordered" and outcome.cost_usd > 0
    assert [c.item_id for c in out[:5]] == [c.item_id for c in ranked[:5]][::-1]
    assert out[5:] == ranked[5:]  # past top_n: untouched
    assert out[0].features == {"llm_rank": 1, "learned_rank": 5}
    (req,) = llm_server.requests
    brief = req["messages"][-1]["content"]
    assert "cyberpunk portrait" in brief and '"surface": "search"' in brief
    with catalog_ctx.db.read() as conn:
        title = conn.execute(select(items.c.title).where(items.c.id == ranked[0].item_id)).scalar()
    assert json.dumps(title, ensure_ascii=False) in brief  # the model sees what items are
    assert router.spent(catalog_ctx) == pytest.approx(outcome.cost_usd)


def test_partial_or_invalid_replies(catalog_ctx: AppContext, llm_server: LLMServer) -> None:  # noqa: F811
    ranked = _ranked(catalog_ctx)
    ids = [c.item_id for c in ranked]
    llm_server.reply(json.dumps({"order": [ids[3], "made-up", ids[3], ids[1]]}))
    out, outcome = llm_rerank(
        catalog_ctx, ranked, surface="feed", stage=LLMStage(top_n=6, budget_usd=RICH)
    )
    assert outcome.status == "reordered"
    assert [c.item_id for c in out[:6]] == [ids[3], ids[1], ids[0], ids[2], ids[4], ids[5]]
    llm_server.reply(json.dumps({"order": ["nope", "none"]}))
    out, outcome = llm_rerank(
        catalog_ctx, ranked, surface="feed", stage=LLMStage(top_n=7, budget_usd=RICH)
    )
    assert outcome.status == "invalid" and out == ranked


def test_timeout_budget_and_errors_fall_back(
    catalog_ctx: AppContext,
    llm_server: LLMServer,  # noqa: F811
) -> None:
    ranked = _ranked(catalog_ctx)
    out, outcome = llm_rerank(catalog_ctx, ranked, surface="feed", stage=LLMStage(budget_usd=0.05))
    assert outcome.status == "over_budget" and out == ranked and llm_server.calls == 0

    llm_server.queue(Fail(500), Fail(500), Fail(500))
    out, outcome = llm_rerank(
        catalog_ctx, ranked, surface="related", stage=LLMStage(budget_usd=RICH)
    )
    assert outcome.status == "error" and out == ranked and llm_server.calls == 3

    llm_server.queue(Slow(5.0))
    t = time.perf_counter()
    out, outcome = llm_rerank(
        catalog_ctx, ranked, surface="feed", stage=LLMStage(timeout_s=0.3, budget_usd=RICH)
    )
    assert outcome.status == "timeout" and out == ranked
    assert time.perf_counter() - t < 1.5  # the deadline holds; the call finishes in the background
