"""Experiments on a real database: definitions, assignment, reports from logged events, API, CLI."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import pytest
from sqlalchemy import update
from typer.testing import CliRunner

from twinengine.context import AppContext
from twinengine.discovery.events import service as events
from twinengine.discovery.experiments import service
from twinengine.discovery.experiments.interleaving import interleave, parse_label
from twinengine.discovery.experiments.models import experiments
from twinengine.discovery.experiments.schemas import ExperimentCreate
from twinengine.errors import Conflict, InvalidInput, NotFound


def make(ctx: AppContext, exp_id: str = "exp-1", **fields: Any) -> Any:
    """Create an experiment from keyword fields."""
    fields.setdefault("salt", f"salt-{exp_id}")  # pinned: the tests' splits are reproducible
    return service.create(ctx, spec=ExperimentCreate(id=exp_id, name=exp_id, **fields))


def backdate(ctx: AppContext, exp_id: str, days: float) -> dt.datetime:
    """Move a started experiment's start into the past, so logged history falls inside it."""
    started = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
    with ctx.db.write() as conn:
        conn.execute(update(experiments).where(experiments.c.id == exp_id)
                     .values(started_at=started))  # fmt: skip
    return started


def log_traffic(
    ctx: AppContext,
    exp_id: str,
    *,
    users: int,
    start: dt.datetime,
    ctr: dict[str, float],
    days: int = 3,
    seed: int = 0,
) -> None:
    """Serve and log slates for ``users`` over ``days`` (clicks at a per-variant CTR)."""
    rng = random.Random(seed)
    batch: list[dict[str, Any]] = []
    for u in range(users):
        uk = f"user-{u}"
        for day in range(days):
            if day and rng.random() < 0.5:
                continue
            a = service.assignments_for(ctx, user_key=uk, surface="feed")
            ts = start + dt.timedelta(days=day, hours=rng.random() * 20)
            rid = f"{exp_id}-{u}-{day}"
            slate = [f"item-{rng.randrange(200)}" for _ in range(10)]
            batch.append({"event_id": rid, "type": "impression", "ts": ts.isoformat(),
                          "user_id": uk, "request_id": rid, "surface": "feed", "slate": slate,
                          "experiments": a or None})  # fmt: skip
            p = ctr.get(a.get(exp_id, ""), 0.1)
            for pos, item in enumerate(slate, 1):
                if rng.random() < p:
                    ev = {"user_id": uk, "request_id": rid, "surface": "feed", "item_id": item,
                          "position": pos, "ts": (ts + dt.timedelta(seconds=pos)).isoformat()}
                    batch.append({**ev, "event_id": f"{rid}-c{pos}", "type": "click"})
                    if rng.random() < 0.3:
                        batch.append({**ev, "event_id": f"{rid}-v{pos}", "type": "conversion",
                                      "kind": "copy", "value": 1.0})  # fmt: skip
    for i in range(0, len(batch), 2000):
        events.record(ctx, batch[i : i + 2000])


# --- definitions ------------------------------------------------------------------------------


def test_create_start_stop_and_conflicts(ctx: AppContext) -> None:
    exp = make(ctx)
    assert exp.status == "draft" and exp.layer_range == (0.0, 1.0) and exp.salt == "salt-exp-1"
    assert len(service.create(ctx, spec=ExperimentCreate(id="r", name="r")).salt) == 16
    with pytest.raises(Conflict):
        make(ctx)
    with pytest.raises(Conflict):
        service.stop(ctx, exp_id="exp-1")
    with pytest.raises(Conflict, match="not started"):
        service.report(ctx, exp_id="exp-1")
    assert service.start(ctx, exp_id="exp-1").status == "running"
    with pytest.raises(Conflict):
        service.start(ctx, exp_id="exp-1")
    stopped = service.stop(ctx, exp_id="exp-1")
    assert stopped.status == "stopped" and stopped.decision["action"] == "keep running"
    assert [e.id for e in service.list_experiments(ctx, status="stopped").data] == ["exp-1"]
    assert service.list_experiments(ctx).count == 2
    with pytest.raises(NotFound):
        service.get(ctx, exp_id="nope")
    with pytest.raises(InvalidInput):
        service.list_experiments(ctx, status="weird")


