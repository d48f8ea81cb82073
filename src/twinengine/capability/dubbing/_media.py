"""Media plumbing: probe, decode audio, WAV I/O, resampling, subtitles and muxing."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from math import gcd
from pathlib import Path
from typing import Any

import numpy as np

from twinengine.errors import BackendUnavailable, InvalidInput, MissingDependency

SR = 22050  # the dub track's rate: espeak-ng's native rate, so its output is never resampled
ASR_SR = 16000


@dataclass
class Probe:
    """What the source file holds."""

    duration: float
    width: int
    height: int
    fps: float
    video_codec: str
    has_audio: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return dict(self.__dict__)


def _av() -> Any:
    try:
        import av
    except ImportError as exc:  # pragma: no cover - av comes with faster-whisper
        raise MissingDependency("av", "dubbing") from exc
    return av


def probe(path: Path) -> Probe:
    """Open ``path`` and describe its streams; ``InvalidInput`` when it is not a video."""
    av = _av()
    try:
        with av.open(str(path)) as box:
            vids = [s for s in box.streams if s.type == "video"]
            auds = [s for s in box.streams if s.type == "audio"]
            if not vids:
                raise InvalidInput(f"{path.name}: no video stream (is it a video file?)")
            v = vids[0]
            duration = float(box.duration / 1_000_000) if box.duration else 0.0
            if not duration and v.duration and v.time_base:
                duration = float(v.duration * v.time_base)
            fps = float(v.average_rate) if v.average_rate else 0.0
            return Probe(
                duration,
                v.codec_context.width,
                v.codec_context.height,
                fps,
                v.codec_context.name,
                bool(auds),
            )
    except InvalidInput:
        raise
    except Exception as exc:  # PyAV raises its own error tree for undecodable input
        raise InvalidInput(f"{path.name}: not a readable video ({exc})") from exc


def decode_audio(path: Path, *, rate: int = SR) -> np.ndarray:
    """Decode the first audio stream of ``path`` to mono float32 at ``rate``."""
    av = _av()
    chunks: list[np.ndarray] = []
    with av.open(str(path)) as box:
        if not box.streams.audio:
            raise InvalidInput(f"{path.name}: no audio stream to dub")
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        for frame in box.decode(box.streams.audio[0]):
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray().reshape(-1))
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray().reshape(-1))
    return np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """Mono float32 samples and rate of a WAV file."""
    import soundfile as sf

    data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    return data.mean(axis=1), int(rate)


def write_wav(path: Path, samples: np.ndarray, rate: int) -> Path:
    """Write mono float samples as 16-bit PCM, atomically (a crash leaves no half file)."""
    import soundfile as sf

    tmp = path.with_name(path.name + ".part")
    sf.write(str(tmp), np.clip(samples, -1.0, 1.0), rate, subtype="PCM_16", format="WAV")
    tmp.replace(path)
    return path


def resample(samples: np.ndarray, src: int, dst: int) -> np.ndarray:
    """Polyphase resampling between integer rates."""
    if src == dst or samples.size == 0:
        return samples.astype(np.float32)
    from scipy.signal import resample_poly

    g = gcd(src, dst)
    return resample_poly(samples, dst // g, src // g).astype(np.float32)


def _ts(seconds: float, sep: str) -> str:
    ms = int(round(max(seconds, 0.0) * 1000))
    h, rem = divmod(ms, 3_600_000)
    m, rem = divmod(rem, 60_000)
    s, ms = divmod(rem, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def write_subtitles(path_stem: Path, lines: list[tuple[float, float, str]]) -> tuple[Path, Path]:
    """Write ``<stem>.srt`` and ``<stem>.vtt`` for (start, end, text) cues."""
    srt = [f"{i}\n{_ts(a, ',')} --> {_ts(b, ',')}\n{t}\n" for i, (a, b, t) in enumerate(lines, 1)]
    vtt = ["WEBVTT\n"] + [f"{_ts(a, '.')} --> {_ts(b, '.')}\n{t}\n" for a, b, t in lines]
    p_srt, p_vtt = path_stem.with_suffix(".srt"), path_stem.with_suffix(".vtt")
    p_srt.write_text("\n".join(srt), encoding="utf-8")
    p_vtt.write_text("\n".join(vtt), encoding="utf-8")
    return p_srt, p_vtt


# ISO 639-1 -> 639-2 for the language tags of the muxed tracks.
_ISO3 = {"en": "eng", "es": "spa", "fr": "fra", "de": "deu", "it": "ita", "pt": "por", "ca": "cat"}


def ffmpeg_bin() -> str:
    """Path of Debian's ffmpeg; ``BackendUnavailable`` with the install hint if missing."""
    exe = shutil.which("ffmpeg")
    if not exe:
        raise BackendUnavailable(
            "ffmpeg is not installed: make media-deps (apt-get install ffmpeg)"
        )
    return exe


def mux(
    *,
    video: Path,
    dub: Path,
    original: Path,
    subs: list[tuple[Path, str]],
    out: Path,
    source_lang: str,
    target_lang: str,
) -> Path:
    """Original video stream + dubbed track (default) + original track + subtitle tracks."""
    args = [
        ffmpeg_bin(),
        "-y",
        "-v",
        "error",
        "-i",
        str(video),
        "-i",
        str(dub),
        "-i",
        str(original),
    ]
    for sub, _ in subs:
        args += ["-i", str(sub)]
    args += ["-map", "0:v:0", "-map", "1:a:0", "-map", "2:a:0"]
    args += sum((["-map", f"{3 + i}:0"] for i in range(len(subs))), [])
    args += ["-c:v", "copy", "-c:a", "aac", "-b:a", "128k", "-c:s", "mov_text"]
    args += [
        "-metadata:s:a:0",
        f"language={_ISO3.get(target_lang, target_lang)}",
        "-metadata:s:a:0",
        "title=Dub",
        "-disposition:a:0",
        "default",
        "-metadata:s:a:1",
        f"language={_ISO3.get(source_lang, source_lang)}",
        "-metadata:s:a:1",
        "title=Original",
        "-disposition:a:1",
        "0",
    ]
    for i, (_, lang) in enumerate(subs):
        args += [f"-metadata:s:s:{i}", f"language={_ISO3.get(lang, lang)}"]
    tmp = out.with_name("tmp-" + out.name)
    args += ["-movflags", "+faststart", "-shortest", str(tmp)]
    proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BackendUnavailable(f"ffmpeg mux failed: {proc.stderr.strip()[-400:]}")
    tmp.replace(out)
    return out


def stream_summary(path: Path) -> list[dict[str, Any]]:
    """Type, codec and language of each stream of a media file (for tests and reports)."""
    av = _av()
    with av.open(str(path)) as box:
        return [
            {
                "type": s.type,
                "codec": s.codec_context.name if s.codec_context else None,
                "language": (s.metadata or {}).get("language"),
            }
            for s in box.streams
        ]


def dump_json(path: Path, data: Any) -> None:
    """Write JSON atomically."""
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    tmp.replace(path)
