"""The gallery in real Chromium: load, filter by a topic, open a prompt, copy it; escaping."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser import chromium_page, live_server
from tests.web.test_pages import load_evil
from twinengine.api.app import create_app

pytestmark = pytest.mark.browser


def test_gallery_flow(sample_catalog, tmp_path: Path) -> None:
    app = create_app(context=sample_catalog)
    with (
        live_server(app) as base,
        chromium_page(permissions=["clipboard-read", "clipboard-write"]) as page,
    ):
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(base + "/")
        assert page.locator("article.card").count() == 24
        # Unreachable images fall back to the placeholder.
        page.wait_for_function("document.querySelectorAll('.thumb.noimg').length >= 12")
        page.screenshot(path=str(tmp_path / "gallery.png"), full_page=False)

        topic = page.locator("a.facet.topic").first
        topic_id = topic.get_attribute("data-topic")
        expected = int(topic.locator("span").last.inner_text())
        topic.click()
        page.wait_for_url(f"**topic={topic_id}**")
        assert page.locator("p.count strong").inner_text().replace(",", "") == str(expected)
        assert page.locator("a.chip.on").count() == 1

        page.locator("article.card h3 a").first.click()
        page.wait_for_url("**/p/**")
        body = page.locator("#prompt-text").inner_text()
        assert body
        assert page.locator("a.source").count() == 1
        page.locator("button.copy").click()
        page.wait_for_function("document.querySelector('.copied').textContent.length > 0")
        assert page.evaluate("navigator.clipboard.readText()") == body
        page.screenshot(path=str(tmp_path / "prompt.png"), full_page=False)
        assert errors == []


def test_search_box(sample_catalog) -> None:
    app = create_app(context=sample_catalog)
    with live_server(app) as base, chromium_page() as page:
        page.goto(base + "/")
        page.fill("input[name=q]", "poster")
        page.press("input[name=q]", "Enter")
        page.wait_for_url("**q=poster**")
        assert page.locator("article.card").count() > 0


def test_untrusted_prompts_render_as_text_and_run_nothing(ctx, tmp_path: Path) -> None:
    load_evil(ctx.db, tmp_path)
    app = create_app(context=ctx)
    with live_server(app) as base, chromium_page() as page:
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        for url in ("/", "/p/evil-1"):
            page.goto(base + url)
            page.wait_for_load_state("load")
            assert page.evaluate("window.__pwned") is None
        assert "<script>window.__pwned = 1</script>Evil title" in page.locator("h1").inner_text()
        assert '<img src=x onerror="window.__pwned=2">' in page.locator("#prompt-text").inner_text()
        assert page.locator("#prompt-text img").count() == 0
        assert dialogs == []
