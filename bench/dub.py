"""Dubbing benchmark: a 60 s English clip dubbed to Spanish with the offline defaults.

    python bench/dub.py [--runs 3] [--seconds 60] [--piper-seed 0] [--out bench/results/dub.json]

The clip is generated here (nothing is downloaded): English speech from the packaged Piper
voice ``en_US-joe-medium`` (a neural voice of a real speaker, so the source is not the dub's
own TTS engine), sentences separated by natural pauses, over ffmpeg's test-pattern frames.
It is dubbed through the real DBOS workflow ``--runs`` times (default 3), each repetition a
pair: with voice matching (the run whose RTF, WER and drift are the headline) and without
(the named baseline for speaker similarity).

Why repetitions: the pipeline is not deterministic. Praat's PSOLA operations used by voice
matching ("Lengthen (overlap-add)", "Change gender") are randomised, which moves the matched
round-trip WER by a few points from one run to the next. One run can be lucky or unlucky, so
each headline figure is the mean over the repetitions (``max_drift_ms`` and the ``*_max`` /
``*_min`` keys are the worst run), and ``spread`` lists every run's value with min, max and sd.

The source clip is made once per process and reused by every repetition, so the spread is
the pipeline's own noise, not the source's. Piper adds random noise when it synthesises
(``noise_scale`` / ``noise_w_scale``, which make its prosody natural); the bench keeps the
voice's own values (0.667 / 0.8 for joe-medium) and instead fixes the draw: it seeds
onnxruntime (``onnxruntime.set_seed(--piper-seed)``) before the voice is loaded, so the same
seed gives the same clip, bit for bit, in every process (``source.speech_sha256`` records
it). Setting the noise to 0 would also be reproducible but makes the voice flat and robotic,
an easier source than real speech. The seed (0) was fixed before any figure was seen and was
not tuned; another seed is another, equally valid draw of the same script.

Figures (each per run, then summarised): ``rtf`` (wall time of the whole run, quality report
included, over the clip's length), ``rtf_dub`` (without the report's own ASR pass),
``rtf_cpu`` (the report's figure: CPU seconds over length x ``dub_threads`` cores, what an idle
machine would see; wall time depends on what else runs), ``cpu_s_per_media_s`` (CPU seconds
over length, not divided by cores), ``wer`` (round-trip: Whisper on the dub against the
Spanish script), ``speaker_sim_*`` (Resemblyzer cosine to the source speaker),
``max_drift_ms`` (measured on the dub track). The first repetition's matched run also pays
for loading the models (Whisper, the speaker encoder) and calibrating the TTS voices; the
1-minute load average is sampled before and after every run, since a shared machine changes
the wall-clock figures (not the quality ones).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from bench._common import git_commit  # noqa: E402

SCRIPT = [
    "Hello and welcome back to our kitchen.",
    "Today we are going to cook a simple dinner for four people.",
    "First, wash the vegetables and cut the onions into small pieces.",
    "Then heat some olive oil in a large pan.",
    "Add the onions and cook them slowly until they are soft.",
    "Now put the tomatoes in the pan with a little salt.",
    "While the sauce is cooking, boil water for the pasta.",
    "The pasta needs about ten minutes in the boiling water.",
    "Taste the sauce and add more salt if you want.",
    "When the pasta is ready, mix it with the sauce.",
    "Serve the food on warm plates with fresh bread.",
    "I hope you enjoy this meal with your family.",
    "Thank you for watching, and see you next week.",
    "Do not forget to share this video with your friends.",
]

# (headline key, side of the pair, key in the run's quality report)
FIGURES = [
    ("rtf", "matched", "rtf"),
    ("rtf_dub", "matched", "rtf_dub"),
    ("rtf_cpu", "matched", "rtf_cpu"),
    ("cpu_s_per_media_s", "matched", "cpu_s_per_media_s"),
    ("wer", "matched", "wer"),
    ("wer_unmatched", "unmatched", "wer"),
    ("speaker_sim_matched", "matched", "speaker_sim"),
    ("speaker_sim_unmatched", "unmatched", "speaker_sim"),
    ("max_drift_ms_matched", "matched", "max_drift_ms"),
    ("max_drift_ms_unmatched", "unmatched", "max_drift_ms"),
]


def make_clip(folder: Path, seconds: float, seed: int | None) -> tuple[Path, dict[str, Any]]:
    """Piper speech (with pauses) over test-pattern frames, cut to ``seconds``; and what it is.

    With ``seed`` set, onnxruntime's random generators (Piper's noise) are seeded before the
    voice is loaded, so the clip is the same in every process."""
    import soundfile as sf

    from twinengine.capability.dubbing import tts
    from twinengine.capability.dubbing._media import SR

    seeded = False
    if seed is not None:
        import onnxruntime

        # The model's random ops take their seed when the session is built, so this only
        # holds for a voice not loaded yet in this process.
        seeded = not tts._PIPER
        onnxruntime.set_seed(seed)
    voice = tts.PiperSynthesizer(voice_path="packaged:joe")
    parts, total, i = [], 0.0, 0
    while total < seconds - 1.0:
        clip = voice.synthesize(SCRIPT[i % len(SCRIPT)], lang="en", voice="default")
        pause = np.zeros(int(SR * (0.7 + 0.3 * (i % 3))), np.float32)
        if total + (clip.size + pause.size) / SR > seconds:
            break
        parts += [clip, pause]
        total += (clip.size + pause.size) / SR
        i += 1
    audio = np.concatenate(parts)
    audio = np.pad(audio, (0, max(0, int(seconds * SR) - audio.size)))
    wav = folder / "speech.wav"
    sf.write(str(wav), audio, SR)
    out = folder / "clip60.mp4"
    subprocess.run(
        [
            "ffmpeg",
            "-y",
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=640x360:rate=25",
            "-i",
            str(wav),
            "-t",
            str(seconds),
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            str(out),
        ],
        check=True,
    )
    cfg = voice.voice.config
    info = {
        "sentences": i,
        "speech_s": round(total, 2),
        "piper_noise_scale": cfg.noise_scale,
        "piper_noise_w_scale": cfg.noise_w_scale,
        "piper_seed": seed if seeded else None,
        "speech_sha256": hashlib.sha256(audio.astype(np.float32).tobytes()).hexdigest()[:16],
        "reused_by_every_run": True,
    }
    return out, info


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def load1() -> float:
    return round(os.getloadavg()[0], 2)


def dub(ctx, clip: Path, voice_match: bool) -> dict:  # type: ignore[no-untyped-def]
    """One dub through the workflow; the quality report, wall time and load."""
    from twinengine.capability.dubbing import service

    run = service.create_run(ctx, video=clip, target="es", voice_match=voice_match)
    load_before = load1()
    t0 = time.perf_counter()
    service.run(ctx, run_id=run.id, progress=lambda s, i, n: print(f"  [{i}/{n}] {s}", flush=True))
    wall = time.perf_counter() - t0
    got = service.get_run(ctx, run_id=run.id)
    q = dict(got.quality or {})
    q.pop("drift", None)
    if q.get("cpu_s") is not None and q.get("duration_s"):
        q["cpu_s_per_media_s"] = round(q["cpu_s"] / q["duration_s"], 4)
    q["wall_s"] = round(wall, 2)
    q["load1_before"] = load_before
    q["load1_after"] = load1()
    q["run_id"] = run.id
    q["stages"] = {s["name"]: s["seconds"] for s in got.stages}
    return q


def spread(values: list[float]) -> dict[str, Any]:
    """Mean, every run's value, min, max and sample sd (0 for one run)."""
    return {
        "mean": round(statistics.fmean(values), 4),
        "per_run": values,
        "min": min(values),
        "max": max(values),
        "sd": round(statistics.stdev(values), 4) if len(values) > 1 else 0.0,
    }


