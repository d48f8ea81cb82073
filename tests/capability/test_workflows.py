"""The DBOS runtime: config from Settings, retries with backoff, queues with concurrency and
rate limits, cron schedules, run listings, resume/cancel."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from dbos import DBOS

from twinengine.capability.workflows import runtime, service
from twinengine.config import Settings
from twinengine.context import AppContext
from twinengine.errors import BackendUnavailable, Conflict, NotFound

CALLS: dict[str, int] = {"flaky": 0}
SPANS: list[tuple[str, float, float]] = []
FIRED: list[str] = []
_lock = threading.Lock()


@DBOS.step(retries_allowed=True, max_attempts=4, interval_seconds=0.1, backoff_rate=2.0)
def _flaky_step(n: int) -> int:
    CALLS["flaky"] += 1
    if CALLS["flaky"] < 3:
        raise BackendUnavailable("not yet")
    return n * 2


@DBOS.workflow(name="tests.flaky")
def flaky_flow(n: int) -> int:
    return _flaky_step(n)


@DBOS.step()
def _sleepy_step(tag: str, seconds: float) -> str:
    start = time.monotonic()
    time.sleep(seconds)
    with _lock:
        SPANS.append((tag, start, time.monotonic()))
    return tag


@DBOS.workflow(name="tests.sleepy")
def sleepy_flow(tag: str, seconds: float) -> str:
    return _sleepy_step(tag, seconds)


@DBOS.workflow(name="tests.ticker")
def ticker_flow(scheduled_at, context) -> None:  # type: ignore[no-untyped-def]
    FIRED.append(scheduled_at.isoformat())


runtime.declare_queue("tests-serial", worker_concurrency=1)
runtime.declare_queue("tests-limited", limiter=(2, 1.5))
runtime.register_flow("tests-sleepy", sleepy_flow, queue="tests-serial", help="test flow")


@pytest.fixture
def wf_ctx(ctx: AppContext) -> Iterator[AppContext]:
    """The test context with a fast-polling workflow runtime launched (destroyed after)."""
    ctx.settings = ctx.settings.model_copy(update={"workflow_poll_s": 0.2})
    with runtime.running(ctx):
        yield ctx


def test_config_is_derived_from_settings(tmp_path: Path) -> None:
    s = Settings(home=tmp_path / "h")
    conf = runtime.dbos_config(s)
    assert conf["system_database_url"] == f"sqlite:///{tmp_path / 'h' / 'workflows.sqlite'}"
    assert conf["executor_id"] == "local" and conf["application_version"]
    pg = Settings(home=tmp_path, database_url="postgresql+psycopg://u@127.0.0.1:5432/app")
    conf = runtime.dbos_config(pg)
    assert conf["system_database_url"] == "postgresql://u@127.0.0.1:5432/app"
    assert conf["dbos_system_schema"] == "dbos"
    own = Settings(home=tmp_path, workflow_database_url="sqlite:////tmp/x.sqlite")
    assert runtime.dbos_config(own)["system_database_url"] == "sqlite:////tmp/x.sqlite"
    q = runtime.default_queues(
        Settings(
            home=tmp_path, workflow_rate_limit=3, workflow_rate_period_s=10, workflow_concurrency=2
        )
    )
    assert q[0].limiter == (3, 10) and q[0].worker_concurrency == 2


def test_retries_with_backoff_then_success(wf_ctx: AppContext) -> None:
    CALLS["flaky"] = 0
    t0 = time.monotonic()
    assert DBOS.start_workflow(flaky_flow, 21).get_result() == 42
    assert CALLS["flaky"] == 3
    assert time.monotonic() - t0 >= 0.1 + 0.2  # waited 0.1 s, then 0.2 s (backoff 2x)
    runs = service.list_runs(wf_ctx, name="tests.flaky").data
    assert runs[0].status == "SUCCESS"


def test_queue_concurrency_and_rate_limit(wf_ctx: AppContext) -> None:
    SPANS.clear()
    serial = DBOS.retrieve_queue("tests-serial")
    assert serial is not None
    handles = [serial.enqueue(sleepy_flow, f"s{n}", 0.3) for n in range(3)]
    assert sorted(h.get_result() for h in handles) == ["s0", "s1", "s2"]
    spans = sorted((a, b) for _, a, b in SPANS)
    for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
        assert start >= end - 0.01, "worker_concurrency=1 ran two workflows at once"

    SPANS.clear()
    limited = DBOS.retrieve_queue("tests-limited")
    t0 = time.monotonic()
    handles = [limited.enqueue(sleepy_flow, f"r{n}", 0.0) for n in range(4)]
    for h in handles:
        h.get_result()
    starts = sorted(a - t0 for _, a, _ in SPANS)
    # at most 2 starts per 1.5 s window: the third starts a window later
    assert starts[2] - starts[0] >= 1.0  # ~0 without the limiter; slack for start latency


def test_cron_schedule_fires_and_daily_drop_is_scheduled(ctx: AppContext) -> None:
    FIRED.clear()
    ctx.settings = ctx.settings.model_copy(update={"workflow_poll_s": 0.2})
    with runtime.running(ctx, schedules=True):
        names = {s["schedule_name"]: s for s in DBOS.list_schedules()}
        assert names["daily-content-drop"]["schedule"] == "0 6 * * *"
        DBOS.apply_schedules(
            [
                {
                    "schedule_name": "tests-ticker",
                    "workflow_fn": ticker_flow,
                    "schedule": "* * * * * *",
                }
            ]
        )
        deadline = time.monotonic() + 8
        while len(FIRED) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        DBOS.delete_schedule("tests-ticker")
    assert len(FIRED) >= 2


def test_flow_registry_and_errors(wf_ctx: AppContext) -> None:
    assert "drop" in runtime.flows() and "tests-sleepy" in runtime.flows()
    with pytest.raises(NotFound):
        runtime.get_flow("nope")
    assert runtime.run_flow("tests-sleepy", tag="x", seconds=0.0, workflow_id="fixed-1") == "x"
    # the same id is the same run: not executed again
    SPANS.clear()
    assert runtime.run_flow("tests-sleepy", tag="x", seconds=0.0, workflow_id="fixed-1") == "x"
    assert SPANS == []
    with pytest.raises(NotFound):
        service.get_run(wf_ctx, run_id="missing")
    with pytest.raises(Conflict):
        service.resume_run(wf_ctx, run_id="fixed-1")
    with pytest.raises(Conflict):
        service.cancel_run(wf_ctx, run_id="fixed-1")
    run = service.get_run(wf_ctx, run_id="fixed-1")
    assert [s.name for s in run.steps] == ["_sleepy_step"] and run.steps[0].seconds is not None


def test_client_enqueue_cancel_resume(ctx: AppContext) -> None:
    """A client (no launch) enqueues; cancel stops it; resume lets a worker finish it."""
    ctx.settings = ctx.settings.model_copy(update={"workflow_poll_s": 0.2})
    client = service.client_of(ctx)
    run_id = client.enqueue("tests-sleepy", tag="c", seconds=0.0, workflow_id="queued-1")
    assert service.get_run(ctx, run_id=run_id).status == "ENQUEUED"
    assert service.cancel_run(ctx, run_id=run_id).status == "CANCELLED"
    assert service.resume_run(ctx, run_id=run_id).status == "ENQUEUED"
    with runtime.running(ctx):
        run = service.wait_run(ctx, run_id=run_id, timeout_s=20)
    assert run.status == "SUCCESS" and run.output == "c"


def test_runtime_launch_twice_and_destroy(ctx: AppContext, tmp_path: Path) -> None:
    with runtime.running(ctx):
        runtime.launch(ctx)  # same context: a no-op
        other = AppContext(settings=Settings(home=tmp_path / "other"), db=ctx.db)
        with pytest.raises(BackendUnavailable):
            runtime.launch(other)
    assert not runtime.is_launched()
    with pytest.raises(BackendUnavailable):
        runtime.context()
    runtime.destroy()  # twice is fine
