"""``twinengine exp``: define, start, stop and report experiments."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.table import Table

from twinengine.cli._common import console, context_of, handle_errors
from twinengine.discovery.experiments import service
from twinengine.discovery.experiments.schemas import ExperimentCreate, Report
from twinengine.errors import InvalidInput

app = typer.Typer(help="A/B tests and interleaving experiments.", no_args_is_help=True)


def _variants(specs: list[str], configs: list[str]) -> list[dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for spec in specs:
        key, _, weight = spec.partition("=")
        try:
            out[key] = {"key": key, "weight": float(weight) if weight else 1.0, "config": {}}
        except ValueError as exc:
            raise InvalidInput(f"--variant {spec!r}: weight must be a number") from exc
    for c in configs:
        key, _, raw = c.partition(":")
        if key not in out:
            raise InvalidInput(f"--config {c!r}: no variant {key!r} (give it with --variant)")
        try:
            out[key]["config"] = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"--config {key}: not JSON: {exc.msg}") from exc
    return list(out.values())


@app.command("create")
@handle_errors
def create(
    ctx: typer.Context,
    exp_id: Annotated[str, typer.Argument(help="id: lower-case letters, digits, - and _")],
    name: Annotated[str | None, typer.Option(help="display name (default: the id)")] = None,
    spec: Annotated[Path | None, typer.Option(help="JSON file with the whole definition")] = None,
    kind: Annotated[str, typer.Option(help="ab | interleaving")] = "ab",
    variant: Annotated[
        list[str] | None, typer.Option(help="KEY[=WEIGHT], repeatable; first is control")
    ] = None,
    config: Annotated[
        list[str] | None, typer.Option(help='KEY:JSON variant config: b:{"ranking_model":"v3"}')
    ] = None,
    traffic: Annotated[float, typer.Option(help="share of eligible users, 0-1")] = 1.0,
    layer: Annotated[
        str | None, typer.Option(help="layer: its experiments exclude each other")
    ] = None,
    surface: Annotated[list[str] | None, typer.Option(help="target surface (repeatable)")] = None,
    language: Annotated[list[str] | None, typer.Option(help="target language (repeatable)")] = None,
    primary: Annotated[list[str] | None, typer.Option(help="goal metric (repeatable)")] = None,
    guardrail: Annotated[list[str] | None, typer.Option(help="guardrail (repeatable)")] = None,
    engine: Annotated[str, typer.Option(help="frequentist | bayesian")] = "frequentist",
    sequential: Annotated[bool, typer.Option(help="always-valid intervals")] = True,
    correction: Annotated[str, typer.Option(help="holm | bh | none")] = "holm",
    target_users: Annotated[int | None, typer.Option(help="planned sample size")] = None,
) -> None:
    """Define an experiment (as a draft; `exp start` makes it live)."""
    if spec is not None:
        try:
            body = json.loads(spec.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise InvalidInput(f"{spec}: {exc}") from exc
        body.setdefault("id", exp_id)
    else:
        body = {
            "id": exp_id, "name": name or exp_id, "kind": kind, "traffic": traffic,
            "layer": layer,
            "targeting": {"surfaces": surface or [], "languages": language or []},
            "analysis": {"engine": engine, "sequential": sequential, "correction": correction,
                         "target_users": target_users},
        }  # fmt: skip
        if variant or config:
            body["variants"] = _variants(variant or ["control", "treatment"], config or [])
        metrics: dict[str, Any] = {}
        if primary:
            metrics["primary"] = primary
        if guardrail:
            metrics["guardrails"] = guardrail
        body["metrics"] = metrics
    try:
        parsed = ExperimentCreate.model_validate(body)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'spec'}: {e['msg']}" for e in exc.errors()
        )
        raise InvalidInput(problems) from exc
    exp = service.create(context_of(ctx), spec=parsed)
    console.print(f"created [bold]{exp.id}[/] ({exp.kind}, draft) with variants "
                  f"{', '.join(v.key for v in exp.variants)}; salt {exp.salt}")


@app.command("list")
@handle_errors
def list_(
    ctx: typer.Context,
    status: Annotated[str | None, typer.Option(help="draft | running | stopped")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """List experiments, newest first."""
    page = service.list_experiments(context_of(ctx), status=status)
    if as_json:
        console.print_json(page.model_dump_json())
        return
    table = Table(title=f"{page.count} experiments")
    for col in ("id", "kind", "status", "variants", "traffic", "layer", "started", "decision"):
        table.add_column(col, overflow="fold")
    for e in page.data:
        table.add_row(
            e.id, e.kind, e.status, ", ".join(v.key for v in e.variants), f"{e.traffic:.0%}",
            e.layer or "", e.started_at.strftime("%Y-%m-%d %H:%M") if e.started_at else "",
            e.decision["action"] if e.decision else "",
        )  # fmt: skip
    console.print(table)


@app.command("start")
@handle_errors
def start(ctx: typer.Context, exp_id: str) -> None:
    """Start assigning users to a draft experiment."""
    exp = service.start(context_of(ctx), exp_id=exp_id)
    console.print(f"{exp.id} running since {exp.started_at:%Y-%m-%d %H:%M:%S} UTC")


@app.command("stop")
@handle_errors
def stop(ctx: typer.Context, exp_id: str) -> None:
    """Stop a running experiment and record the decision."""
    exp = service.stop(context_of(ctx), exp_id=exp_id)
    d = exp.decision or {}
    console.print(f"{exp.id} stopped; decision: [bold]{d.get('action')}[/] {d.get('reason', '')}")


@app.command("report")
@handle_errors
def report(
    ctx: typer.Context,
    exp_id: str,
    until: Annotated[str | None, typer.Option(help="analyse events before this ISO time")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Metrics with intervals, SRM, interleaving preference and the decision."""
    end = None
    if until:
        try:
            end = dt.datetime.fromisoformat(until)
        except ValueError as exc:
            raise InvalidInput(f"--until {until!r} is not an ISO date-time") from exc
    rep = service.report(context_of(ctx), exp_id=exp_id, until=end)
    if as_json:
        console.print_json(rep.model_dump_json())
        return
    _print_report(rep)


