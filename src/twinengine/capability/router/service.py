"""Route LLM calls: per-task provider lists with retries, a cache, budgets and a cost ledger.

Configuration comes from ``Settings``: the default provider from ``llm_base_url`` /
``llm_api_key`` / ``llm_model`` / prices, more providers from ``llm_providers`` (JSON), and
per-task routes from ``llm_routes`` (JSON ``{"task": ["provider", ...], "*": [...]}``).
Callers catch ``BackendUnavailable`` (every route failed) and ``BudgetExceeded`` and fall back
to local logic.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import time
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, ValidationError

from twinengine.capability.router.providers import (
    ModelProvider,
    ProviderError,
    StreamState,
    make_provider,
)
from twinengine.capability.router.schemas import (
    CostRow,
    CostSummary,
    LedgerEntry,
    ProviderConfig,
    RouteResult,
)
from twinengine.capability.router.store import RouterStore, today
from twinengine.config import Settings
from twinengine.context import AppContext
from twinengine.errors import BackendUnavailable, BudgetExceeded, InvalidInput

log = logging.getLogger(__name__)

DEFAULT_PROVIDER = "default"
_MAX_RETRY_AFTER_S = 30.0


# --- configuration -------------------------------------------------------------------------
def providers_of(settings: Settings) -> dict[str, ProviderConfig]:
    """Every configured provider by name (the default one only when it has a base URL)."""
    out: dict[str, ProviderConfig] = {}
    if settings.llm_base_url:
        out[DEFAULT_PROVIDER] = ProviderConfig(
            name=DEFAULT_PROVIDER,
            base_url=settings.llm_base_url,
            api_key=settings.llm_api_key,
            model=settings.llm_model,
            price_in_per_1k=settings.llm_price_in_per_1k,
            price_out_per_1k=settings.llm_price_out_per_1k,
        )
    if settings.llm_providers.strip():
        try:
            extra = json.loads(settings.llm_providers)
            for name, conf in extra.items():
                out[name] = ProviderConfig.model_validate({**conf, "name": name})
        except (ValueError, AttributeError, ValidationError) as exc:
            raise InvalidInput(f"TWINENGINE_LLM_PROVIDERS is not valid: {exc}") from exc
    return out


def routes_of(settings: Settings) -> dict[str, list[str]]:
    """Task -> provider names; ``*`` covers tasks without their own route."""
    routes: dict[str, list[str]] = {}
    if settings.llm_routes.strip():
        try:
            raw = json.loads(settings.llm_routes)
            routes = {str(k): [str(p) for p in v] for k, v in raw.items()}
        except (ValueError, AttributeError, TypeError) as exc:
            raise InvalidInput(f"TWINENGINE_LLM_ROUTES is not valid JSON: {exc}") from exc
    if "*" not in routes and settings.llm_base_url:
        routes["*"] = [DEFAULT_PROVIDER]
    return routes


def route_for(settings: Settings, task: str) -> list[ProviderConfig]:
    """The providers tried for ``task``, in order (unknown names are skipped with a warning)."""
    providers = providers_of(settings)
    routes = routes_of(settings)
    out = []
    for name in routes.get(task, routes.get("*", [])):
        if name in providers:
            out.append(providers[name])
        elif name.startswith("local:"):
            out.append(ProviderConfig(name=name, model=name))
        else:
            log.warning("route %s names unknown provider %r", task, name)
    return out


def is_configured(ctx: AppContext, task: str) -> bool:
    """Whether ``task`` has at least one provider to call."""
    try:
        return bool(route_for(ctx.settings, task))
    except InvalidInput:
        return False


def _provider(ctx: AppContext, config: ProviderConfig) -> ModelProvider:
    # One client per provider and context: keeps HTTP connections alive between calls.
    pool: dict[str, ModelProvider] = ctx.extras.setdefault("router", _ProviderPool())
    key = config.model_dump_json()
    if key not in pool:
        pool[key] = make_provider(config)
    return pool[key]


class _ProviderPool(dict):  # type: ignore[type-arg]
    """Providers cached on the context; ``close`` releases their connections."""

    def close(self) -> None:
        for provider in self.values():
            provider.close()
        self.clear()


# --- keys, budgets -------------------------------------------------------------------------
def _digest(*parts: Any) -> str:
    return hashlib.sha256(
        json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str).encode()
    ).hexdigest()


def _schema_of(schema: type[BaseModel] | None) -> dict[str, Any] | None:
    return schema.model_json_schema() if schema is not None else None


def idempotency_key(
    *, run_id: str, task: str, step: str | None, messages: list[dict[str, Any]], schema: Any
) -> str:
    """sha256 of run, task, step and input: the same call in a resumed run has the same key."""
    return _digest("idem", run_id, task, step or "", messages, schema)


def check_budget(ctx: AppContext, *, run_id: str | None, estimate_usd: float = 0.0) -> None:
    """Raise ``BudgetExceeded`` when this run or today has no money left for the call."""
    s = ctx.settings
    store = RouterStore(ctx.db)
    day_spent = store.spent(day=today())
    if day_spent + estimate_usd > s.llm_budget_day_usd:
        raise BudgetExceeded(
            f"daily LLM budget spent: ${day_spent:.4f} of ${s.llm_budget_day_usd:.4f}"
        )
    if run_id is not None:
        run_spent = store.spent(run_id=run_id)
        if run_spent + estimate_usd > s.llm_budget_run_usd:
            raise BudgetExceeded(
                f"run {run_id} LLM budget spent: ${run_spent:.4f} of ${s.llm_budget_run_usd:.4f}"
            )


def _estimate(config: ProviderConfig, messages: list[dict[str, Any]]) -> float:
    # Input tokens only: the reply's length is unknown before the call.
    return config.cost(len(json.dumps(messages, ensure_ascii=False)) // 4, 0)


# --- structured output ---------------------------------------------------------------------
def parse_structured(text: str, schema: type[BaseModel]) -> BaseModel:
    """Parse a reply as JSON (tolerating a Markdown code fence) and validate it."""
    body = text.strip()
    if body.startswith("```"):
        body = body.split("\n", 1)[1] if "\n" in body else ""
        body = body.rsplit("```", 1)[0]
    return schema.model_validate_json(body.strip())


def _with_schema(messages: list[dict[str, Any]], schema: type[BaseModel]) -> list[dict[str, Any]]:
    note = (
        "Reply with one JSON object only, no prose, matching this JSON schema:\n"
        + json.dumps(schema.model_json_schema(), ensure_ascii=False)
    )
    return [{"role": "system", "content": note}, *messages]


def _repair(messages: list[dict[str, Any]], bad: str, error: str) -> list[dict[str, Any]]:
    return [
        *messages,
        {"role": "assistant", "content": bad},
        {
            "role": "user",
            "content": f"That reply was not valid ({error[:500]}). "
            "Send the corrected JSON object only.",
        },
    ]


# --- calls ---------------------------------------------------------------------------------
def _call_with_retries(
    ctx: AppContext,
    provider: ModelProvider,
    messages: list[dict[str, Any]],
    *,
    timeout_s: float,
    json_mode: bool,
) -> tuple[Any, int]:
    """One provider call, retried on 429/5xx/timeouts with exponential backoff and jitter."""
    s = ctx.settings
    attempt = 0
    while True:
        attempt += 1
        try:
            return provider.chat(messages, timeout_s=timeout_s, json_mode=json_mode), attempt
        except ProviderError as exc:
            if not exc.retryable or attempt > s.llm_max_retries:
                exc.attempts = attempt  # type: ignore[attr-defined]
                raise
            delay = s.llm_backoff_s * (2 ** (attempt - 1)) * (0.8 + 0.4 * random.random())
            if exc.retry_after is not None:
                delay = max(delay, min(exc.retry_after, _MAX_RETRY_AFTER_S))
            log.info("%s: %s; retry %d in %.2fs", provider.config.name, exc, attempt, delay)
            time.sleep(delay)


def complete(
    ctx: AppContext,
    *,
    task: str,
    messages: list[dict[str, Any]],
    schema: type[BaseModel] | None = None,
    run_id: str | None = None,
    timeout_s: float | None = None,
    step: str | None = None,
) -> RouteResult:
    """Answer ``messages`` with the first route of ``task`` that works.

    ``schema`` asks for JSON validated against a pydantic model (one repair retry, then the
    next provider). With ``run_id``, a call this run already completed (same ``step`` and
    input) is answered from the ledger and cache instead of calling again.
    Raises ``BudgetExceeded`` or ``BackendUnavailable``.
    """
    routes = route_for(ctx.settings, task)
    if not routes:
        raise BackendUnavailable(f"no LLM route configured for task {task!r}")
    store = RouterStore(ctx.db)
    schema_json = _schema_of(schema)
    idem = (
        idempotency_key(run_id=run_id, task=task, step=step, messages=messages, schema=schema_json)
        if run_id
        else None
    )
    if idem is not None:
        done = store.completed(idem)
        hit = store.cached(done["cache_key"]) if done and done.get("cache_key") else None
        if hit is not None:
            return _from_cache(store, hit, task=task, run_id=run_id, step=step, idem=idem,
                               schema=schema, status="replayed")
    timeout = timeout_s or ctx.settings.llm_timeout_s
    failures: list[str] = []
    for config in routes:
        cache_key = _digest("cache", config.name, config.model, messages, schema_json)
        if ctx.settings.llm_cache:
            hit = store.cached(cache_key)
            if hit is not None:
                try:
                    return _from_cache(store, hit, task=task, run_id=run_id, step=step,
                                       idem=idem, schema=schema, status="ok", cache_key=cache_key)
                except (ValidationError, ValueError):
                    pass  # a stale entry that no longer fits the schema: call again
        check_budget(ctx, run_id=run_id, estimate_usd=_estimate(config, messages))
        try:
            return _call_provider(
                ctx, store, config, messages, schema=schema, task=task, run_id=run_id, step=step,
                idem=idem, cache_key=cache_key, timeout_s=timeout,
            )
        except ProviderError as exc:
            failures.append(f"{config.name}: {exc}")
    raise BackendUnavailable(f"every route for task {task!r} failed: " + "; ".join(failures))


def _call_provider(
    ctx: AppContext,
    store: RouterStore,
    config: ProviderConfig,
    messages: list[dict[str, Any]],
    *,
    schema: type[BaseModel] | None,
    task: str,
    run_id: str | None,
    step: str | None,
    idem: str | None,
    cache_key: str,
    timeout_s: float,
) -> RouteResult:
    provider = _provider(ctx, config)
    sent = _with_schema(messages, schema) if schema is not None else list(messages)
    common = {"task": task, "run_id": run_id, "step": step, "idem_key": idem,
              "provider": config.name, "model": config.model}
    tokens_in = tokens_out = attempts = 0
    started = time.perf_counter()
    for round_ in range(2 if schema is not None else 1):  # the second round is the repair
        try:
            reply, tries = _call_with_retries(
                ctx, provider, sent, timeout_s=timeout_s, json_mode=schema is not None
            )
        except ProviderError as exc:
            attempts += getattr(exc, "attempts", 1)
            store.record(**common, tokens_in=tokens_in, tokens_out=tokens_out,
                         cost_usd=config.cost(tokens_in, tokens_out), status="error",
                         attempts=attempts, error=str(exc)[:1000],
                         latency_ms=(time.perf_counter() - started) * 1000)
            raise
        attempts += tries
        tokens_in += reply.tokens_in
        tokens_out += reply.tokens_out
        parsed = None
        if schema is not None:
            try:
                parsed = parse_structured(reply.text, schema)
            except (ValidationError, ValueError) as exc:
                if round_ == 0:
                    sent = _repair(sent, reply.text, str(exc))
                    continue
                store.record(**common, tokens_in=tokens_in, tokens_out=tokens_out,
                             cost_usd=config.cost(tokens_in, tokens_out), status="invalid",
                             attempts=attempts, error=f"schema: {str(exc)[:900]}",
                             latency_ms=(time.perf_counter() - started) * 1000)
                raise ProviderError(
                    f"reply did not match {schema.__name__} after one repair", retryable=False
                ) from exc
        latency = (time.perf_counter() - started) * 1000
        cost = config.cost(tokens_in, tokens_out)
        cache_row = {"key": cache_key, "provider": config.name, "model": config.model,
                     "response": reply.text, "tokens_in": tokens_in, "tokens_out": tokens_out}
        store.record_with_cache(
            cache_row, **common, cache_key=cache_key, tokens_in=tokens_in,
            tokens_out=tokens_out, cost_usd=cost, latency_ms=latency, cached=False,
            status="ok", attempts=attempts, error=None,
        )
        return RouteResult(text=reply.text, parsed=parsed, model=config.model,
                           provider=config.name, cost_usd=cost, tokens_in=tokens_in,
                           tokens_out=tokens_out, latency_ms=latency, cached=False)
    raise AssertionError("unreachable")  # pragma: no cover


def _from_cache(
    store: RouterStore,
    hit: dict[str, Any],
    *,
    task: str,
    run_id: str | None,
    step: str | None,
    idem: str | None,
    schema: type[BaseModel] | None,
    status: str,
    cache_key: str | None = None,
) -> RouteResult:
    started = time.perf_counter()
    parsed = parse_structured(hit["response"], schema) if schema is not None else None
    latency = (time.perf_counter() - started) * 1000
    store.record(task=task, run_id=run_id, step=step, idem_key=idem,
                 cache_key=cache_key or hit["key"], provider=hit["provider"], model=hit["model"],
                 tokens_in=hit["tokens_in"], tokens_out=hit["tokens_out"], cost_usd=0.0,
                 latency_ms=latency, cached=True, status=status)
    return RouteResult(text=hit["response"], parsed=parsed, model=hit["model"],
                       provider=hit["provider"], cost_usd=0.0, tokens_in=hit["tokens_in"],
                       tokens_out=hit["tokens_out"], latency_ms=latency, cached=True)


def stream(
    ctx: AppContext,
    *,
    task: str,
    messages: list[dict[str, Any]],
    run_id: str | None = None,
    timeout_s: float | None = None,
) -> Iterator[str]:
    """Yield the reply's text as the provider streams it (SSE); ledgered and budgeted.

    Failures before the first chunk move on to the next route; after it they raise
    ``BackendUnavailable`` (the caller has already shown part of the answer).
    """
    routes = route_for(ctx.settings, task)
    if not routes:
        raise BackendUnavailable(f"no LLM route configured for task {task!r}")
    store = RouterStore(ctx.db)
    timeout = timeout_s or ctx.settings.llm_timeout_s
    failures: list[str] = []
    for config in routes:
        check_budget(ctx, run_id=run_id, estimate_usd=_estimate(config, messages))
        provider = _provider(ctx, config)
        state = StreamState()
        started = time.perf_counter()
        common = {"task": task, "run_id": run_id, "provider": config.name, "model": config.model}
        try:
            yield from provider.stream(messages, timeout_s=timeout, state=state)
        except ProviderError as exc:
            store.record(**common, status="error", error=str(exc)[:1000],
                         latency_ms=(time.perf_counter() - started) * 1000)
            if state.chunks:
                raise BackendUnavailable(f"{config.name} stream broke: {exc}") from exc
            failures.append(f"{config.name}: {exc}")
            continue
        cost = config.cost(state.tokens_in, state.tokens_out)
        store.record(**common, tokens_in=state.tokens_in, tokens_out=state.tokens_out,
                     cost_usd=cost, latency_ms=(time.perf_counter() - started) * 1000,
                     status="ok")
        return
    raise BackendUnavailable(f"every route for task {task!r} failed: " + "; ".join(failures))


# --- ledger reads --------------------------------------------------------------------------
def list_ledger(
    ctx: AppContext, *, limit: int = 100, run_id: str | None = None, task: str | None = None
) -> list[LedgerEntry]:
    """The newest ledger rows."""
    rows = RouterStore(ctx.db).rows(limit=limit, run_id=run_id, task=task)
    return [LedgerEntry.model_validate(r) for r in rows]


def repeated_calls(ctx: AppContext, *, run_id: str | None = None) -> list[tuple[str, int]]:
    """Completed provider calls made more than once for the same run, step and input.

    Empty after a crash and resume means no completed LLM call was repeated.
    """
    return RouterStore(ctx.db).repeated(run_id=run_id)


def spent(ctx: AppContext, *, run_id: str | None = None, day: str | None = None) -> float:
    """USD spent by a run, on a day (``today()`` for today), or in total."""
    return RouterStore(ctx.db).spent(run_id=run_id, day=day)


def cost_summary(ctx: AppContext, *, recent: int = 50) -> CostSummary:
    """Totals, spend by day/task/model, budgets and the latest calls (page and CLI)."""
    store = RouterStore(ctx.db)
    s = ctx.settings
    return CostSummary(
        total_usd=store.spent(),
        today_usd=store.spent(day=today()),
        budget_day_usd=s.llm_budget_day_usd,
        budget_run_usd=s.llm_budget_run_usd,
        by_day=[CostRow.model_validate(r) for r in store.grouped("day", limit=30)],
        by_task=[CostRow.model_validate(r) for r in store.grouped("task")],
        by_model=[CostRow.model_validate(r) for r in store.grouped("model")],
        recent=[LedgerEntry.model_validate(r) for r in store.rows(limit=recent)],
    )
