"""Dubbing service: create a run from a video, run or resume it as a DBOS workflow, read it.

The CLI, the API and the page call these functions only.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from twinengine.capability.dubbing import _media, pipeline
from twinengine.capability.dubbing.pipeline import STAGES, Progress, Run, open_run, runs_root
from twinengine.capability.dubbing.schemas import DubRunPublic
from twinengine.capability.dubbing.translate import TRANSLATORS
from twinengine.context import AppContext
from twinengine.errors import AppError, InvalidInput, NotFound

log = logging.getLogger(__name__)

_VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v"}
LANGUAGES = {"en", "es"}  # the pairs the offline translator ships (apertium-en-es)

try:  # every process that may run a dub registers the workflow before DBOS launches
    from twinengine.capability.workflows import runtime as _runtime

    _runtime.add_workflow_module("twinengine.capability.dubbing.workflow")
except ImportError:  # pragma: no cover - the workflows extra is missing
    _runtime = None  # type: ignore[assignment]


def create_run(
    ctx: AppContext,
    *,
    video: Path,
    target: str,
    source: str | None = None,
    voice_match: bool = False,
    lipsync: bool = False,
    title: str | None = None,
    original_name: str | None = None,
    translator: str | None = None,
    move: bool = False,
) -> Run:
    """Check the request, copy (or move) the video into a new run folder, return the run."""
    target = target.strip().lower()
    if target not in LANGUAGES or (source and source not in LANGUAGES):
        raise InvalidInput(f"language must be one of {sorted(LANGUAGES)}")
    if source == target:
        raise InvalidInput("source and target languages are the same")
    if translator:
        TRANSLATORS.get(translator)  # refuse unknown names now, not mid-run
    if lipsync and not ctx.settings.dub_lipsync_command:
        raise InvalidInput("lip-sync needs TWINENGINE_DUB_LIPSYNC_COMMAND (no model ships offline)")
    suffix = Path(original_name or video.name).suffix.lower()
    if suffix not in _VIDEO_SUFFIXES:
        raise InvalidInput(
            f"not a video file name ({suffix or 'no extension'}); use one of "
            f"{', '.join(sorted(_VIDEO_SUFFIXES))}"
        )
    info = _media.probe(video)  # InvalidInput for anything that is not a video
    if not info.has_audio:
        raise InvalidInput("the video has no audio track to dub")
    run_id = datetime.now(UTC).strftime("%Y%m%d%H%M%S") + "-" + uuid.uuid4().hex[:8]
    d = runs_root(ctx) / run_id
    d.mkdir(parents=True)
    name = "input" + suffix
    (shutil.move if move else shutil.copyfile)(str(video), str(d / name))
    request = {
        "video": name,
        "target": target,
        "source": source,
        "voice_match": voice_match,
        "lipsync": lipsync,
        "title": title,
        "original_name": original_name or video.name,
        "translator": translator,
        "created": datetime.now(UTC).isoformat(),
    }
    _media.dump_json(d / "run.json", request)
    return Run(d, request)


def _wait(ctx: AppContext, run: Run, handle: Any, progress: Progress | None) -> dict[str, Any]:
    """Report progress from the stage markers while the workflow runs; return its result."""
    from dbos import WorkflowStatusString

    shown = -1
    while True:
        n = sum(run.done(s) for s in STAGES)
        if progress and n != shown:
            shown = n
            progress(STAGES[n] if n < len(STAGES) else "done", n, len(STAGES))
        status = handle.get_status().status
        if status not in (WorkflowStatusString.PENDING.value, WorkflowStatusString.ENQUEUED.value):
            break
        time.sleep(0.3)
    result = handle.get_result()
    if progress:
        progress("done", len(STAGES), len(STAGES))
    return result


def workflow_id(run_id: str) -> str:
    """The DBOS workflow id of a run (one workflow per run)."""
    return f"dub-{run_id}"


def run(
    ctx: AppContext, *, run_id: str, progress: Progress | None = None, keep_runtime: bool = False
) -> dict[str, Any]:
    """Run (or resume) a dub as a DBOS workflow in this process and wait for it.

    Launching the runtime recovers this executor's unfinished workflows, so after a
    ``kill -9`` the interrupted dub continues from its last finished stage.
    """
    r = open_run(ctx, run_id)
    if _runtime is None:  # pragma: no cover - no DBOS: same stages, still resumable by markers
        return pipeline.run_all(ctx, r, progress=progress)
    from dbos import DBOS

    # a server keeps DBOS up for the runs that follow (and that may be running now)
    launched_here = not _runtime.is_launched() and not keep_runtime
    if not _runtime.is_launched():
        _runtime.launch(ctx, queues=False)
    try:
        wfid = workflow_id(run_id)
        status = DBOS.get_workflow_status(wfid)
        if status is None:
            handle = _runtime.start_flow("dub", workflow_id=wfid, run_id=run_id)
        elif status.status in ("PENDING", "ENQUEUED", "SUCCESS"):
            handle = DBOS.retrieve_workflow(wfid)  # recovery (at launch) is already running it
        else:  # ERROR / CANCELLED: start again from the first unfinished stage
            handle = DBOS.resume_workflow(wfid)
        return _wait(ctx, r, handle, progress)
    finally:
        if launched_here:
            _runtime.destroy()


def start_in_background(ctx: AppContext, *, run_id: str) -> None:
    """Start a run's workflow in this (server) process and return at once."""
    import threading

    def target() -> None:
        try:
            run(ctx, run_id=run_id, keep_runtime=True)
        except AppError as exc:
            _record_error(ctx, run_id, exc.message)
        except Exception as exc:  # a background thread has no caller to raise to
            log.exception("dubbing run %s failed", run_id)
            _record_error(ctx, run_id, f"internal error: {exc}")

    threading.Thread(target=target, name=f"dub-{run_id}", daemon=True).start()


