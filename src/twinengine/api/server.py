"""uvicorn's HTTP protocol with TCP_NODELAY on every connection.

With ``--workers N`` uvicorn binds the listening socket itself (protocol number 0), and asyncio
only sets TCP_NODELAY on sockets whose protocol is IPPROTO_TCP, so keep-alive answers written
in two segments (headers, then body) waited for the client's delayed ACK: 44 ms for
``/v1/health`` on a warm connection with two workers, 4 ms with one. Setting the option when a
connection is made restores the single-process behaviour.
"""

from __future__ import annotations

import socket
from typing import Any

try:  # the C parser when installed (a dependency), else uvicorn's pure-Python h11 one
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _Base
except ImportError:  # pragma: no cover - httptools missing
    from uvicorn.protocols.http.h11_impl import H11Protocol as _Base


def set_nodelay(transport: Any) -> None:
    """Turn Nagle's algorithm off on the transport's TCP socket (no-op for others)."""
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass


class NoDelayHTTPProtocol(_Base):  # type: ignore[misc, valid-type]
    """The HTTP protocol uvicorn would pick, with Nagle's algorithm off."""

    def connection_made(self, transport: Any) -> None:  # noqa: D102
        set_nodelay(transport)
        super().connection_made(transport)


HTTP_PROTOCOL = f"{__name__}:NoDelayHTTPProtocol"
