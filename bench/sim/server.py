"""Run ``twinengine serve`` in a subprocess on a free local port (benchmarks, crash tests)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """A running server process."""

    proc: subprocess.Popen[bytes]
    url: str

    def cpu_seconds(self) -> float:
        """User plus system CPU time of the server and its worker processes so far (Linux)."""
        total = 0.0
        for pid in [self.proc.pid, *_children(self.proc.pid)]:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total

    def kill9(self) -> None:
        """SIGKILL: no shutdown hooks, no flushing; what was committed is all that survives."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    kids = [int(p) for p in text.split()]
    return kids + [g for k in kids for g in _children(k)]


@contextmanager
def running_server(
    home: Path, *, database_url: str = "", start_timeout: float = 120.0, workers: int = 1
) -> Iterator[Server]:
    """Start ``twinengine serve`` with its own home (and database) and wait until it answers."""
    port = free_port()
    env = dict(os.environ, TWINENGINE_HOME=str(home), TWINENGINE_PORT=str(port))
    if database_url:
        env["TWINENGINE_DATABASE_URL"] = database_url
    exe = Path(sys.executable).parent / "twinengine"
    proc = subprocess.Popen(
        [str(exe), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + start_timeout
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"twinengine serve exited with {proc.returncode}")
            try:
                if httpx.get(url + "/v1/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("twinengine serve did not answer in time")
            time.sleep(0.2)
        yield Server(proc=proc, url=url)
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
