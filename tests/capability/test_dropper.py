"""The content drop: README parsing, duplicate detection, the workflow end to end, S3 publishing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.factories import demo_rows, write_jsonl
from tests.storage.test_objects import s3_server, s3_settings  # noqa: F401
from twinengine.capability.dropper import service as drops
from twinengine.capability.dropper.dedupe import find_duplicates, item_text
from twinengine.capability.dropper.markdown import parse_readme
from twinengine.capability.workflows import service as wf
from twinengine.catalog import service as catalog
from twinengine.context import AppContext, open_context
from twinengine.storage.objects import open_object_store

# The bundled catalog's ten pairs that differ only in case or spacing (data README).
NEAR_DUP_PAIRS = [
    ("nbp-19787", "nbp-19795"),
    ("nbp-13266", "nbp-13299"),
    ("nbp-11848", "nbp-11858"),
    ("nbp-10088", "nbp-10124"),
    ("nbp-2674", "nbp-3055"),
    ("nbp-2595", "nbp-2741"),
    ("nbp-2635", "nbp-x3940a9c02e"),
    ("nbp-2405", "nbp-2620"),
    ("nbp-x33af93d647", "nbp-xa9350fdbb0"),
    ("nbp-x75fb5ec366", "nbp-xb4a0f6065a"),
]


def rows_by_id() -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in demo_rows()}


def youmind_readme(rows: list[dict[str, Any]]) -> str:
    """A README in the layout of YouMind-OpenLab's lists, from real catalog rows."""
    out = [
        "# 🚀 Awesome Prompts",
        "",
        "## 📖 Table of Contents",
        "",
        "- [All](#all)",
        "",
        "## 🔥 Featured Prompts",
        "",
    ]
    sections = []
    for n, r in enumerate(rows, start=1):
        sections += [
            f"### No. {n}: {r['title']}",
            "",
            "![Language-EN](https://img.shields.io/badge/Language-EN-blue)",
            "",
            "#### 📖 Description",
            "",
            r["description"] or "",
            "",
            "#### 📝 Prompt",
            "",
            "```",
            r["prompt"],
            "```",
            "",
            "#### 🖼️ Generated Images",
            "",
            "##### Image 1",
            "",
            '<div align="center">',
            f'<img src="{r["image_urls"][0]}" width="600" alt="x">',
            "</div>",
            "",
            "#### 📌 Details",
            "",
            f"- **Author:** [{r['author']}]({r['author_url']})",
            f"- **Source:** [Twitter Post]({r['source_url'] or 'null'})",
            "- **Published:** "
            + __import__("datetime").date.fromisoformat(r["published"]).strftime("%B %d, %Y"),
            f"- **Languages:** {', '.join(r['languages'])}",
            "",
            "---",
            "",
        ]
    # the first prompt is listed under "Featured" and again under "All": kept once
    featured = sections[: sections.index("---") + 1]
    return "\n".join(out + featured + ["", "## 📋 All Prompts", ""] + sections)


def test_readme_rows_match_the_catalog_rows_they_came_from(tmp_path: Path) -> None:
    src = [
        r
        for r in demo_rows()
        if r["collection"] == "YouMind-OpenLab/awesome-seedream-4.5"
        and r["description"]
        and r["published"]
        and r["author_url"]
    ][:5]
    readme = tmp_path / "README.md"
    readme.write_text(youmind_readme(src), encoding="utf-8")
    rows = parse_readme(
        readme, collection="YouMind-OpenLab/awesome-seedream-4.5", licence="CC-BY-4.0"
    )
    assert len(rows) == 5
    for got, want in zip(rows, src, strict=True):
        assert got["title"] == want["title"]
        assert got["prompt"] == want["prompt"]
        assert got["description"] == want["description"]
        assert got["image_urls"] == want["image_urls"][:1]
        assert (got["author"], got["author_url"]) == (want["author"], want["author_url"])
        assert got["published"] == want["published"]
        assert got["languages"] == want["languages"]
        assert got["collection"] == want["collection"] and got["licence"] == "CC-BY-4.0"
    # stable ids: parsing again gives the same ids
    assert [r["id"] for r in parse_readme(readme, collection=src[0]["collection"])] == [
        r["id"] for r in rows
    ]


