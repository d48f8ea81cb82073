"""The DBOS runtime: launch it from ``Settings``, run and register durable workflows, destroy it.

DBOS is a process-global singleton, so this module owns its life cycle. Everything is derived
from ``Settings`` (``dbos_config``): the system database is a SQLite file under
``settings.home`` by default, or, when the catalog is on Postgres, the same Postgres database
in its own schema (``workflow_schema``) so that several worker processes share queues.

How another engine adds a workflow (video dubbing does it this way)::

    from dbos import DBOS
    from twinengine.capability.workflows import runtime

    runtime.declare_queue("dubbing", worker_concurrency=1, limiter=(10, 60.0))

    @DBOS.step(retries_allowed=True, max_attempts=4, interval_seconds=2.0, backoff_rate=2.0)
    def transcribe(job_id: str) -> dict:            # small, idempotent, retried
        ctx = runtime.context()                     # the process's AppContext (db, settings)
        ...

    @DBOS.workflow(name="dub")
    def dub(job_id: str) -> dict:                   # orchestrates only: no I/O outside steps
        return transcribe(job_id)

    runtime.register_flow("dub", dub, queue="dubbing", help="dub a video")

and list the module in ``WORKFLOW_MODULES`` (or call ``runtime.add_workflow_module``) so every
process (worker, CLI, server) registers the same workflows: DBOS only runs a queued or
recovered workflow in a process that registered it, under the same application version.

Running one::

    with runtime.running(ctx):                      # launch; destroy on exit (tests too)
        result = runtime.run_flow("dub", job_id="j1")            # in this process, waits
    handle = runtime.enqueue_flow(settings, "dub", job_id="j1")  # a worker runs it

``twinengine worker`` launches the runtime and runs queued workflows (and the daily drop's
cron schedule) until stopped; a worker restarted after ``kill -9`` with the same
``workflow_executor_id`` resumes its unfinished workflows from their last completed step.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from twinengine import __version__
from twinengine.errors import BackendUnavailable, InvalidInput, MissingDependency, NotFound

if TYPE_CHECKING:
    from dbos import DBOSClient, DBOSConfig

    from twinengine.config import Settings
    from twinengine.context import AppContext

log = logging.getLogger(__name__)

APP_NAME = "twinengine"
# Modules whose import registers workflows; every process imports all of them before launch.
WORKFLOW_MODULES: list[str] = ["twinengine.capability.dropper.workflow"]


@dataclass(frozen=True)
class QueueSpec:
    """A queue's limits: per-worker and global concurrency, and a rate limit."""

    name: str
    worker_concurrency: int | None = None
    global_concurrency: int | None = None
    limiter: tuple[int, float] | None = None  # (at most N starts, per period seconds)


@dataclass(frozen=True)
class Flow:
    """A named workflow the CLI, API and page can start."""

    name: str
    fn: Callable[..., Any]
    queue: str
    help: str = ""


@dataclass
class _State:
    context: AppContext | None = None
    settings: Settings | None = None
    queues: dict[str, QueueSpec] = field(default_factory=dict)
    flows: dict[str, Flow] = field(default_factory=dict)
    schedules: list[Callable[[Settings], dict[str, Any] | None]] = field(default_factory=list)


_state = _State()
_lock = threading.RLock()


def _dbos() -> Any:
    try:
        import dbos
    except ImportError as exc:  # pragma: no cover - dbos is in the workflows extra
        raise MissingDependency("dbos", "workflows") from exc
    return dbos


# --- configuration ---------------------------------------------------------------------------
def system_database_url(settings: Settings) -> str:
    """The DBOS system database: configured, else next to the catalog (see module docstring)."""
    if settings.workflow_database_url:
        return settings.workflow_database_url
    if settings.is_sqlite:
        return f"sqlite:///{settings.home / 'workflows.sqlite'}"
    url = settings.effective_database_url
    # DBOS drives Postgres through psycopg 3 itself; it wants the plain scheme
    for prefix in ("postgresql+psycopg://", "postgres://"):
        if url.startswith(prefix):
            url = "postgresql://" + url[len(prefix) :]
    return url


def dbos_config(settings: Settings) -> DBOSConfig:
    """The DBOS configuration derived from ``settings`` (never read from elsewhere)."""
    url = system_database_url(settings)
    config: dict[str, Any] = {
        "name": APP_NAME,
        "system_database_url": url,
        # one version for every process: DBOS only hands a queued/recovered workflow to an
        # executor of the same version, and the default (a hash of the registered code)
        # differs between a CLI that registered fewer workflows and a worker
        "application_version": __version__,
        "executor_id": settings.workflow_executor_id,
        "log_level": "WARNING",
        "scheduler_polling_interval_sec": settings.workflow_poll_s,
        "notification_listener_polling_interval_sec": 0.2,
    }
    if not url.startswith("sqlite"):
        config["dbos_system_schema"] = settings.workflow_schema
    return config  # type: ignore[return-value]