def test_layers_allocate_disjoint_slices(ctx: AppContext) -> None:
    a = make(ctx, "rank-a", layer="ranking", traffic=0.5)
    b = make(ctx, "rank-b", layer="ranking", traffic=0.3)
    assert a.layer_range == (0.0, 0.5) and b.layer_range == (0.5, 0.8)
    with pytest.raises(Conflict, match="no free slice"):
        make(ctx, "rank-c", layer="ranking", traffic=0.5)
    for e in ("rank-a", "rank-b"):
        service.start(ctx, exp_id=e)
    seen = [service.assignments_for(ctx, user_key=f"u{i}", surface="feed") for i in range(3000)]
    assert not any(len(s) > 1 for s in seen)  # one layer: never two of its experiments
    share = {e: sum(e in s for s in seen) / len(seen) for e in ("rank-a", "rank-b")}
    assert 0.45 < share["rank-a"] < 0.55 and 0.25 < share["rank-b"] < 0.35
    # A stopped experiment frees its slice.
    service.stop(ctx, exp_id="rank-a")
    assert make(ctx, "rank-d", layer="ranking", traffic=0.5).layer_range == (0.0, 0.5)


def test_targeting_configs_and_cache(ctx: AppContext) -> None:
    make(ctx, "search-only", targeting={"surfaces": ["search"]},
         variants=[{"key": "control"}, {"key": "v3", "config": {"ranking_model": "v3"}}])
    make(ctx, "ja-only", targeting={"languages": ["ja"]},
         variants=[{"key": "off", "weight": 0.0001}, {"key": "on", "config": {"flags": {"x": 1}}}])
    make(ctx, "mix", variants=[{"key": "control", "config": {"generator_mix": {"cf": 0.5}}},
                               {"key": "more-cf", "config": {"generator_mix": {"cf": 0.8}}}])
    assert service.assignments_for(ctx, user_key="u1", surface="search") == {}  # drafts only
    for e in ("search-only", "ja-only", "mix"):
        service.start(ctx, exp_id=e)
    feed = service.assignments_for(ctx, user_key="u1", surface="feed")
    assert set(feed) == {"mix"}
    ja = service.assignments_for(ctx, user_key="u1", surface="search", language="ja")
    assert set(ja) == {"search-only", "ja-only", "mix"} and ja["ja-only"] == "on"
    cfg = service.variant_config(ctx, user_key="u1", surface="search", language="ja")
    assert cfg["flags"] == {"x": 1} and cfg["generator_mix"]["cf"] in (0.5, 0.8)
    assert cfg.get("ranking_model") == ("v3" if ja["search-only"] == "v3" else None)
    # Another process (a fresh context) sees the same assignment; a stop shows after the TTL.
    service.stop(ctx, exp_id="mix")
    assert "mix" not in service.assignments_for(ctx, user_key="u1", surface="feed")


def test_interleaving_config_for_serving(ctx: AppContext) -> None:
    make(ctx, "il", kind="interleaving",
         variants=[{"key": "a"}, {"key": "b", "config": {"ranking_model": "v3"}}])
    service.start(ctx, exp_id="il")
    assert service.assignments_for(ctx, user_key="u", surface="feed") == {"il": "interleaved"}
    cfg = service.variant_config(ctx, user_key="u", surface="feed")
    assert cfg["interleaving"] == {"experiment": "il", "a": {}, "b": {"ranking_model": "v3"}}
    with pytest.raises(ValueError, match="exactly two"):
        ExperimentCreate(id="x", name="x", kind="interleaving",
                         variants=[{"key": "a"}, {"key": "b"}, {"key": "c"}])


FRESH_ONLY = {"popular": 0.0, "quality": 0.0, "trending": 0.0, "fresh": 1.0}