def summarise(reps: list[dict[str, dict]]) -> dict[str, Any]:
    """Headline figures and their spread from the repetitions (each {"matched", "unmatched"}).

    Headline keys are means over the runs, except ``max_drift_ms`` (the worst line of any run,
    either side); ``*_max`` / ``*_min`` give the worst run of the figures the acceptance
    bounds."""
    sp: dict[str, Any] = {}
    for key, side, field in FIGURES:
        values = [r[side][field] for r in reps if r[side].get(field) is not None]
        if values:
            sp[key] = spread(values)
    gain = [
        round(r["matched"]["speaker_sim"] - r["unmatched"]["speaker_sim"], 4)
        for r in reps
        if r["matched"].get("speaker_sim") is not None
        and r["unmatched"].get("speaker_sim") is not None
    ]
    if gain:
        sp["speaker_sim_gain"] = spread(gain)

    def mean(key: str) -> float | None:
        return sp[key]["mean"] if key in sp else None

    def worst(key: str, end: str) -> float | None:
        return sp[key][end] if key in sp else None

    drifts = [
        d
        for key in ("max_drift_ms_matched", "max_drift_ms_unmatched")
        for d in sp.get(key, {}).get("per_run", [])
    ]
    return {
        "rtf": mean("rtf"),
        "rtf_max": worst("rtf", "max"),
        "rtf_dub": mean("rtf_dub"),
        "rtf_cpu": mean("rtf_cpu"),
        "rtf_cpu_max": worst("rtf_cpu", "max"),
        "cpu_s_per_media_s": mean("cpu_s_per_media_s"),
        "wer": mean("wer"),
        "wer_max": worst("wer", "max"),
        "wer_unmatched": mean("wer_unmatched"),
        "speaker_sim_matched": mean("speaker_sim_matched"),
        "speaker_sim_matched_min": worst("speaker_sim_matched", "min"),
        "speaker_sim_unmatched": mean("speaker_sim_unmatched"),
        "speaker_sim_gain_min": worst("speaker_sim_gain", "min"),
        "max_drift_ms": max(drifts, default=None),
        "spread": sp,
    }