def default_queues(settings: Settings) -> list[QueueSpec]:
    """The built-in queues with their limits from ``settings``."""
    limiter = (
        (settings.workflow_rate_limit, settings.workflow_rate_period_s)
        if settings.workflow_rate_limit
        else None
    )
    return [
        QueueSpec(
            "drops",
            worker_concurrency=settings.workflow_concurrency,
            global_concurrency=settings.workflow_global_concurrency or None,
            limiter=limiter,
        )
    ]


# --- registration (used by engines at import time) ----------------------------------------------
def declare_queue(
    name: str,
    *,
    worker_concurrency: int | None = None,
    global_concurrency: int | None = None,
    limiter: tuple[int, float] | None = None,
) -> QueueSpec:
    """Declare a queue; it is registered with DBOS at every launch and client use."""
    spec = QueueSpec(name, worker_concurrency, global_concurrency, limiter)
    with _lock:
        _state.queues[name] = spec
    return spec


def register_flow(name: str, fn: Callable[..., Any], *, queue: str, help: str = "") -> Flow:
    """Make a ``@DBOS.workflow`` startable by name from the CLI, API and runs page."""
    flow = Flow(name=name, fn=fn, queue=queue, help=help)
    with _lock:
        _state.flows[name] = flow
    return flow


def add_schedule(fn: Callable[[Settings], dict[str, Any] | None]) -> None:
    """Add ``fn(settings) -> DBOS ScheduleInput or None``, applied when a worker launches."""
    with _lock:
        if fn not in _state.schedules:
            _state.schedules.append(fn)


def add_workflow_module(module: str) -> None:
    """Name a module whose import registers workflows (imported before every launch)."""
    if module not in WORKFLOW_MODULES:
        WORKFLOW_MODULES.append(module)


def load_workflows() -> None:
    """Import every workflow module so DBOS knows all workflows in this process."""
    for module in WORKFLOW_MODULES:
        importlib.import_module(module)


def flows() -> dict[str, Flow]:
    """The registered flows by name."""
    load_workflows()
    return dict(_state.flows)


def get_flow(name: str) -> Flow:
    """One registered flow, or ``NotFound`` naming the known ones."""
    known = flows()
    if name not in known:
        raise NotFound(f"no flow named {name!r}; known: {', '.join(sorted(known)) or 'none'}")
    return known[name]


def _queue_specs(settings: Settings) -> list[QueueSpec]:
    specs = {q.name: q for q in default_queues(settings)}
    specs.update(_state.queues)
    return list(specs.values())


def _limiter(spec: QueueSpec) -> dict[str, Any] | None:
    return {"limit": spec.limiter[0], "period": spec.limiter[1]} if spec.limiter else None


# --- life cycle ---------------------------------------------------------------------------------
def is_launched() -> bool:
    """Whether this process has a launched DBOS runtime."""
    return _state.context is not None


def context() -> AppContext:
    """The AppContext of the launched runtime (steps use it for the database and settings)."""
    if _state.context is None:
        raise BackendUnavailable("the workflow runtime is not launched in this process")
    return _state.context


def launch(ctx: AppContext, *, schedules: bool = False, queues: bool = True) -> None:
    """Launch DBOS for ``ctx`` (registering workflows, queues and, for workers, schedules).

    Launching also recovers this executor's unfinished workflows (after a crash or kill -9).
    """
    dbos = _dbos()
    with _lock:
        if _state.context is not None:
            if _state.context is ctx:
                return
            raise BackendUnavailable("the workflow runtime is already launched for another context")
        load_workflows()
        ctx.settings.ensure_home()
        _state.context = ctx
        _state.settings = ctx.settings
        try:
            dbos.DBOS(config=dbos_config(ctx.settings))
            if not queues:
                # a process that only starts workflows itself (no queue consumer)
                dbos.DBOS.listen_queues([])
            dbos.DBOS.launch()
            for spec in _queue_specs(ctx.settings):
                dbos.DBOS.register_queue(
                    spec.name,
                    worker_concurrency=spec.worker_concurrency,
                    global_concurrency=spec.global_concurrency,
                    limiter=_limiter(spec),
                    polling_interval_sec=ctx.settings.workflow_poll_s,
                    on_conflict="always_update",
                )
            if schedules:
                entries = [e for fn in _state.schedules if (e := fn(ctx.settings))]
                if entries:
                    dbos.DBOS.apply_schedules(entries)
        except Exception as exc:
            _state.context = None
            dbos.DBOS.destroy()
            if isinstance(exc, (InvalidInput, BackendUnavailable)):
                raise
            raise BackendUnavailable(f"cannot launch the workflow runtime: {exc}") from exc


