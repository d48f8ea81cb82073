"""Line splitting, slot fitting and placement of the dubbed lines, and drift measurement.

Each dubbed line starts where its source line starts. If it is longer than its slot it may
borrow the silence after the slot (up to ``max_borrow`` seconds, never into the next line),
and is then sped up to at most ``max_tempo`` (1.3x). Whatever still overruns is reported as
drift, measured on the rendered track, not assumed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from twinengine.capability.dubbing._media import SR
from twinengine.capability.dubbing.asr import Segment, Word


@dataclass
class Slot:
    """Where a line must be spoken."""

    start: float
    end: float
    limit: float  # latest end it may borrow up to

    @property
    def seconds(self) -> float:
        """Length of the source line."""
        return self.end - self.start


def split_lines(
    segments: list[Segment], *, max_seconds: float = 7.0, pause: float = 0.45
) -> list[tuple[float, float, str]]:
    """Subtitle-sized lines from word timestamps: break at sentence ends, long pauses, 7 s.

    Words run on across ASR segments: a segment boundary is where the recogniser's window
    ended, not where the speaker paused, and a line cut there ("Serve the food on" / "warm
    plates") gets a slot too short to fit and a translation of half a sentence.
    """
    lines: list[tuple[float, float, str]] = []
    cur: list[Word] = []

    def flush() -> None:
        if cur:
            lines.append((cur[0].start, cur[-1].end, " ".join(x.text for x in cur)))
            cur.clear()

    for seg in segments:
        words = [w for w in seg.words if w.text]
        if not words:  # a backend without word times: the segment is the line
            flush()
            lines.append((seg.start, seg.end, seg.text))
            continue
        for w in words:
            if cur:
                prev = cur[-1]
                sentence_end = prev.text.rstrip()[-1:] in ".?!"
                if sentence_end or w.start - prev.end > pause or w.end - cur[0].start > max_seconds:
                    flush()
            cur.append(w)
    flush()
    return [(a, max(b, a + 0.2), " ".join(t.split())) for a, b, t in lines if t.strip()]


def slots(
    lines: list[tuple[float, float, str]], *, duration: float, max_borrow: float, gap: float = 0.08
) -> list[Slot]:
    """Each line's slot and how far into the following silence it may borrow."""
    out = []
    for i, (a, b, _) in enumerate(lines):
        nxt = lines[i + 1][0] if i + 1 < len(lines) else duration
        out.append(Slot(a, b, max(b, min(b + max_borrow, nxt - gap))))
    return out


def needed_speed(seconds: float, slot: Slot, *, max_tempo: float) -> float:
    """Speed-up factor (1.0 .. max_tempo) that makes ``seconds`` of speech fit the slot."""
    room = slot.limit - slot.start
    return float(np.clip(seconds / room, 1.0, max_tempo)) if room > 0 else max_tempo


def trim(audio: np.ndarray, *, floor_db: float = -40.0) -> np.ndarray:
    """Cut leading and trailing silence (TTS engines pad lines)."""
    if audio.size == 0:
        return audio
    win = SR // 100
    n = max(len(audio) // win, 1)
    env = np.sqrt((audio[: n * win].reshape(n, -1) ** 2).mean(axis=1)) + 1e-9
    loud = np.nonzero(20 * np.log10(env / env.max()) > floor_db)[0]
    if loud.size == 0:
        return audio[:0]
    return audio[loud[0] * win : (loud[-1] + 1) * win]


def stretch(audio: np.ndarray, factor: float) -> np.ndarray:
    """Speed up by ``factor`` keeping pitch (Praat overlap-add), for TTS without a rate knob."""
    if abs(factor - 1.0) < 0.01 or audio.size < SR // 20:
        return audio
    import parselmouth
    from parselmouth.praat import call

    snd = parselmouth.Sound(audio.astype(np.float64), sampling_frequency=SR)
    out = call(snd, "Lengthen (overlap-add)", 60, 500, 1.0 / factor)
    return out.values.reshape(-1).astype(np.float32)


def place(
    clips: list[np.ndarray],
    slots_: list[Slot],
    *,
    duration: float,
    background: np.ndarray | None = None,
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Mix the lines into one track at their slots; a line never starts before the previous
    one ends (that delay is drift, recorded)."""
    track = np.zeros(int(duration * SR) + SR, np.float32)
    placed = []
    cursor = 0
    for clip, slot in zip(clips, slots_, strict=True):
        start = max(int(slot.start * SR), cursor)
        end = start + clip.size
        if end > track.size:
            track = np.pad(track, (0, end - track.size))
        track[start:end] += clip
        cursor = end
        placed.append({"start": start / SR, "end": end / SR})
    track = track[: int(duration * SR)]
    if background is not None and background.size:
        bg = background[: track.size]
        track[: bg.size] += bg
    peak = float(np.abs(track).max()) if track.size else 0.0
    if peak > 0.99:  # mixing can clip; scale rather than distort
        track *= 0.99 / peak
    return track, placed


def measure_drift(
    track: np.ndarray,
    lines: list[tuple[float, float, str]],
    *,
    max_borrow: float,
    floor_db: float = -35.0,
    placed: list[dict[str, float]] | None = None,
) -> list[dict[str, float]]:
    """Per line, found in ``track`` itself: onset offset from the source start, overrun past
    the source end, and drift = max(|onset offset|, overrun past the allowed borrowed silence),
    all in milliseconds."""
    # Frame k starts at sample round(k * 220.5), i.e. exactly k / 100 s: whole 220-sample
    # frames back to back (SR // 100) would drift 2.3 ms a second against the clock.
    hop = SR / 100
    n = int(len(track) / hop) - 1
    starts = np.round(np.arange(max(n, 0)) * hop).astype(int)
    power = np.array([np.mean(track[s : s + int(hop)] ** 2) for s in starts])
    env = 10 * np.log10(power + 1e-18) if n > 0 else np.zeros(0)
    ref = float(env.max()) if n > 0 else 0.0
    loud = env > ref + floor_db
    limits = slots(lines, duration=n / 100, max_borrow=max_borrow)
    out = []
    for i, (a, b, _) in enumerate(lines):
        nxt = lines[i + 1][0] if i + 1 < len(lines) else n / 100
        # Look for this line's onset only after the previous line's audio: where the mix put
        # it when known (``placed``), else its allowed end; 30 ms guard for frame edges.
        prev_end = (placed[i - 1]["end"] if placed else limits[i - 1].limit) if i else 0.0
        lo = int(np.ceil(max(a - 0.5, prev_end + (0.03 if i else 0.0)) * 100))
        # ... and stop before the next line's audio: its first frame inside the window was
        # measured as this line's end (a 420 ms "drift" on a line that ended 420 ms earlier).
        nxt_start = placed[i + 1]["start"] if placed and i + 1 < len(placed) else nxt
        hi = int(np.floor(nxt_start * 100 + 1e-9))
        idx = np.nonzero(loud[lo:hi])[0]
        if idx.size == 0:
            out.append(
                {"onset_ms": float("nan"), "overrun_ms": float("nan"), "drift_ms": float("nan")}
            )
            continue
        onset, offset = (lo + idx[0]) / 100, (lo + idx[-1] + 1) / 100
        out.append(
            {
                "onset_ms": round(1000 * (onset - a), 1),
                "overrun_ms": round(1000 * max(0.0, offset - b), 1),
                "drift_ms": round(
                    1000 * max(abs(onset - a), max(0.0, offset - limits[i].limit)), 1
                ),
            }
        )
    return out
