"""``twinengine router ...`` and ``twinengine costs``: the LLM cost ledger."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from twinengine.capability.router import service
from twinengine.cli._common import console, context_of, handle_errors

app = typer.Typer(help="Model router: routes, cost ledger.", no_args_is_help=True)


@handle_errors
def costs(ctx: typer.Context) -> None:
    """LLM spend by day, task and model, against the budgets."""
    s = service.cost_summary(context_of(ctx), recent=0)
    console.print(
        f"today ${s.today_usd:.4f} of ${s.budget_day_usd:.2f} daily budget; "
        f"${s.budget_run_usd:.2f} per run; ${s.total_usd:.4f} in total"
    )
    for title, rows in (("by day", s.by_day), ("by task", s.by_task), ("by model", s.by_model)):
        table = Table(title=title)
        for col in ("", "calls", "cached", "errors", "tokens in", "tokens out", "cost $"):
            table.add_column(col, justify="left" if not col else "right")
        for r in rows:
            table.add_row(r.key, str(r.calls), str(r.cached), str(r.errors), str(r.tokens_in),
                          str(r.tokens_out), f"{r.cost_usd:.4f}")
        console.print(table)


app.command("costs")(costs)


@app.command("ledger")
@handle_errors
def ledger(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(min=1, max=10000)] = 30,
    run_id: Annotated[str | None, typer.Option("--run", help="only this run")] = None,
    task: Annotated[str | None, typer.Option(help="only this task")] = None,
) -> None:
    """The latest routed calls: tokens, cost, latency, cache hits and status."""
    context = context_of(ctx)
    rows = service.list_ledger(context, limit=limit, run_id=run_id, task=task)
    table = Table(title=f"{len(rows)} calls, newest first")
    for col in ("time", "task", "run", "model", "status", "cached", "in", "out", "cost $", "ms"):
        table.add_column(col)
    for r in rows:
        table.add_row(r.ts.strftime("%m-%d %H:%M:%S"), r.task, r.run_id or "", f"{r.provider}/"
                      f"{r.model}", r.status, "yes" if r.cached else "", str(r.tokens_in),
                      str(r.tokens_out), f"{r.cost_usd:.5f}", f"{r.latency_ms:.0f}")
    console.print(table)
    repeated = service.repeated_calls(context, run_id=run_id)
    console.print(f"completed calls repeated: {len(repeated)}")


@app.command("routes")
@handle_errors
def routes(ctx: typer.Context) -> None:
    """The providers each task tries, in order."""
    settings = context_of(ctx).settings
    table = Table(title="routes")
    for col in ("task", "providers (model, $/1k in, $/1k out)"):
        table.add_column(col)
    for task in service.routes_of(settings):
        table.add_row(task, "; ".join(
            f"{p.name} ({p.model}, {p.price_in_per_1k:g}, {p.price_out_per_1k:g})"
            for p in service.route_for(settings, task)
        ))
    console.print(table)
