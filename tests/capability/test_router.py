"""The model router against a real local OpenAI-compatible server."""

from __future__ import annotations

import json
import time

import pytest
from pydantic import BaseModel

from tests.llm_server import Fail, LLMServer, Malformed, Reply, Slow
from twinengine.capability.router import service
from twinengine.capability.router.providers import register_local_model
from twinengine.errors import BackendUnavailable, BudgetExceeded

MSG = [{"role": "user", "content": "Say hi"}]


class Tags(BaseModel):
    topics: list[str]


def test_complete_records_tokens_cost_and_ledger(llm_ctx, llm_server: LLMServer) -> None:
    llm_server.queue(Reply("hello there", prompt_tokens=1000, completion_tokens=2000))
    res = service.complete(llm_ctx, task="chat", messages=MSG, run_id="r1")
    assert res.text == "hello there"
    assert (res.tokens_in, res.tokens_out) == (1000, 2000)
    assert res.cost_usd == pytest.approx(1000 / 1000 * 0.5 + 2000 / 1000 * 1.5)
    assert not res.cached and res.provider == "default" and res.model == "test-model"
    sent = llm_server.requests[0]
    assert sent["model"] == "test-model" and sent["messages"] == MSG
    assert sent["_headers"]["authorization"] == "Bearer test-key"
    [row] = service.list_ledger(llm_ctx)
    assert (row.status, row.task, row.run_id, row.tokens_in, row.cached) == (
        "ok", "chat", "r1", 1000, False)
    assert service.spent(llm_ctx, run_id="r1") == pytest.approx(res.cost_usd)


def test_cache_answers_identical_input_without_calling(llm_ctx, llm_server) -> None:
    first = service.complete(llm_ctx, task="chat", messages=MSG)
    second = service.complete(llm_ctx, task="chat", messages=MSG)
    assert llm_server.calls == 1
    assert second.cached and second.text == first.text and second.cost_usd == 0
    other = service.complete(llm_ctx, task="chat", messages=[{"role": "user", "content": "x"}])
    assert not other.cached and llm_server.calls == 2


def test_idempotent_replay_after_resume(llm_ctx, llm_server) -> None:
    """A resumed run asking the same step again gets the ledgered answer, no second call."""
    llm_ctx.settings.llm_cache = False  # prove it is the idempotency key, not the cache
    a = service.complete(llm_ctx, task="tagging", messages=MSG, run_id="run-7", step="tag:x")
    b = service.complete(llm_ctx, task="tagging", messages=MSG, run_id="run-7", step="tag:x")
    assert llm_server.calls == 1 and b.cached and b.text == a.text
    statuses = sorted(r.status for r in service.list_ledger(llm_ctx, run_id="run-7"))
    assert statuses == ["ok", "replayed"]
    assert service.repeated_calls(llm_ctx, run_id="run-7") == []
    # A different run is a different key: it calls again.
    service.complete(llm_ctx, task="tagging", messages=MSG, run_id="run-8", step="tag:x")
    assert llm_server.calls == 2


def test_retries_500_then_succeeds(llm_ctx, llm_server) -> None:
    llm_server.queue(Fail(500), Fail(502), "recovered")
    res = service.complete(llm_ctx, task="chat", messages=MSG)
    assert res.text == "recovered" and llm_server.calls == 3
    [row] = service.list_ledger(llm_ctx)
    assert row.status == "ok" and row.attempts == 3


def test_429_honours_retry_after(llm_ctx, llm_server) -> None:
    llm_server.queue(Fail(429, retry_after=0.3), "after wait")
    started = time.perf_counter()
    res = service.complete(llm_ctx, task="chat", messages=MSG)
    assert res.text == "after wait"
    assert time.perf_counter() - started >= 0.3


def test_timeout_is_retried_then_reported(llm_ctx, llm_server) -> None:
    llm_server.queue(Slow(1.0), Slow(1.0), Slow(1.0))
    with pytest.raises(BackendUnavailable, match="timeout"):
        service.complete(llm_ctx, task="chat", messages=MSG, timeout_s=0.2)
    assert llm_server.calls == 3  # first try + llm_max_retries
    [row] = service.list_ledger(llm_ctx)
    assert row.status == "error" and row.attempts == 3 and "timeout" in (row.error or "")


def test_malformed_body_retried(llm_ctx, llm_server) -> None:
    llm_server.queue(Malformed(), "fine")
    assert service.complete(llm_ctx, task="chat", messages=MSG).text == "fine"


def test_client_error_not_retried(llm_ctx, llm_server) -> None:
    llm_server.queue(Fail(401))
    with pytest.raises(BackendUnavailable, match="401"):
        service.complete(llm_ctx, task="chat", messages=MSG)
    assert llm_server.calls == 1


def test_structured_output_with_one_repair(llm_ctx, llm_server) -> None:
    llm_server.queue("not json at all", '```json\n{"topics": ["woman", "selfie"]}\n```')
    res = service.complete(llm_ctx, task="tagging", messages=MSG, schema=Tags)
    assert res.parsed == Tags(topics=["woman", "selfie"])
    repair = llm_server.requests[1]["messages"]
    assert repair[-2] == {"role": "assistant", "content": "not json at all"}
    assert "not valid" in repair[-1]["content"]
    assert llm_server.requests[0]["response_format"] == {"type": "json_object"}
    assert "json schema" in llm_server.requests[0]["messages"][0]["content"].lower()
    [row] = service.list_ledger(llm_ctx)
    assert row.status == "ok" and row.tokens_in > 0  # both rounds are paid for


