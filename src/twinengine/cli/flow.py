"""``twinengine flow run|list|show|resume|cancel``, ``twinengine drop``, ``twinengine worker``."""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from twinengine.cli._common import console, context_of, err_console, handle_errors
from twinengine.errors import InvalidInput

app = typer.Typer(
    help="Durable workflow runs (DBOS): run, list, show, resume, cancel.", no_args_is_help=True
)


def _print_json(data: Any) -> None:
    console.print_json(json.dumps(data, ensure_ascii=False, default=str))


def _follow(handle: Any, label: str) -> Any:
    """Wait for a running workflow, printing each step as it completes."""
    from dbos import DBOS

    seen = 0
    started = time.perf_counter()
    with err_console.status(f"{label}: starting") as status:
        while True:
            done = handle.get_status().status in ("SUCCESS", "ERROR", "CANCELLED")
            steps = DBOS.list_workflow_steps(handle.get_workflow_id(), load_output=False)
            for step in steps[seen:]:
                if step.get("completed_at_epoch_ms") is None:
                    break
                secs = (step["completed_at_epoch_ms"] - step["started_at_epoch_ms"]) / 1000
                mark = "[red]failed[/]" if step.get("error") else "done"
                name = step["function_name"].rsplit(".", 1)[-1]
                err_console.print(f"  step {step['function_id']:>2} {name:<22} {mark} {secs:7.2f}s")
                seen += 1
            status.update(f"{label}: {seen} step(s) done, {time.perf_counter() - started:.1f}s")
            if done:
                break
            time.sleep(0.2)
    return handle.get_result()


def _summary(report: dict[str, Any]) -> None:
    counts = report.get("counts", {})
    console.print(
        f"[bold]{report.get('run_id')}[/]: {counts.get('rows', 0)} rows, "
        f"{counts.get('rejected', 0)} rejected, {counts.get('duplicates', 0)} duplicates, "
        f"{counts.get('inserted', 0)} inserted, {counts.get('updated', 0)} updated, "
        f"{counts.get('published', 0)} published; LLM ${report.get('cost', {}).get('usd', 0):.4f}"
    )
    if report.get("manifest_url"):
        console.print(f"manifest: {report['manifest_url']}")


def _parse_args(pairs: list[str] | None, raw: str | None) -> dict[str, Any]:
    args: dict[str, Any] = {}
    if raw:
        try:
            args.update(json.loads(raw))
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"--json is not valid JSON: {exc.msg}") from exc
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidInput(f"bad --arg {pair!r}: use KEY=VALUE")
        try:
            args[key] = json.loads(value)
        except json.JSONDecodeError:
            args[key] = value
    return args


@app.command("run")
@handle_errors
def run(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="flow name (see `flow list --flows`)")],
    arg: Annotated[list[str] | None, typer.Option("--arg", help="KEY=VALUE (repeatable)")] = None,
    json_args: Annotated[
        str | None, typer.Option("--json", help="arguments as a JSON object")
    ] = None,
    run_id: Annotated[
        str | None, typer.Option("--id", help="workflow id (idempotency key)")
    ] = None,
    queue: Annotated[
        bool, typer.Option("--queue", help="enqueue for a worker, don't wait")
    ] = False,
) -> None:
    """Run a registered flow here (waiting, with progress) or put it on its queue."""
    from twinengine.capability.workflows import runtime
    from twinengine.capability.workflows.service import client_of

    context = context_of(ctx)
    args = _parse_args(arg, json_args)
    if queue:
        console.print(client_of(context).enqueue(name, workflow_id=run_id, **args))
        return
    with runtime.running(context):
        result = _follow(runtime.start_flow(name, workflow_id=run_id, **args), name)
    _print_json(result)