def destroy(*, wait_s: int = 0) -> None:
    """Shut DBOS down (waiting up to ``wait_s`` for running workflows); safe to call twice."""
    dbos = _dbos()
    with _lock:
        _state.context = None
        dbos.DBOS.destroy(workflow_completion_timeout_sec=wait_s)


@contextmanager
def running(ctx: AppContext, *, schedules: bool = False, queues: bool = True) -> Iterator[None]:
    """Launch for the duration of a ``with`` block, then destroy (tests must destroy DBOS)."""
    launch(ctx, schedules=schedules, queues=queues)
    try:
        yield
    finally:
        destroy()


# --- running workflows --------------------------------------------------------------------------
def start_flow(name: str, /, *, workflow_id: str | None = None, **kwargs: Any) -> Any:
    """Start a registered flow in this (launched) process; returns a DBOS handle."""
    dbos = _dbos()
    flow = get_flow(name)
    context()  # raises unless launched
    if workflow_id:
        with dbos.SetWorkflowID(workflow_id):
            return dbos.DBOS.start_workflow(flow.fn, **kwargs)
    return dbos.DBOS.start_workflow(flow.fn, **kwargs)


def run_flow(name: str, /, *, workflow_id: str | None = None, **kwargs: Any) -> Any:
    """Run a registered flow in this process and return its result."""
    return start_flow(name, workflow_id=workflow_id, **kwargs).get_result()


class WorkflowClient:
    """A DBOS client (no launch needed): enqueue, list, inspect, resume and cancel runs."""

    def __init__(self, settings: Settings) -> None:
        dbos = _dbos()
        self.settings = settings
        url = system_database_url(settings)
        schema = settings.workflow_schema if not url.startswith("sqlite") else "dbos"
        settings.ensure_home()
        try:
            # creating/migrating is idempotent and cheap; a fresh install has no tables yet
            dbos.DBOS.migrate(url, schema=schema)
            self._client: DBOSClient = dbos.DBOSClient(
                system_database_url=url, dbos_system_schema=schema, application_name=APP_NAME
            )
        except Exception as exc:
            raise BackendUnavailable(f"workflow database unavailable: {exc}") from exc
        self._queues_ready = False

    @property
    def raw(self) -> DBOSClient:
        """The underlying ``DBOSClient``."""
        return self._client

    def ensure_queues(self) -> None:
        """Register the declared queues (enqueueing needs them to exist)."""
        if self._queues_ready:
            return
        load_workflows()
        for spec in _queue_specs(self.settings):
            self._client.register_queue(
                spec.name,
                worker_concurrency=spec.worker_concurrency,
                global_concurrency=spec.global_concurrency,
                limiter=_limiter(spec),
                polling_interval_sec=self.settings.workflow_poll_s,
                on_conflict="never_update",
            )
        self._queues_ready = True

    def enqueue(self, name: str, /, *, workflow_id: str | None = None, **kwargs: Any) -> str:
        """Put a registered flow on its queue for a worker; returns the workflow id."""
        flow = get_flow(name)
        self.ensure_queues()
        options: dict[str, Any] = {
            "workflow_name": _dbos_name(flow.fn),
            "queue_name": flow.queue,
            "app_version": __version__,
        }
        if workflow_id:
            options["workflow_id"] = workflow_id
        handle = self._client.enqueue(options, **kwargs)  # type: ignore[arg-type]
        return str(handle.get_workflow_id())

    def close(self) -> None:
        """Close the client's connections."""
        self._client.destroy()


def _dbos_name(fn: Callable[..., Any]) -> str:
    from dbos._registrations import get_dbos_func_name

    return str(get_dbos_func_name(fn))


def enqueue_flow(
    settings: Settings, name: str, /, *, workflow_id: str | None = None, **kwargs: Any
) -> str:
    """Enqueue a flow for a worker from any process (no launch needed)."""
    client = WorkflowClient(settings)
    try:
        return client.enqueue(name, workflow_id=workflow_id, **kwargs)
    finally:
        client.close()