def test_serving_applies_variants_and_interleaves(sample_catalog: AppContext) -> None:
    from twinengine.discovery.candidates import service as candidates
    from twinengine.discovery.candidates import serving
    from twinengine.discovery.experiments.interleaving import credited_team

    ctx = sample_catalog
    # Clicks on the oldest items: popularity (the default) and freshness now disagree.
    oldest = candidates.refresh(ctx).ids[:5]
    now = dt.datetime.now(dt.UTC).isoformat()
    events.record(ctx, [{"event_id": f"c{n}", "type": "click", "user_id": f"o{n}",
                         "item_id": oldest[n % 5], "ts": now} for n in range(20)])  # fmt: skip
    candidates.refresh(ctx)
    default = [r.id for r in serving.recommend(ctx, surface="feed", user_key="u1", k=10).data]
    fresh = [c.item_id for c in candidates.generate(
        ctx, surface="feed", user_key="u1", k=10,
        weights={**candidates.blend_for(ctx, "feed", "u1")[1], **FRESH_ONLY})]  # fmt: skip
    assert default != fresh
    # A/B: the variant's generator mix orders the slate; a model it cannot load falls back.
    make(ctx, "mix", variants=[{"key": "x", "config": {"generator_mix": FRESH_ONLY,
                                                       "ranking_model": "missing"}},
                               {"key": "y", "config": {"generator_mix": FRESH_ONLY}}])  # fmt: skip
    service.start(ctx, exp_id="mix")
    rec = serving.recommend(ctx, surface="feed", user_key="u1", k=10)
    assert rec.experiments["mix"] in ("x", "y") and [r.id for r in rec.data] == fresh
    service.stop(ctx, exp_id="mix")
    # Interleaving: both rankers' items, the label logged under the experiment.
    make(ctx, "il", kind="interleaving",
         variants=[{"key": "a"}, {"key": "b", "config": {"generator_mix": FRESH_ONLY}}])
    service.start(ctx, exp_id="il")
    rec = serving.recommend(ctx, surface="feed", user_key="u1", k=10)
    label = rec.experiments["il"]
    ids = [r.id for r in rec.data]
    assert parse_label(label) is not None and len(parse_label(label)) == len(ids) == 10
    assert set(ids) <= set(default) | set(fresh), label
    teams = {credited_team(parse_label(label), p) for p in range(1, 11)}
    assert {"a", "b"} <= teams
    again = serving.recommend(ctx, surface="feed", user_key="u1", k=10)
    assert again.request_id != rec.request_id and "il" in again.experiments


# --- reports from the event log ---------------------------------------------------------------


def test_report_ships_a_real_lift(ctx: AppContext) -> None:
    make(ctx, analysis={"sequential": True, "min_users": 50})
    service.start(ctx, exp_id="exp-1")
    start = backdate(ctx, "exp-1", 4)
    log_traffic(ctx, "exp-1", users=500, start=start, ctr={"control": 0.07, "treatment": 0.13})
    rep = service.report(ctx, exp_id="exp-1")
    assert sum(rep.users.values()) == 500 and rep.srm["ok"] and rep.multiple_exposures == 0
    ctr = next(m for m in rep.metrics if m["id"] == "ctr")
    assert ctr["control"]["value"] == pytest.approx(0.07, abs=0.01)
    assert ctr["treatments"][0]["lift"] > 0.3 and ctr["treatments"][0]["significant"]
    assert rep.decision.action == "ship" and rep.decision.variant == "treatment"
    assert {m["id"] for m in rep.metrics} >= {"ctr", "cvr", "retention_d1", "revenue_per_user"}
    assert len(rep.timeline) >= 3 and rep.timeline[-1]["users"] == 500
    # Pinned in time: nothing was logged before the start.
    early = service.report(ctx, exp_id="exp-1", until=start + dt.timedelta(minutes=1))
    assert sum(early.users.values()) < 10 and early.decision.action == "keep running"
    stopped = service.stop(ctx, exp_id="exp-1")
    assert stopped.decision["action"] == "ship"


def test_report_without_effect_keeps_running(ctx: AppContext) -> None:
    make(ctx, analysis={"min_users": 50})
    service.start(ctx, exp_id="exp-1")
    start = backdate(ctx, "exp-1", 4)
    log_traffic(ctx, "exp-1", users=400, start=start, ctr={"control": 0.1, "treatment": 0.1},
                seed=3)
    rep = service.report(ctx, exp_id="exp-1")
    assert rep.decision.action == "keep running", rep.decision.reason


