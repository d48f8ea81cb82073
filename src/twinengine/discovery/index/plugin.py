"""Registers search with the app: API router, start-up load, demo step, prompt-page section.

Imported once from ``twinengine.api.engines``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import Request

from twinengine.api.app import register
from twinengine.api.routes.search import router
from twinengine.context import AppContext
from twinengine.discovery.index import service
from twinengine.discovery.index.state import state_of
from twinengine.errors import AppError

log = logging.getLogger(__name__)


def on_startup(ctx: AppContext) -> None:
    """Load the persisted index (seconds) and warm the query encoder in the background."""
    state = state_of(ctx)
    if state.snapshot is None:
        log.warning("no search index yet: run `twinengine index build` (search answers 503)")
        return

    def warm() -> None:
        try:
            state.embedder().encode_query("warm up", cache=False)
        except Exception:  # search reports the failure on first use
            log.exception("could not load the embedding model")

    ctx.warm_in_background("search-warmup", warm)


def demo_step(ctx: AppContext, progress: Callable[[int, int], None] | None = None) -> str:
    """Search index.

    Load the persisted index, or build it the first time.
    """
    status = service.ensure_index(ctx, progress=progress)
    return f"search index: {status.items} items, {status.vocabulary} terms ({status.path})"


def similar_section(request: Request, item: Any) -> dict[str, Any] | None:
    """The prompt page's "Similar prompts" section."""
    ctx = request.app.state.context
    try:
        hits = service.similar(ctx, item_id=item.id, k=6)
    except AppError:  # no index yet, or the item is not indexed yet: leave the section out
        return None
    if not hits:
        return None
    return {"title": "Similar prompts", "items": [h.item for h in hits], "surface": "similar"}


register(router, on_startup=on_startup)


def _register_web_and_demo() -> None:
    from twinengine.cli.main import DEMO_STEPS
    from twinengine.web.views import PROMPT_PAGE_SECTIONS

    if similar_section not in PROMPT_PAGE_SECTIONS:
        PROMPT_PAGE_SECTIONS.append(similar_section)
    if demo_step not in DEMO_STEPS:
        DEMO_STEPS.append(demo_step)


_register_web_and_demo()
