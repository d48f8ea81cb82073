"""The per-run quality report: round-trip WER, speaker similarity, drift, real-time factor."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from twinengine.capability.dubbing import _media, timing
from twinengine.capability.dubbing._media import ASR_SR, SR, dump_json, read_wav
from twinengine.capability.dubbing.quality import wer
from twinengine.capability.dubbing.voice import ENCODERS, cosine

if TYPE_CHECKING:
    from twinengine.capability.dubbing.pipeline import Run
    from twinengine.context import AppContext


def _speaker_sims(
    ctx: AppContext, run: Run, rows: list[dict[str, Any]], dub: np.ndarray
) -> tuple[float | None, float | None]:
    """Seconds-weighted cosine between each speaker's source speech and (a) their lines in the
    dub track, (b) the same lines straight from TTS, before voice matching."""
    enc = ENCODERS.get(ctx.settings.dub_speaker_encoder)()
    placed = run.load("timing.json")["placed"]
    total, sim, sim_raw = 0.0, 0.0, 0.0
    for sp in run.load("speakers.json")["speakers"]:
        k = sp["id"]
        src = np.load(run.path(f"speaker{k}.npy"))
        idx = [i for i, r in enumerate(rows) if r["speaker"] == k]
        out = np.concatenate(
            [dub[int(placed[i]["start"] * SR) : int(placed[i]["end"] * SR)] for i in idx]
        )
        raw = np.concatenate([read_wav(run.path("tts", f"{i:04d}.wav"))[0] for i in idx])
        if out.size < SR // 2:
            continue
        w = sp["seconds"]
        sim += w * cosine(src, enc.embed(out, SR))
        sim_raw += w * cosine(src, enc.embed(raw, SR))
        total += w
    if not total:
        return None, None
    return round(sim / total, 4), round(sim_raw / total, 4)


def quality_report(ctx: AppContext, run: Run) -> dict[str, Any]:
    """Measure the finished dub and write ``quality.json``."""
    import time

    from twinengine.capability.dubbing.pipeline import _cpu_seconds

    t0, c0 = time.perf_counter(), _cpu_seconds()
    rows = run.load("translation.json")["lines"]
    dub, _ = read_wav(run.path("dub.wav"))
    duration = run.marker("probe")["duration"]  # type: ignore[index]
    lines = [(r["start"], r["end"], r["target"]) for r in rows]
    drift = timing.measure_drift(
        dub,
        lines,
        max_borrow=ctx.settings.dub_max_borrow_s,
        placed=run.load("timing.json")["placed"],
    )
    finite = [d["drift_ms"] for d in drift if not math.isnan(d["drift_ms"])]
    report: dict[str, Any] = {
        "duration_s": round(duration, 3),
        "lines": len(rows),
        "max_drift_ms": max(finite, default=None),
        "mean_drift_ms": round(float(np.mean(finite)), 1) if finite else None,
        "lines_not_found": len(drift) - len(finite),
        "max_overrun_ms": max(
            (d["overrun_ms"] for d in drift if not math.isnan(d["overrun_ms"])), default=None
        ),
        "drift": drift,
    }
    sim, sim_raw = _speaker_sims(ctx, run, rows, dub)
    report["speaker_sim"] = sim
    report["speaker_sim_before_match"] = sim_raw if run.request.get("voice_match") else sim
    report["voice_match"] = bool(run.request.get("voice_match"))
    if ctx.settings.dub_quality_asr:
        from twinengine.capability.dubbing.pipeline import _transcriber

        hyp_lang, segs = _transcriber(ctx).transcribe(
            _media.resample(dub, SR, ASR_SR), language=run.request["target"]
        )
        hyp = " ".join(s.text for s in segs)
        report["wer"] = round(wer(" ".join(r["target"] for r in rows), hyp), 4)
        report["round_trip_text"] = hyp
    from twinengine.capability.dubbing.pipeline import _cpu_seconds

    before = [run.marker(s) or {} for s in _stages_before(run)]
    dub_s = sum(m.get("seconds", 0.0) for m in before)
    dub_cpu = sum(m.get("cpu_seconds", 0.0) for m in before)
    total = dub_s + (time.perf_counter() - t0)
    cores = ctx.settings.dub_threads
    # rtf: the whole run's wall time (stages + this report) over the video's length;
    # rtf_dub leaves out this report's own measuring (a second ASR pass and embeddings);
    # rtf_cpu: CPU seconds over (length x dub_threads cores): the RTF on idle cores.
    report["processing_s"] = round(total, 2)
    report["rtf"] = round(total / duration, 4) if duration else None
    report["rtf_dub"] = round(dub_s / duration, 4) if duration else None
    report["cpu_s"] = round(dub_cpu + (_cpu_seconds() - c0), 2)
    report["rtf_cpu"] = round(report["cpu_s"] / (duration * cores), 4) if duration else None
    dump_json(run.path("quality.json"), report)
    return {k: v for k, v in report.items() if k not in ("drift", "round_trip_text")}


def _stages_before(run: Run) -> list[str]:
    from twinengine.capability.dubbing.pipeline import STAGES

    return STAGES[: STAGES.index("quality")]
