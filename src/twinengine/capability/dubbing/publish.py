"""Upload a finished dub to the object store (the CDN) and register it in the catalog."""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from twinengine.catalog import service as catalog
from twinengine.errors import AppError
from twinengine.storage.objects import open_object_store

if TYPE_CHECKING:
    from twinengine.capability.dubbing.pipeline import Run
    from twinengine.context import AppContext

log = logging.getLogger(__name__)

_TYPES = {
    ".mp4": "video/mp4",
    ".srt": "application/x-subrip",
    ".vtt": "text/vtt",
    ".wav": "audio/wav",
}
_LANG_NAMES = {
    "es": "Spanish",
    "en": "English",
    "fr": "French",
    "de": "German",
    "it": "Italian",
    "pt": "Portuguese",
    "ca": "Catalan",
}


def item_id(run_id: str) -> str:
    """The catalog id of a run's dubbed video."""
    return f"dub-{run_id}"


def publish(ctx: AppContext, run: Run) -> dict[str, Any]:
    """Put the video, dub track and subtitles in the store; upsert a "video" catalog item;
    tag it through the tagging cascade when that engine is installed."""
    store = open_object_store(ctx.settings)
    files = ["output.mp4", "dub.wav", *run.marker("mux")["subtitles"]]  # type: ignore[index]
    urls: dict[str, str] = {}
    try:
        for name in files:
            key = f"dubbing/{run.id}/{name}"
            urls[name] = store.put(
                key,
                run.path(name).read_bytes(),
                content_type=_TYPES.get(Path(name).suffix, "application/octet-stream"),
            )
            urls[name] = store.url(key)
    finally:
        store.close()
    tr = run.load("translation.json")
    target, source = run.request["target"], tr["source"]
    title = run.request.get("title") or Path(run.request.get("original_name") or "video").stem
    row = {
        "id": item_id(run.id),
        "title": f"{title} ({_LANG_NAMES.get(target, target)} dub)"[:2000],
        "description": " ".join(r["target"] for r in tr["lines"])[:20_000],
        "body": " ".join(r["text"] for r in tr["lines"])[:200_000],
        "media": "video",
        "languages": [target, source],
        "collection": "dubbing",
        "attributes": {
            "dubbing_run": run.id,
            "video_url": urls["output.mp4"],
            "files": urls,
            "source_language": source,
            "target_language": target,
        },
    }
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "item.jsonl"
        path.write_text(json.dumps(row, ensure_ascii=False) + "\n", encoding="utf-8")
        catalog.ingest(ctx.db, path=path)
    return {"item_id": row["id"], "urls": urls, "tags": _tag(ctx, row["id"])}


def _tag(ctx: AppContext, item: str) -> Any:
    """Run the tagging cascade on the new item; a missing or failing tagger is reported, not
    fatal (the dub itself is done)."""
    try:
        from twinengine.capability.tagging.service import tag_items
    except ImportError:
        return {"status": "skipped", "reason": "tagging engine not installed"}
    try:
        result = tag_items(ctx, item_ids=[item], allow_llm=True)
    except AppError as exc:
        log.warning("tagging %s failed: %s", item, exc.message)
        return {"status": "failed", "reason": exc.message}
    if hasattr(result, "model_dump"):
        result = result.model_dump(mode="json")
    try:
        json.dumps(result)
    except TypeError:
        result = str(result)
    return {"status": "ok", "result": result}
