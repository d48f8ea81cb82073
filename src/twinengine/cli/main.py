"""``twinengine``: every command is a thin adapter over a service function."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import TaskID
from rich.table import Table

from twinengine import __version__
from twinengine.catalog import service
from twinengine.catalog.demo import DEMO_CATALOG, DEMO_LABELS, DEMO_TAXONOMY
from twinengine.catalog.ingest import count_rows, parse_mapping
from twinengine.cli._common import (
    console,
    context_of,
    err_console,
    handle_errors,
    progress_bar,
    settings_of,
)
from twinengine.config import Settings
from twinengine.errors import InvalidInput

app = typer.Typer(
    name="twinengine",
    help=(
        "twinengine: discovery (search, recommendations, ranking, experiments) and durable AI "
        "workflows around one catalog.\n\nConfiguration comes from the environment: "
        "TWINENGINE_DATABASE_URL (default: SQLite in TWINENGINE_HOME) and TWINENGINE_HOME "
        "(default ./.twinengine) for indexes, models and objects."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
taxonomy_app = typer.Typer(help="Load the topic taxonomy.", no_args_is_help=True)
items_app = typer.Typer(help="Look at catalog items.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(taxonomy_app, name="taxonomy")
app.add_typer(items_app, name="items")
app.add_typer(db_app, name="db")


@app.callback()
def _main(ctx: typer.Context) -> None:
    """Build the settings once from the environment."""
    ctx.ensure_object(dict)["settings"] = Settings()


@app.command()
def version() -> None:
    """Print the twinengine version."""
    console.print(__version__)


@db_app.command("upgrade")
@handle_errors
def db_upgrade(ctx: typer.Context) -> None:
    """Apply all database migrations (start-up does this too)."""
    from twinengine.storage.migrate import current

    context = context_of(ctx)
    console.print(
        f"database at {', '.join(current(context.db)) or 'empty'}:"
        f" {context.settings.effective_database_url.split('@')[-1]}"
    )


@app.command()
@handle_errors
def ingest(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="JSONL or CSV file, plain or .gz")],
    map_: Annotated[
        list[str] | None,
        typer.Option(
            "--map", help="FIELD=SOURCE: read item FIELD from the file's SOURCE column (repeatable)"
        ),
    ] = None,
    skip_invalid: Annotated[
        bool,
        typer.Option(
            "--skip-invalid", help="load the valid rows; write rejected ones to a reject file"
        ),
    ] = False,
    reject_file: Annotated[
        Path | None, typer.Option(help="where rejected rows go (default FILE.rejects.jsonl)")
    ] = None,
) -> None:
    """Upsert catalog items from FILE; a bad row refuses the whole file unless --skip-invalid."""
    try:
        mapping = parse_mapping(map_)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from exc
    context = context_of(ctx)
    report = _ingest_with_progress(
        context, file, mapping=mapping, skip_invalid=skip_invalid, reject_file=reject_file
    )
    console.print(
        f"[bold]{report.file}[/]: {report.rows} rows, inserted {report.inserted},"
        f" updated {report.updated}, "
        f"unchanged {report.unchanged}, rejected {report.rejected}"
    )
    if report.reject_file:
        err_console.print(f"rejected rows with reasons: {report.reject_file}")


def _ingest_with_progress(context, file: Path, **kwargs):  # type: ignore[no-untyped-def]
    if not file.exists():
        return service.ingest(context.db, path=file, **kwargs)  # raises NotFound with the path
    total = count_rows(file)
    with progress_bar() as bar:
        task = bar.add_task(f"ingest {file.name}", total=total)
        return service.ingest(context.db, path=file, on_row=lambda: bar.advance(task), **kwargs)


@taxonomy_app.command("load")
@handle_errors
def taxonomy_load(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="taxonomy JSON: facets and topics")],
) -> None:
    """Load facets and topics (id, facet, name, definition, keywords) from FILE."""
    n_facets, n_topics = service.load_taxonomy(context_of(ctx).db, path=file)
    console.print(f"loaded {n_facets} facets and {n_topics} topics from {file}")


@taxonomy_app.command("labels")
@handle_errors
def taxonomy_labels(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help='JSONL of {"id": ..., "topics": [...]}')],
    source: Annotated[str, typer.Option(help="human | rule | model | llm")] = "human",
) -> None:
    """Attach topics to items from a labels file."""
    n = service.load_topic_labels(context_of(ctx).db, path=file, source=source)
    console.print(f"wrote {n} item-topic links ({source})")


@items_app.command("list")
@handle_errors
def items_list(
    ctx: typer.Context,
    topic: Annotated[
        list[str] | None, typer.Option(help="topic id (repeatable; all must match)")
    ] = None,
    language: Annotated[str | None, typer.Option(help="language code, e.g. ja")] = None,
    collection: Annotated[str | None, typer.Option()] = None,
    media: Annotated[str | None, typer.Option(help="image | video")] = None,
    q: Annotated[str | None, typer.Option(help="keyword filter")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON lines")] = False,
) -> None:
    """List items, newest first."""
    flt = service.make_filter(
        topics=topic or [], language=language, collection=collection, media=media, q=q
    )
    page = service.list_items(context_of(ctx).db, flt=flt, limit=limit)
    if as_json:
        for item in page.data:
            console.print_json(item.model_dump_json())
        return
    table = Table(title=f"{page.count} items", show_lines=False)
    for col in ("id", "title", "lang", "published", "collection"):
        table.add_column(col, overflow="fold")
    for item in page.data:
        table.add_row(
            item.id,
            item.title,
            ",".join(item.languages),
            str(item.published or ""),
            (item.collection or "").split("/")[-1],
        )
    console.print(table)


@items_app.command("show")
@handle_errors
def items_show(ctx: typer.Context, item_id: str) -> None:
    """Show one item as JSON."""
    item = service.get_item(context_of(ctx).db, item_id=item_id)
    console.print_json(json.dumps(item.model_dump(mode="json"), ensure_ascii=False))


@app.command()
@handle_errors
def serve(
    ctx: typer.Context,
    host: Annotated[
        str | None, typer.Option(help="address to bind (default TWINENGINE_HOST or 127.0.0.1)")
    ] = None,
    port: Annotated[int | None, typer.Option(help="port (default TWINENGINE_PORT or 8000)")] = None,
    workers: Annotated[
        int, typer.Option(help="worker processes (Postgres recommended above 1)")
    ] = 1,
) -> None:
    """Serve the API (/v1, docs at /docs) and the gallery."""
    settings = settings_of(ctx)
    _serve(settings, host or settings.host, port or settings.port, workers)


def _serve(settings: Settings, host: str, port: int, workers: int = 1) -> None:
    import uvicorn

    from twinengine.api.server import HTTP_PROTOCOL

    console.print(
        f"twinengine {__version__} serving the gallery at [bold]http://{host}:{port}/[/]"
        " (API docs at /docs); Ctrl-C stops"
    )
    if workers > 1:
        uvicorn.run(
            "twinengine.api.app:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level="warning",
            http=HTTP_PROTOCOL,
        )
    else:
        from twinengine.api.app import create_app

        uvicorn.run(
            create_app(settings), host=host, port=port, log_level="warning", http=HTTP_PROTOCOL
        )


# Engines add demo set-up steps (build indexes, train the tagger, ...):
# fn(context, progress) -> message, where progress(done, total) reports the step's work.
DEMO_STEPS: list = []


@app.command()
@handle_errors
def demo(
    ctx: typer.Context,
    serve_after: Annotated[
        bool, typer.Option("--serve/--no-serve", help="serve the gallery afterwards")
    ] = True,
    host: Annotated[str | None, typer.Option()] = None,
    port: Annotated[int | None, typer.Option()] = None,
) -> None:
    """Load the bundled real catalog, taxonomy and labels (idempotent), then serve the gallery."""
    context = context_of(ctx)
    settings = context.settings
    n_facets, n_topics = service.load_taxonomy(context.db, path=DEMO_TAXONOMY)
    console.print(f"taxonomy: {n_facets} facets, {n_topics} topics")
    report = _ingest_with_progress(context, DEMO_CATALOG)
    console.print(
        f"catalog: {report.rows} prompts (inserted {report.inserted},"
        f" updated {report.updated}, unchanged {report.unchanged})"
    )
    links = service.load_topic_labels(context.db, path=DEMO_LABELS, source="human")
    console.print(f"labels: {links} human topic links")
    import twinengine.api.engines  # noqa: F401  (engines register their demo steps)

    for step in DEMO_STEPS:
        # Index building and tagging take minutes the first time: a bar with the time left.
        what = (step.__doc__ or step.__name__).strip().splitlines()[0].rstrip(".")
        started = time.monotonic()
        with progress_bar() as bar:
            task = bar.add_task(what, total=None)

            def report(done: int, total: int, task: TaskID = task) -> None:
                bar.update(task, completed=done, total=total)

            message = step(context, report)
        console.print(f"{message} [dim]({time.monotonic() - started:.0f} s)[/]")
    if serve_after:
        context.close()
        ctx.ensure_object(dict).pop("context", None)
        _serve(settings, host or settings.host, port or settings.port)


# Engines' command groups: one line each (each module defines `app = typer.Typer(...)`).
# --- engine commands ---
from twinengine.cli import router as _router  # noqa: E402
from twinengine.cli import tag as _tag  # noqa: E402

app.add_typer(_tag.app, name="tag")
app.add_typer(_router.app, name="router")
app.command("costs")(_router.costs)
from twinengine.cli import events as _events  # noqa: E402

app.add_typer(_events.app, name="events")
app.command("stats")(_events.stats)
from twinengine.cli import flow as _flow  # noqa: E402

app.add_typer(_flow.app, name="flow")
app.command("drop")(_flow.drop)
app.command("worker")(_flow.worker)
from twinengine.cli import search as _search  # noqa: E402

app.add_typer(_search.index_app, name="index")
app.command("search")(_search.search_command)
from twinengine.cli import keys as _keys  # noqa: E402

app.add_typer(_keys.app, name="keys")
from twinengine.cli import rank as _rank  # noqa: E402

app.add_typer(_rank.app, name="rank")
from twinengine.cli import exp as _exp  # noqa: E402

app.add_typer(_exp.app, name="exp")
from twinengine.cli import dub as _dub  # noqa: E402

app.command("dub")(_dub.dub)
app.add_typer(_dub.app, name="dubs")


@app.command()
@handle_errors
def backup(
    ctx: typer.Context, target: Annotated[Path, typer.Argument(help="backup file to write")]
) -> None:
    """Back up the database online (SQLite backup API, or pg_dump for Postgres)."""
    from twinengine.storage.backup import backup as _backup

    path = _backup(context_of(ctx).db, target=target)
    console.print(f"backed up to {path} ({path.stat().st_size:,} bytes)")


@app.command()
@handle_errors
def restore(
    ctx: typer.Context,
    source: Annotated[Path, typer.Argument(help="a file written by `twinengine backup`")],
    yes: Annotated[bool, typer.Option("--yes", help="confirm replacing the current data")] = False,
) -> None:
    """Replace the database's content with a backup (stop servers first)."""
    if not yes:
        raise InvalidInput("restore replaces every row: add --yes to confirm")
    from twinengine.storage.backup import restore as _restore

    _restore(context_of(ctx).db, source=source)
    console.print(f"restored from {source}")


def main() -> None:
    """Entry point."""
    app()