def test_readme_example_layout(tmp_path: Path) -> None:
    """jamez-bondos' layout: '## Example N: Title (by [@x](url))', [Source Link], **Prompt:**."""
    readme = tmp_path / "README.md"
    readme.write_text(
        "# Awesome\n\n## Contents\n\n* [Example 2](#e2)\n\n"
        '<a id="examples-2"></a>\n## Example 2: Gold Pendant Necklace (by [@azed_ai](https://x.com/azed_ai))\n\n'
        "[Source Link](https://x.com/azed_ai/status/1)\n\n"
        '<img src="./examples/gold.png" width="300" alt="a pendant">\n\n'
        "**Prompt:**\n```\nA photorealistic close-up of a gold pendant.\n```\n\n"
        "## Example 1: No prompt here\n\nJust text.\n",
        encoding="utf-8",
    )
    rows = parse_readme(readme, collection="jamez-bondos/awesome-gpt4o-images")
    assert len(rows) == 1
    row = rows[0]
    assert row["title"] == "Gold Pendant Necklace"
    assert row["author"] == "azed_ai" and row["author_url"] == "https://x.com/azed_ai"
    assert row["source_url"] == "https://x.com/azed_ai/status/1"
    assert row["prompt"] == "A photorealistic close-up of a gold pendant."
    assert row["image_urls"] == ["./examples/gold.png"]


def test_bundled_near_duplicate_pairs_are_caught() -> None:
    by_id = rows_by_id()
    seconds = {b for _, b in NEAR_DUP_PAIRS}
    firsts = {a for a, _ in NEAR_DUP_PAIRS}
    # the pairs' first members among 3,000 other real prompts; the incoming drop holds the
    # second members plus 40 prompts that repeat nothing
    pool = [i for i in by_id if i not in seconds and i not in firsts]
    known = [(i, item_text(by_id[i])) for i in [*firsts, *pool[:3000]]]
    others = [(i, item_text(by_id[i])) for i in pool[-40:]]
    incoming = [(b, item_text(by_id[b])) for _, b in NEAR_DUP_PAIRS] + others
    dups = {d.id: d for d in find_duplicates(known, incoming, threshold=0.9)}
    assert set(dups) == seconds
    for a, b in NEAR_DUP_PAIRS:
        assert dups[b].of == a and dups[b].kind == "exact"
    # within one drop too: the second of each pair repeats the first
    both = [(i, item_text(by_id[i])) for pair in NEAR_DUP_PAIRS for i in pair]
    within = find_duplicates([], both, threshold=0.9)
    assert {(d.of, d.id) for d in within} == set(NEAR_DUP_PAIRS) and all(
        d.within_drop for d in within
    )


def test_near_duplicates_by_shingles_not_only_hashes() -> None:
    base = demo_rows()[100]
    text = item_text(base)
    words = text.split()
    edited = " ".join(words[:-1] + ["changed"])  # one word differs: not an exact copy
    dups = find_duplicates(
        [(base["id"], text)], [("new-1", edited), ("new-2", "a cat on a mat")], threshold=0.8
    )
    assert [(d.id, d.of, d.kind) for d in dups] == [("new-1", base["id"], "near")]
    assert 0.8 <= dups[0].similarity < 1.0


def _drop_rows(sample_ids: set[str], n: int) -> list[dict[str, Any]]:
    return [r for r in demo_rows()[::7] if r["id"] not in sample_ids][:n]


