"""/v1/flows and the /flows runs page: list, show, start a drop, cancel, resume; 4xx not 500."""

from __future__ import annotations

import json

from tests.factories import demo_rows
from twinengine.capability.workflows import runtime, service


def test_drop_through_the_api_and_the_runs_page(client) -> None:  # type: ignore[no-untyped-def]
    ctx = client.app.state.context
    ctx.settings = ctx.settings.model_copy(update={"workflow_poll_s": 0.2})
    assert client.get("/v1/flows").json() == {"data": [], "count": 0}
    content = "\n".join(json.dumps(r) for r in demo_rows()[:4]) + "\n{not json\n"
    r = client.post("/v1/flows/drops", json={"content": content, "allow_llm": False})
    assert r.status_code == 202, r.text
    run_id = r.json()["id"]
    assert r.json()["status"] == "ENQUEUED" and r.json()["url"] == f"/v1/flows/{run_id}"
    # a worker (here: this process) runs it
    with runtime.running(ctx):
        run = service.wait_run(ctx, run_id=run_id, timeout_s=60)
    assert run.status == "SUCCESS"
    body = client.get(f"/v1/flows/{run_id}").json()
    assert body["output"]["counts"]["inserted"] == 4 and body["output"]["counts"]["rejected"] == 1
    assert body["steps"][0]["name"] == "stage_input" and body["steps"][0]["seconds"] is not None
    listed = client.get("/v1/flows", params={"status": "success"}).json()
    assert [x["id"] for x in listed["data"]] == [run_id]
    page = client.get("/flows")
    assert page.status_code == 200 and run_id in page.text and "Workflows" in page.text
    detail = client.get(f"/flows/{run_id}")
    assert detail.status_code == 200
    assert (
        "stage_input" in detail.text and "<meter" in detail.text and "<script>" not in detail.text
    )
    # finished runs can't be cancelled or resumed: 409 with a reason
    assert client.post(f"/v1/flows/{run_id}/cancel").status_code == 409
    assert client.post(f"/v1/flows/{run_id}/resume").status_code == 409


def test_api_errors_are_4xx(client) -> None:  # type: ignore[no-untyped-def]
    assert client.get("/v1/flows/nope").status_code == 404
    assert client.get("/flows/nope").status_code == 404
    assert client.get("/v1/flows", params={"status": "weird"}).status_code == 400
    assert client.get("/v1/flows", params={"limit": 0}).status_code == 422
    assert client.post("/v1/flows/drops", json={"content": ""}).status_code == 422
    assert client.post("/v1/flows/drops", json={"content": "x", "format": "exe"}).status_code == 422
    assert client.post("/v1/flows/nope/cancel").status_code == 404
