"""Search over real catalog rows: CJK queries, filters, facets, pagination, typos, API, pages."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.discovery._search_fixtures import module_context
from tests.factories import load_sample
from twinengine.catalog import service as catalog
from twinengine.context import AppContext
from twinengine.discovery.index import service
from twinengine.errors import InvalidInput, NotFound

pytestmark = pytest.mark.slow  # builds a real index (embeds 300 prompts) once per module


@pytest.fixture(scope="module")
def sctx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppContext]:
    tmp = tmp_path_factory.mktemp("search")
    for ctx in module_context(tmp):
        load_sample(ctx.db, tmp, n=300)
        service.build_index(ctx)
        yield ctx


@pytest.fixture(scope="module")
def client(sctx: AppContext):  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from twinengine.api.app import create_app

    with TestClient(create_app(context=sctx)) as c:
        yield c


def ids(res) -> list[str]:  # type: ignore[no-untyped-def]
    return [h.id for h in res.hits]


# Real rows of the bundled catalog whose prompts are written in Chinese or Japanese.
CJK_CASES = [
    ("孙悟空", "nbp-xa82fc73d35"),  # zh: poem illustrations, 孙悟空和林黛玉的合照
    ("落霞与孤鹜", "nbp-xa82fc73d35"),  # zh: a line of the poem it quotes
    ("潜水艇", "gptimg2-17907"),  # zh: submarine cutaway infographic
    ("松本乱菊", "nbp-x5b95b38a06"),  # zh: anime girls comic
    ("サミュエル・ウルマン", "gptimg2-17979"),  # ja: katakana name in the quote
    ("身近な課題", "gptimg2-18414"),  # ja: kana and kanji mixed
    ("青春とは", "gptimg2-17979"),  # ja
]


@pytest.mark.parametrize("mode", ["lexical", "hybrid"])
@pytest.mark.parametrize(("query", "expected"), CJK_CASES)
def test_cjk_queries_find_the_prompt(
    sctx: AppContext, query: str, expected: str, mode: str
) -> None:
    res = service.search(sctx, q=query, k=3, mode=mode)  # type: ignore[arg-type]
    assert expected in ids(res), (query, [(h.id, h.item.title) for h in res.hits])


# One-character queries: the index holds CJK bigrams, so the lone character stands for them.
LONE_CHAR_CASES = [
    ("猫", "nbp-2780"),  # zh: 猫耳发饰 (cat-ear hair clip)
    ("海", "gptimg2-17907"),  # zh: 深海中的隐形探索者
    ("女", "nbp-x5b95b38a06"),  # zh: 女角色
]


@pytest.mark.parametrize(("query", "expected"), LONE_CHAR_CASES)
def test_one_character_cjk_query_finds_the_prompt(
    sctx: AppContext, query: str, expected: str
) -> None:
    res = service.search(sctx, q=query, k=3, mode="lexical")
    assert ids(res)[:1] == [expected], (query, [(h.id, h.item.title) for h in res.hits])
    assert res.corrected_q is None  # standing for its bigrams is not a correction
    assert ids(service.search(sctx, q=query, k=3))[:1] == [expected]  # hybrid too


def test_cjk_hit_is_highlighted(sctx: AppContext) -> None:
    res = service.search(sctx, q="潜水艇", k=1, mode="lexical")
    hit = res.hits[0]
    marked = [hit.snippet[s:e] for s, e in hit.highlights]
    assert "潜水艇" in marked


def test_english_query_ranks_matching_titles_and_highlights(sctx: AppContext) -> None:
    res = service.search(sctx, q="submarine cutaway", k=5)
    assert "gptimg2-17907" in ids(res)
    assert res.total >= len(res.hits) > 0
    assert res.hits == sorted(res.hits, key=lambda h: -h.score)


def test_filters_apply_inside_retrieval_and_facets_count_the_result_set(sctx: AppContext) -> None:
    everything = service.search(sctx, q="portrait photo", k=50, mode="lexical")
    ja = service.search(
        sctx, q="portrait photo", k=50, mode="lexical", flt=catalog.make_filter(language="ja")
    )
    assert ja.total < everything.total
    assert all("ja" in h.item.languages for h in ja.hits)
    # Facet counts describe the result set: its language counts add up to its size for ja.
    by_lang = {c.value: c.count for c in ja.facets.languages}
    assert by_lang["ja"] == ja.total
    # Every item has exactly one media kind, so media counts partition the result set.
    assert sum(c.count for c in everything.facets.media) == everything.total


def test_topic_and_media_filters(sctx: AppContext) -> None:
    topics = [t for t in catalog.list_topics(sctx.db) if t.count >= 3]
    topic = topics[0].id
    res = service.search(sctx, q="image", k=20, flt=catalog.make_filter(topics=[topic]))
    assert res.hits and all(topic in {t.topic_id for t in h.item.topics} for h in res.hits)
    video = service.search(sctx, q="camera", k=20, flt=catalog.make_filter(media="video"))
    assert video.hits and all(h.item.media == "video" for h in video.hits)


def test_pagination_is_consistent(sctx: AppContext) -> None:
    full = ids(service.search(sctx, q="woman portrait", k=20))
    first = ids(service.search(sctx, q="woman portrait", k=10, offset=0))
    second = ids(service.search(sctx, q="woman portrait", k=10, offset=10))
    assert first + second == full
    assert not set(first) & set(second)


def test_typo_in_a_short_query_is_corrected(sctx: AppContext) -> None:
    right = service.search(sctx, q="submarine", k=3, mode="lexical")
    typo = service.search(sctx, q="submarnie", k=3, mode="lexical")
    assert typo.corrected_q == "submarin"
    assert ids(typo) == ids(right)
    # Long queries are taken literally: an unknown word there is just unknown.
    long = service.search(sctx, q="submarnie cutaway deep sea vessel", k=3, mode="lexical")
    assert long.corrected_q is None


def test_dense_mode_finds_paraphrases(sctx: AppContext) -> None:
    res = service.search(sctx, q="inside of an underwater boat", k=5, mode="dense")
    assert "gptimg2-17907" in ids(res)


def test_bad_input_is_refused(sctx: AppContext) -> None:
    for kwargs in ({"q": ""}, {"q": "x", "k": 0}, {"q": "x", "offset": -1}, {"q": "x" * 600}):
        with pytest.raises(InvalidInput):
            service.search(sctx, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        service.search(sctx, q="x", mode="fuzzy")  # type: ignore[arg-type]


def test_similar_items(sctx: AppContext) -> None:
    hits = service.similar(sctx, item_id="gptimg2-17907", k=5)
    assert len(hits) == 5
    assert "gptimg2-17907" not in [h.id for h in hits]
    with pytest.raises(NotFound):
        service.similar(sctx, item_id="no-such-item")


def test_item_vectors(sctx: AppContext) -> None:
    vec_ids, matrix = service.item_vectors(sctx)
    assert len(vec_ids) == catalog.count_items(sctx.db) == matrix.shape[0]
    assert matrix.shape[1] == 384
    assert abs(float((matrix[0] ** 2).sum()) - 1.0) < 1e-4


def test_api_search_and_similar(client) -> None:  # type: ignore[no-untyped-def]
    r = client.get("/v1/search", params={"q": "孙悟空", "k": 3})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["hits"][0]["id"] == "nbp-xa82fc73d35"
    assert {"topics", "languages", "collections", "media"} <= set(body["facets"])
    r = client.get("/v1/search", params={"q": "portrait", "language": "zh", "mode": "lexical"})
    assert all("zh" in h["item"]["languages"] for h in r.json()["hits"])
    r = client.get("/v1/items/gptimg2-17907/similar", params={"k": 4})
    assert r.status_code == 200 and len(r.json()) == 4
    assert client.get("/v1/items/nope/similar").status_code == 404


def test_api_refuses_bad_input_with_a_reason(client) -> None:  # type: ignore[no-untyped-def]
    for params in ({"q": "x", "k": 0}, {"q": "x", "k": 10_000}, {"q": "x", "offset": 5000}):
        r = client.get("/v1/search", params=params)
        assert r.status_code == 400, (params, r.text)
        assert r.json()["error"]["message"]
    assert client.get("/v1/search", params={"q": "x", "mode": "fuzzy"}).status_code == 422
    assert client.get("/v1/search").status_code == 422


def test_gallery_search_box_uses_search(client) -> None:  # type: ignore[no-untyped-def]
    r = client.get("/", params={"q": "潜水艇"})
    assert r.status_code == 200
    assert "/p/gptimg2-17907" in r.text
    page = client.get("/p/gptimg2-17907")
    assert page.status_code == 200 and "Similar prompts" in page.text


def test_gallery_escapes_queries(client) -> None:  # type: ignore[no-untyped-def]
    r = client.get("/", params={"q": "<script>alert(1)</script>"})
    assert r.status_code == 200
    assert "<script>alert(1)</script>" not in r.text


def test_index_status(sctx: AppContext, tmp_path: Path) -> None:
    status = service.index_status(sctx)
    assert status.built and status.items == status.catalog_items == 300
    assert Path(status.path, "CURRENT").exists()


def test_cli_index_status_and_search(sctx: AppContext) -> None:
    from typer.testing import CliRunner

    from twinengine.cli.main import app

    env = {
        "TWINENGINE_HOME": str(sctx.settings.home),
        "TWINENGINE_DATABASE_URL": sctx.settings.effective_database_url,
    }
    runner = CliRunner()
    status = runner.invoke(app, ["index", "status", "--json"], env=env)
    assert status.exit_code == 0, status.output
    assert '"items": 300' in status.output
    found = runner.invoke(app, ["search", "孙悟空", "--k", "2", "--json"], env=env)
    assert found.exit_code == 0, found.output
    assert "nbp-xa82fc73d35" in found.output
    bad = runner.invoke(app, ["search", "x", "--mode", "fuzzy"], env=env)
    assert bad.exit_code == 2 and "mode must be one of" in bad.output
