"""Workflow runs: list, show (with step timings, cost, errors), resume, cancel, start by name.

Reads go through a DBOS client on the system database, so the API server and CLI see every
worker's runs without launching DBOS themselves. The client is kept on the context
(``ctx.extras["workflows"]``) and closed with it.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from twinengine.capability.workflows import runtime
from twinengine.capability.workflows.schemas import RunPage, RunPublic, StepPublic
from twinengine.context import AppContext
from twinengine.errors import Conflict, InvalidInput, NotFound

EXTRAS_KEY = "workflows"
STATUSES = (
    "PENDING",
    "ENQUEUED",
    "DELAYED",
    "SUCCESS",
    "ERROR",
    "CANCELLED",
    "MAX_RECOVERY_ATTEMPTS_EXCEEDED",
)
_FINISHED = ("SUCCESS", "ERROR", "CANCELLED", "MAX_RECOVERY_ATTEMPTS_EXCEEDED")


def client_of(ctx: AppContext) -> runtime.WorkflowClient:
    """The context's workflow client (created on first use)."""
    client = ctx.extras.get(EXTRAS_KEY)
    if client is None:
        client = ctx.extras.setdefault(EXTRAS_KEY, runtime.WorkflowClient(ctx.settings))
    return client


def _when(ms: int | None) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC) if ms else None


def _plain(value: Any) -> Any:
    """JSON-safe copy of a workflow input/output (whatever DBOS deserialised)."""
    try:
        return json.loads(json.dumps(value, default=str))
    except (TypeError, ValueError):
        return str(value)


def _cost(output: Any) -> float | None:
    if isinstance(output, dict):
        cost = output.get("cost")
        if isinstance(cost, dict) and isinstance(cost.get("usd"), (int, float)):
            return float(cost["usd"])
    return None


def _run(status: Any, *, detail: bool = False) -> RunPublic:
    created, updated = _when(status.created_at), _when(status.updated_at)
    finished = status.status in _FINISHED
    output = _plain(status.output) if status.output is not None else None
    run = RunPublic(
        id=status.workflow_id,
        name=status.name,
        status=status.status,
        queue=status.queue_name,
        executor=status.executor_id,
        created_at=created,
        updated_at=updated,
        seconds=round((status.updated_at - status.created_at) / 1000, 3)
        if finished and status.created_at and status.updated_at
        else None,
        cost_usd=_cost(output),
        error=str(status.error) if status.error else None,
    )
    if detail:
        run.input = _plain(status.input) if status.input is not None else None
        run.output = output
    return run


def list_runs(
    ctx: AppContext, *, limit: int = 50, status: str | None = None, name: str | None = None
) -> RunPage:
    """The newest runs, optionally one status or workflow name."""
    if limit < 1 or limit > 1000:
        raise InvalidInput("limit must be between 1 and 1000")
    if status and status.upper() not in STATUSES:
        raise InvalidInput(f"status must be one of {', '.join(STATUSES)}")
    rows = client_of(ctx).raw.list_workflows(
        status=status.upper() if status else None,
        name=name or None,
        limit=limit,
        sort_desc=True,
        load_input=False,
        load_output=True,
    )
    return RunPage(data=[_run(r) for r in rows], count=len(rows))


def get_run(ctx: AppContext, *, run_id: str) -> RunPublic:
    """One run with its steps (timings, errors, outputs) and result, or ``NotFound``."""
    client = client_of(ctx).raw
    rows = client.list_workflows(workflow_ids=[run_id], load_input=True, load_output=True)
    if not rows:
        raise NotFound(f"no workflow run {run_id!r}")
    run = _run(rows[0], detail=True)
    for step in client.list_workflow_steps(run_id, load_output=True):
        started, ended = step.get("started_at_epoch_ms"), step.get("completed_at_epoch_ms")
        run.steps.append(
            StepPublic(
                n=step["function_id"],
                name=step["function_name"].rsplit(".", 1)[-1],
                started_at=_when(started),
                seconds=round((ended - started) / 1000, 3) if started and ended else None,
                error=str(step["error"]) if step.get("error") else None,
                output=_plain(step.get("output")),
            )
        )
    return run


def cancel_run(ctx: AppContext, *, run_id: str) -> RunPublic:
    """Cancel a queued or running run (it stops at its next step)."""
    run = get_run(ctx, run_id=run_id)
    if run.status in _FINISHED:
        raise Conflict(f"run {run_id} already finished ({run.status})")
    client_of(ctx).raw.cancel_workflow(run_id)
    return get_run(ctx, run_id=run_id)


def resume_run(ctx: AppContext, *, run_id: str) -> RunPublic:
    """Put a cancelled, failed or stuck run back on a queue; it resumes after its last step."""
    run = get_run(ctx, run_id=run_id)
    if run.status == "SUCCESS":
        raise Conflict(f"run {run_id} already succeeded")
    client_of(ctx).raw.resume_workflow(run_id)
    return get_run(ctx, run_id=run_id)


def wait_run(ctx: AppContext, *, run_id: str, timeout_s: float = 600.0) -> RunPublic:
    """Poll until the run finishes (or ``timeout_s`` passes) and return it."""
    import time

    deadline = time.monotonic() + timeout_s
    while True:
        run = get_run(ctx, run_id=run_id)
        if run.status in _FINISHED or time.monotonic() > deadline:
            return run
        time.sleep(0.25)
