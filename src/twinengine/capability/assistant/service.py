"""The assistant service: ``answer`` a brief (or a remix) with a prompt built from the catalog.

understand -> retrieve -> compose (LLM through the router, else deterministic) -> validate ->
log an event. ``stream=True`` returns server-sent-event payloads instead of one answer: a
``meta`` event (what was understood and retrieved), ``delta`` events (prompt text as it is
written, only after the guard has checked it), possibly ``reset`` (the LLM's text was refused
and the deterministic answer follows), and a final ``answer`` with the full response.
"""

from __future__ import annotations

import logging
import re
import secrets
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from twinengine.capability.assistant import compose as _compose
from twinengine.capability.assistant.guard import (
    Guard,
    StreamGuard,
    Violation,
    markers_of,
    new_canary,
)
from twinengine.capability.assistant.retrieve import Candidate, Retrieved, retrieve
from twinengine.capability.assistant.schemas import (
    AssistantAnswer,
    Cost,
    RouteInfo,
    SourceRef,
    Understanding,
)
from twinengine.capability.assistant.understand import TopicIndex, understand
from twinengine.catalog import service as catalog
from twinengine.catalog.schemas import ItemPublic
from twinengine.context import AppContext
from twinengine.errors import AppError, BackendUnavailable, BudgetExceeded, InvalidInput

log = logging.getLogger(__name__)

Event = dict[str, Any]  # {"event": name, "data": JSON-able}
_LANG_CODE = re.compile(r"^[a-z]{2,3}(?:-[A-Za-z0-9]{2,8})?$")
_CANARY = new_canary()  # per process: a leak of the system prompt shows up as this token


@dataclass
class _State:
    """Per-context assistant state: the taxonomy index and (lazily) topic vectors."""

    index: TopicIndex
    lock: threading.Lock = field(default_factory=threading.Lock)
    vectors_tried: bool = False


def state_of(ctx: AppContext) -> _State:
    """The assistant's state on ``ctx`` (built on first use)."""
    st = ctx.extras.get("assistant")
    if st is None:
        topics = [t.model_dump() for t in catalog.list_topics(ctx.db)]
        st = _State(index=TopicIndex.build(topics))
        ctx.extras["assistant"] = st
    return st


def _embedder(ctx: AppContext) -> Any:
    """The search engine's loaded embedder, when its index is live (never loads a model here)."""
    try:
        from twinengine.discovery.index.state import state_of as index_state
    except ImportError:
        return None
    try:
        ist = index_state(ctx)
        if ist.snapshot is None:
            return None
        return ist.embedder()
    except AppError:
        return None


def _embed_fn(ctx: AppContext, st: _State) -> Any:
    emb = _embedder(ctx)
    if emb is None:
        return None
    with st.lock:
        if not st.vectors_tried:
            st.vectors_tried = True
            ids = list(st.index.topics)
            texts = [f"{t['name']}: {t['definition']}" for t in st.index.topics.values()]
            st.index.vectors = emb.encode(texts) if texts else None
            st.index.vector_ids = ids
    return lambda text: np.asarray(emb.encode_query(text), dtype=np.float32)


def warm(ctx: AppContext) -> None:
    """Compute the topic vectors ahead of the first brief (when the search index is live)."""
    try:
        _embed_fn(ctx, state_of(ctx))
    except Exception:  # warming is best effort: the first answer retries
        log.exception("assistant warm-up failed")


def _predict_fn(ctx: AppContext) -> Any:
    """The tagger's topic predictor for a text, when the tagging engine offers one."""
    try:
        from twinengine.capability.tagging import service as tagging
    except ImportError:
        return None
    fn = getattr(tagging, "predict_text_topics", None)
    if fn is None:
        return None
    return lambda text: fn(ctx, text=text)


