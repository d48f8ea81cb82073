"""The /v1 catalog API: JSON shapes, filters, and 4xx (never 500) for bad input."""

from __future__ import annotations

import pytest


def test_health_version_and_docs(client) -> None:
    assert client.get("/v1/health").json()["status"] == "ok"
    assert client.get("/v1/version").json()["version"]
    assert client.get("/docs").status_code == 200
    assert "/v1/items" in client.get("/openapi.json").json()["paths"]


def test_items_list_and_get(client, sample_catalog) -> None:
    body = client.get("/v1/items", params={"limit": 5}).json()
    assert len(body["data"]) == 5 and body["count"] >= 300 and body["next_cursor"]
    nxt = client.get("/v1/items", params={"limit": 5, "cursor": body["next_cursor"]}).json()
    assert not {i["id"] for i in body["data"]} & {i["id"] for i in nxt["data"]}
    one = client.get(f"/v1/items/{body['data'][0]['id']}").json()
    assert one["id"] == body["data"][0]["id"] and "source_url" in one and "licence" in one


def test_filters(client, sample_catalog) -> None:
    ja = client.get("/v1/items", params={"language": "ja", "limit": 100}).json()
    assert ja["data"] and all("ja" in i["languages"] for i in ja["data"])
    counts = client.get("/v1/facet-counts").json()
    topic = counts["topics"][0]
    by_topic = client.get("/v1/items", params={"topic": topic["value"], "limit": 100}).json()
    assert by_topic["count"] == topic["count"]
    ranged = client.get(
        "/v1/items",
        params={"published_from": "2026-01-01", "published_to": "2026-02-01", "limit": 100},
    ).json()
    assert all("2026-01-01" <= i["published"] <= "2026-02-01" for i in ranged["data"])
    facets = client.get("/v1/facets").json()
    assert len(facets) == 11


@pytest.mark.parametrize(
    ("url", "status", "code"),
    [
        ("/v1/items?limit=0", 422, "invalid_input"),
        ("/v1/items?limit=1000", 400, "invalid_input"),
        ("/v1/items?limit=abc", 422, "invalid_input"),
        ("/v1/items?cursor=!!!", 400, "invalid_input"),
        ("/v1/items?published_from=yesterday", 422, "invalid_input"),
        ("/v1/items?published_from=2026-02-01&published_to=2026-01-01", 400, "invalid_input"),
        ("/v1/items?media=hologram", 422, "invalid_input"),
        ("/v1/items/does-not-exist", 404, "not_found"),
        ("/v1/topics/nope", 404, "not_found"),
        ("/v1/nowhere", 404, "not_found"),
    ],
)
def test_bad_requests_get_4xx_with_a_reason(client, url: str, status: int, code: str) -> None:
    resp = client.get(url)
    assert resp.status_code == status
    err = resp.json()["error"]
    assert err["code"] == code and err["message"]


def test_body_size_limit(client, ctx) -> None:
    big = b"x" * (ctx.settings.max_body_bytes + 1)
    resp = client.post("/v1/items", content=big, headers={"content-type": "application/json"})
    assert resp.status_code == 413
    assert resp.json()["error"]["code"] == "payload_too_large"


def test_method_not_allowed_is_json(client) -> None:
    resp = client.delete("/v1/health")
    assert resp.status_code == 405 and resp.json()["error"]["code"] == "method_not_allowed"


def test_uploads_have_their_own_larger_cap(client, ctx) -> None:
    body = b"x" * (ctx.settings.max_body_bytes + 1)
    headers = {"content-type": "application/json"}
    resp = client.post("/v1/dubbing/runs", content=body, headers=headers)
    assert resp.status_code != 413 and resp.status_code < 500  # refused for its content instead
