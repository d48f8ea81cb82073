"""The HTTP protocol `twinengine serve` hands uvicorn."""

from __future__ import annotations

import socket
from types import SimpleNamespace

from uvicorn.config import Config

from twinengine.api.server import HTTP_PROTOCOL, NoDelayHTTPProtocol, set_nodelay


def test_uvicorn_loads_our_protocol_by_its_import_string() -> None:
    config = Config(app=lambda *a: None, http=HTTP_PROTOCOL)
    config.load()
    assert config.http_protocol_class is NoDelayHTTPProtocol


def test_nodelay_is_set_on_a_socket_bound_like_uvicorn_workers_bind_it() -> None:
    # uvicorn --workers binds with protocol 0, which asyncio does not treat as TCP, so
    # accepted sockets keep Nagle on; ours must switch it off.
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    client = socket.create_connection(listener.getsockname())
    accepted, _ = listener.accept()
    try:
        assert accepted.proto == 0
        assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
        set_nodelay(SimpleNamespace(get_extra_info=lambda name: accepted))
        assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        for s in (client, accepted, listener):
            s.close()
