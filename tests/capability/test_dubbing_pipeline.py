"""A real dub of a short generated clip, end to end (one run shared by the checks), resuming
after ``kill -9``, and the API and page."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.capability.dubbing_media import SHORT_SCRIPT, make_video, require_media_stack, speech_wav
from tests.conftest import USE_POSTGRES, _create_pg_database, _drop_pg_database, postgres_available
from twinengine.config import Settings
from twinengine.context import AppContext, open_context


@pytest.fixture(scope="module")
def module_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Settings with a database and home shared by this module's tests."""
    require_media_stack()
    root = tmp_path_factory.mktemp("dub")
    if not USE_POSTGRES:
        yield Settings(home=root / "home", database_url=f"sqlite:///{root / 'test.db'}")
        return
    if not postgres_available():
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    name = f"te_test_{uuid.uuid4().hex[:12]}"
    url = _create_pg_database(name)
    try:
        yield Settings(home=root / "home", database_url=url)
    finally:
        _drop_pg_database(name)


@pytest.fixture(scope="module")
def mctx(module_settings: Settings) -> Iterator[AppContext]:
    context = open_context(module_settings)
    try:
        yield context
    finally:
        context.close()


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """About 7 s of English speech over test-pattern frames."""
    require_media_stack()
    d = tmp_path_factory.mktemp("media")
    return make_video(d / "clip.mp4", speech_wav(d / "speech.wav", SHORT_SCRIPT))


@pytest.fixture(scope="module")
def dubbed(mctx: AppContext, clip: Path) -> dict:
    """One voice-matched English -> Spanish dub of ``clip``, through the DBOS workflow."""
    from twinengine.capability.dubbing import service

    run = service.create_run(mctx, video=clip, target="es", voice_match=True)
    seen: list[str] = []
    result = service.run(mctx, run_id=run.id, progress=lambda stage, i, n: seen.append(stage))
    return {
        "run": service.get_run(mctx, run_id=run.id),
        "result": result,
        "progress": seen,
        "dir": mctx.settings.home / "dubbing" / run.id,
    }


def test_every_stage_ran_once_and_progress_was_reported(dubbed: dict) -> None:
    run = dubbed["run"]
    assert run.status == "done", run.error
    assert [s["attempts"] for s in run.stages] == [1] * len(run.stages)
    assert dubbed["progress"][-1] == "done"
    assert len(set(dubbed["progress"])) >= 3


def test_transcript_and_translation_are_real(dubbed: dict) -> None:
    d = dubbed["dir"]
    tr = json.loads((d / "transcript.json").read_text())
    assert tr["language"] == "en"
    heard = " ".join(t for _, _, t in tr["lines"]).lower()
    assert "welcome" in heard and "dinner" in heard
    rows = json.loads((d / "translation.json").read_text())["lines"]
    spanish = " ".join(r["target"] for r in rows).lower()
    assert "cena" in spanish and "bienvenid" in spanish


def test_output_has_video_two_audio_tracks_and_two_subtitle_tracks(dubbed: dict) -> None:
    from twinengine.capability.dubbing._media import stream_summary

    streams = stream_summary(dubbed["dir"] / "output.mp4")
    kinds = [s["type"] for s in streams]
    assert kinds.count("video") == 1 and kinds.count("audio") == 2 and kinds.count("subtitle") == 2
    audio_langs = [s["language"] for s in streams if s["type"] == "audio"]
    assert audio_langs == ["spa", "eng"]
    assert (
        "Hola" in (dubbed["dir"] / "subs-es.srt").read_text()
        or "hola" in (dubbed["dir"] / "subs-es.srt").read_text().lower()
    )
    assert (dubbed["dir"] / "subs-en.vtt").read_text().startswith("WEBVTT")


def test_quality_report_measures_the_dub(dubbed: dict) -> None:
    q = dubbed["run"].quality
    assert q is not None
    # round-trip: Whisper hears the Spanish dub and most words match the script
    assert q["wer"] < 0.6, q.get("round_trip_text")
    assert 0.3 < q["speaker_sim"] <= 1.0
    assert q["max_drift_ms"] is not None and q["max_drift_ms"] < 1000
    assert q["rtf"] > 0 and q["rtf_cpu"] > 0
    assert q["lines_not_found"] == 0


