"""bench/soak.py's own logic: the load it sends is valid, and its error and window counts are right.

The soak itself (processes, kill -9, 30 minutes) runs as `make bench-soak`; these tests keep its
requests honest: a batch the API refuses with 400 would never be acknowledged, and a kill test
over such batches would prove nothing about lost events.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

from bench.soak import MIX, Load, drop_content, summarise

from tests.factories import demo_rows
from twinengine.capability.assistant.schemas import AssistantRequest
from twinengine.discovery.events.service import parse_batch


def test_every_generated_request_is_valid_for_its_endpoint() -> None:
    items = [{"id": r["id"], "title": r["title"]} for r in demo_rows()[:100]]
    load = Load(SimpleNamespace(ports=[8150, 8151]), rps=10, items=items, max_inflight=8)  # type: ignore[arg-type]
    kinds: dict[str, int] = {}
    for _ in range(400):
        kind, method, path, body = load._request()
        kinds[kind] = kinds.get(kind, 0) + 1
        if kind == "events":
            assert (method, path) == ("POST", "/v1/events")
            rows = parse_batch(json.dumps(body))  # raises InvalidInput (a 400) if refused
            assert [r["type"] for r in rows][:2] == ["impression", "click"]
        elif kind == "assistant":
            AssistantRequest.model_validate(body)
        else:
            assert method == "GET" and body is None and "q=&" not in path
    assert set(kinds) == set(MIX)
    assert abs(kinds["search"] / 400 - MIX["search"]) < 0.1


def test_summary_counts_transport_errors_and_5xx_not_4xx() -> None:
    samples = [(0.5, "search", 200, 10.0)] * 98 + [
        (0.6, "feed", 0, 10_000.0),  # timed out
        (0.7, "events", 503, 5.0),
        (0.8, "search", 422, 3.0),
        (5.0, "search", 200, 1.0),  # outside the window
    ]
    w = summarise(samples, 0, 1)
    assert w["requests"] == 101 and w["errors"] == 2 and w["rps"] == 101
    assert w["p99_ms"] == 10.0 and w["p99_ms_by_kind"]["feed"] is None


def test_drops_are_new_items() -> None:
    rows = list(demo_rows()[:9])
    lines = [json.loads(x) for n in range(3) for x in drop_content(n, rows, "t").splitlines()]
    assert len({r["id"] for r in lines}) == 9
    assert all(r["id"].startswith("soak-t-") and "(soak t" in r["title"] for r in lines)