HEADLINE = [
    "rtf",
    "rtf_max",
    "rtf_dub",
    "rtf_cpu",
    "cpu_s_per_media_s",
    "wer",
    "wer_max",
    "wer_unmatched",
    "speaker_sim_matched",
    "speaker_sim_matched_min",
    "speaker_sim_unmatched",
    "speaker_sim_gain_min",
    "max_drift_ms",
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3, help="repetitions of the matched/unmatched pair")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument(
        "--piper-seed",
        type=int,
        default=0,
        help="seed for Piper's synthesis noise (the source clip); -1: unseeded, differs per run",
    )
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "dub.json"))
    args = ap.parse_args()
    if args.runs < 1:
        ap.error("--runs must be at least 1")

    from twinengine.config import Settings
    from twinengine.context import open_context

    started, started_utc = time.perf_counter(), utc_now()
    load_before = os.getloadavg()
    reps: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        seed = None if args.piper_seed < 0 else args.piper_seed
        clip, source = make_clip(folder, args.seconds, seed)
        ctx = open_context(Settings(home=folder / "home"))
        try:
            for k in range(args.runs):
                print(f"run {k + 1}/{args.runs}, voice matching on:", flush=True)
                matched = dub(ctx, clip, True)
                print(f"run {k + 1}/{args.runs}, voice matching off (baseline):", flush=True)
                plain = dub(ctx, clip, False)
                reps.append({"run": k + 1, "matched": matched, "unmatched": plain})
        finally:
            ctx.close()
    load_after = os.getloadavg()
    summary = summarise(reps)
    result = {
        "dataset": f"generated {args.seconds:.0f} s English clip: Piper en_US-joe-medium speech "
        "over ffmpeg testsrc frames; dubbed en->es with the offline defaults",
        "commit": git_commit(),
        "hardware": {
            "cpus": os.cpu_count(),
            "machine": platform.machine(),
            "python": platform.python_version(),
            "load_avg_before": [round(x, 2) for x in load_before],
            "load_avg_after": [round(x, 2) for x in load_after],
            "load1_per_run": [
                [r[s]["load1_before"], r[s]["load1_after"]]
                for r in reps
                for s in ("matched", "unmatched")
            ],
        },
        "source": source,
        "n_runs": args.runs,
        "started_utc": started_utc,
        "finished_utc": utc_now(),
        "bench_wall_s": round(time.perf_counter() - started, 1),
        **{k: summary[k] for k in HEADLINE},
        "aggregation": "headline figures are means over n_runs repetitions of the same clip "
        "(max_drift_ms, *_max, *_min: the worst run); spread: every run's value, min, max, sd",
        "baseline": "the same clip dubbed without voice matching, same process, each repetition",
        "spread": summary["spread"],
        "runs": reps,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps({k: result[k] for k in HEADLINE}, indent=1))
    for key in ("wer", "wer_unmatched", "speaker_sim_matched", "speaker_sim_unmatched", "rtf"):
        s = summary["spread"].get(key)
        if s:
            print(f"{key}: mean {s['mean']} per run {s['per_run']} sd {s['sd']}")
    ratio = (summary["speaker_sim_matched"] or 0.0) / max(
        summary["speaker_sim_unmatched"] or 0.0, 1e-9
    )
    print(
        f"speaker similarity, matched / unmatched baseline: {ratio:.3f}x (means over "
        f"{args.runs} runs); load average before {result['hardware']['load_avg_before']}, "
        f"after {result['hardware']['load_avg_after']}; {result['bench_wall_s']} s in all"
    )


if __name__ == "__main__":
    main()