def test_interleaving_report_credits_teams(ctx: AppContext) -> None:
    make(ctx, "il", kind="interleaving", analysis={"min_users": 50},
         variants=[{"key": "a"}, {"key": "b"}])
    service.start(ctx, exp_id="il")
    start = backdate(ctx, "il", 2)
    rng = random.Random(5)
    batch: list[dict[str, Any]] = []
    for u in range(300):
        uk = f"user-{u}"
        rid = f"il-{u}"
        list_a = [f"a{i}" for i in range(10)]
        list_b = [f"b{i}" for i in range(10)]
        merged, label = interleave(list_a, list_b, key=rid, k=10)  # what serving logs
        teams = parse_label(label) or ""
        ts = start + dt.timedelta(hours=1 + rng.random() * 20)
        batch.append({"event_id": rid, "type": "impression", "ts": ts.isoformat(), "user_id": uk,
                      "request_id": rid, "surface": "feed", "slate": merged,
                      "experiments": {"il": label}})  # fmt: skip
        for pos, (item, team) in enumerate(zip(merged, teams, strict=True), 1):
            if rng.random() < (0.25 if team == "b" else 0.1):  # users like ranker b's items
                batch.append({"event_id": f"{rid}-c{pos}", "type": "click", "user_id": uk,
                              "request_id": rid, "item_id": item, "position": pos,
                              "ts": (ts + dt.timedelta(seconds=pos)).isoformat()})  # fmt: skip
    events.record(ctx, batch)
    rep = service.report(ctx, exp_id="il")
    clicks = rep.interleaving[0]
    assert clicks["signal"] == "clicks+conversions" and clicks["users"] == 300
    assert [t["signal"] for t in rep.interleaving[1:]] == ["clicks", "conversions"]
    assert clicks["wins_b"] > 2 * clicks["wins_a"] and clicks["preferred"] == "b"
    assert rep.decision.action == "ship" and rep.decision.variant == "b"


# --- API and CLI ------------------------------------------------------------------------------


def test_api_round_trip_and_errors(client: Any) -> None:
    r = client.post("/v1/experiments", json={"id": "api-1", "name": "API test",
                                             "variants": [{"key": "control"}, {"key": "v2"}]})
    assert r.status_code == 201 and r.json()["status"] == "draft"
    assert client.post("/v1/experiments", json={"id": "api-1", "name": "x"}).status_code == 409
    bad = [
        {"id": "Bad Id", "name": "x"},
        {"id": "x", "name": "x", "variants": [{"key": "a"}, {"key": "a"}]},
        {"id": "x", "name": "x", "traffic": 1.5},
        {"id": "x", "name": "x", "metrics": {"primary": ["nope"]}},
        {"id": "x", "name": "x", "analysis": {"correction": "magic"}},
    ]
    for body in bad:
        resp = client.post("/v1/experiments", json=body)
        assert resp.status_code == 422 and resp.json()["error"]["code"] == "invalid_input"
    assert client.get("/v1/experiments/nope").status_code == 404
    assert client.get("/v1/experiments/api-1/report").status_code == 409
    assert client.post("/v1/experiments/api-1/start").json()["status"] == "running"
    assert client.get("/v1/experiments").json()["count"] == 1
    a = client.get("/v1/assignments", params={"user_key": "someone", "surface": "feed"}).json()
    assert a["assignments"]["api-1"] in ("control", "v2")
    assert client.get("/v1/assignments", params={"user_key": ""}).status_code == 422
    rep = client.get("/v1/experiments/api-1/report").json()
    assert rep["decision"]["action"] == "keep running"
    assert client.get("/v1/experiments/api-1/report", params={"until": "x"}).status_code == 422
    assert client.post("/v1/experiments/api-1/stop").json()["status"] == "stopped"


def test_cli_create_list_start_report_stop(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from twinengine.cli.main import app

    monkeypatch.setenv("TWINENGINE_HOME", str(settings.home))
    monkeypatch.setenv("TWINENGINE_DATABASE_URL", settings.effective_database_url)
    run = CliRunner().invoke
    r = run(app, ["exp", "create", "cli-1", "--variant", "control", "--variant", "v3=2",
                  "--config", 'v3:{"ranking_model": "v3"}', "--surface", "feed"])
    assert r.exit_code == 0, r.output
    assert "created cli-1" in r.output
    r = run(app, ["exp", "create", "cli-2", "--config", "nope:{}"])
    assert r.exit_code == 2 and "no variant" in r.output
    assert run(app, ["exp", "start", "cli-1"]).exit_code == 0
    r = run(app, ["exp", "list", "--json"])
    assert r.exit_code == 0 and '"cli-1"' in r.output and '"ranking_model"' in r.output
    r = run(app, ["exp", "report", "cli-1"])
    assert r.exit_code == 0 and "keep running" in r.output
    assert run(app, ["exp", "report", "missing"]).exit_code == 2
    r = run(app, ["exp", "stop", "cli-1"])
    assert r.exit_code == 0 and "stopped" in r.output
