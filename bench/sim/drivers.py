"""How the simulator gets slates and where its events go.

``InProcess`` asks a candidate source and a ranking policy for each slate and writes events
through ``discovery.events.service.record`` (the function behind ``POST /v1/events``).
``Http`` requests slates from a running server (``/v1/feed``, ``/v1/items/{id}/related``)
and posts events to ``/v1/events``: the real product path end to end.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from bench.sim.world import SimUser
from twinengine.context import AppContext
from twinengine.discovery.candidates.schemas import Candidate
from twinengine.discovery.candidates.service import RecFilter


@dataclass
class SlateRequest:
    """What the simulated page asks for."""

    user: SimUser
    surface: str  # feed | related | trending | topic
    k: int
    now: dt.datetime
    request_id: str
    item_id: str | None = None  # related: the item the user is looking at
    exclude: tuple[str, ...] = ()  # shown earlier in this session: the next page moves on


@dataclass
class Served:
    """A slate as served: ids in order, the request id and experiment assignments to log."""

    items: list[str]
    request_id: str
    experiments: dict[str, str] = field(default_factory=dict)
    policy: str = ""


# (user, candidates) -> the candidates (or their ids) in slate order.
Policy = Callable[[SimUser, list[Candidate]], Sequence[Candidate | str]]
# (ctx, request) -> candidates to rank.
CandidateSource = Callable[[AppContext, SlateRequest], list[Candidate]]


class Driver(Protocol):
    """Serves slates and takes events."""

    def slate(self, req: SlateRequest) -> Served:
        """The slate shown for ``req``."""
        ...

    def send(self, events: list[dict[str, Any]]) -> None:
        """Write events (buffered; ``flush`` makes them durable)."""
        ...

    def flush(self) -> None:
        """Write whatever is buffered."""
        ...

    def on_day(self, now: dt.datetime) -> None:
        """Called at the start of each simulated day (refresh models, counts)."""
        ...


def by_score(user: SimUser, candidates: list[Candidate]) -> list[Candidate]:
    """The default policy: candidates in generator-score order."""
    return sorted(candidates, key=lambda c: -c.score)


def service_candidates(ctx: AppContext, req: SlateRequest) -> list[Candidate]:
    """Candidates from ``discovery.candidates.service.generate`` for the request's surface."""
    from twinengine.discovery.candidates import service

    return service.generate(
        ctx,
        surface=req.surface,
        user_key=req.user.key,
        item_id=req.item_id,
        k=max(100, 5 * req.k),
        now=req.now,
        flt=RecFilter(exclude=req.exclude),
    )


def source_candidates(source: str) -> CandidateSource:
    """Candidates from one named generator only (e.g. ``"popular"``: the popular baseline)."""

    def _gen(ctx: AppContext, req: SlateRequest) -> list[Candidate]:
        from twinengine.discovery.candidates import service

        return service.generate(
            ctx,
            surface=source,
            user_key=req.user.key,
            item_id=req.item_id,
            k=max(100, 5 * req.k),
            now=req.now,
            flt=RecFilter(exclude=req.exclude),
        )

    return _gen


def _experiments(ctx: AppContext, user_key: str, surface: str) -> dict[str, str]:
    try:
        from twinengine.discovery.experiments.service import assignments_for
    except ImportError:
        return {}
    return dict(assignments_for(ctx, user_key=user_key, surface=surface))


class InProcess:
    """Slates from ``candidates`` ordered by ``policy``; events through the events service."""

    def __init__(
        self,
        ctx: AppContext,
        *,
        policy: Policy = by_score,
        candidates: CandidateSource = service_candidates,
        batch_size: int = 5000,
        log_experiments: bool = True,
    ) -> None:
        self.ctx = ctx
        self.policy = policy
        self.candidates = candidates
        self.batch_size = batch_size
        self.log_experiments = log_experiments
        self._buffer: list[dict[str, Any]] = []
        self.written = 0

    def slate(self, req: SlateRequest) -> Served:
        """Candidates for the request, ordered by the policy, cut to ``k``."""
        cands = self.candidates(self.ctx, req)
        ordered = self.policy(req.user, cands)
        ids = [c if isinstance(c, str) else c.item_id for c in ordered][: req.k]
        exps = _experiments(self.ctx, req.user.key, req.surface) if self.log_experiments else {}
        return Served(items=ids, request_id=req.request_id, experiments=exps)

    def send(self, events: list[dict[str, Any]]) -> None:
        """Buffer events; a full buffer is written in one batch."""
        self._buffer.extend(events)
        if len(self._buffer) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        """Write the buffer through the events service (one durable transaction)."""
        from twinengine.discovery.events import service

        while self._buffer:
            cap = self.ctx.settings.events_max_batch
            chunk, self._buffer = self._buffer[:cap], self._buffer[cap:]
            self.written += service.record(self.ctx, chunk).inserted

    def on_day(self, now: dt.datetime) -> None:
        """Flush, then let the recommenders refresh their counts and models for ``now``."""
        self.flush()
        try:
            from twinengine.discovery.candidates import service
        except ImportError:
            return
        service.refresh(self.ctx, now=now)


class Http:
    """The real product path: slates from the HTTP API, events to ``POST /v1/events``."""

    def __init__(self, base_url: str, *, batch_size: int = 500, timeout: float = 30.0) -> None:
        import httpx

        self.client = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout)
        self.batch_size = batch_size
        self._buffer: list[dict[str, Any]] = []
        self.written = 0

    def slate(self, req: SlateRequest) -> Served:
        """GET the surface's endpoint; the server's request id and experiments are logged."""
        params: dict[str, Any] = {"user": req.user.key, "k": req.k, "details": "false"}
        if req.exclude:
            params["exclude"] = list(req.exclude)[-200:]
        if req.surface == "related" and req.item_id:
            path = f"/v1/items/{req.item_id}/related"
        elif req.surface == "trending":
            path = "/v1/trending"
        else:
            path = "/v1/feed"
        r = self.client.get(path, params=params)
        r.raise_for_status()
        body = r.json()
        return Served(
            items=[d["id"] for d in body["data"]],
            request_id=body["request_id"],
            experiments=body.get("experiments") or {},
            policy=body.get("policy", ""),
        )

    def send(self, events: list[dict[str, Any]]) -> None:
        """Buffer events; a full buffer is posted as one batch."""
        self._buffer.extend(events)
        if len(self._buffer) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        """POST the buffer; raises unless the server answered 200 (stored durably)."""
        while self._buffer:
            chunk, self._buffer = self._buffer[: self.batch_size], self._buffer[self.batch_size :]
            r = self.client.post("/v1/events", json={"events": chunk})
            r.raise_for_status()
            self.written += int(r.json()["inserted"])

    def on_day(self, now: dt.datetime) -> None:
        """Flush (the server refreshes its own models on a timer)."""
        self.flush()

    def close(self) -> None:
        """Close the HTTP client."""
        self.client.close()
