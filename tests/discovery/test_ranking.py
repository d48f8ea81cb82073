"""Learned ranking end to end on a small event log written through the events service."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from twinengine.catalog.models import item_topics
from twinengine.context import AppContext
from twinengine.discovery.candidates.schemas import Candidate
from twinengine.discovery.events import service as events
from twinengine.discovery.ranking import service
from twinengine.discovery.ranking.diversity import Rules
from twinengine.discovery.ranking.features import COL, CatalogView, FeatureState, read_events
from twinengine.discovery.ranking.features import build_training_frame as build_frame
from twinengine.discovery.ranking.models import TrainParams
from twinengine.errors import InvalidInput, ModelFitError, NotFound

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
FAST = TrainParams(rounds=40, early_stopping=10, min_data_in_leaf=10, rank_rounds=40)


def _write_log(ctx: AppContext, *, n_slates: int = 500, seed: int = 0) -> None:
    """Users who like 1-2 topics see random slates of 10; clicks follow position x appeal."""
    rng = np.random.default_rng(seed)
    with ctx.db.read() as conn:
        links = conn.execute(select(item_topics.c.item_id, item_topics.c.topic_id)).all()
    by_item: dict[str, set[str]] = {}
    for item_id, topic_id in links:
        by_item.setdefault(item_id, set()).add(topic_id)
    item_ids = sorted(by_item)
    all_topics = sorted({t for ts in by_item.values() for t in ts})
    users = {f"u{n}": set(rng.choice(all_topics, size=2, replace=False)) for n in range(30)}
    exam = 1.0 / np.arange(1, 11)
    batch: list[dict] = []
    for n in range(n_slates):
        user = f"u{rng.integers(0, 30)}"
        t = T0 + dt.timedelta(minutes=10 * n)
        slate = list(rng.choice(item_ids, size=10, replace=False))
        attrs: dict = {"scores": [float(x) for x in rng.random(10)]}
        if rng.random() < 0.3:
            k = int(rng.integers(2, 11))
            attrs["swap"] = [1, k]
        rid = f"req{n}"
        base = {"user_id": user, "request_id": rid, "surface": "feed"}
        batch.append(
            {
                **base,
                "event_id": f"imp{n}",
                "type": "impression",
                "ts": t.isoformat(),
                "slate": slate,
                "attributes": attrs,
            }
        )
        for pos, item in enumerate(slate, start=1):
            match = len(by_item[item] & users[user]) > 0
            appeal = 0.8 if match else 0.08
            if rng.random() < exam[pos - 1] * appeal:
                tc = t + dt.timedelta(seconds=5 + pos)
                ev = {**base, "item_id": item, "position": pos}
                batch.append(
                    {**ev, "event_id": f"c{n}-{pos}", "type": "click", "ts": tc.isoformat()}
                )
                if rng.random() < (0.6 if match else 0.05):
                    batch.append(
                        {
                            **ev,
                            "event_id": f"v{n}-{pos}",
                            "type": "conversion",
                            "kind": "copy",
                            "ts": (tc + dt.timedelta(seconds=3)).isoformat(),
                        }
                    )
    events.record(ctx, batch)


@pytest.fixture
def logged(sample_catalog: AppContext) -> AppContext:
    """The sample catalog plus a synthetic event log."""
    _write_log(sample_catalog)
    return sample_catalog


def test_features_are_point_in_time(sample_catalog: AppContext) -> None:
    ctx = sample_catalog
    item = CatalogView.load(ctx.db).ids[0]
    base = {"user_id": "u1", "surface": "feed"}
    events.record(
        ctx,
        [
            {
                **base,
                "event_id": "i1",
                "type": "impression",
                "ts": T0.isoformat(),
                "slate": [item],
                "request_id": "r1",
            },
            {
                **base,
                "event_id": "c1",
                "type": "click",
                "item_id": item,
                "request_id": "r1",
                "ts": (T0 + dt.timedelta(seconds=5)).isoformat(),
            },
            {
                **base,
                "event_id": "i2",
                "type": "impression",
                "slate": [item],
                "request_id": "r2",
                "ts": (T0 + dt.timedelta(hours=1)).isoformat(),
            },
        ],
    )
    state = FeatureState(CatalogView.load(ctx.db))
    frame = build_frame(state, read_events(ctx.db))
    assert len(frame) == 2
    assert frame.click.tolist() == [1, 0]  # the click is the first impression's label only
    first, second = frame.X
    # Before the click: no click history; after it: the item's CTR and the user's topics move.
    assert first[COL["item_pop"]] == 0.0 and first[COL["user_clicks"]] == 0.0
    assert second[COL["item_pop"]] > 0.0 and second[COL["user_clicks"]] > 0.0
    assert second[COL["item_ctr"]] > first[COL["item_ctr"]]
    assert first[COL["position"]] == 1.0


def test_train_writes_versioned_artifacts_and_beats_baselines(logged: AppContext) -> None:
    info = service.train(logged, params=FAST, activate=True)
    folder = Path(logged.settings.home) / "models" / "ranking" / info["version"]
    names = {p.name for p in folder.iterdir()}
    assert {"rank.txt", "ctr.txt", "cvr.txt", "schema.json", "metrics.json"} <= names
    assert not any(n.endswith((".pkl", ".pickle", ".joblib")) for n in names)
    schema = json.loads((folder / "schema.json").read_text())
    assert "position" not in schema["heads"]["rank"] and "position" in schema["heads"]["ctr"]
    m = info["metrics"]
    assert m["ndcg10_lambdamart"] > m["ndcg10_popularity"]
    assert m["ndcg10_lambdamart"] > m["ndcg10_untrained"]["generator"]  # random scores
    # Too few explored clicks here for harvesting alone: the contextual click model steps in.
    curve = info["propensity"]["values"]
    assert info["propensity"]["method"] == "contextual_pbm"
    assert curve[0] == 1.0 and np.mean(curve[5:]) < 0.6, curve  # true curve: 1/position
    assert set(info["active_for"]) >= {"feed", "search"}
    assert service.list_models(logged)[0]["version"] == info["version"]


def test_train_without_events_refuses(sample_catalog: AppContext) -> None:
    with pytest.raises(ModelFitError):
        service.train(sample_catalog, params=FAST)
    with pytest.raises(InvalidInput):
        service.train(sample_catalog, surfaces=["nowhere"])


def _candidates(ctx: AppContext, n: int = 200) -> list[Candidate]:
    ids = CatalogView.load(ctx.db).ids[:n]
    return [Candidate(item_id=i, score=float(n - k), source="test") for k, i in enumerate(ids)]


def test_rerank_falls_back_to_generator_scores(sample_catalog: AppContext) -> None:
    cands = _candidates(sample_catalog, 50)
    out = service.rerank(sample_catalog, surface="feed", user_key="u1", candidates=cands[::-1], k=5)
    assert [c.item_id for c in out] == [c.item_id for c in cands[:5]]
    assert out[0] is cands[0]  # untouched objects when no model serves
    with pytest.raises(InvalidInput):
        service.rerank(sample_catalog, surface="feed", user_key=None, candidates=cands, k=0)


def test_rerank_uses_active_model_and_hot_reloads(logged: AppContext) -> None:
    ctx = logged
    ctx.settings.ranking_reload_check_s = 0.0
    cands = _candidates(ctx, 200)
    before = service.rerank(ctx, surface="feed", user_key="u3", candidates=cands, k=10)
    assert [c.source for c in before] == ["test"] * 10 and "ranker" not in before[0].features
    info = service.train(ctx, params=FAST)
    service.activate(ctx, version=info["version"], surfaces=["feed"])
    with service.runtime(ctx)._state_lock:  # features being built elsewhere: no waiting
        busy = service.rerank(ctx, surface="feed", user_key="u3", candidates=cands, k=10)
    assert [c.item_id for c in busy] == [c.item_id for c in before]
    after = service.rerank(ctx, surface="feed", user_key="u3", candidates=cands, k=10)
    assert after[0].features["ranker"] == info["version"]
    assert after[0].features["gen_score"] in {c.score for c in cands}
    assert [c.score for c in after] == sorted((c.score for c in after), reverse=True)
    # Another surface still falls back; a named model serves anywhere (experiments).
    other = service.rerank(ctx, surface="search", user_key="u3", candidates=cands, k=10)
    assert "ranker" not in other[0].features
    named = service.rerank(
        ctx, surface="search", user_key="u3", candidates=cands, k=10, model=info["version"]
    )
    assert named[0].features["ranker"] == info["version"]
    # A second server process sees the activation through the registry files alone.
    service.deactivate(ctx, surfaces=["feed"])
    back = service.rerank(ctx, surface="feed", user_key="u3", candidates=cands, k=10)
    assert "ranker" not in back[0].features
    with pytest.raises(NotFound):
        service.activate(ctx, version="r20000101000000-abcdef", surfaces=["feed"])
    with pytest.raises(InvalidInput):
        service.activate(ctx, version="../../etc", surfaces=["feed"])


def test_rerank_applies_surface_rules(logged: AppContext) -> None:
    ctx = logged
    ctx.settings.ranking_reload_check_s = 0.0
    cands = _candidates(ctx, 30)
    service.set_rules(
        ctx, surface="topic", rules=Rules(hidden=[cands[0].item_id], pins={cands[20].item_id: 1})
    )
    out = service.rerank(ctx, surface="topic", user_key=None, candidates=cands, k=5)
    ids = [c.item_id for c in out]
    assert ids[0] == cands[20].item_id and cands[0].item_id not in ids
    assert service.get_rules(ctx, surface="topic").pins == {cands[20].item_id: 1}


def test_rerank_200_candidates_is_fast(logged: AppContext) -> None:
    ctx = logged
    info = service.train(ctx, params=FAST)
    service.activate(ctx, version=info["version"], surfaces=["feed"])
    cands = _candidates(ctx, 200)
    for _ in range(20):  # warm-up: features built, model loaded
        service.rerank(ctx, surface="feed", user_key="u3", candidates=cands, k=20)
    took = []
    for _ in range(200):
        t = time.thread_time()
        service.rerank(ctx, surface="feed", user_key="u3", candidates=cands, k=20)
        took.append(time.thread_time() - t)
    # CPU time of the calling thread: wall time on a shared, overloaded test machine measures
    # the queue for a core, not the code (bench/rank.py reports both).
    p99_ms = float(np.percentile(took, 99)) * 1000
    assert p99_ms < 10.0, p99_ms


def test_features_refresh_picks_up_new_events(logged: AppContext) -> None:
    rt = service.runtime(logged)
    state = rt.features()
    seen = state.seen_events
    item = state.catalog.ids[5]
    events.record(
        logged,
        [
            {
                "event_id": "late-click",
                "type": "click",
                "user_id": "u9",
                "item_id": item,
                "ts": (T0 + dt.timedelta(days=30)).isoformat(),
            }
        ],
    )
    assert rt.refresh() == 1
    assert state.seen_events == seen + 1 and state.clicks[state.catalog.index[item]] >= 1


def test_cli_and_api(logged: AppContext, client) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from twinengine.cli.main import app

    env = {
        "TWINENGINE_HOME": str(logged.settings.home),
        "TWINENGINE_DATABASE_URL": logged.settings.effective_database_url,
    }
    runner = CliRunner()
    res = runner.invoke(app, ["rank", "train", "--rounds", "30", "--surface", "feed"], env=env)
    assert res.exit_code == 0, res.output
    version = service.list_models(logged)[0]["version"]
    assert version in res.output and "ndcg10_lambdamart" in res.output
    res = runner.invoke(app, ["rank", "activate", version, "--surface", "feed"], env=env)
    assert res.exit_code == 0 and version in res.output
    res = runner.invoke(app, ["rank", "activate", version, "--surface", "moon"], env=env)
    assert res.exit_code != 0 and "unknown surface" in res.output
    assert runner.invoke(app, ["rank", "list"], env=env).exit_code == 0
    res = runner.invoke(app, ["rank", "show", version], env=env)
    assert res.exit_code == 0 and "propensity" in res.output

    body = client.get("/v1/ranking/models").json()
    assert body["count"] == 1 and body["active"] == {"feed": version}
    assert client.get(f"/v1/ranking/models/{version}").json()["version"] == version
    assert client.get("/v1/ranking/models/r20000101000000-abcdef").status_code == 404
    assert client.get("/v1/ranking/models/nonsense").status_code == 400
    r = client.post(f"/v1/ranking/models/{version}/activate", json={"surfaces": ["search"]})
    assert r.status_code == 200 and r.json()["surfaces"]["search"] == version
    r = client.post(f"/v1/ranking/models/{version}/activate", json={"surfaces": ["nope"]})
    assert r.status_code == 400 and "unknown surface" in r.json()["error"]["message"]
    assert client.post(f"/v1/ranking/models/{version}/activate", json={}).status_code in (400, 422)
    r = client.put("/v1/ranking/rules/feed", json={"topic_cap": 2, "mmr_lambda": 0.7})
    assert r.status_code == 200 and client.get("/v1/ranking/rules/feed").json()["topic_cap"] == 2
    assert client.put("/v1/ranking/rules/feed", json={"mmr_lambda": 3}).status_code in (400, 422)
    assert client.get("/v1/ranking/rules/moon").status_code == 400
