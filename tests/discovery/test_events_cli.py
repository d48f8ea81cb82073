"""``twinengine stats`` and ``twinengine events import/export`` (DuckDB analytics)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from twinengine.cli.main import app
from twinengine.discovery.events import analytics
from twinengine.discovery.events import service as events


def _day(d: int, h: int = 10) -> str:
    return f"2026-05-{d:02d}T{h:02d}:00:00Z"


def _log() -> list[dict]:
    evs = []
    # u1: day 1 and day 2 (D1 return) and day 8 (D7); u2: day 1 only.
    for n, (user, day) in enumerate([("u1", 1), ("u2", 1), ("u1", 2), ("u1", 8)]):
        rid = f"r{n}"
        evs.append({"event_id": f"i{n}", "type": "impression", "user_id": user, "ts": _day(day),
                    "request_id": rid, "surface": "feed" if n % 2 == 0 else "related",
                    "slate": ["a", "b", "c", "d"]})  # fmt: skip
        evs.append({"event_id": f"c{n}", "type": "click", "user_id": user, "ts": _day(day, 11),
                    "request_id": rid, "item_id": "b", "position": 2})  # fmt: skip
    evs.append({"event_id": "v0", "type": "conversion", "user_id": "u1", "ts": _day(1, 12),
                "request_id": "r0", "item_id": "b", "kind": "copy", "value": 1})  # fmt: skip
    return evs


def test_stats_figures(ctx) -> None:
    events.record(ctx, _log())
    out = analytics.stats(ctx)
    t = out["total"]
    assert (t["impressions"], t["clicks"], t["conversions"], t["users"]) == (16, 4, 1, 2)
    assert t["ctr"] == 0.25 and t["cvr"] == 0.25 and t["conversions_per_user"] == 0.5
    assert out["returns"]["d1_return"] == 0.5  # u1 came back on day 2, u2 did not
    assert out["returns"]["d7_return"] == 0.5
    days = {r["key"]: r for r in out["by_day"]}
    assert days["2026-05-01"]["impressions"] == 8 and days["2026-05-01"]["conversions"] == 1
    surfaces = {r["key"]: r for r in out["by_surface"]}
    assert surfaces["feed"]["impressions"] == 8 and surfaces["feed"]["ctr"] == 0.25
    assert out["by_item"][0]["key"] == "b" and out["by_item"][0]["clicks"] == 4


def test_cli_import_stats_export(ctx, settings, tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWINENGINE_HOME", str(settings.home))
    monkeypatch.setenv("TWINENGINE_DATABASE_URL", settings.effective_database_url)
    src = tmp_path / "events.jsonl"
    src.write_text("\n".join(json.dumps(e) for e in _log()) + "\n")
    runner = CliRunner()
    r = runner.invoke(app, ["events", "import", str(src)])
    assert r.exit_code == 0, r.output
    assert "9 events, 9 new" in " ".join(r.output.split())  # rich wraps long lines
    again = runner.invoke(app, ["events", "import", str(src)])
    assert "0 new, 9 already stored" in " ".join(again.output.split())
    r = runner.invoke(app, ["stats", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["total"]["clicks"] == 4
    assert runner.invoke(app, ["stats"]).exit_code == 0
    r = runner.invoke(app, ["events", "export", str(tmp_path / "pq")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "pq" / "events.parquet").stat().st_size > 0
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"event_id": "x", "type": "click"}\n')
    r = runner.invoke(app, ["events", "import", str(bad)])
    assert r.exit_code == 2 and "user_id or session_id" in " ".join(r.output.split())