def _check(ctx: AppContext, brief: str, language: str | None) -> str:
    s = ctx.settings
    text = (brief or "").strip()
    if not text:
        raise InvalidInput("brief must not be empty")
    if len(text) > s.assistant_max_brief_chars:
        raise InvalidInput(f"brief is longer than {s.assistant_max_brief_chars} characters")
    if language is not None and not _LANG_CODE.match(language):
        raise InvalidInput("language must be a code like 'en', 'ja' or 'pt-BR'")
    return text


@dataclass
class _Plan:
    """Everything decided before composing."""

    request_id: str
    brief: str
    remix: ItemPublic | None
    u: Understanding
    found: Retrieved
    answer_language: str
    guard: Guard
    style_words: dict[str, list[str]]
    timings: dict[str, float]
    session_id: str | None
    started: float


def _plan(
    ctx: AppContext, brief: str, language: str | None, remix_of: str | None, session_id: str | None
) -> _Plan:
    started = time.perf_counter()
    text = _check(ctx, brief, language)
    remix = catalog.get_item(ctx.db, item_id=remix_of) if remix_of else None
    st = state_of(ctx)
    t0 = time.perf_counter()
    u = understand(
        text, st.index, language=language, embed=_embed_fn(ctx, st), predict=_predict_fn(ctx)
    )
    t1 = time.perf_counter()
    s = ctx.settings
    found = retrieve(
        ctx, u, k=s.assistant_sources, k_alternatives=s.assistant_alternatives, remix=remix
    )
    t2 = time.perf_counter()
    markers = markers_of(seg for segs in found.flagged.values() for seg in segs)
    answer_language = language or u.target_language or u.language
    guard = Guard(
        system_prompt=_compose.SYSTEM_PROMPT,
        canary=_CANARY,
        allowed_ids={c.item.id for c in found.sources},
        markers=markers,
        max_chars=s.assistant_max_output_chars,
    )
    style_words = {c.item.id: st.index.style_words_in(c.item.body) for c in found.sources[:1]}
    return _Plan(
        request_id=f"as-{uuid.uuid4().hex[:24]}",
        brief=text,
        remix=remix,
        u=u,
        found=found,
        answer_language=answer_language,
        guard=guard,
        style_words=style_words,
        timings={"understand": _ms(t0, t1), "retrieve": _ms(t1, t2)},
        session_id=session_id,
        started=started,
    )


def _ms(a: float, b: float) -> float:
    return round((b - a) * 1000, 2)


def _refs(cands: list[Candidate], cited: set[str]) -> list[SourceRef]:
    return [
        SourceRef(
            id=c.item.id,
            title=c.item.title,
            url=f"/p/{c.item.id}",
            score=round(c.score, 4),
            languages=list(c.item.languages),
            cited=c.item.id in cited,
        )
        for c in cands
    ]


def _deterministic(p: _Plan) -> _compose.Composed:
    return _compose.compose_deterministic(
        p.u, p.found.sources, style_words_of=p.style_words, answer_language=p.answer_language
    )


def _llm_ready(ctx: AppContext, p: _Plan) -> str | None:
    """Why the LLM composer is not used (None when it is)."""
    if not ctx.settings.assistant_use_llm:
        return "disabled"
    from twinengine.capability.router import service as router

    if not router.is_configured(ctx, ctx.settings.assistant_llm_task):
        return "no LLM route configured"
    if not p.found.sources:
        return "no sources to ground an LLM answer"
    return None


def _messages(p: _Plan) -> list[dict[str, str]]:
    language = p.u.target_language or p.answer_language
    messages, _ = _compose.build_messages(
        p.u,
        p.brief,
        p.found.sources,
        language=language,
        boundary=secrets.token_hex(8),
        canary=_CANARY,
        remix_id=p.remix.id if p.remix else None,
    )
    return messages