@app.command("list")
@handle_errors
def list_(
    ctx: typer.Context,
    status: Annotated[
        str | None, typer.Option(help="PENDING, ENQUEUED, SUCCESS, ERROR, ...")
    ] = None,
    name: Annotated[str | None, typer.Option(help="workflow name")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
    flows: Annotated[bool, typer.Option("--flows", help="list the flows you can run")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """List runs, newest first (or the registered flows with --flows)."""
    from twinengine.capability.workflows import runtime, service

    if flows:
        for flow in runtime.flows().values():
            console.print(f"[bold]{flow.name}[/] (queue {flow.queue}): {flow.help}")
        return
    page = service.list_runs(context_of(ctx), limit=limit, status=status, name=name)
    if as_json:
        _print_json(page.model_dump(mode="json"))
        return
    table = Table(title=f"{page.count} runs")
    for col in ("id", "name", "status", "created", "seconds", "cost $", "error"):
        table.add_column(col, overflow="fold")
    for r in page.data:
        table.add_row(
            r.id,
            r.name,
            r.status,
            f"{r.created_at:%Y-%m-%d %H:%M:%S}" if r.created_at else "",
            f"{r.seconds:.1f}" if r.seconds is not None else "",
            f"{r.cost_usd:.4f}" if r.cost_usd is not None else "",
            (r.error or "")[:80],
        )
    console.print(table)


@app.command("show")
@handle_errors
def show(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="workflow id")],
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Show a run: status, steps with timings and errors, cost, result."""
    from twinengine.capability.workflows import service

    run = service.get_run(context_of(ctx), run_id=run_id)
    if as_json:
        _print_json(run.model_dump(mode="json"))
        return
    console.print(
        f"[bold]{run.id}[/] {run.name}: {run.status}"
        + (f", {run.seconds:.1f}s" if run.seconds is not None else "")
        + (f", LLM ${run.cost_usd:.4f}" if run.cost_usd is not None else "")
    )
    table = Table()
    for col in ("#", "step", "seconds", "error"):
        table.add_column(col, overflow="fold")
    for s in run.steps:
        table.add_row(
            str(s.n), s.name, f"{s.seconds:.3f}" if s.seconds is not None else "", s.error or ""
        )
    console.print(table)
    if run.error:
        err_console.print(f"[red]error:[/] {run.error}")


@app.command("resume")
@handle_errors
def resume(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="workflow id")],
    wait: Annotated[
        bool,
        typer.Option(
            "--wait/--no-wait", help="run it here and wait (default), or leave it to a worker"
        ),
    ] = True,
) -> None:
    """Resume a crashed, failed or cancelled run from its last completed step."""
    from twinengine.capability.workflows import runtime, service

    context = context_of(ctx)
    run = service.get_run(context, run_id=run_id)
    if run.status != "SUCCESS":
        service.resume_run(context, run_id=run_id)
    if not wait:
        console.print(f"{run_id}: queued")
        return
    from dbos import DBOS

    with runtime.running(context):
        result = _follow(DBOS.retrieve_workflow(run_id), run_id)
    if isinstance(result, dict) and "counts" in result:
        _summary(result)
    else:
        _print_json(result)


@app.command("cancel")
@handle_errors
def cancel(ctx: typer.Context, run_id: Annotated[str, typer.Argument(help="workflow id")]) -> None:
    """Cancel a queued or running run."""
    from twinengine.capability.workflows import service

    run = service.cancel_run(context_of(ctx), run_id=run_id)
    console.print(f"{run.id}: {run.status}")


@handle_errors
def drop(
    ctx: typer.Context,
    path: Annotated[
        Path | None, typer.Argument(help="JSONL/CSV file, folder, or awesome-list README.md")
    ] = None,
    replay: Annotated[
        str | None,
        typer.Option(help="drop the bundled catalog's rows published on this date (YYYY-MM-DD)"),
    ] = None,
    run_id: Annotated[
        str | None, typer.Option("--id", help="run id (default: from the content)")
    ] = None,
    collection: Annotated[str | None, typer.Option(help="collection for rows without one")] = None,
    licence: Annotated[str | None, typer.Option(help="licence for rows without one")] = None,
    llm: Annotated[
        bool, typer.Option("--llm/--no-llm", help="let the tagger escalate to an LLM")
    ] = True,
    queue: Annotated[
        bool, typer.Option("--queue", help="enqueue for a worker, don't wait")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the whole report as JSON")] = False,
) -> None:
    """Run a content drop: validate, dedupe, tag, embed, index, publish, report."""
    from twinengine.capability.dropper import service as drops
    from twinengine.capability.workflows import runtime

    context = context_of(ctx)
    if replay:
        import datetime as dt

        try:
            day = dt.date.fromisoformat(replay)
        except ValueError as exc:
            raise InvalidInput(f"--replay wants a date YYYY-MM-DD, not {replay!r}") from exc
        path = drops.replay_day(context, day=day)
    if path is None:
        raise InvalidInput("give a FILE_OR_DIR to drop, or --replay DATE")
    opts = drops.options(collection=collection, licence=licence, allow_llm=None if llm else False)
    if queue:
        console.print(drops.enqueue_drop(context, path=path, run_id=run_id, **opts))
        return
    source = Path(path).expanduser().resolve()
    if not source.exists():
        raise InvalidInput(f"{source}: no such file or folder")
    run_id = run_id or drops.drop_id(source)
    err_console.print(f"drop {run_id}")
    with runtime.running(context):
        handle = runtime.start_flow(
            "drop", workflow_id=run_id, source=str(source), params=drops.options(**opts)
        )
        report = _follow(handle, "drop")
    if as_json:
        _print_json(report)
    else:
        _summary(report)


@handle_errors
def worker(
    ctx: typer.Context,
    executor_id: Annotated[
        str | None,
        typer.Option(
            "--id", help="executor id (default TWINENGINE_WORKFLOW_EXECUTOR_ID or 'local')"
        ),
    ] = None,
    schedule: Annotated[
        bool,
        typer.Option("--schedule/--no-schedule", help="also fire the daily drop's cron schedule"),
    ] = True,
) -> None:
    """Run queued workflows (and the daily drop schedule) until stopped; resumes crashed runs."""
    from twinengine._compat import bound_native_heap
    from twinengine.capability.workflows import runtime

    bound_native_heap()  # long-running: keep freed model and drop buffers out of RSS
    context = context_of(ctx)
    if executor_id:
        context.settings = context.settings.model_copy(update={"workflow_executor_id": executor_id})
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    runtime.launch(context, schedules=schedule)
    err_console.print(
        f"worker {context.settings.workflow_executor_id}: running queued workflows"
        + (f", daily drop at '{context.settings.drop_schedule}' UTC" if schedule else "")
        + "; Ctrl-C stops"
    )
    try:
        while not stop.wait(1.0):
            pass
    finally:
        runtime.destroy(wait_s=5)
        err_console.print("worker stopped")