def test_published_to_object_store_and_catalog(dubbed: dict, mctx: AppContext) -> None:
    from twinengine.catalog import service as catalog
    from twinengine.storage.objects import open_object_store

    run = dubbed["run"]
    item = catalog.get_item(mctx.db, item_id=run.item_id)
    assert item.media == "video"
    assert "es" in item.languages
    store = open_object_store(mctx.settings)
    key = f"dubbing/{run.id}/output.mp4"
    assert store.get(key) == (dubbed["dir"] / "output.mp4").read_bytes()


def test_rerun_redoes_nothing(dubbed: dict, mctx: AppContext) -> None:
    from twinengine.capability.dubbing import service

    service.run(mctx, run_id=dubbed["run"].id)
    again = service.get_run(mctx, run_id=dubbed["run"].id)
    assert [s["attempts"] for s in again.stages] == [1] * len(again.stages)


def test_not_a_video_is_refused(mctx: AppContext, tmp_path: Path) -> None:
    from twinengine.capability.dubbing import service
    from twinengine.errors import InvalidInput

    txt = tmp_path / "notes.txt"
    txt.write_text("hello")
    with pytest.raises(InvalidInput):
        service.create_run(mctx, video=txt, target="es")
    fake = tmp_path / "fake.mp4"
    fake.write_bytes(os.urandom(2000))
    with pytest.raises(InvalidInput):
        service.create_run(mctx, video=fake, target="es")


def _cli(settings: Settings, *args: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "TWINENGINE_HOME": str(settings.home),
        "TWINENGINE_DATABASE_URL": settings.effective_database_url,
    }
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "twinengine"), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.slow
def test_kill_9_then_resume_redoes_no_finished_stage(module_settings: Settings, clip: Path) -> None:
    root = module_settings.home / "dubbing"
    before = set(os.listdir(root)) if root.exists() else set()
    proc = _cli(module_settings, "dub", str(clip), "--to", "es", "--voice-match")
    deadline = time.time() + 240
    run_dir = None
    while time.time() < deadline:
        new = (set(os.listdir(root)) if root.exists() else set()) - before - {"uploads"}
        if new:
            run_dir = root / new.pop()
            if (run_dir / "stages" / "asr.json").exists():
                break
        time.sleep(0.05)
    assert run_dir is not None, proc.communicate()[0]
    os.kill(proc.pid, signal.SIGKILL)  # kill -9 mid-run, after ASR
    proc.wait()
    finished = {p.stem for p in (run_dir / "stages").glob("*.json")}
    assert "asr" in finished and "quality" not in finished
    out, _ = _cli(module_settings, "dubs", "resume", run_dir.name).communicate(timeout=400)
    stages = json.loads((run_dir / "run.json").read_text()) and sorted(
        (p.stem, int(p.read_text())) for p in (run_dir / "stages").glob("*.attempts")
    )
    attempts = dict(stages)
    assert (run_dir / "stages" / "quality.json").exists(), out
    for stage in finished:
        assert attempts[stage] == 1, (stage, attempts)
    assert max(attempts.values()) <= 2


@pytest.mark.slow
def test_api_upload_watch_download(mctx: AppContext, clip: Path) -> None:
    from fastapi.testclient import TestClient

    from twinengine.api.app import create_app
    from twinengine.capability.workflows import runtime

    try:
        with TestClient(create_app(context=mctx)) as client:
            bad = client.post(
                "/v1/dubbing/runs",
                files={"file": ("a.txt", b"hello", "text/plain")},
                data={"target": "es"},
            )
            assert bad.status_code == 400 and "video" in bad.json()["error"]["message"]
            with clip.open("rb") as fh:
                res = client.post(
                    "/v1/dubbing/runs",
                    files={"file": ("clip.mp4", fh, "video/mp4")},
                    data={"target": "es", "voice_match": "false"},
                )
            assert res.status_code == 202, res.text
            run_id = res.json()["id"]
            deadline = time.time() + 300
            while time.time() < deadline:
                run = client.get(f"/v1/dubbing/runs/{run_id}").json()
                if run["status"] in ("done", "failed"):
                    break
                time.sleep(0.5)
            assert run["status"] == "done", run
            video = client.get(f"/v1/dubbing/runs/{run_id}/files/output.mp4")
            assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
            assert client.get(f"/v1/dubbing/runs/{run_id}/files/run.json").status_code == 404
            page = client.get(f"/dub?run={run_id}")
            assert page.status_code == 200 and "/static/dub.js" in page.text
            assert "<script>" not in page.text  # the CSP forbids inline scripts
    finally:
        runtime.destroy()  # the server thread left DBOS launched (a process-global singleton)