def _from_llm_text(p: _Plan, text: str) -> _compose.Composed:
    """Validate an LLM reply and turn it into a composition; raises ``Violation``."""
    problems = p.guard.problems(text)
    if problems:
        raise Violation("; ".join(problems))
    body, ids, why = _compose.parse_reply(text)
    if not body:
        raise Violation("the model returned no prompt")
    good, bad = p.guard.check_ids(ids)
    if not good:
        raise Violation("the model cited no source it was given")
    rendered, slots = _compose.placeholders_of(body)
    notes = [f"dropped unknown cited id {i!r}" for i in bad]
    return _compose.Composed(
        prompt=rendered,
        template=body,
        placeholders=slots,
        explanation=why or "",
        cited_ids=good,
        notes=notes,
    )


def _finish(
    ctx: AppContext, p: _Plan, c: _compose.Composed, route: RouteInfo, cost: Cost, compose_ms: float
) -> AssistantAnswer:
    cited = set(c.cited_ids)
    p.timings["compose"] = compose_ms
    p.timings["total"] = _ms(p.started, time.perf_counter())
    ans = AssistantAnswer(
        request_id=p.request_id,
        brief=p.brief,
        remix_of=p.remix.id if p.remix else None,
        understanding=p.u,
        prompt=c.prompt,
        template=c.template,
        placeholders=c.placeholders,
        explanation=c.explanation,
        language=p.answer_language,
        sources=_refs(p.found.sources, cited),
        alternatives=_refs(p.found.alternatives, set()),
        cited_ids=c.cited_ids,
        route=route,
        cost=cost,
        warnings=[*p.found.warnings, *c.notes],
        timings_ms=p.timings,
    )
    _record(ctx, p, ans)
    return ans


def _record(ctx: AppContext, p: _Plan, ans: AssistantAnswer) -> None:
    """Log the answer as an impression on the assistant surface (never fails the answer)."""
    slate = [
        *ans.cited_ids,
        *(s.id for s in ans.sources if not s.cited),
        *(a.id for a in ans.alternatives),
    ]
    if not slate:
        return  # an impression needs something shown
    try:
        from twinengine.discovery.events import service as events
    except ImportError:
        return
    event = {
        "event_id": ans.request_id, "type": "impression", "request_id": ans.request_id,
        "session_id": p.session_id or "assistant", "surface": "assistant",
        "slate": list(dict.fromkeys(slate))[:200],
        "attributes": {
            "brief": ans.brief[:500], "language": ans.language, "remix_of": ans.remix_of,
            "cited": ans.cited_ids, "composer": ans.route.composer, "model": ans.route.model,
            "fallback_reason": ans.route.fallback_reason, "cost_usd": ans.cost.usd,
            "tokens_in": ans.cost.tokens_in, "tokens_out": ans.cost.tokens_out,
            "topics": [t.id for t in ans.understanding.topics], "total_ms": ans.timings_ms["total"],
        },
    }  # fmt: skip
    try:
        events.record(ctx, [event])
    except AppError as exc:
        log.warning("assistant event not recorded: %s", exc)


def answer(
    ctx: AppContext,
    *,
    brief: str,
    language: str | None = None,
    remix_of: str | None = None,
    stream: bool = False,
    session_id: str | None = None,
) -> AssistantAnswer | Iterator[Event]:
    """Answer a brief with a prompt built from the catalog (events when ``stream``)."""
    p = _plan(ctx, brief, language, remix_of, session_id)
    if stream:
        return _stream(ctx, p)
    t0 = time.perf_counter()
    task = ctx.settings.assistant_llm_task
    reason = _llm_ready(ctx, p)
    if reason is None:
        from twinengine.capability.router import service as router

        try:
            res = router.complete(
                ctx,
                task=task,
                messages=_messages(p),
                run_id=p.request_id,
                timeout_s=ctx.settings.assistant_llm_timeout_s,
            )
            composed = _from_llm_text(p, res.text)
            route = RouteInfo(composer="llm", task=task, model=res.model, cached=res.cached)
            cost = Cost(usd=res.cost_usd, tokens_in=res.tokens_in, tokens_out=res.tokens_out)
            return _finish(ctx, p, composed, route, cost, _ms(t0, time.perf_counter()))
        except BudgetExceeded as exc:
            reason = f"budget_exceeded: {exc.message}"
        except BackendUnavailable as exc:
            reason = f"backend_unavailable: {exc.message}"
        except Violation as exc:
            reason = f"rejected: {exc}"
        # A refused or failed call may still have cost money: report it.
        cost = _ledger_cost(ctx, p.request_id)
    else:
        cost = Cost()
    route = RouteInfo(composer="deterministic", task=task, fallback_reason=reason)
    return _finish(ctx, p, _deterministic(p), route, cost, _ms(t0, time.perf_counter()))


