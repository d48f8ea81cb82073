"""Object store: the local folder and a real S3-compatible server (moto's) on 127.0.0.1."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from twinengine.config import Settings
from twinengine.errors import InvalidInput, NotFound
from twinengine.storage.objects import (
    LocalObjectStore,
    ObjectStore,
    S3ObjectStore,
    open_object_store,
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def s3_server() -> Iterator[str]:
    """moto's S3 server on a free 127.0.0.1 port (a real HTTP server); skips if unavailable."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        pytest.skip("moto[server] is not installed (pip install 'twinengine[test]')")
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    try:
        server.start()
    except Exception as exc:  # pragma: no cover - environment-specific
        pytest.skip(f"S3 test server did not start: {exc}")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def s3_settings(tmp_path: Path, endpoint: str, bucket: str = "") -> Settings:
    # moto keeps buckets per process, across server instances: each test gets its own bucket
    bucket = bucket or f"drops-{uuid.uuid4().hex[:10]}"
    return Settings(
        home=tmp_path / "home",
        object_store_url=f"s3://{bucket}/twin",
        object_store_endpoint=endpoint,
        object_store_access_key="test",
        object_store_secret_key="test",
        object_store_create_bucket=True,
    )


def contract(store: ObjectStore) -> None:
    """What every backend must do."""
    url = store.put("items/a.json", '{"id": "a"}')
    assert url
    store.put("items/b.json", b'{"id": "b"}')
    store.put("drops/r1/manifest.json", "{}")
    assert store.get("items/a.json") == b'{"id": "a"}'
    store.put("items/a.json", '{"id": "a", "v": 2}')  # replace
    assert store.get("items/a.json") == b'{"id": "a", "v": 2}'
    assert store.list("items/") == ["items/a.json", "items/b.json"]
    assert store.list() == ["drops/r1/manifest.json", "items/a.json", "items/b.json"]
    assert store.exists("items/b.json") and not store.exists("items/zzz.json")
    with pytest.raises(NotFound):
        store.get("items/missing.json")
    for bad in ("../x", "/abs", "a//b", "a/../b", ""):
        with pytest.raises(InvalidInput):
            store.put(bad, "x")


def test_local_store_contract_and_atomic_writes(tmp_path: Path) -> None:
    store = open_object_store(Settings(home=tmp_path / "home"))
    assert isinstance(store, LocalObjectStore)
    assert store.root == (tmp_path / "home" / "objects").resolve()
    contract(store)
    assert store.url("items/a.json").startswith("file://")
    # no temporary files are left behind by writes
    assert not [p for p in store.root.rglob(".tmp-*")]


def test_local_store_failed_write_leaves_old_object(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "objects")
    store.put("k.json", "old")

    with pytest.raises(TypeError):
        store.put("k.json", 12345)  # type: ignore[arg-type]
    assert store.get("k.json") == b"old"
    assert store.list() == ["k.json"]


def test_object_store_url_schemes(tmp_path: Path) -> None:
    assert isinstance(
        open_object_store(Settings(home=tmp_path, object_store_url=f"file://{tmp_path}/o")),
        LocalObjectStore,
    )
    with pytest.raises(InvalidInput):
        open_object_store(Settings(home=tmp_path, object_store_url="ftp://x/y"))
    with pytest.raises(InvalidInput):
        open_object_store(Settings(home=tmp_path, object_store_url="s3://"))


def test_s3_store_against_real_server(tmp_path: Path, s3_server: str) -> None:
    store = open_object_store(s3_settings(tmp_path, s3_server, bucket="objects-contract"))
    assert isinstance(store, S3ObjectStore)
    try:
        contract(store)
        assert store.url("items/a.json") == f"{s3_server}/objects-contract/twin/items/a.json"
        # listing follows continuation tokens past one page
        store.page_size = 2
        for n in range(5):
            store.put(f"many/{n:02d}.json", "{}")
        assert store.list("many/") == [f"many/{n:02d}.json" for n in range(5)]
        # the objects really are in the bucket, under the prefix (read with a separate client)
        import boto3

        raw = boto3.client(
            "s3",
            endpoint_url=s3_server,
            aws_access_key_id="test",
            aws_secret_access_key="test",
            region_name="us-east-1",
        )
        body = raw.get_object(Bucket="objects-contract", Key="twin/items/b.json")["Body"].read()
        assert body == b'{"id": "b"}'
    finally:
        store.close()
