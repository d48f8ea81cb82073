"""LLM as policy: an optional last stage that re-orders the learned ranker's top N.

``llm_rerank`` sends the top ``LLMStage.top_n`` candidates (title, description, learned rank),
the surface, the query and the user's main topics through the model router (task
``rank.rerank``) and asks for the ids best first. The learned order is the fallback at every
step, so the stage can only be switched on, never break a slate:

- ``not_configured``: no LLM route for the task (the default set-up): nothing is sent;
- ``over_budget``: the call's estimated cost (prompt tokens plus ``max_output_tokens`` at the
  first route's prices) is over the request's ``budget_usd``, or the router's daily budget is
  spent: nothing is sent;
- ``timeout``: no reply within ``timeout_s`` (the call is left to finish in the background,
  where the router records its cost and caches the reply: the same request again is answered
  from the cache);
- ``error``: every route failed; ``invalid``: the reply named none of the shown ids.

A reply that names only some ids, or repeats one, is used for what it says: the named ids
lead in its order, the others follow in learned order. Candidates past ``top_n`` keep their
places.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel
from sqlalchemy import select

from twinengine.capability.router import service as router
from twinengine.catalog.models import items, topics
from twinengine.context import AppContext
from twinengine.discovery.candidates.schemas import Candidate
from twinengine.errors import AppError, BudgetExceeded

TASK = "rank.rerank"
_POOL_KEY = "ranking.llm_pool"
_pool_lock = threading.Lock()


@dataclass(frozen=True)
class LLMStage:
    """Knobs of the LLM stage, per request."""

    top_n: int = 10
    budget_usd: float = 0.01
    timeout_s: float = 3.0
    max_output_tokens: int = 400  # reply length assumed by the cost estimate
    description_chars: int = 200


@dataclass(frozen=True)
class LLMOutcome:
    """What the stage did (``status`` as in the module docstring, or ``reordered``)."""

    status: str
    cost_usd: float = 0.0
    latency_ms: float = 0.0
    model: str | None = None
    detail: str = ""


class _Order(BaseModel):
    order: list[str]


_SYSTEM = (
    "You re-rank prompts of an AI prompt gallery for one person. Put first the prompts this "
    "person is most likely to open and then copy: relevant to the query or their interests, "
    "clear and useful rather than merely eye-catching. Use only the ids given."
)


def _executor(ctx: AppContext) -> ThreadPoolExecutor:
    with _pool_lock:
        pool = ctx.extras.get(_POOL_KEY)
        if pool is None:
            pool = ctx.extras[_POOL_KEY] = _Pool(max_workers=4, thread_name_prefix="rank-llm")
        return pool


class _Pool(ThreadPoolExecutor):
    """Closed with the context (``close``), without waiting for calls past their deadline."""

    def close(self) -> None:
        self.shutdown(wait=False, cancel_futures=True)


def _catalog_text(ctx: AppContext, ids: list[str], chars: int) -> dict[str, tuple[str, str]]:
    with ctx.db.read() as conn:
        rows = conn.execute(
            select(items.c.id, items.c.title, items.c.description).where(items.c.id.in_(ids))
        ).all()
    return {r.id: (r.title, (r.description or "")[:chars]) for r in rows}


def user_topics(ctx: AppContext, user_key: str | None, n: int = 3) -> list[str]:
    """Names of the user's most clicked topics, from the ranking features (no clicks: none)."""
    from twinengine.discovery.ranking.service import runtime

    state = runtime(ctx).features(wait=False) if user_key else None
    user = state.users.get(user_key) if state is not None and user_key else None
    if user is None or user.clicks == 0 or not user.topics.any():
        return []
    top = [state.catalog.topic_ids[j] for j in np.argsort(-user.topics)[:n] if user.topics[j] > 0]
    with ctx.db.read() as conn:
        names = dict(conn.execute(select(topics.c.id, topics.c.name)
                                  .where(topics.c.id.in_(top))).all())  # fmt: skip
    return [names.get(t, t) for t in top]


def _messages(
    ranked: list[Candidate],
    text: dict[str, tuple[str, str]],
    *,
    surface: str,
    query: str | None,
    interests: list[str],
) -> list[dict[str, Any]]:
    shown = [
        {
            "id": c.item_id,
            "learned_rank": n + 1,
            "title": text.get(c.item_id, ("", ""))[0],
            "description": text.get(c.item_id, ("", ""))[1],
        }
        for n, c in enumerate(ranked)
    ]
    brief = {
        "surface": surface,
        "query": query or None,
        "interests": interests or None,
        "candidates": shown,
    }
    return [
        {"role": "system", "content": _SYSTEM},
        {"role": "user", "content": "Order these candidates best first and reply with "
         '{"order": [ids]}.\n' + json.dumps(brief, ensure_ascii=False)},
    ]  # fmt: skip


def _merge(head: list[Candidate], order: list[str]) -> list[Candidate] | None:
    by_id = {c.item_id: c for c in head}
    named = [i for i in dict.fromkeys(order) if i in by_id]
    if not named:
        return None
    learned = {c.item_id: n + 1 for n, c in enumerate(head)}
    chosen = set(named)
    out = [by_id[i] for i in named] + [c for c in head if c.item_id not in chosen]
    return [dataclasses.replace(c, features={**(c.features or {}), "llm_rank": n + 1,
                                             "learned_rank": learned[c.item_id]})
            for n, c in enumerate(out)]  # fmt: skip


def llm_rerank(
    ctx: AppContext,
    ranked: list[Candidate],
    *,
    surface: str,
    user_key: str | None = None,
    query: str | None = None,
    stage: LLMStage | None = None,
) -> tuple[list[Candidate], LLMOutcome]:
    """Re-order the top of ``ranked`` (the learned ranker's output) by an LLM, or keep it."""
    stage = stage or LLMStage()
    if not ranked or stage.top_n < 2:
        return ranked, LLMOutcome("skipped")
    if not router.is_configured(ctx, TASK):
        return ranked, LLMOutcome("not_configured")
    head, tail = ranked[: stage.top_n], ranked[stage.top_n :]
    text = _catalog_text(ctx, [c.item_id for c in head], stage.description_chars)
    messages = _messages(
        head, text, surface=surface, query=query, interests=user_topics(ctx, user_key)
    )
    first = router.route_for(ctx.settings, TASK)[0]
    estimate = first.cost(
        len(json.dumps(messages, ensure_ascii=False)) // 4, stage.max_output_tokens
    )
    if estimate > stage.budget_usd:
        return ranked, LLMOutcome("over_budget", detail=f"estimated ${estimate:.5f}")
    started = time.perf_counter()
    future = _executor(ctx).submit(
        router.complete, ctx, task=TASK, messages=messages, schema=_Order, timeout_s=stage.timeout_s
    )
    try:
        result = future.result(timeout=stage.timeout_s)
    except FutureTimeout:
        return ranked, LLMOutcome("timeout", latency_ms=(time.perf_counter() - started) * 1000)
    except BudgetExceeded as exc:
        return ranked, LLMOutcome("over_budget", detail=str(exc))
    except AppError as exc:  # BackendUnavailable and the like: every route failed
        return ranked, LLMOutcome(
            "error", latency_ms=(time.perf_counter() - started) * 1000, detail=str(exc)[:300]
        )
    done = LLMOutcome(
        "reordered", cost_usd=result.cost_usd, latency_ms=result.latency_ms, model=result.model
    )
    merged = _merge(head, result.parsed.order if isinstance(result.parsed, _Order) else [])
    if merged is None:
        return ranked, dataclasses.replace(done, status="invalid")
    return merged + tail, done
