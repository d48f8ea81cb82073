"""Server-rendered pages: content, attribution, and escaping of untrusted prompt text."""

from __future__ import annotations

from pathlib import Path

from tests.factories import make_item, write_jsonl
from twinengine.catalog import service

EVIL_TITLE = "<script>window.__pwned = 1</script>Evil title"
EVIL_BODY = '<img src=x onerror="window.__pwned=2"> and <b>bold</b> {argument name="x" default="y"}'


def load_evil(db, tmp_path: Path) -> None:
    service.ingest(
        db,
        path=write_jsonl(
            tmp_path / "evil.jsonl",
            [
                make_item(
                    "evil-1",
                    title=EVIL_TITLE,
                    prompt=EVIL_BODY,
                    description="<i>desc</i>",
                    author="<u>me</u>",
                )
            ],
        ),
    )


def test_gallery_lists_cards_and_facets(client, sample_catalog) -> None:
    html = client.get("/").text
    assert 'class="card"' in html and "Language" in html and "Deliverable" in html
    assert "Content-Security-Policy".lower() in {k.lower() for k in client.get("/").headers}


def test_prompt_page_shows_attribution(client, sample_catalog) -> None:
    item = service.list_items(sample_catalog.db, flt=service.make_filter(), limit=1).data[0]
    html = client.get(f"/p/{item.id}").text
    assert item.source_url in html and "Copy prompt" in html and (item.licence or "") in html


def test_untrusted_text_is_escaped(client, ctx, tmp_path: Path) -> None:
    load_evil(ctx.db, tmp_path)
    for url in ("/", "/p/evil-1", "/?q=Evil"):
        html = client.get(url).text
        assert "<script>window.__pwned" not in html
        assert "<img src=x onerror" not in html
        assert "<u>me</u>" not in html
    assert (
        "&lt;script&gt;window.__pwned = 1&lt;/script&gt;Evil title" in client.get("/p/evil-1").text
    )


def test_missing_prompt_is_a_404_page(client) -> None:
    resp = client.get("/p/nope", headers={"accept": "text/html"})
    assert resp.status_code == 404 and "Back to the gallery" in resp.text
