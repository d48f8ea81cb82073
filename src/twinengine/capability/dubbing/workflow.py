"""The dub as a DBOS workflow: one step per stage, resumable after a crash or ``kill -9``.

Each step is ``pipeline.run_stage``, which skips a stage whose marker exists, so a recovered
workflow never redoes finished work even for a step DBOS had not yet checkpointed.
"""

from __future__ import annotations

from typing import Any

from dbos import DBOS

from twinengine.capability.dubbing import pipeline
from twinengine.capability.workflows import runtime

QUEUE = "dubbing"
FLOW = "dub"

# One dub at a time per worker: a dub saturates both cores.
runtime.declare_queue(QUEUE, worker_concurrency=1)


@DBOS.step(retries_allowed=True, max_attempts=2, interval_seconds=1.0)
def dub_stage(run_id: str, stage: str) -> dict[str, Any]:
    """Run one stage of a dubbing run (idempotent: a finished stage returns its summary)."""
    ctx = runtime.context()
    return pipeline.run_stage(ctx, pipeline.open_run(ctx, run_id), stage)


@DBOS.workflow(name="dub")
def dub(run_id: str) -> dict[str, Any]:
    """All stages in order; returns the quality report's summary."""
    summary: dict[str, Any] = {}
    for stage in pipeline.STAGES:
        summary = dub_stage(run_id, stage)
    return summary


runtime.register_flow(FLOW, dub, queue=QUEUE, help="dub a video (dubbing run id)")
