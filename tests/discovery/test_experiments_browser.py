"""The experiment dashboard in Chromium, and assignment across two real server processes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser import chromium_page, free_port, live_server
from tests.discovery.test_experiments_service import backdate, log_traffic, make
from twinengine.api.app import create_app
from twinengine.config import Settings
from twinengine.context import AppContext
from twinengine.discovery.experiments import service
from twinengine.discovery.experiments.schemas import ExperimentCreate

EVIL = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'


@pytest.mark.browser
def test_dashboard_in_chromium(ctx: AppContext, tmp_path: Path) -> None:
    make(ctx, "ranker-v3", description=EVIL, analysis={"min_users": 50})
    service.start(ctx, exp_id="ranker-v3")
    start = backdate(ctx, "ranker-v3", 4)
    log_traffic(ctx, "ranker-v3", users=400, start=start,
                ctr={"control": 0.07, "treatment": 0.13})  # fmt: skip
    service.create(ctx, spec=ExperimentCreate(id="draft-1", name=EVIL))
    app = create_app(context=ctx)
    with live_server(app) as base, chromium_page() as page:
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(base + "/experiments")
        assert page.locator("nav a[href='/experiments']").count() == 1
        assert page.locator("table.exp-list tbody tr").count() == 2
        assert EVIL in page.locator("table.exp-list").inner_text()  # shown as text
        page.locator("a[href='/experiments/ranker-v3']").click()
        page.wait_for_url("**/experiments/ranker-v3")
        decision = page.locator("#decision").inner_text()
        assert decision.startswith("SHIP") or decision.lower().startswith("ship"), decision
        assert "treatment" in decision and "CTR" in decision
        assert "OK" in page.locator("#srm").inner_text()
        rows = page.locator("#metrics tbody tr")
        assert rows.count() >= 5
        assert page.locator("#metrics tr.primary.sig.up").count() == 1
        assert page.locator("#metrics svg.cibar").count() >= 4
        plot = page.locator("#lift-plot")
        assert plot.locator("polyline.line").count() == 1
        assert plot.locator("polygon.band").count() == 1
        assert plot.locator("circle.dot").count() >= 3
        box = plot.bounding_box()
        assert box is not None and box["width"] > 400 and box["height"] > 150
        # The plot is styled by the external stylesheet (CSP: no inline styles).
        stroke = page.evaluate(
            "getComputedStyle(document.querySelector('#lift-plot polyline.line')).stroke")
        assert stroke not in ("", "none")
        assert page.evaluate("window.__pwned") is None
        assert EVIL in page.locator("p.lead").inner_text()
        shot = tmp_path / "experiment.png"
        page.screenshot(path=str(shot), full_page=True)
        if os.environ.get("TE_SCREENSHOTS"):  # keep a copy for a person to look at
            shutil.copy(shot, Path(os.environ["TE_SCREENSHOTS"]) / "experiment.png")
        page.goto(base + "/experiments/draft-1")
        assert "Not started yet" in page.locator("main").inner_text()
        assert page.goto(base + "/experiments/missing").status == 404
        assert page.evaluate("window.__pwned") is None
        assert errors == [] or all("404" in e for e in errors), errors


@pytest.mark.browser
def test_interleaving_dashboard(ctx: AppContext, tmp_path: Path) -> None:
    from tests.discovery.test_experiments_service import test_interleaving_report_credits_teams

    test_interleaving_report_credits_teams(ctx)  # logs an interleaving experiment's traffic
    with live_server(create_app(context=ctx)) as base, chromium_page() as page:
        page.goto(base + "/experiments/il")
        table = page.locator("#interleaving").inner_text()
        assert "clicks" in table and "conversions" in table
        assert "ship" in page.locator("#decision").inner_text().lower()
        assert page.locator("#lift-plot polyline.line").count() == 1
        page.screenshot(path=str(tmp_path / "interleaving.png"), full_page=True)
        if os.environ.get("TE_SCREENSHOTS"):
            shutil.copy(tmp_path / "interleaving.png",
                        Path(os.environ["TE_SCREENSHOTS"]) / "interleaving.png")


def _serve(settings: Settings, port: int, log: Path) -> subprocess.Popen:
    env = {**os.environ, "TWINENGINE_HOME": str(settings.home),
           "TWINENGINE_DATABASE_URL": settings.effective_database_url}  # fmt: skip
    cli = Path(sys.executable).with_name("twinengine")
    return subprocess.Popen(
        [str(cli), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip


def _wait(url: str, proc: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(url + "/v1/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"server did not start: {log.read_text()[-2000:]}")


@pytest.mark.slow
def test_two_server_processes_assign_identically(ctx: AppContext, tmp_path: Path) -> None:
    make(ctx, "plain", variants=[{"key": "control"}, {"key": "b"}, {"key": "c", "weight": 2}])
    make(ctx, "layered-1", layer="ranking", traffic=0.4)
    make(ctx, "layered-2", layer="ranking", traffic=0.6, targeting={"surfaces": ["feed"]})
    for e in ("plain", "layered-1", "layered-2"):
        service.start(ctx, exp_id=e)
    ports = [free_port(), free_port()]
    procs = [_serve(ctx.settings, p, tmp_path / f"server{i}.log") for i, p in enumerate(ports)]
    try:
        bases = [f"http://127.0.0.1:{p}" for p in ports]
        for i, (base, proc) in enumerate(zip(bases, procs, strict=True)):
            _wait(base, proc, tmp_path / f"server{i}.log")
        users = [f"user-{i}" for i in range(200)] + ["s:anon-1", "ユーザー", "u@example.com"]
        answers: list[list[dict[str, Any]]] = []
        with httpx.Client(timeout=10) as client:
            for base in bases:
                answers.append([
                    client.get(base + "/v1/assignments",
                               params={"user_key": u, "surface": "feed"}).json()["assignments"]
                    for u in users
                ])  # fmt: skip
        assert answers[0] == answers[1]
        # ... and both match this process, and every user is in one layered experiment.
        local = [service.assignments_for(ctx, user_key=u, surface="feed") for u in users]
        assert answers[0] == local
        assert all(("layered-1" in a) != ("layered-2" in a) for a in local)
        assert {a["plain"] for a in local} == {"control", "b", "c"}
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=20)
