"""The event log: batch ingest, idempotency, validation, impressions and readers."""

from __future__ import annotations

import datetime as dt

import pytest

from twinengine.discovery.events import service
from twinengine.errors import InvalidInput, PayloadTooLarge


def _batch(prefix: str = "e", user: str = "u1") -> list[dict]:
    ts = "2026-01-02T10:00:00Z"
    return [
        {
            "event_id": f"{prefix}-imp",
            "type": "impression",
            "ts": ts,
            "user_id": user,
            "request_id": f"{prefix}-r1",
            "surface": "feed",
            "slate": ["a", "b", "c"],
            "experiments": {"exp1": "treatment"},
        },
        {
            "event_id": f"{prefix}-clk",
            "type": "click",
            "ts": ts,
            "user_id": user,
            "request_id": f"{prefix}-r1",
            "surface": "feed",
            "item_id": "b",
            "position": 2,
        },
        {
            "event_id": f"{prefix}-cnv",
            "type": "conversion",
            "ts": ts,
            "user_id": user,
            "request_id": f"{prefix}-r1",
            "item_id": "b",
            "kind": "copy",
            "value": 1.0,
        },
        {
            "event_id": f"{prefix}-dw",
            "type": "dwell",
            "session_id": "anon-7",
            "item_id": "c",
            "value": 5400,
        },
    ]


def test_api_batch_is_stored_and_idempotent(client, ctx) -> None:
    r = client.post("/v1/events", json={"events": _batch()})
    assert r.status_code == 200, r.text
    assert r.json() == {"received": 4, "inserted": 4, "duplicates": 0, "impressions": 3}
    again = client.post("/v1/events", json={"events": _batch()})
    assert again.json() == {"received": 4, "inserted": 0, "duplicates": 4, "impressions": 0}
    assert service.count_events(ctx) == 4
    rows = service.load_events(ctx)
    anon = [r for r in rows if r["type"] == "dwell"][0]
    assert anon["user_key"] == "s:anon-7" and anon["user_id"] is None
    imp = [r for r in rows if r["type"] == "impression"][0]
    assert imp["slate"] == ["a", "b", "c"] and imp["experiments"] == {"exp1": "treatment"}
    assert imp["ts"] == dt.datetime(2026, 1, 2, 10, tzinfo=dt.UTC)


def test_impressions_join_clicks_and_conversions(ctx) -> None:
    service.record(ctx, _batch())
    rows = service.load_impressions(ctx)
    assert [(r["item_id"], r["position"]) for r in rows] == [("a", 1), ("b", 2), ("c", 3)]
    by_item = {r["item_id"]: r for r in rows}
    assert by_item["b"]["clicked"] and by_item["b"]["converted"]
    assert by_item["b"]["conversion_value"] == 1.0
    assert not by_item["a"]["clicked"] and not by_item["c"]["converted"]
    assert all(r["experiments"] == {"exp1": "treatment"} for r in rows)
    assert all(r["surface"] == "feed" and r["user_key"] == "u1" for r in rows)
    assert service.load_impressions(ctx, surface="search") == []


def test_impression_in_parts_keeps_positions(ctx) -> None:
    base = {"type": "impression", "user_id": "u", "request_id": "r9", "surface": "feed"}
    first = {**base, "event_id": "p1", "slate": ["a", "b"]}
    rest = {**base, "event_id": "p2", "slate": ["c", "d"], "position": 3}
    service.record(ctx, [first, rest])
    rows = service.load_impressions(ctx)
    assert [(r["item_id"], r["position"]) for r in rows] == [("a", 1), ("b", 2), ("c", 3), ("d", 4)]


def test_duplicate_inside_batch_and_changed_resend(ctx) -> None:
    batch = _batch()
    res = service.record(ctx, [*batch, batch[1]])
    assert (res.inserted, res.duplicates) == (4, 1)
    # Re-sending an id with a longer slate must not add impression rows: first write wins.
    longer = dict(batch[0], slate=["a", "b", "c", "d"])
    assert service.record(ctx, [longer]).impressions == 0
    assert len(service.load_impressions(ctx)) == 3


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"user_id": None}, "user_id or session_id"),
        ({"type": "bogus"}, "type"),
        ({"slate": []}, "non-empty slate"),
        ({"type": "click", "slate": None}, "needs item_id"),
        ({"position": 0}, "position"),
        ({"event_id": "bad id with spaces"}, "event_id"),
        ({"unknown": 1}, "unknown"),
    ],
)
def test_invalid_event_refuses_whole_batch(client, ctx, change, reason) -> None:
    batch = _batch()
    batch[0] = {**batch[0], **change}
    r = client.post("/v1/events", json={"events": batch})
    assert r.status_code == 400, r.text
    assert reason in r.json()["error"]["message"]
    assert service.count_events(ctx) == 0


def test_bad_bodies_answer_4xx(client) -> None:
    assert client.post("/v1/events", content=b"not json").status_code == 400
    assert client.post("/v1/events", json={"events": []}).status_code == 400
    assert client.post("/v1/events", json=[1, 2]).status_code == 400
    conv = {"event_id": "x", "type": "conversion", "user_id": "u", "item_id": "a"}
    r = client.post("/v1/events", json={"events": [conv]})
    assert r.status_code == 400 and "kind" in r.json()["error"]["message"]


def test_batch_cap(ctx) -> None:
    ctx.settings.events_max_batch = 3
    with pytest.raises(PayloadTooLarge):
        service.record(ctx, _batch())
    with pytest.raises(InvalidInput):
        service.record(ctx, [])
