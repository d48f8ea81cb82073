"""Production backends run as external commands (separation, lip-sync), from settings."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

from twinengine.errors import BackendUnavailable


def run_command(template: str, *, timeout_s: float = 3600, **paths: Path) -> None:
    """Run ``template`` with ``{name}`` placeholders filled from ``paths``; check outputs."""
    args = [a.format(**{k: str(v) for k, v in paths.items()}) for a in shlex.split(template)]
    try:
        proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout_s)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BackendUnavailable(f"{args[0] if args else template!r} failed: {exc}") from exc
    out = paths.get("output")
    if proc.returncode != 0 or (out is not None and not Path(out).exists()):
        raise BackendUnavailable(f"{args[0]} failed: {proc.stderr.strip()[-400:]}")


def lipsync(template: str, *, video: Path, audio: Path, output: Path) -> None:
    """Lip-sync ``video`` to ``audio`` with the configured model (Wav2Lip, LatentSync, ...)."""
    if not template:
        raise BackendUnavailable(
            "lip-sync needs a model: set TWINENGINE_DUB_LIPSYNC_COMMAND (e.g. Wav2Lip's "
            "inference.py --face {video} --audio {audio} --outfile {output}); none ships offline"
        )
    run_command(template, video=video, audio=audio, output=output)
