"""``twinengine dub VIDEO --to es``: dub a video; ``twinengine dubs``: resume, show, list runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from twinengine.cli._common import console, context_of, handle_errors, progress_bar

app = typer.Typer(help="Dubbing runs: resume, show, list.", no_args_is_help=True)


def _run_with_progress(ctx: typer.Context, run_id: str) -> dict[str, Any]:
    from twinengine.capability.dubbing import service

    context = context_of(ctx)
    with progress_bar() as bar:
        task = bar.add_task("dubbing", total=len(service.STAGES))

        def progress(stage: str, done: int, total: int) -> None:
            bar.update(task, completed=done, description=f"dubbing: {stage}")

        result = service.run(context, run_id=run_id, progress=progress)
    return result


def _print_result(ctx: typer.Context, run_id: str) -> None:
    from twinengine.capability.dubbing import service

    run = service.get_run(context_of(ctx), run_id=run_id)
    q = run.quality or {}
    out_dir = context_of(ctx).settings.home / "dubbing" / run_id
    console.print(f"[bold]run[/] {run.id}: {run.status}")
    console.print(f"video: {out_dir / 'output.mp4'}")
    if run.item_id:
        console.print(f"catalog item: {run.item_id}  url: {run.urls.get('output.mp4', '')}")
    shown = {
        k: q.get(k)
        for k in (
            "rtf",
            "rtf_cpu",
            "wer",
            "speaker_sim",
            "speaker_sim_before_match",
            "max_drift_ms",
            "mean_drift_ms",
        )
    }
    console.print("quality: " + json.dumps(shown))


@handle_errors
def dub(
    ctx: typer.Context,
    video: Annotated[Path, typer.Argument(help="video file to dub (mp4, mov, mkv, webm)")],
    to: Annotated[str, typer.Option("--to", help="target language (es, en)")] = "es",
    source: Annotated[
        str | None, typer.Option("--from", help="source language; default: detect")
    ] = None,
    voice_match: Annotated[
        bool, typer.Option("--voice-match", help="match the source voice")
    ] = False,
    lipsync: Annotated[
        bool, typer.Option("--lipsync", help="lip-sync (needs a configured model)")
    ] = False,
    translator: Annotated[str | None, typer.Option(help="apertium, llm or ct2")] = None,
) -> None:
    """Dub VIDEO into another language (a resumable DBOS workflow) with progress."""
    from twinengine.capability.dubbing import service

    run = service.create_run(
        context_of(ctx),
        video=video,
        target=to,
        source=source,
        voice_match=voice_match,
        lipsync=lipsync,
        translator=translator,
    )
    console.print(f"run {run.id} (resume with: twinengine dubs resume {run.id})")
    _run_with_progress(ctx, run.id)
    _print_result(ctx, run.id)


@app.command()
@handle_errors
def resume(
    ctx: typer.Context, run_id: Annotated[str, typer.Argument(help="dubbing run id")]
) -> None:
    """Finish an interrupted run from its last completed stage."""
    _run_with_progress(ctx, run_id)
    _print_result(ctx, run_id)


@app.command()
@handle_errors
def show(ctx: typer.Context, run_id: Annotated[str, typer.Argument(help="dubbing run id")]) -> None:
    """A run's stages, outputs and quality report as JSON."""
    from twinengine.capability.dubbing import service

    console.print_json(service.get_run(context_of(ctx), run_id=run_id).model_dump_json())


@app.command("list")
@handle_errors
def list_(ctx: typer.Context) -> None:
    """Recent dubbing runs."""
    from twinengine.capability.dubbing import service

    table = Table("id", "status", "to", "voice match", "file")
    for r in service.list_runs(context_of(ctx)):
        table.add_row(
            r.id, r.status, r.target, "yes" if r.voice_match else "no", r.original_name or ""
        )
    console.print(table)
