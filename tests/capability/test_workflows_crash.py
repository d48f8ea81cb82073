"""kill -9 during a content drop, then resume; and two worker processes sharing a Postgres queue."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.factories import demo_rows, write_jsonl
from twinengine.capability.workflows import runtime
from twinengine.catalog import service as catalog
from twinengine.config import Settings
from twinengine.context import AppContext, open_context
from twinengine.storage.objects import open_object_store

CLI = [sys.executable, "-c", "from twinengine.cli.main import app; app()"]
ROOT = Path(__file__).resolve().parents[2]


def env_of(settings: Settings, **extra: Any) -> dict[str, str]:
    """The environment that makes a child process build these settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWINENGINE_")}
    fields = {
        "home": str(settings.home),
        "database_url": settings.database_url,
        "workflow_poll_s": "0.2",
        **{k: str(v) for k, v in extra.items()},
    }
    for key in (
        "llm_base_url",
        "llm_api_key",
        "llm_model",
        "llm_price_in_per_1k",
        "llm_price_out_per_1k",
        "llm_timeout_s",
        "llm_backoff_s",
    ):
        value = getattr(settings, key, None)
        if value not in (None, ""):
            fields.setdefault(key, str(value))
    env.update({f"TWINENGINE_{k.upper()}": v for k, v in fields.items()})
    env["PYTHONPATH"] = str(ROOT / "src")
    return env


def steps_of(settings: Settings, run_id: str) -> tuple[str | None, list[dict[str, Any]]]:
    client = runtime.WorkflowClient(settings)
    try:
        rows = client.raw.list_workflows(workflow_ids=[run_id], load_input=False, load_output=False)
        steps = client.raw.list_workflow_steps(run_id, load_output=True) if rows else []
        return (rows[0].status if rows else None), steps
    finally:
        client.close()


def has_tagger() -> bool:
    try:
        from twinengine.capability.tagging import service

        return hasattr(service, "tag_items")
    except ImportError:
        return False


@pytest.mark.slow
def test_kill_9_during_drop_then_resume(sample_catalog: AppContext, tmp_path: Path) -> None:
    ctx = sample_catalog
    settings = ctx.settings
    before = catalog.count_items(ctx.db)
    known = {i.id for i in catalog.list_items(ctx.db, flt=catalog.make_filter(), limit=1000).data}
    rows = [r for r in demo_rows()[::37] if r["id"] not in known][:120]
    path = write_jsonl(tmp_path / "drop.jsonl", rows)
    run_id = "drop-kill-test"
    # batches of 2: some 125 checkpointed steps, so the kill lands mid-run
    proc = subprocess.Popen(
        [*CLI, "drop", str(path), "--id", run_id, "--no-llm"],
        env=env_of(settings, drop_batch_size=2),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 120
        steps: list[dict[str, Any]] = []
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                status, steps = steps_of(settings, run_id)
            except Exception:
                status, steps = None, []  # the child has not created the system database yet
            if len([s for s in steps if s.get("completed_at_epoch_ms")]) >= 8:
                break
            time.sleep(0.02)
        assert proc.poll() is None, "the drop finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    status, at_kill = steps_of(settings, run_id)
    assert status == "PENDING"
    done_at_kill = [s for s in at_kill if s.get("completed_at_epoch_ms")]
    assert 8 <= len(done_at_kill) < 100
    names = [s["function_name"].rsplit(".", 1)[-1] for s in done_at_kill]
    assert names[:3] == ["stage_input", "find_duplicate_items", "ingest_items"]

    resumed = subprocess.run(
        [*CLI, "flow", "resume", run_id],
        env=env_of(settings, drop_batch_size=2),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    status, after = steps_of(settings, run_id)
    assert status == "SUCCESS"
    # completed steps were not run again: same ids, same recorded outputs and start times
    by_id = {s["function_id"]: s for s in after}
    assert len(by_id) == len(after)
    for s in done_at_kill:
        assert by_id[s["function_id"]]["output"] == s["output"]
        assert by_id[s["function_id"]]["started_at_epoch_ms"] == s["started_at_epoch_ms"]
    # every item is in the catalog exactly once, and published
    db_ctx = open_context(settings, migrate=False)
    try:
        assert catalog.count_items(db_ctx.db) == before + len(rows)
        got = catalog.get_items(db_ctx.db, ids=[r["id"] for r in rows])
        assert sorted(i.id for i in got) == sorted(r["id"] for r in rows)
        bodies = [
            i.body
            for i in catalog.list_items(db_ctx.db, flt=catalog.make_filter(), limit=1000).data
        ]
        assert len(bodies) == len(set(bodies)) or len(bodies) == before + len(rows)
        store = open_object_store(settings)
        assert len(store.list("items/")) == len(rows)
        report = by_id[max(by_id)]["output"]
        assert report["manifest_url"].endswith(f"drops/{run_id}/manifest.json")
        from twinengine.capability.router import service as router

        assert router.repeated_calls(db_ctx, run_id=run_id) == []
    finally:
        db_ctx.close()


@pytest.mark.slow
@pytest.mark.postgres
def test_two_workers_share_a_postgres_queue(pg_database_url: str, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", database_url=pg_database_url)
    ctx = open_context(settings)
    try:
        files = []
        for n in range(6):
            files.append(
                write_jsonl(tmp_path / f"d{n}.jsonl", list(demo_rows()[n * 10 : n * 10 + 10]))
            )
        from twinengine.capability.dropper import service as drops

        ids = [drops.enqueue_drop(ctx, path=f, allow_llm=False) for f in files]
        workers = [
            subprocess.Popen(
                [*CLI, "worker", "--id", name, "--no-schedule"],
                env=env_of(settings),
                cwd=tmp_path,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for name in ("w1", "w2")
        ]
        try:
            from twinengine.capability.workflows import service as wf

            deadline = time.monotonic() + 150
            runs = []
            while time.monotonic() < deadline:
                runs = [wf.get_run(ctx, run_id=i) for i in ids]
                if all(r.status == "SUCCESS" for r in runs):
                    break
                assert not any(r.status == "ERROR" for r in runs), [r.error for r in runs]
                time.sleep(0.5)
        finally:
            for w in workers:
                w.send_signal(signal.SIGTERM)
            for w in workers:
                try:
                    w.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    w.kill()
        assert all(r.status == "SUCCESS" for r in runs)
        assert {r.executor for r in runs} == {"w1", "w2"}  # both workers took runs
        assert catalog.count_items(ctx.db) == 60
    finally:
        ctx.close()