def test_drop_end_to_end(sample_catalog: AppContext, tmp_path: Path) -> None:
    ctx = sample_catalog
    before = catalog.count_items(ctx.db)
    sample_ids = {
        i.id for i in catalog.list_items(ctx.db, flt=catalog.make_filter(), limit=1000).data
    }
    new = _drop_rows(sample_ids, 30)
    existing = catalog.get_items(ctx.db, ids=sorted(sample_ids)[:2])
    copy = dict(new[0], id="copy-of-new-0")  # exact copy inside the drop
    shout = {"id": "shouting-copy", "title": "x", "prompt": existing[0].body.upper()}
    bad = {"id": "bad row!", "title": ""}
    path = write_jsonl(tmp_path / "drop.jsonl", [*new, copy, shout, bad])
    report = drops.run_drop(ctx, path=path, allow_llm=False, batch_size=8)
    c = report["counts"]
    assert (c["rows"], c["valid"], c["rejected"]) == (33, 32, 1)
    assert c["duplicates"] == 2 and c["inserted"] == 30 and c["published"] == 30
    kinds = {d["id"]: (d["of"], d["kind"]) for d in report["duplicates"]}
    assert kinds == {
        "copy-of-new-0": (new[0]["id"], "exact"),
        "shouting-copy": (existing[0].id, "exact"),
    }
    assert report["errors"][0]["line"] == 33
    assert catalog.count_items(ctx.db) == before + 30
    store = open_object_store(ctx.settings)
    assert len(store.list("items/")) == 30
    manifest = json.loads(store.get(f"drops/{report['run_id']}/manifest.json"))
    assert len(manifest["items"]) == 30 and manifest["report"]["counts"] == c
    published = json.loads(store.get(f"items/{new[3]['id']}.json"))
    assert published["body"] == new[3]["prompt"] and published["author"] == new[3]["author"]
    # the run is listed with its steps and their timings
    run = wf.get_run(ctx, run_id=report["run_id"])
    assert run.status == "SUCCESS" and run.cost_usd == 0.0
    names = [s.name for s in run.steps]
    assert names[:3] == ["stage_input", "find_duplicate_items", "ingest_items"]
    assert names.count("tag_batch") == 4 and names.count("publish_batch") == 4
    assert all(s.seconds is not None and s.error is None for s in run.steps)
    # same content again: the same run id, answered from DBOS without running again
    again = drops.run_drop(ctx, path=path, allow_llm=False, batch_size=8)
    assert again == report
    # a new run of the same rows changes nothing
    third = drops.run_drop(ctx, path=path, run_id="drop-again", allow_llm=False)
    assert third["counts"]["inserted"] == 0 and third["counts"]["unchanged"] == 30
    assert catalog.count_items(ctx.db) == before + 30


def test_drop_of_a_folder_with_a_readme(ctx: AppContext, tmp_path: Path) -> None:
    src = [
        r
        for r in demo_rows()
        if r["collection"] == "YouMind-OpenLab/awesome-seedream-4.5"
        and r["description"]
        and r["published"]
        and r["author_url"]
    ][:4]
    folder = tmp_path / "inbox"
    folder.mkdir()
    (folder / "README.md").write_text(youmind_readme(src), encoding="utf-8")
    write_jsonl(folder / "more.jsonl", demo_rows()[:3])
    report = drops.run_drop(
        ctx,
        path=folder,
        collection="YouMind-OpenLab/awesome-seedream-4.5",
        licence="CC-BY-4.0",
        allow_llm=False,
    )
    assert report["counts"]["inserted"] == 7
    titles = {i.title for i in catalog.list_items(ctx.db, flt=catalog.make_filter(), limit=50).data}
    assert {r["title"] for r in src} <= titles