def test_structured_output_gives_up_after_one_repair(llm_ctx, llm_server) -> None:
    llm_server.queue('{"topics": "woman"}', '{"wrong": 1}')
    with pytest.raises(BackendUnavailable, match="Tags"):
        service.complete(llm_ctx, task="tagging", messages=MSG, schema=Tags)
    assert llm_server.calls == 2
    [row] = service.list_ledger(llm_ctx)
    assert row.status == "invalid" and row.cost_usd > 0


def test_fallback_to_second_provider(llm_ctx, llm_server) -> None:
    with LLMServer() as backup:
        backup.reply(lambda req: f"backup answering {req['model']}")
        llm_ctx.settings.llm_providers = json.dumps(
            {"backup": {"base_url": backup.url, "model": "small", "price_in_per_1k": 0.1}}
        )
        llm_ctx.settings.llm_routes = json.dumps({"chat": ["default", "backup"]})
        llm_server.reply("unused")
        llm_server.queue(Fail(500), Fail(500), Fail(500))
        res = service.complete(llm_ctx, task="chat", messages=MSG)
        assert res.text == "backup answering small" and res.provider == "backup"
        assert [r.status for r in service.list_ledger(llm_ctx)] == ["ok", "error"]


def test_local_provider_route(llm_ctx) -> None:
    register_local_model("upper", lambda messages, json_mode: messages[-1]["content"].upper())
    llm_ctx.settings.llm_routes = json.dumps({"shout": ["local:upper"]})
    res = service.complete(llm_ctx, task="shout", messages=MSG)
    assert res.text == "SAY HI" and res.cost_usd == 0 and res.provider == "local:upper"


def test_budget_per_run_stops_spending(llm_ctx, llm_server) -> None:
    llm_ctx.settings.llm_budget_run_usd = 0.01
    llm_server.reply(lambda req: "x" * 40)
    service.complete(llm_ctx, task="chat", messages=MSG, run_id="b1")
    with pytest.raises(BudgetExceeded, match="run b1"):
        for n in range(20):
            service.complete(llm_ctx, task="chat", messages=[{"role": "user", "content": str(n)}],
                             run_id="b1")
    calls = llm_server.calls
    assert service.spent(llm_ctx, run_id="b1") <= 0.01 + 0.01  # at most one call past the line
    with pytest.raises(BudgetExceeded):
        service.complete(llm_ctx, task="chat", messages=[{"role": "user", "content": "more"}],
                         run_id="b1")
    assert llm_server.calls == calls  # refused before any HTTP request
    # Another run still has money; the day budget is separate.
    service.complete(llm_ctx, task="chat", messages=MSG, run_id="b2")


def test_budget_per_day(llm_ctx, llm_server) -> None:
    llm_ctx.settings.llm_budget_day_usd = 0.0
    with pytest.raises(BudgetExceeded, match="daily"):
        service.complete(llm_ctx, task="chat", messages=MSG)
    assert llm_server.calls == 0


def test_not_configured(ctx) -> None:
    assert not service.is_configured(ctx, "tagging")
    with pytest.raises(BackendUnavailable, match="no LLM route"):
        service.complete(ctx, task="tagging", messages=MSG)


def test_is_configured(llm_ctx) -> None:
    assert service.is_configured(llm_ctx, "anything")


def test_stream_yields_chunks_and_ledgers(llm_ctx, llm_server) -> None:
    llm_server.queue(Reply("a streamed answer of some length", prompt_tokens=10,
                           completion_tokens=7))
    chunks = list(service.stream(llm_ctx, task="assistant", messages=MSG, run_id="s1"))
    assert len(chunks) > 1 and "".join(chunks) == "a streamed answer of some length"
    assert llm_server.requests[0]["stream"] is True
    [row] = service.list_ledger(llm_ctx)
    assert (row.status, row.tokens_in, row.tokens_out) == ("ok", 10, 7)
    assert row.cost_usd == pytest.approx(10 / 1000 * 0.5 + 7 / 1000 * 1.5)


def test_stream_falls_back_before_first_chunk(llm_ctx, llm_server) -> None:
    llm_server.queue(Fail(500))
    llm_server.reply("second try")
    llm_ctx.settings.llm_routes = json.dumps({"assistant": ["default", "default"]})
    assert "".join(service.stream(llm_ctx, task="assistant", messages=MSG)) == "second try"


def test_stream_budget(llm_ctx, llm_server) -> None:
    llm_ctx.settings.llm_budget_day_usd = 0.0
    with pytest.raises(BudgetExceeded):
        list(service.stream(llm_ctx, task="assistant", messages=MSG))
    assert llm_server.calls == 0


def test_cost_summary(llm_ctx, llm_server) -> None:
    service.complete(llm_ctx, task="chat", messages=MSG)
    service.complete(llm_ctx, task="chat", messages=MSG)
    llm_server.queue(Fail(400))
    with pytest.raises(BackendUnavailable):
        service.complete(llm_ctx, task="tagging", messages=[{"role": "user", "content": "q"}])
    summary = service.cost_summary(llm_ctx)
    by_task = {r.key: r for r in summary.by_task}
    assert by_task["chat"].calls == 2 and by_task["chat"].cached == 1
    assert by_task["tagging"].errors == 1
    assert summary.total_usd == pytest.approx(sum(r.cost_usd for r in summary.recent))
    assert len(summary.by_day) == 1