def _ledger_cost(ctx: AppContext, run_id: str) -> Cost:
    try:
        from twinengine.capability.router import service as router

        rows = router.list_ledger(ctx, run_id=run_id, limit=50)
    except (ImportError, AppError):
        return Cost()
    return Cost(
        usd=round(sum(r.cost_usd for r in rows), 8),
        tokens_in=sum(r.tokens_in for r in rows),
        tokens_out=sum(r.tokens_out for r in rows),
    )


def _stream(ctx: AppContext, p: _Plan) -> Iterator[Event]:
    """The streaming answer (see the module docstring for the events)."""
    yield {"event": "meta", "data": {
        "request_id": p.request_id, "understanding": p.u.model_dump(),
        "sources": [r.model_dump() for r in _refs(p.found.sources, set())],
        "alternatives": [r.model_dump() for r in _refs(p.found.alternatives, set())],
    }}  # fmt: skip
    t0 = time.perf_counter()
    task = ctx.settings.assistant_llm_task
    reason = _llm_ready(ctx, p)
    sent_any = False
    if reason is None:
        from twinengine.capability.router import service as router

        sg = StreamGuard(p.guard)
        try:
            for delta in router.stream(
                ctx,
                task=task,
                messages=_messages(p),
                run_id=p.request_id,
                timeout_s=ctx.settings.assistant_llm_timeout_s,
            ):
                out = sg.feed(delta)
                if out:
                    sent_any = True
                    yield {"event": "delta", "data": {"text": out}}
            rest = sg.finish()
            if rest:
                sent_any = True
                yield {"event": "delta", "data": {"text": rest}}
            composed = _from_llm_text(p, sg.text)
            cost = _ledger_cost(ctx, p.request_id)
            model = ctx.settings.llm_model if hasattr(ctx.settings, "llm_model") else None
            route = RouteInfo(
                composer="llm", task=task, model=_ledger_model(ctx, p.request_id) or model
            )
            yield {
                "event": "answer",
                "data": _finish(
                    ctx, p, composed, route, cost, _ms(t0, time.perf_counter())
                ).model_dump(),
            }
            return
        except BudgetExceeded as exc:
            reason = f"budget_exceeded: {exc.message}"
        except BackendUnavailable as exc:
            reason = f"backend_unavailable: {exc.message}"
        except Violation as exc:
            reason = f"rejected: {exc}"
        if sent_any:
            yield {"event": "reset", "data": {"reason": reason}}
    cost = _ledger_cost(ctx, p.request_id) if reason and reason != "disabled" else Cost()
    composed = _deterministic(p)
    yield {"event": "delta", "data": {"text": composed.prompt}}
    route = RouteInfo(composer="deterministic", task=task, fallback_reason=reason)
    yield {
        "event": "answer",
        "data": _finish(ctx, p, composed, route, cost, _ms(t0, time.perf_counter())).model_dump(),
    }


def _ledger_model(ctx: AppContext, run_id: str) -> str | None:
    try:
        from twinengine.capability.router import service as router

        rows = router.list_ledger(ctx, run_id=run_id, limit=5)
    except (ImportError, AppError):
        return None
    return next((r.model for r in rows if r.status == "ok"), None)
