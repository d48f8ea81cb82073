"""``twinengine index build|status`` and ``twinengine search QUERY``."""

from __future__ import annotations

import json
import time
from typing import Annotated

import typer
from rich.table import Table

from twinengine.catalog import service as catalog
from twinengine.cli._common import console, context_of, handle_errors, progress_bar
from twinengine.discovery.index import service

index_app = typer.Typer(help="Build and inspect the search index.", no_args_is_help=True)


@index_app.command("build")
@handle_errors
def index_build(ctx: typer.Context) -> None:
    """Build the search index from the whole catalog and make it live."""
    context = context_of(ctx)
    t0 = time.perf_counter()
    with progress_bar() as bar:
        task = bar.add_task("embed items", total=catalog.count_items(context.db))
        status = service.build_index(
            context, progress=lambda done, total: bar.update(task, completed=done, total=total)
        )
    console.print(
        f"indexed {status.items} items ({status.vocabulary} terms, model {status.model}) in "
        f"{time.perf_counter() - t0:.1f}s: {status.path}"
    )


@index_app.command("status")
@handle_errors
def index_status(
    ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json")] = False
) -> None:
    """Show what the search index holds."""
    status = service.index_status(context_of(ctx))
    if as_json:
        console.print_json(status.model_dump_json())
        return
    for key, value in status.model_dump().items():
        console.print(f"{key}: {value}")


def search(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="what to look for")],
    mode: Annotated[str, typer.Option(help="lexical | dense | hybrid")] = "hybrid",
    k: Annotated[int, typer.Option(min=1, max=100)] = 10,
    offset: Annotated[int, typer.Option(min=0)] = 0,
    topic: Annotated[list[str] | None, typer.Option(help="topic id (repeatable)")] = None,
    language: Annotated[str | None, typer.Option(help="language code, e.g. ja")] = None,
    collection: Annotated[str | None, typer.Option()] = None,
    media: Annotated[str | None, typer.Option(help="image | video")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the results as JSON")] = False,
) -> None:
    """Search the catalog."""
    flt = catalog.make_filter(
        topics=topic or [], language=language, collection=collection, media=media
    )
    res = service.search(context_of(ctx), q=query, flt=flt, k=k, offset=offset, mode=mode)  # type: ignore[arg-type]
    if as_json:
        console.print_json(json.dumps(res.model_dump(mode="json"), ensure_ascii=False))
        return
    title = f"{res.total} results for {res.q!r} ({res.mode}, {res.took_ms:.1f} ms)"
    if res.corrected_q:
        title += f", searched as {res.corrected_q!r}"
    table = Table(title=title)
    for col in ("#", "id", "title", "score", "snippet"):
        table.add_column(col, overflow="fold")
    for n, hit in enumerate(res.hits, start=res.offset + 1):
        table.add_row(str(n), hit.id, hit.item.title, f"{hit.score:.3f}", hit.snippet[:120])
    console.print(table)


search_command = handle_errors(search)