def _print_report(rep: Report) -> None:
    console.print(f"[bold]{rep.experiment.id}[/] {rep.experiment.name} ({rep.experiment.status})")
    console.print("users: " + ", ".join(f"{k} {v:,}" for k, v in rep.users.items()))
    if rep.srm.get("p_value") is not None:
        console.print(f"SRM: {'ok' if rep.srm['ok'] else 'MISMATCH'} (p={rep.srm['p_value']:.3g})")
    if rep.metrics:
        table = Table()
        for col in ("metric", "role", "variant", "control", "value", "lift", "interval",
                    "p adj.", "P(win)"):
            table.add_column(col)
        for m in rep.metrics:
            for t in m["treatments"]:
                lo, hi = t["ci"]
                table.add_row(
                    m["id"], m["role"], t["variant"], _num(m["control"]["value"]),
                    _num(t["value"]), _pct(t["lift"]), f"{_pct(lo)} .. {_pct(hi)}",
                    f"{t['p_adjusted']:.3g}" if t["p_adjusted"] is not None else "",
                    f"{t['chance_to_win']:.1%}" if t["chance_to_win"] is not None else "",
                )  # fmt: skip
        console.print(table)
    for t in rep.interleaving or []:
        console.print(f"interleaving by {t['signal']}: {t['users']:,} users, prefer a "
                      f"{t['wins_a']}, prefer b {t['wins_b']}, ties {t['ties']}, "
                      f"t-test p={t['p_value']:.3g}, sign test p={t['p_sign']:.3g}")
    d = rep.decision
    console.print(f"decision: [bold]{d.action}[/]{' ' + d.variant if d.variant else ''}: "
                  f"{d.reason}", highlight=False)


def _num(x: float | None) -> str:
    return "" if x is None else f"{x:.4g}"


def _pct(x: float | None) -> str:
    return "" if x is None else f"{x * 100:+.2f}%"