def test_drop_publishes_to_s3(settings, tmp_path: Path, s3_server: str) -> None:  # noqa: F811
    s3 = s3_settings(tmp_path, s3_server).model_copy(
        update={"home": settings.home, "database_url": settings.database_url}
    )
    ctx = open_context(s3)
    try:
        path = write_jsonl(tmp_path / "d.jsonl", demo_rows()[:5])
        report = drops.run_drop(ctx, path=path, allow_llm=False)
        bucket = s3.object_store_url.removeprefix("s3://").split("/")[0]
        assert report["manifest_url"].startswith(f"{s3_server}/{bucket}/twin/drops/")
        store = open_object_store(s3)
        keys = store.list()
        assert sorted(k for k in keys if k.startswith("items/")) == sorted(
            f"items/{r['id']}.json" for r in demo_rows()[:5]
        )
        assert f"drops/{report['run_id']}/report.json" in keys
        assert (
            json.loads(store.get(f"drops/{report['run_id']}/report.json"))["counts"]["published"]
            == 5
        )
    finally:
        ctx.close()


def test_scheduled_drop_claims_the_inbox(ctx: AppContext, tmp_path: Path) -> None:
    import datetime as dt

    from twinengine.capability.dropper.workflow import scheduled_drop
    from twinengine.capability.workflows import runtime

    inbox = ctx.settings.home / "inbox"
    inbox.mkdir(parents=True)
    write_jsonl(inbox / "today.jsonl", demo_rows()[10:14])
    with runtime.running(ctx):
        from dbos import DBOS

        when = dt.datetime(2026, 1, 2, 6, 0, tzinfo=dt.UTC)
        report = DBOS.start_workflow(scheduled_drop, when, None).get_result()
        empty = DBOS.start_workflow(scheduled_drop, when + dt.timedelta(days=1), None).get_result()
    assert report["counts"]["inserted"] == 4
    assert empty == {"skipped": "inbox empty", "day": "20260103"}
    assert (
        not (inbox / "today.jsonl").exists()
        and (inbox / "claimed" / "20260102" / "today.jsonl").exists()
    )


@pytest.mark.parametrize("bad", ["missing.jsonl"])
def test_drop_of_missing_input_is_refused(ctx: AppContext, tmp_path: Path, bad: str) -> None:
    from twinengine.errors import NotFound

    with pytest.raises(NotFound):
        drops.run_drop(ctx, path=tmp_path / bad)


@pytest.mark.slow
def test_running_server_swaps_in_the_index_a_worker_drop_published(
    settings, tmp_path: Path
) -> None:
    """A server process and a worker process: modelled as two contexts on one home."""
    import threading

    from twinengine.capability.dropper.follow import IndexFollower
    from twinengine.discovery.index.docs import docs_of
    from twinengine.discovery.index.service import build_index
    from twinengine.discovery.index.state import state_of

    server = open_context(settings)
    worker = open_context(settings)
    try:
        catalog.ingest(server.db, path=write_jsonl(tmp_path / "c.jsonl", demo_rows()[:20]))
        build_index(server)
        state = state_of(server)
        state.close()  # stop in-process change notifications: only the file can tell it now
        follower = IndexFollower(server)
        assert follower.check() is False  # nothing new yet
        for thread in threading.enumerate():  # the loaded snapshot's items finish reading
            if thread.name == "search-docs":
                thread.join(30)
        old_docs = docs_of(state.snapshot).get(server.db, state.snapshot.ids)
        rows = demo_rows()[20:25]
        report = drops.run_drop(
            worker, path=write_jsonl(tmp_path / "d.jsonl", rows), allow_llm=False
        )
        assert report["index"]["indexed"] == 5
        assert not {r["id"] for r in rows} & set(state.snapshot.ids)
        assert follower.check() is True
        assert {r["id"] for r in rows} <= set(state.snapshot.ids)
        assert len(state.snapshot.ids) == 25
        # The 20 items the drop did not touch carry over (same objects: not re-read); the
        # new ones are read from the catalog.
        new_docs = docs_of(state.snapshot).get(server.db, state.snapshot.ids)
        assert all(new_docs[i] is it for i, it in old_docs.items())
        assert [new_docs[r["id"]].title for r in rows] == [r["title"] for r in rows]
    finally:
        worker.close()
        server.close()
