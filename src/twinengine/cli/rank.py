"""``twinengine rank``: train, list, activate and show learned ranking models."""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated

import typer
from rich.table import Table

from twinengine.cli._common import console, context_of, handle_errors
from twinengine.discovery.ranking import service
from twinengine.discovery.ranking.models import BlendWeights, TrainParams
from twinengine.errors import InvalidInput

app = typer.Typer(help="Learned ranking models: train, list, activate, show.", no_args_is_help=True)


def _date(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidInput(f"not an ISO date or time: {value!r}") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


@app.command("train")
@handle_errors
def train(
    ctx: typer.Context,
    surface: Annotated[
        list[str] | None, typer.Option(help="train on these surfaces' impressions (repeatable)")
    ] = None,
    since: Annotated[str | None, typer.Option(help="use impressions from this ISO time")] = None,
    until: Annotated[str | None, typer.Option(help="use events before this ISO time")] = None,
    blend: Annotated[
        str, typer.Option(help="default blend: conversion | click | lambdamart")
    ] = "conversion",
    rounds: Annotated[
        int | None,
        typer.Option(min=1, max=5000, help="most boosting rounds of the CTR/CVR heads"),
    ] = None,
    holdout: Annotated[float, typer.Option(help="share of latest slates held out")] = 0.2,
    activate: Annotated[
        bool, typer.Option("--activate", help="serve it on its surfaces right away")
    ] = False,
) -> None:
    """Train LambdaMART plus CTR and CVR heads on the event log; save a new version."""
    info = service.train(
        context_of(ctx),
        surfaces=surface or None,
        since=_date(since),
        until=_date(until),
        blend=BlendWeights.preset(blend),
        # The defaults are the measured serving trade-off (see TrainParams); --rounds caps them.
        params=TrainParams()
        if rounds is None
        else TrainParams(rounds=rounds, rank_rounds=min(rounds, TrainParams.rank_rounds)),
        holdout=holdout,
        activate=activate,
    )
    m = info["metrics"]
    console.print(f"trained [bold]{info['version']}[/] on {m.get('rows', 0)} impressions")
    for key in ("ndcg10_popularity", "ndcg10_blend", "ndcg10_lambdamart", "ndcg10_multiobjective"):
        if key in m:
            console.print(f"  {key}: {m[key]:.4f}")
    prop = info.get("propensity") or {}
    if prop:
        curve = ", ".join(f"{v:.2f}" for v in prop["values"])
        console.print(f"  position bias ({prop['method']}): {curve}")
    if info["active_for"]:
        console.print(f"  active for: {', '.join(info['active_for'])}")


@app.command("list")
@handle_errors
def list_models(ctx: typer.Context) -> None:
    """List trained versions, newest first, with held-out NDCG@10 and where they serve."""
    models = service.list_models(context_of(ctx))
    table = Table(title=f"{len(models)} ranking models")
    for col in ("version", "trained", "surfaces", "active for", "ndcg@10", "rows"):
        table.add_column(col)
    for m in models:
        metrics = m["metrics"]
        ndcg = metrics.get("ndcg10_multiobjective")
        table.add_row(
            m["version"],
            str(m["trained_at"]),
            str(m["surfaces"]),
            ", ".join(m["active_for"]),
            f"{ndcg:.4f}" if isinstance(ndcg, float) else "",
            str(metrics.get("rows", "")),
        )
    console.print(table)


@app.command("activate")
@handle_errors
def activate(
    ctx: typer.Context,
    version: Annotated[str, typer.Argument(help="model version, e.g. r20261124190000-abc123")],
    surface: Annotated[list[str], typer.Option(help="surface to serve it on (repeatable)")],
) -> None:
    """Serve VERSION on the given surfaces (running servers reload it within seconds)."""
    active = service.activate(context_of(ctx), version=version, surfaces=surface)
    console.print_json(json.dumps(active))


@app.command("deactivate")
@handle_errors
def deactivate(
    ctx: typer.Context,
    surface: Annotated[list[str], typer.Option(help="surface to fall back (repeatable)")],
) -> None:
    """Fall back to generator scores on the given surfaces."""
    console.print_json(json.dumps(service.deactivate(context_of(ctx), surfaces=surface)))


@app.command("show")
@handle_errors
def show(ctx: typer.Context, version: str) -> None:
    """Print one version's schema, metrics and propensity curve as JSON."""
    console.print_json(json.dumps(service.get_model(context_of(ctx), version=version)))
