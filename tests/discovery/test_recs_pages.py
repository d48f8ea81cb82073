"""The gallery's feed, trending and related sections, and the tracker that logs them."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest

from twinengine.discovery.candidates import service
from twinengine.discovery.events import service as events


def _activity(ctx) -> list[str]:  # type: ignore[no-untyped-def]
    ids = sorted(service.refresh(ctx).ids)
    now = dt.datetime.now(dt.UTC)
    evs = [
        {"event_id": f"k{n}", "type": "click", "user_id": f"u{n % 4}", "item_id": ids[n % 6],
         "ts": (now - dt.timedelta(hours=1)).isoformat()}
        for n in range(24)
    ]  # fmt: skip
    events.record(ctx, evs)
    service.refresh(ctx)
    return ids


def test_no_sections_before_any_activity(client, sample_catalog) -> None:
    html = client.get("/").text
    assert "For you" not in html and "Trending now" not in html
    assert html.count('class="card"') == 24


def test_gallery_and_prompt_sections(client, sample_catalog) -> None:
    ids = _activity(sample_catalog)
    client.cookies.set("te_sid", "abcdef123456")
    html = client.get("/").text
    assert "For you" in html and "Trending now" in html
    m = re.search(r'data-surface="feed" data-request-id="([0-9a-f]{32})"', html)
    assert m, "the feed section carries its request id for the tracker"
    assert '<script src="/static/tracker.js" defer></script>' in html
    assert "For you" not in client.get("/", params={"q": "poster"}).text
    page = client.get(f"/p/{ids[0]}").text
    assert "Related prompts" in page and 'data-surface="related"' in page
    assert client.get("/static/tracker.js").status_code == 200


@pytest.mark.browser
def test_tracker_logs_impressions_clicks_and_copies(sample_catalog) -> None:
    from tests.browser import chromium_page, live_server
    from twinengine.api.app import create_app

    ids = _activity(sample_catalog)
    app = create_app(context=sample_catalog)
    with (
        live_server(app) as base,
        chromium_page(permissions=["clipboard-read", "clipboard-write"]) as page,
    ):
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(base + "/")
        page.goto(base + "/")  # the second view has the session cookie: a served feed
        section = page.locator('section[data-surface="feed"]')
        request_id = section.get_attribute("data-request-id")
        card = section.locator("article.card").nth(1)
        item = card.get_attribute("data-item-id")
        page.wait_for_timeout(300)
        card.locator("h3 a").click()
        page.wait_for_url("**/p/**")
        page.locator("button.copy").click()
        page.wait_for_function("document.querySelector('.copied').textContent.length > 0")
        page.wait_for_timeout(500)
        page.goto(base + "/")  # leaving the prompt page sends its dwell
        page.wait_for_timeout(500)
        assert errors == []
    rows = events.load_events(sample_catalog)
    mine = [r for r in rows if r["user_key"].startswith("s:")]
    imps = [r for r in mine if r["type"] == "impression" and r["request_id"] == request_id]
    assert imps and item in imps[0]["slate"] and imps[0]["surface"] == "feed"
    clicks = [r for r in mine if r["type"] == "click"]
    assert clicks and clicks[0]["item_id"] == item and clicks[0]["position"] == 2
    assert clicks[0]["request_id"] == request_id
    convs = [r for r in mine if r["type"] == "conversion"]
    assert convs and convs[0]["kind"] == "copy" and convs[0]["request_id"] == request_id
    assert any(r["type"] == "dwell" and r["item_id"] == item for r in mine)
    assert json.dumps(ids)  # the catalog was real
