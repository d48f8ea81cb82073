"""Dubbing building blocks: registries, timing, subtitles, WER, translation, probing."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from twinengine.capability.dubbing import _media, quality, timing
from twinengine.capability.dubbing._media import SR
from twinengine.capability.dubbing.asr import TRANSCRIBERS, Segment, Word
from twinengine.capability.dubbing.translate import TRANSLATORS, Line, _lines_from
from twinengine.capability.dubbing.tts import SYNTHESIZERS
from twinengine.capability.dubbing.voice import ENCODERS, MATCHERS, cluster_speakers
from twinengine.errors import InvalidInput


def test_registries_name_their_choices() -> None:
    for reg, builtins in [
        (TRANSCRIBERS, {"faster-whisper"}),
        (TRANSLATORS, {"apertium", "llm", "ct2"}),
        (SYNTHESIZERS, {"espeak", "piper"}),
        (MATCHERS, {"none", "praat", "command"}),
        (ENCODERS, {"resemblyzer", "mfcc"}),
    ]:
        assert builtins <= set(reg.names())
        with pytest.raises(InvalidInput) as err:
            reg.get("nope")
        assert all(name in err.value.message for name in builtins)


def test_wer_counts_edits_and_ignores_case_accents_punctuation() -> None:
    assert quality.wer("Hola, ¿qué tal?", "hola que tal") == 0.0
    assert quality.wer("uno dos tres cuatro", "uno tres cuatro cinco") == pytest.approx(0.5)
    assert quality.wer("", "") == 0.0


def test_split_lines_breaks_at_sentences_and_pauses() -> None:
    words = [
        Word(0.0, 0.4, "Hello"),
        Word(0.5, 0.9, "there."),
        Word(1.0, 1.3, "How"),
        Word(1.4, 1.6, "are"),
        Word(2.6, 2.9, "you?"),
    ]
    lines = timing.split_lines([Segment(0.0, 2.9, "Hello there. How are you?", words)])
    assert [t for _, _, t in lines] == ["Hello there.", "How are", "you?"]
    assert lines[0][:2] == (0.0, 0.9)


def test_slots_borrow_silence_but_never_the_next_line() -> None:
    lines = [(0.0, 1.0, "a"), (1.2, 2.0, "b"), (5.0, 6.0, "c")]
    s = timing.slots(lines, duration=6.5, max_borrow=0.6)
    assert s[0].limit == pytest.approx(1.12)  # the next line starts at 1.2 (minus a gap)
    assert s[1].limit == pytest.approx(2.6)
    assert s[2].limit == pytest.approx(6.42)
    assert timing.needed_speed(0.5, s[0], max_tempo=1.3) == 1.0
    assert timing.needed_speed(1.2, s[0], max_tempo=1.3) == pytest.approx(1.2 / 1.12)
    assert timing.needed_speed(5.0, s[0], max_tempo=1.3) == 1.3


def _tone(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def test_placement_and_measured_drift() -> None:
    lines = [(0.5, 1.5, "a"), (3.0, 4.0, "b")]
    s = timing.slots(lines, duration=5.0, max_borrow=0.2)
    track, placed = timing.place([_tone(1.0), _tone(2.0)], s, duration=5.0)
    assert placed[0]["start"] == pytest.approx(0.5)
    drift = timing.measure_drift(track, lines, max_borrow=0.2)
    assert drift[0]["drift_ms"] <= 20  # on time
    # the second line runs 1 s past its source end, 0.8 s past the silence it may borrow
    assert drift[1]["overrun_ms"] == pytest.approx(1000, abs=20)
    assert drift[1]["drift_ms"] == pytest.approx(800, abs=20)


def test_overlapping_line_is_delayed_not_stacked() -> None:
    lines = [(0.0, 0.5, "a"), (0.6, 1.0, "b")]
    s = timing.slots(lines, duration=3.0, max_borrow=0.0)
    _, placed = timing.place([_tone(1.0), _tone(0.3)], s, duration=3.0)
    assert placed[1]["start"] == pytest.approx(1.0)


def test_speaker_clustering_groups_by_similarity() -> None:
    a, b = np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])
    labels = cluster_speakers([a, a * 0.9 + b * 0.1, None, b, a])
    assert labels == [0, 0, 0, 1, 0]


def test_subtitles_srt_and_vtt(tmp_path: Path) -> None:
    srt, vtt = _media.write_subtitles(
        tmp_path / "subs-es", [(0.0, 1.5, "Hola."), (61.25, 62.0, "Adiós.")]
    )
    assert srt.read_text().startswith("1\n00:00:00,000 --> 00:00:01,500\nHola.\n")
    assert "00:01:01.250 --> 00:01:02.000\nAdiós." in vtt.read_text()
    assert vtt.read_text().startswith("WEBVTT")


def test_router_answer_must_be_one_line_per_input() -> None:
    class Res:
        parsed = None
        text = '{"lines": ["uno", "dos"]}'

    assert _lines_from(Res(), 2) == ["uno", "dos"]
    with pytest.raises(ValueError):
        _lines_from(Res(), 3)
    Res.text = "not json"
    with pytest.raises(ValueError):
        _lines_from(Res(), 2)


@pytest.mark.skipif(not shutil.which("apertium"), reason="apertium not installed (make media-deps)")
def test_apertium_translates_line_by_line() -> None:
    out = TRANSLATORS.get("apertium")().translate(
        [Line("The dog is big.", 1.0), Line("We eat bread.", 1.0)], source="en", target="es"
    )
    assert len(out) == 2
    assert "perro" in out[0].lower()
    assert "pan" in out[1].lower()


def test_probe_refuses_what_is_not_a_video(tmp_path: Path) -> None:
    bogus = tmp_path / "clip.mp4"
    bogus.write_bytes(b"this is not a video at all")
    with pytest.raises(InvalidInput):
        _media.probe(bogus)


def test_split_lines_runs_on_across_asr_segments() -> None:
    # The recogniser's window ended mid-sentence: the line must not end there.
    segs = [
        Segment(0.0, 0.8, "Serve the food on", [Word(0.0, 0.3, "Serve"), Word(0.3, 0.8, "on")]),
        Segment(0.8, 2.0, "warm plates.", [Word(0.8, 1.2, "warm"), Word(1.2, 2.0, "plates.")]),
        Segment(3.0, 3.5, "Bye.", []),
    ]
    lines = timing.split_lines(segs)
    assert lines == [(0.0, 2.0, "Serve on warm plates."), (3.0, 3.5, "Bye.")]


def test_spectrum_matching_moves_the_long_term_spectrum_to_the_source() -> None:
    from scipy.signal import lfilter

    from twinengine.capability.dubbing.voice import (
        apply_gain,
        long_term_spectrum,
        spectrum_gain,
    )

    rng = np.random.default_rng(0)
    noise = rng.standard_normal(SR * 2).astype(np.float32) * 0.1
    source = lfilter([1.0], [1.0, -0.9], noise).astype(np.float32)  # dark: low-pass tilt
    synth = lfilter([1.0, -0.9], [1.0], noise).astype(np.float32)  # bright: high-pass tilt
    target = long_term_spectrum(source)
    out = apply_gain(synth, spectrum_gain(target, long_term_spectrum(synth)))
    assert out.size == synth.size

    def gap(x: np.ndarray) -> float:
        d = long_term_spectrum(x) - target
        return float(np.std(d - d.mean()))

    assert gap(out) < 0.5 * gap(synth)


def test_whisper_decoding_loop_is_decoded_again_sequentially(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A batched chunk that fails Whisper's compression-ratio check (a loop) is replaced by the
    sequential path's segments, moved back to the clip's time axis."""
    import faster_whisper
    from faster_whisper.transcribe import Segment as FwSegment
    from faster_whisper.transcribe import Word as FwWord

    from twinengine.capability.dubbing.asr import FasterWhisperTranscriber

    def seg(start: float, end: float, text: str, ratio: float) -> FwSegment:
        words = [FwWord(start, end, " " + text.split()[0], 0.9)]
        return FwSegment(0, 0, start, end, text, [], -0.2, ratio, 0.0, words, 0.0)

    class Info:
        language = "es"

    loop = "Necesima " * 40
    batched = [seg(0.0, 2.0, "Hola y buenas.", 1.2), seg(3.0, 5.0, loop, 9.9)]

    class FakeBatched:
        def __init__(self, model: object) -> None:
            pass

        def transcribe(self, audio: np.ndarray, **_: object) -> tuple[list[FwSegment], Info]:
            return batched, Info()

    class FakeModel:
        def __init__(self) -> None:
            self.clips: list[int] = []

        def transcribe(self, audio: np.ndarray, **_: object) -> tuple[list[FwSegment], Info]:
            self.clips.append(audio.size)
            return [seg(0.1, 1.5, "El pasta necesita diez minutos.", 1.3)], Info()

    monkeypatch.setattr(faster_whisper, "BatchedInferencePipeline", FakeBatched)
    tr = object.__new__(FasterWhisperTranscriber)
    tr.model, tr.beam_size, tr.batch_size = FakeModel(), 5, 8
    lang, segs = tr.transcribe(np.zeros(16000 * 6, np.float32), language="es")
    assert lang == "es"
    assert [s.text for s in segs] == ["Hola y buenas.", "El pasta necesita diez minutos."]
    assert tr.model.clips == [16000 * 2]  # only the looping chunk, 3.0-5.0 s
    assert segs[1].start == pytest.approx(3.1) and segs[1].words[0].end == pytest.approx(4.5)
