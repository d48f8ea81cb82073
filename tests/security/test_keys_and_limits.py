"""Keys, scopes, admin login and rate limits against the real app."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from twinengine.api.app import create_app
from twinengine.config import Settings
from twinengine.context import open_context
from twinengine.security import service
from twinengine.security.ratelimit import MemoryRateLimiter


@pytest.fixture
def secured(tmp_path, database_url):  # type: ignore[no-untyped-def]
    settings = Settings(
        home=tmp_path / "home",
        database_url=database_url,
        auth=True,
        open_read=False,
        rate_limit_ip_rps=0,
        cors_origins=["https://gallery.example"],
    )
    ctx = open_context(settings)
    with TestClient(create_app(context=ctx)) as client:
        yield ctx, client
    ctx.close()


def _h(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def test_scopes(secured) -> None:
    ctx, client = secured
    reader = service.create_key(ctx.db, name="reader", scopes=["search:read"]).key
    admin = service.create_key(ctx.db, name="ops", scopes=["admin"]).key
    assert client.get("/v1/items").status_code == 401
    assert client.get("/v1/health").status_code == 200  # health stays public
    assert client.get("/v1/items", headers=_h(reader)).status_code == 200
    resp = client.post("/v1/events", json={"events": []}, headers=_h(reader))
    assert resp.status_code == 403 and "events:write" in resp.json()["error"]["message"]
    assert client.get("/v1/keys", headers=_h(reader)).status_code == 403
    assert client.get("/v1/keys", headers=_h(admin)).status_code == 200
    assert client.get("/v1/items", headers=_h("te_nope_nope")).status_code == 401
    assert client.get("/v1/items", headers={"x-api-key": reader}).status_code == 200


def test_revoked_key_stops_working(secured) -> None:
    ctx, client = secured
    key = service.create_key(ctx.db, name="r", scopes=["search:read"])
    assert client.get("/v1/items", headers=_h(key.key)).status_code == 200
    service.revoke_key(ctx.db, key_id=key.id)
    assert client.get("/v1/items", headers=_h(key.key)).status_code == 401


def test_publishable_key_is_limited(secured) -> None:
    ctx, client = secured
    from twinengine.errors import InvalidInput

    with pytest.raises(InvalidInput, match="publishable key may only"):
        service.create_key(
            ctx.db,
            name="p",
            scopes=["catalog:write"],
            kind="publishable",
            allowed_origins=["https://x"],
        )
    pub = service.create_key(
        ctx.db,
        name="p",
        scopes=["search:read", "events:write"],
        kind="publishable",
        allowed_origins=["https://gallery.example"],
    ).key
    ok = client.get("/v1/items", headers={**_h(pub), "origin": "https://gallery.example"})
    assert (
        ok.status_code == 200
        and ok.headers["access-control-allow-origin"] == "https://gallery.example"
    )
    assert (
        client.get("/v1/items", headers={**_h(pub), "origin": "https://evil.example"}).status_code
        == 403
    )


def test_open_read_is_one_setting(tmp_path, database_url) -> None:
    settings = Settings(home=tmp_path / "h", database_url=database_url, auth=True, open_read=True)
    ctx = open_context(settings)
    with TestClient(create_app(context=ctx)) as client:
        assert client.get("/v1/items").status_code == 200
        assert client.post("/v1/events", json={"events": []}).status_code == 401
        assert client.get("/v1/keys").status_code == 401
    ctx.close()


def test_admin_pages_need_login(secured) -> None:
    ctx, client = secured
    admin = service.create_key(ctx.db, name="ops", scopes=["admin"]).key
    reader = service.create_key(ctx.db, name="r", scopes=["search:read"]).key
    resp = client.get("/admin/x", follow_redirects=False)
    assert resp.status_code == 303 and resp.headers["location"].startswith("/login?next=")
    bad = client.post("/login", data={"key": reader, "next": "/v1/keys"}, follow_redirects=False)
    assert bad.status_code == 403
    good = client.post(
        "/login", data={"key": admin, "next": "//evil.example"}, follow_redirects=False
    )
    assert good.status_code == 303 and good.headers["location"] == "/"  # no open redirect
    assert client.get("/v1/keys").status_code == 200  # the session cookie works


def test_rate_limit_gives_429(tmp_path, database_url) -> None:
    settings = Settings(
        home=tmp_path / "h", database_url=database_url, rate_limit_ip_rps=1, rate_limit_ip_burst=3
    )
    ctx = open_context(settings)
    with TestClient(create_app(context=ctx)) as client:
        codes = [client.get("/v1/version").status_code for _ in range(5)]
        assert codes[:3] == [200, 200, 200] and codes[3] == 429
        resp = client.get("/v1/version")
        assert (
            resp.json()["error"]["code"] == "rate_limited" and int(resp.headers["retry-after"]) >= 1
        )
    ctx.close()


def test_memory_bucket_refills() -> None:
    limiter = MemoryRateLimiter()
    assert [limiter.allow("k", rate=1000, burst=2)[0] for _ in range(3)] == [True, True, False]
    import time

    time.sleep(0.01)
    assert limiter.allow("k", rate=1000, burst=2)[0]


def test_redis_bucket_shared_between_limiters() -> None:
    redis = pytest.importorskip("redis")
    try:
        redis.Redis(socket_connect_timeout=0.5).ping()
    except Exception:
        pytest.skip("Redis is not reachable on 127.0.0.1:6379")
    import uuid

    from twinengine.security.ratelimit import RedisRateLimiter

    key = f"test-{uuid.uuid4().hex}"
    a, b = (
        RedisRateLimiter("redis://127.0.0.1:6379/0"),
        RedisRateLimiter("redis://127.0.0.1:6379/0"),
    )
    results = [
        a.allow(key, rate=0.01, burst=2)[0],
        b.allow(key, rate=0.01, burst=2)[0],
        a.allow(key, rate=0.01, burst=2)[0],
    ]
    assert results == [True, True, False]


def test_prod_refuses_unsafe_defaults() -> None:
    with pytest.raises(ValueError, match="SECRET_KEY"):
        Settings(env="prod", auth=True)
    with pytest.raises(ValueError, match="AUTH"):
        Settings(env="prod", secret_key="s3cret-long-enough")
