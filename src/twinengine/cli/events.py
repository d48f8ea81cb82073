"""``twinengine stats`` and ``twinengine events``: behaviour analytics and event import/export."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from twinengine.cli._common import console, context_of, handle_errors
from twinengine.errors import InvalidInput

app = typer.Typer(help="The event log: import, export, analytics.", no_args_is_help=True)


def _date(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        d = dt.date.fromisoformat(value)
    except ValueError as exc:
        raise InvalidInput(f"not a date (YYYY-MM-DD): {value!r}") from exc
    return dt.datetime(d.year, d.month, d.day, tzinfo=dt.UTC)


def _table(title: str, rows: list[dict[str, Any]]) -> Table:
    table = Table(title=title)
    if not rows:
        return table
    for col in rows[0]:
        table.add_column(str(col), justify="left" if col == "key" else "right")
    for row in rows:
        table.add_row(*["" if v is None else str(v) for v in row.values()])
    return table


@handle_errors
def stats(
    ctx: typer.Context,
    since: Annotated[str | None, typer.Option(help="first day, YYYY-MM-DD")] = None,
    until: Annotated[str | None, typer.Option(help="day after the last, YYYY-MM-DD")] = None,
    top: Annotated[int, typer.Option(min=1, max=1000, help="rows of the item/topic tables")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """CTR, CVR, conversions per user and D1/D7 return, by day, surface, item and topic."""
    from twinengine.discovery.events.analytics import stats as compute

    out = compute(context_of(ctx), since=_date(since), until=_date(until), top=top)
    if as_json:
        console.print_json(json.dumps(out, default=str))
        return
    console.print(_table("total", [out["total"] | out["returns"]]))
    titles = {"by_day": "by day", "by_surface": "by surface", "by_item": f"top {top} items",
              "by_topic": f"top {top} topics"}  # fmt: skip
    for key, title in titles.items():
        console.print(_table(title, out[key]))


@app.command("stats")
def events_stats(
    ctx: typer.Context,
    since: Annotated[str | None, typer.Option(help="first day, YYYY-MM-DD")] = None,
    until: Annotated[str | None, typer.Option(help="day after the last, YYYY-MM-DD")] = None,
    top: Annotated[int, typer.Option(min=1, max=1000)] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Same as ``twinengine stats``."""
    stats(ctx, since=since, until=until, top=top, as_json=as_json)


@app.command("import")
@handle_errors
def import_events(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="JSONL of events (plain or .gz), one a line")],
    batch: Annotated[int, typer.Option(min=1, max=100_000, help="events per transaction")] = 5000,
) -> None:
    """Load events from a JSONL file through the same validation and store as the API."""
    from twinengine.discovery.events import service

    if not file.exists():
        raise InvalidInput(f"no such file: {file}")
    context = context_of(ctx)
    opener = gzip.open if file.suffix == ".gz" else open
    total = inserted = 0
    buf: list[dict[str, Any]] = []
    with opener(file, "rt", encoding="utf-8") as fh:  # type: ignore[operator]
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                buf.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise InvalidInput(f"{file}:{n}: not JSON: {exc.msg}") from exc
            if len(buf) >= min(batch, context.settings.events_max_batch):
                res = service.record(context, buf)
                total, inserted, buf = total + res.received, inserted + res.inserted, []
    if buf:
        res = service.record(context, buf)
        total, inserted = total + res.received, inserted + res.inserted
    console.print(f"{file}: {total} events, {inserted} new, {total - inserted} already stored")


@app.command("export")
@handle_errors
def export(
    ctx: typer.Context,
    folder: Annotated[Path, typer.Argument(help="folder for events/impressions Parquet files")],
) -> None:
    """Write the event log as Parquet (events, impressions, item_topics)."""
    from twinengine.discovery.events.analytics import export_parquet

    for path in export_parquet(context_of(ctx), folder):
        console.print(str(path))
