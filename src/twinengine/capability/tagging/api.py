"""Registers the tagger with the app and the demo: ``POST /v1/tagging/apply`` and a demo step."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter
from pydantic import BaseModel, Field

from twinengine.api.app import register
from twinengine.api.deps import ContextDep
from twinengine.capability.tagging import service
from twinengine.capability.tagging.schemas import TagReport
from twinengine.context import AppContext
from twinengine.errors import NotFound, PayloadTooLarge

router = APIRouter(tags=["tagging"])
MAX_IDS = 1000


class TagRequest(BaseModel):
    """Items to (re)tag."""

    item_ids: list[str] = Field(min_length=1)
    allow_llm: bool = True
    run_id: str | None = Field(default=None, max_length=128)


@router.post("/tagging/apply", response_model=TagReport)
def apply(body: TagRequest, ctx: ContextDep) -> TagReport:
    """Tag these items with the trained tagger (LLM escalation when configured)."""
    if len(body.item_ids) > MAX_IDS:
        raise PayloadTooLarge(f"at most {MAX_IDS} item ids a request")
    return service.tag_items(ctx, item_ids=body.item_ids, allow_llm=body.allow_llm,
                             run_id=body.run_id)


def demo_step(ctx: AppContext, progress: Callable[[int, int], None] | None = None) -> str:
    """Tag the catalog.

    Train the tagger on the bundled labels (once), then tag every untagged prompt (local model
    only).
    """
    from twinengine.catalog.demo import DEMO_LABELS
    from twinengine.catalog.store import CatalogStore

    # A second `make demo` reuses the trained tagger instead of spending a minute retraining;
    # none yet, or one saved by an older version (NotFound), is trained.
    try:
        service.load_model(ctx)
        how = "reused the trained tagger"
    except NotFound:
        trained = service.train(ctx, labels_path=DEMO_LABELS)
        how = f"trained on {trained.used} labelled prompts in {trained.seconds:.0f}s"
    with ctx.db.read() as conn:
        ids = CatalogStore(ctx.db).all_ids(conn)
    todo = service.untagged(ctx, ids)
    if not todo:
        return f"tagger: {how}; every prompt already has topics"
    done = 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        if progress:
            progress(done, len(todo))

    advance(0)
    report = service.tag_items(ctx, item_ids=todo, allow_llm=False, on_progress=advance)
    return (
        f"tagger: {how}; tagged {report.tagged} prompts ({report.model_links} links) in "
        f"{report.seconds:.0f}s"
    )


def _register_demo() -> None:
    from twinengine.cli.main import DEMO_STEPS

    if demo_step not in DEMO_STEPS:
        DEMO_STEPS.append(demo_step)


register(router)
_register_demo()
