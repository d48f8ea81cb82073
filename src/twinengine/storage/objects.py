"""Object store: a local folder by default, any S3-compatible service by URL, one interface.

``open_object_store(settings)`` picks the backend from ``settings.object_store_url``:

- empty: the folder ``settings.home / "objects"``;
- ``file:///abs/path`` or a plain path: that folder;
- ``s3://bucket/prefix``: an S3-compatible service through boto3, with
  ``object_store_endpoint`` (e.g. ``http://127.0.0.1:8333``), ``object_store_access_key``,
  ``object_store_secret_key`` and ``object_store_region``.

Keys are ``/``-separated relative paths (``items/nbp-1.json``). Local writes are atomic (a
temporary file in the same folder, then ``os.replace``), so a reader never sees half an object
and a crashed writer leaves no partial file behind; putting the same key twice is idempotent.
"""

from __future__ import annotations

import os
import tempfile
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlparse

from twinengine.errors import BackendUnavailable, InvalidInput, MissingDependency, NotFound

if TYPE_CHECKING:
    from twinengine.config import Settings


def check_key(key: str) -> str:
    """Refuse keys that could escape the store (absolute, ``..``, empty parts)."""
    if not key or key.startswith("/") or "\\" in key or "\x00" in key:
        raise InvalidInput(f"bad object key {key!r}")
    parts = key.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise InvalidInput(f"bad object key {key!r}")
    return key


def _as_bytes(data: bytes | str) -> bytes:
    return data.encode("utf-8") if isinstance(data, str) else data


class ObjectStore(ABC):
    """Where published artefacts go: put/get/list/url by key."""

    @abstractmethod
    def put(self, key: str, data: bytes | str, *, content_type: str = "application/json") -> str:
        """Store ``data`` under ``key`` (replacing it) and return its URL."""

    @abstractmethod
    def get(self, key: str) -> bytes:
        """The bytes under ``key``, or ``NotFound``."""

    @abstractmethod
    def list(self, prefix: str = "") -> list[str]:
        """Keys starting with ``prefix``, sorted."""

    @abstractmethod
    def url(self, key: str) -> str:
        """Where a reader finds ``key`` (file:// for local, http(s) or s3:// otherwise)."""

    def exists(self, key: str) -> bool:
        """Whether ``key`` is stored."""
        try:
            self.get(key)
        except NotFound:
            return False
        return True

    def close(self) -> None:  # noqa: B027 (optional hook: most backends hold nothing)
        """Release connections (nothing to do for most backends)."""


class LocalObjectStore(ObjectStore):
    """Objects as files under one folder."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).expanduser().resolve()

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*check_key(key).split("/"))

    def put(self, key: str, data: bytes | str, *, content_type: str = "application/json") -> str:
        """Write atomically: a temp file in the target folder, fsync, then rename over."""
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(_as_bytes(data))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return self.url(key)

    def get(self, key: str) -> bytes:
        """Read the file for ``key``."""
        path = self._path(key)
        try:
            return path.read_bytes()
        except (FileNotFoundError, IsADirectoryError) as exc:
            raise NotFound(f"no object {key!r}") from exc

    def list(self, prefix: str = "") -> list[str]:
        """Every stored key under ``prefix`` (temporary files excluded)."""
        if not self.root.exists():
            return []
        keys = []
        for path in self.root.rglob("*"):
            if path.is_file() and not path.name.startswith(".tmp-"):
                key = path.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    keys.append(key)
        return sorted(keys)

    def url(self, key: str) -> str:
        """A file:// URL."""
        return self._path(key).as_uri()


