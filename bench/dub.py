"""Dubbing benchmark: a 60 s English clip dubbed to Spanish with the offline defaults.

    python bench/dub.py [--seconds 60] [--out bench/results/dub.json]

The clip is generated here (nothing is downloaded): English speech from the packaged Piper
voice ``en_US-joe-medium`` (a neural voice of a real speaker, so the source is not the dub's
own TTS engine), sentences separated by natural pauses, over ffmpeg's test-pattern frames.
It is dubbed twice through the real DBOS workflow: with voice matching (the run whose RTF,
WER and drift are reported) and without (the named baseline for speaker similarity).

Figures: ``rtf`` (wall time of the whole run, quality report included, over the clip's
length), ``rtf_dub`` (without the report's own ASR pass), ``rtf_cpu`` (CPU seconds over
length x 2 cores: what an idle machine would see; wall time depends on what else runs),
``wer`` (round-trip: Whisper on the dub against the Spanish script), ``speaker_sim_*``
(Resemblyzer cosine to the source speaker), ``max_drift_ms`` (measured on the dub track).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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


def make_clip(folder: Path, seconds: float) -> Path:
    """Piper speech (with pauses) over test-pattern frames, cut to ``seconds``."""
    import soundfile as sf

    from twinengine.capability.dubbing._media import SR
    from twinengine.capability.dubbing.tts import PiperSynthesizer

    voice = PiperSynthesizer(voice_path="packaged:joe")
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
    return out


def dub(ctx, clip: Path, voice_match: bool) -> dict:  # type: ignore[no-untyped-def]
    """One dub through the workflow; the quality report and wall time."""
    from twinengine.capability.dubbing import service

    run = service.create_run(ctx, video=clip, target="es", voice_match=voice_match)
    t0 = time.perf_counter()
    service.run(ctx, run_id=run.id, progress=lambda s, i, n: print(f"  [{i}/{n}] {s}", flush=True))
    wall = time.perf_counter() - t0
    got = service.get_run(ctx, run_id=run.id)
    q = dict(got.quality or {})
    q.pop("drift", None)
    q["wall_s"] = round(wall, 2)
    q["run_id"] = run.id
    q["stages"] = {s["name"]: s["seconds"] for s in got.stages}
    return q


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "dub.json"))
    args = ap.parse_args()

    from twinengine.config import Settings
    from twinengine.context import open_context

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        clip = make_clip(folder, args.seconds)
        ctx = open_context(Settings(home=folder / "home"))
        try:
            print("voice matching on:", flush=True)
            matched = dub(ctx, clip, True)
            print("voice matching off (baseline):", flush=True)
            plain = dub(ctx, clip, False)
        finally:
            ctx.close()
    result = {
        "dataset": f"generated {args.seconds:.0f} s English clip: Piper en_US-joe-medium speech "
        "over ffmpeg testsrc frames; dubbed en->es with the offline defaults",
        "commit": git_commit(),
        "hardware": {
            "cpus": os.cpu_count(),
            "machine": platform.machine(),
            "python": platform.python_version(),
            "load_avg_before": [round(x, 2) for x in load_before],
            "load_avg_after": [round(x, 2) for x in os.getloadavg()],
        },
        "rtf": matched["rtf"],
        "rtf_dub": matched["rtf_dub"],
        "rtf_cpu": matched["rtf_cpu"],
        "wer": matched["wer"],
        "speaker_sim_matched": matched["speaker_sim"],
        "speaker_sim_unmatched": plain["speaker_sim"],
        "max_drift_ms": max(matched["max_drift_ms"], plain["max_drift_ms"]),
        "baseline": "the same clip dubbed without voice matching, same process",
        "runs": {"matched": matched, "unmatched": plain},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(
        json.dumps(
            {
                k: result[k]
                for k in (
                    "rtf",
                    "rtf_dub",
                    "rtf_cpu",
                    "wer",
                    "speaker_sim_matched",
                    "speaker_sim_unmatched",
                    "max_drift_ms",
                )
            },
            indent=1,
        )
    )
    ratio = result["speaker_sim_matched"] / max(result["speaker_sim_unmatched"], 1e-9)
    print(
        f"speaker similarity, matched / unmatched baseline: {ratio:.3f}x; "
        f"WER matched {matched['wer']:.3f} vs baseline {plain['wer']:.3f}"
    )


if __name__ == "__main__":
    main()