def _record_error(ctx: AppContext, run_id: str, message: str) -> None:
    r = open_run(ctx, run_id)
    _media.dump_json(r.path("error.json"), {"message": message})


def get_run(ctx: AppContext, *, run_id: str) -> DubRunPublic:
    """A run's request, stage progress, outputs and quality report."""
    r = open_run(ctx, run_id)
    stages = [
        {
            "name": s,
            "done": r.done(s),
            "attempts": r.attempts(s),
            "seconds": (r.marker(s) or {}).get("seconds"),
        }
        for s in STAGES
    ]
    err = r.path("error.json")
    error = json.loads(err.read_text())["message"] if err.exists() else None
    done = all(s["done"] for s in stages)
    status = (
        "done"
        if done
        else "failed"
        if error
        else ("running" if any(s["attempts"] for s in stages) else "queued")
    )
    files = (
        [p.name for p in sorted(r.dir.iterdir()) if p.is_file() and p.name in _downloadable(r)]
        if done
        else []
    )
    quality = r.load("quality.json") if r.path("quality.json").exists() else None
    publish = r.marker("publish")
    return DubRunPublic(
        id=r.id,
        status=status,
        target=r.request["target"],
        source=r.request.get("source"),
        voice_match=bool(r.request.get("voice_match")),
        lipsync=bool(r.request.get("lipsync")),
        original_name=r.request.get("original_name"),
        created=r.request.get("created"),
        stages=stages,
        error=error,
        files=files,
        quality=quality,
        item_id=(publish or {}).get("item_id"),
        urls=(publish or {}).get("urls") or {},
    )


def _downloadable(r: Run) -> set[str]:
    mux = r.marker("mux") or {}
    return {"output.mp4", "dub.wav", "quality.json", *mux.get("subtitles", [])}


def run_file(ctx: AppContext, *, run_id: str, name: str) -> Path:
    """Path of a finished run's downloadable file (output, dub track, subtitles, report)."""
    r = open_run(ctx, run_id)
    if name not in _downloadable(r) or not r.path(name).exists():
        raise NotFound(f"run {run_id} has no file {name!r}")
    return r.path(name)


def list_runs(ctx: AppContext, *, limit: int = 50) -> list[DubRunPublic]:
    """The newest runs first."""
    root = runs_root(ctx)
    if not root.exists():
        return []
    ids = sorted((p.name for p in root.iterdir() if (p / "run.json").exists()), reverse=True)
    return [get_run(ctx, run_id=i) for i in ids[:limit]]
