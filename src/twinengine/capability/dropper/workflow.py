"""The daily content drop as a DBOS workflow (the body only orchestrates; steps do the work).

validate -> exact/near-duplicate detection -> ingest -> tag (batches) -> embed + index swap ->
publish items (batches) -> cost -> manifest + report. Registered as the flow ``drop`` on the
``drops`` queue; ``scheduled_drop`` runs daily (``drop_schedule``) over the inbox folder.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from dbos import DBOS

from twinengine.capability.dropper import steps
from twinengine.capability.workflows import runtime

FLOW_NAME = "drop"
WORKFLOW_NAME = "twinengine.content_drop"
QUEUE = "drops"
SCHEDULE_NAME = "daily-content-drop"


def _chunks(ids: list[str], size: int) -> list[list[str]]:
    return [ids[i : i + size] for i in range(0, len(ids), size)]


def _sum_reports(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """Add up the numeric fields of per-batch tagging reports (and keep the last notes)."""
    total: dict[str, Any] = {}
    for rep in reports:
        for key, value in rep.items():
            if isinstance(value, bool):
                total[key] = total.get(key, False) or value
            elif isinstance(value, (int, float)):
                total[key] = round(total.get(key, 0) + value, 6)
            elif isinstance(value, dict) and all(
                isinstance(v, (int, float)) for v in value.values()
            ):
                merged = dict(total.get(key) or {})
                for k, v in value.items():
                    merged[k] = merged.get(k, 0) + v
                total[key] = merged
            elif isinstance(value, str):
                total[key] = value
    if total.get("tagged"):  # a ratio: recompute from the sums rather than add ratios
        total["escalated_share"] = round(total.get("escalated", 0) / total["tagged"], 4)
    return total


@DBOS.workflow(name=WORKFLOW_NAME)
def content_drop(source: str, params: dict | None = None) -> dict:
    """Run one content drop of ``source`` (a JSONL/CSV file, a folder, or a README)."""
    opts = dict(params or {})
    run_id = DBOS.workflow_id or "local"
    settings = runtime.context().settings
    batch = int(opts.get("batch_size") or settings.drop_batch_size)
    allow_llm = bool(opts.get("allow_llm", settings.drop_allow_llm))
    threshold = float(opts.get("near_duplicate") or settings.drop_near_duplicate)

    staged = steps.stage_input(run_id, source, opts.get("collection"), opts.get("licence"))
    dups = steps.find_duplicate_items(run_id, threshold)
    ingested = steps.ingest_items(run_id)
    ids: list[str] = dups["accepted_ids"]
    tagged = [steps.tag_batch(run_id, chunk, allow_llm) for chunk in _chunks(ids, batch)]
    index = steps.embed_and_index(run_id, ids)
    published = [steps.publish_batch(run_id, chunk) for chunk in _chunks(ids, batch)]
    cost = steps.llm_cost(run_id)
    report = {
        "run_id": run_id,
        "source": source,
        "counts": {
            "rows": staged["rows"],
            "valid": staged["valid"],
            "rejected": staged["rejected"],
            "duplicates": len(dups["duplicates"]),
            "accepted": len(ids),
            "inserted": ingested.get("inserted", 0),
            "updated": ingested.get("updated", 0),
            "unchanged": ingested.get("unchanged", 0),
            "published": sum(p["published"] for p in published),
        },
        "errors": staged["errors"],
        "duplicates": dups["duplicates"],
        "tags": _sum_reports(tagged),
        "index": index,
        "cost": cost,
    }
    report["manifest_url"] = steps.publish_manifest(run_id, report, ids)["manifest_url"]
    return report


@DBOS.workflow(name="twinengine.scheduled_drop")
def scheduled_drop(scheduled_at: dt.datetime, context: Any = None) -> dict:
    """The daily drop: claim the inbox's files and drop them as one child run."""
    day = scheduled_at.strftime("%Y%m%d")
    folder = steps.claim_inbox(day)
    if folder is None:
        return {"skipped": "inbox empty", "day": day}
    return content_drop(folder, dict(context or {}))


def _schedule(settings: Any) -> dict[str, Any] | None:
    if not settings.drop_schedule.strip():
        return None
    return {
        "schedule_name": SCHEDULE_NAME,
        "workflow_fn": scheduled_drop,
        "schedule": settings.drop_schedule,
        "queue_name": QUEUE,
    }


runtime.register_flow(FLOW_NAME, content_drop, queue=QUEUE, help="daily content drop")
runtime.add_schedule(_schedule)
