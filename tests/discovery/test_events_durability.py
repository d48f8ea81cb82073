"""kill -9 of a real server during a load run loses no event that was answered 200."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
from bench.sim.server import running_server

from twinengine.context import open_context
from twinengine.discovery.events.store import select_event_ids


def _batch(worker: int, n: int, size: int) -> list[dict]:
    out = []
    for j in range(size):
        eid = f"w{worker}-b{n}-{j}"
        if j % 4 == 0:
            out.append(
                {
                    "event_id": eid,
                    "type": "impression",
                    "user_id": f"u{j % 50}",
                    "request_id": eid,
                    "surface": "feed",
                    "slate": [f"i{j}", f"i{j + 1}"],
                }
            )
        else:
            out.append(
                {
                    "event_id": eid,
                    "type": "click",
                    "session_id": f"s{j % 50}",
                    "item_id": f"i{j}",
                    "position": 1,
                }
            )
    return out  # fmt: skip


@pytest.mark.slow
def test_kill9_loses_no_acknowledged_event(settings, tmp_path) -> None:
    acked: list[str] = []
    sent = [0]
    stop = threading.Event()
    lock = threading.Lock()
    with running_server(tmp_path / "srv", database_url=settings.effective_database_url) as srv:

        def load(worker: int) -> None:
            client = httpx.Client(base_url=srv.url, timeout=10)
            n = 0
            while not stop.is_set():
                batch = _batch(worker, n, 200)
                n += 1
                try:
                    r = client.post("/v1/events", json={"events": batch})
                except httpx.HTTPError:
                    return  # the server died mid-request: that batch was never acknowledged
                with lock:
                    sent[0] += 1
                    if r.status_code == 200:
                        acked.extend(e["event_id"] for e in batch)

        workers = [threading.Thread(target=load, args=(w,)) for w in range(3)]
        for w in workers:
            w.start()
        deadline = time.monotonic() + 60
        while len(acked) < 3000 and time.monotonic() < deadline:
            time.sleep(0.05)
        srv.kill9()  # mid-run: the workers are still posting
        stop.set()
        for w in workers:
            w.join(timeout=30)
    assert len(acked) >= 3000, "the load run did not get going"
    ctx = open_context(settings)
    try:
        stored = select_event_ids(ctx.db)
    finally:
        ctx.close()
    missing = set(acked) - stored
    assert not missing, f"{len(missing)} acknowledged events were lost"
    # Nothing half-written either: every stored batch is whole (one transaction a batch).
    per_batch: dict[str, int] = {}
    for eid in stored:
        per_batch[eid.rsplit("-", 1)[0]] = per_batch.get(eid.rsplit("-", 1)[0], 0) + 1
    assert set(per_batch.values()) == {200}