class S3ObjectStore(ObjectStore):
    """Objects in an S3-compatible bucket (AWS, MinIO, SeaweedFS, moto) through boto3."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        region: str = "us-east-1",
        public_url: str | None = None,
        create_bucket: bool = False,
    ) -> None:
        try:
            import boto3
            from botocore.config import Config
        except ImportError as exc:
            raise MissingDependency("boto3", "workflows") from exc
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint_url = endpoint_url or None
        self.public_url = (public_url or "").rstrip("/") or None
        self.page_size = 1000  # keys per LIST request (S3's maximum)
        self._client = boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=access_key or None,
            aws_secret_access_key=secret_key or None,
            region_name=region,
            # path-style addressing: local S3 servers have no per-bucket DNS names
            config=Config(
                s3={"addressing_style": "path"},
                retries={"max_attempts": 3, "mode": "standard"},
                connect_timeout=5,
                read_timeout=30,
            ),
        )
        if create_bucket:
            self._ensure_bucket()

    def _full(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _call(self, what: str, fn: Any, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return fn(**kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404", "NotFound"):
                raise NotFound(f"no object {kwargs.get('Key', '')!r}") from exc
            raise BackendUnavailable(f"object store {what} failed: {code or exc}") from exc
        except BotoCoreError as exc:
            raise BackendUnavailable(f"object store {what} failed: {exc}") from exc

    def _ensure_bucket(self) -> None:
        from botocore.exceptions import ClientError

        try:
            self._client.head_bucket(Bucket=self.bucket)
        except ClientError:
            self._call("create bucket", self._client.create_bucket, Bucket=self.bucket)

    def put(self, key: str, data: bytes | str, *, content_type: str = "application/json") -> str:
        """PUT the object (S3 PUTs are atomic: readers see the old or the new one)."""
        self._call(
            "put",
            self._client.put_object,
            Bucket=self.bucket,
            Key=self._full(key),
            Body=_as_bytes(data),
            ContentType=content_type,
        )
        return self.url(key)

    def get(self, key: str) -> bytes:
        """GET the object's bytes."""
        resp = self._call("get", self._client.get_object, Bucket=self.bucket, Key=self._full(key))
        return resp["Body"].read()

    def list(self, prefix: str = "") -> list[str]:
        """Keys under ``prefix``, following continuation tokens."""
        if ".." in prefix.split("/") or prefix.startswith("/"):
            raise InvalidInput(f"bad object prefix {prefix!r}")
        full = f"{self.prefix}/{prefix}" if self.prefix else prefix
        keys: list[str] = []
        token: str | None = None
        strip = len(self.prefix) + 1 if self.prefix else 0
        while True:
            kwargs: dict[str, Any] = {
                "Bucket": self.bucket,
                "Prefix": full,
                "MaxKeys": self.page_size,
            }
            if token:
                kwargs["ContinuationToken"] = token
            resp = self._call("list", self._client.list_objects_v2, **kwargs)
            keys.extend(obj["Key"][strip:] for obj in resp.get("Contents", []))
            if not resp.get("IsTruncated"):
                break
            token = resp.get("NextContinuationToken")
        return sorted(keys)

    def url(self, key: str) -> str:
        """The public base URL if configured, else the endpoint's path-style URL, else s3://."""
        full = quote(self._full(key))
        if self.public_url:
            return f"{self.public_url}/{full}"
        if self.endpoint_url:
            return f"{self.endpoint_url.rstrip('/')}/{self.bucket}/{full}"
        return f"s3://{self.bucket}/{full}"

    def close(self) -> None:
        """Close the HTTP connection pool."""
        closer = getattr(self._client, "close", None)
        if callable(closer):
            closer()


def open_object_store(settings: Settings) -> ObjectStore:
    """The object store ``settings`` names (see the module docstring)."""
    url = (settings.object_store_url or "").strip()
    if not url:
        return LocalObjectStore(settings.home / "objects")
    parsed = urlparse(url)
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise InvalidInput(f"object store URL {url!r} names no bucket: use s3://BUCKET/PREFIX")
        return S3ObjectStore(
            parsed.netloc,
            parsed.path.strip("/"),
            endpoint_url=settings.object_store_endpoint or None,
            access_key=settings.object_store_access_key or None,
            secret_key=settings.object_store_secret_key or None,
            region=settings.object_store_region,
            public_url=settings.object_store_public_url or None,
            create_bucket=settings.object_store_create_bucket,
        )
    if parsed.scheme == "file":
        return LocalObjectStore(Path(parsed.path))
    if parsed.scheme == "":
        return LocalObjectStore(Path(url))
    raise InvalidInput(
        f"unsupported object store URL {url!r}: use s3://BUCKET/PREFIX, file:///PATH or a folder"
    )
