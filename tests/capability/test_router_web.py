"""The cost ledger's page, JSON endpoints and CLI."""

from __future__ import annotations

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tests.llm_server import Fail
from twinengine.capability.router import service

MSG = [{"role": "user", "content": "hello <script>"}]


def test_costs_page_and_json(llm_ctx, llm_server) -> None:
    from twinengine.api.app import create_app

    service.complete(llm_ctx, task="tagging", messages=MSG, run_id="run-<b>")
    llm_server.queue(Fail(404, body="<script>alert(1)</script>"))
    try:
        service.complete(llm_ctx, task="assistant", messages=[{"role": "user", "content": "x"}])
    except Exception:
        pass
    with TestClient(create_app(context=llm_ctx)) as client:
        page = client.get("/costs")
        assert page.status_code == 200
        assert "LLM costs" in page.text and "tagging" in page.text and "test-model" in page.text
        assert "<script>alert" not in page.text and "run-&lt;b&gt;" in page.text  # escaped
        assert 'href="/costs"' in page.text  # in the navigation
        body = client.get("/v1/router/costs").json()
        assert {r["key"] for r in body["by_task"]} == {"tagging", "assistant"}
        assert body["total_usd"] > 0
        rows = client.get("/v1/router/ledger", params={"run_id": "run-<b>"}).json()
        assert [r["status"] for r in rows] == ["ok"]
        assert client.get("/v1/router/ledger", params={"limit": 0}).status_code in (400, 422)


def test_costs_cli(llm_ctx, llm_server, monkeypatch) -> None:
    from twinengine.cli.main import app

    service.complete(llm_ctx, task="tagging", messages=MSG, run_id="r9")
    s = llm_ctx.settings
    monkeypatch.setenv("TWINENGINE_HOME", str(s.home))
    monkeypatch.setenv("TWINENGINE_DATABASE_URL", s.effective_database_url)
    runner = CliRunner()
    out = runner.invoke(app, ["costs"])
    assert out.exit_code == 0, out.output
    assert "tagging" in out.output and "daily budget" in out.output
    out = runner.invoke(app, ["router", "ledger", "--run", "r9"])
    assert out.exit_code == 0, out.output
    assert "1 calls" in out.output and "completed calls repeated: 0" in out.output
