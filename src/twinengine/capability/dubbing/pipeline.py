"""The dubbing stages and their on-disk state.

A run lives in ``settings.home / "dubbing" / <run id>``: ``run.json`` (the request), the input
video, and one folder or file per stage output. A stage writes its outputs first and its marker
``stages/<name>.json`` last (atomically), so after a crash (``kill -9``) a stage either has a
marker and is never redone, or has none and is redone from scratch. ``stages/<name>.attempts``
counts starts, which is how the tests prove a resume redid nothing. The DBOS workflow
(``workflow.py``) calls ``run_stage`` once per step; ``run_all`` is the same loop in-process.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from twinengine.capability.dubbing import _media, timing
from twinengine.capability.dubbing._media import ASR_SR, SR, dump_json, read_wav, write_wav
from twinengine.capability.dubbing.asr import TRANSCRIBERS, Segment
from twinengine.capability.dubbing.translate import TRANSLATORS, Line
from twinengine.capability.dubbing.tts import SYNTHESIZERS, Synthesizer
from twinengine.capability.dubbing.voice import ENCODERS, MATCHERS, VoiceProfile, cluster_speakers
from twinengine.context import AppContext
from twinengine.errors import InvalidInput, NotFound

log = logging.getLogger(__name__)

STAGES = [
    "probe",
    "extract",
    "asr",
    "speakers",
    "translate",
    "tts",
    "match",
    "mix",
    "lipsync",
    "mux",
    "publish",
    "quality",
]
Progress = Callable[[str, int, int], None]


@dataclass
class Run:
    """A run's folder and request."""

    dir: Path
    request: dict[str, Any]

    @property
    def id(self) -> str:
        """The run id (its folder name)."""
        return self.dir.name

    def path(self, *parts: str) -> Path:
        """A path inside the run folder."""
        return self.dir.joinpath(*parts)

    def load(self, name: str) -> Any:
        """A JSON file of the run."""
        return json.loads(self.path(name).read_text(encoding="utf-8"))

    def done(self, stage: str) -> bool:
        """Whether ``stage`` finished (its marker exists)."""
        return self.path("stages", f"{stage}.json").exists()

    def marker(self, stage: str) -> dict[str, Any] | None:
        """The finished stage's summary, or None."""
        p = self.path("stages", f"{stage}.json")
        return json.loads(p.read_text()) if p.exists() else None

    def attempts(self, stage: str) -> int:
        """How many times ``stage`` was started."""
        p = self.path("stages", f"{stage}.attempts")
        return int(p.read_text()) if p.exists() else 0


def runs_root(ctx: AppContext) -> Path:
    """Where runs live."""
    return ctx.settings.home / "dubbing"


def open_run(ctx: AppContext, run_id: str) -> Run:
    """An existing run, or ``NotFound``."""
    if not run_id.replace("-", "").isalnum():
        raise InvalidInput(f"bad run id {run_id!r}")
    d = runs_root(ctx) / run_id
    if not (d / "run.json").exists():
        raise NotFound(f"no dubbing run {run_id!r}")
    return Run(d, json.loads((d / "run.json").read_text()))


def run_stage(ctx: AppContext, run: Run, stage: str) -> dict[str, Any]:
    """Run one stage unless its marker exists; return its summary."""
    done = run.marker(stage)
    if done is not None:
        return done
    stages = run.path("stages")
    stages.mkdir(exist_ok=True)
    (stages / f"{stage}.attempts").write_text(str(run.attempts(stage) + 1))
    t0, c0 = time.perf_counter(), _cpu_seconds()
    summary = _STAGE_FUNCS[stage](ctx, run)
    summary["seconds"] = round(time.perf_counter() - t0, 3)
    # CPU time (this process + finished child processes): unlike wall time it does not grow
    # when other work competes for the cores, so the report can estimate an uncontended RTF.
    summary["cpu_seconds"] = round(_cpu_seconds() - c0, 3)
    dump_json(stages / f"{stage}.json", summary)
    return summary


def _cpu_seconds() -> float:
    import resource

    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + kids.ru_utime + kids.ru_stime


def run_all(ctx: AppContext, run: Run, *, progress: Progress | None = None) -> dict[str, Any]:
    """Every stage in order (finished ones are skipped); the quality report at the end."""
    for i, stage in enumerate(STAGES):
        if progress:
            progress(stage, i, len(STAGES))
        run_stage(ctx, run, stage)
    if progress:
        progress("done", len(STAGES), len(STAGES))
    return run.marker("quality") or {}


# --- stages ------------------------------------------------------------------------------------
def _probe(ctx: AppContext, run: Run) -> dict[str, Any]:
    info = _media.probe(run.path(run.request["video"]))
    if not info.has_audio:
        raise InvalidInput("the video has no audio track to dub")
    return info.to_dict()


def _extract(ctx: AppContext, run: Run) -> dict[str, Any]:
    audio = _media.decode_audio(run.path(run.request["video"]), rate=SR)
    write_wav(run.path("source.wav"), audio, SR)
    out: dict[str, Any] = {"samples": int(audio.size), "background": False}
    cmd = ctx.settings.dub_separator_command
    if cmd:  # production: a separator (demucs, ...) writes the background stem
        from twinengine.capability.dubbing.external import run_command

        run_command(cmd, input=run.path("source.wav"), output=run.path("background.wav"))
        out["background"] = True
    return out


def _source16k(run: Run) -> np.ndarray:
    audio, rate = read_wav(run.path("source.wav"))
    return _media.resample(audio, rate, ASR_SR)


def _transcriber(ctx: AppContext) -> Any:
    s = ctx.settings
    return TRANSCRIBERS.get(s.dub_asr)(
        model=s.dub_asr_model, models_dir=s.home / "models", threads=s.dub_threads
    )


def _asr(ctx: AppContext, run: Run) -> dict[str, Any]:
    lang, segs = _transcriber(ctx).transcribe(_source16k(run), language=run.request.get("source"))
    if not segs:
        raise InvalidInput("no speech found in the video's audio")
    lines = timing.split_lines(segs)
    dump_json(
        run.path("transcript.json"),
        {"language": lang, "segments": [s.to_dict() for s in segs], "lines": lines},
    )
    return {"language": lang, "segments": len(segs), "lines": len(lines)}


def _encoder(ctx: AppContext) -> Any:
    return ENCODERS.get(ctx.settings.dub_speaker_encoder)()


def _synth(ctx: AppContext) -> Synthesizer:
    s = ctx.settings
    return SYNTHESIZERS.get(s.dub_tts)(voice_path=s.dub_tts_voice or "packaged:joe")


_CALIBRATION = {
    "es": "Buenos días. Esta frase sirve para medir la voz sintética antes del doblaje.",
    "en": "Good morning. This sentence measures the synthetic voice before the dubbing starts.",
}


def _calibrate(
    ctx: AppContext, synth: Synthesizer, target: str, candidates: list[str], enc: Any
) -> tuple[dict[str, np.ndarray], dict[str, VoiceProfile]]:
    """Embedding and profile of each candidate TTS voice, cached per machine (they depend only
    on the TTS backend, voice and encoder)."""
    from twinengine.capability.dubbing.voice import voice_profile

    s = ctx.settings
    cache = s.home / "models" / f"dub-voices-{s.dub_tts}-{s.dub_speaker_encoder}-{target}.json"
    known = json.loads(cache.read_text()) if cache.exists() else {}
    text = _CALIBRATION.get(target, _CALIBRATION["en"])
    for v in candidates:
        if v not in known:
            sample = timing.trim(synth.synthesize(text, lang=target, voice=v))
            known[v] = {
                "emb": enc.embed(sample, SR).tolist(),
                "profile": voice_profile(sample, SR).to_dict(),
            }
    cache.parent.mkdir(parents=True, exist_ok=True)
    dump_json(cache, known)
    return (
        {v: np.asarray(known[v]["emb"]) for v in candidates},
        {v: VoiceProfile(**known[v]["profile"]) for v in candidates},
    )


def _tune(
    synth: Synthesizer,
    target: str,
    voices: list[str],
    emb: np.ndarray,
    profile: VoiceProfile,
    enc: Any,
    ltas: np.ndarray,
) -> tuple[str, dict[str, Any]]:
    """Pick the voice and Praat formant shift whose conversion of the calibration sentence
    (then spectrum-matched to the speaker's ``ltas``, as ``_match`` will do) is closest to the
    speaker (speaker-embedding cosine): a small grid search, measured rather than guessed from
    formant ratios. Only the three most intelligible voices compete.

    The grid stops at 0.85: on the 60 s bench a 0.8 shift bought ~0.01 of similarity for
    ~1-4 WER points (lowered formants are what Whisper mishears most). The F0 range is widened
    toward the speaker's (espeak-ng is nearly monotone), at most 2x: 1.5-2x measured a few WER
    points below 1x at the same similarity, 2.5x no better. Praat's PSOLA is randomised in
    unvoiced stretches, so single round trips of the same line vary by ~3 WER points."""
    from twinengine.capability.dubbing.voice import (
        PraatMatcher,
        apply_gain,
        cosine,
        long_term_spectrum,
        spectrum_gain,
        voice_profile,
    )

    pm = PraatMatcher()
    text = _CALIBRATION.get(target, _CALIBRATION["en"])
    best: tuple[float, str, float, float] = (-2.0, voices[0], 1.0, 1.0)
    spread_src = profile.pitch_std / max(profile.pitch_median, 1.0)
    for v in voices[:3]:
        sample = timing.trim(synth.synthesize(text, lang=target, voice=v))
        own = voice_profile(sample, SR)
        spread_syn = own.pitch_std / max(own.pitch_median, 1.0)
        range_factor = float(np.clip(spread_src / max(spread_syn, 1e-3), 1.0, 2.0))
        for shift in (0.85, 0.9, 0.95):
            out = pm.convert(
                sample, shift=shift, pitch_median=profile.pitch_median, range_factor=range_factor
            )
            out = apply_gain(out, spectrum_gain(ltas, long_term_spectrum(out)))
            sim = cosine(emb, enc.embed(out, SR))
            if sim > best[0]:
                best = (sim, v, shift, range_factor)
    return best[1], {
        "shift": best[2],
        "range_factor": round(best[3], 3),
        "calibration_sim": round(best[0], 4),
    }


def _speakers(ctx: AppContext, run: Run) -> dict[str, Any]:
    """Cluster line embeddings into speakers; pick one TTS voice per speaker (the closest
    candidate voice when voice matching is on, else the default order) and profile both."""
    from twinengine.capability.dubbing.voice import cosine, long_term_spectrum, voice_profile

    lines = run.load("transcript.json")["lines"]
    audio, _ = read_wav(run.path("source.wav"))
    enc = _encoder(ctx)
    clips = [audio[int(a * SR) : int(b * SR)] for a, b, _ in lines]
    embs = [enc.embed(c, SR) if c.size >= SR else None for c in clips]
    labels = cluster_speakers(embs)
    target = run.request["target"]
    synth = _synth(ctx)
    candidates = synth.voices(target)
    speakers: list[dict[str, Any]] = []
    voice_embs: dict[str, np.ndarray] = {}
    voice_profiles: dict[str, VoiceProfile] = {}
    if run.request.get("voice_match"):
        voice_embs, voice_profiles = _calibrate(ctx, synth, target, candidates, enc)
    used: set[str] = set()
    for k in sorted(set(labels)):
        own = np.concatenate([c for c, lab in zip(clips, labels, strict=True) if lab == k])
        emb = enc.embed(own, SR)
        profile = voice_profile(own, SR)
        ltas = long_term_spectrum(own)
        tuned = None
        if voice_embs and ctx.settings.dub_voice_matcher == "praat":
            voice, tuned = _tune(
                synth,
                target,
                [v for v in candidates if v not in used] or candidates,
                emb,
                profile,
                enc,
                ltas,
            )
        elif voice_embs:
            free = [v for v in candidates if v not in used][:4] or candidates
            voice = max(free, key=lambda v: cosine(emb, voice_embs[v]))
        else:
            voice = candidates[k % len(candidates)]
        used.add(voice)
        np.save(run.path(f"speaker{k}.npy"), emb)
        np.save(run.path(f"speaker{k}-ltas.npy"), ltas)
        speakers.append(
            {
                "id": k,
                "tuned": tuned,
                "voice": voice,
                "profile": profile.to_dict(),
                "synth_profile": voice_profiles[voice].to_dict()
                if voice in voice_profiles
                else None,
                "seconds": round(own.size / SR, 2),
            }
        )
    dump_json(run.path("speakers.json"), {"labels": labels, "speakers": speakers})
    return {"speakers": len(speakers), "voices": [s["voice"] for s in speakers]}


def _glossary(raw: str) -> dict[str, str]:
    pairs = (p.split("=", 1) for p in raw.split(";") if "=" in p)
    return {a.strip(): b.strip() for a, b in pairs if a.strip()}


def _translate(ctx: AppContext, run: Run) -> dict[str, Any]:
    s = ctx.settings
    tr = run.load("transcript.json")
    labels = run.load("speakers.json")["labels"]
    source = run.request.get("source") or tr["language"]
    translator = TRANSLATORS.get(run.request.get("translator") or s.dub_translator)(
        ctx=ctx,
        glossary=_glossary(s.dub_glossary),
        run_id=run.id,
        model_path=s.dub_ct2_model_path,
        threads=s.dub_threads,
    )
    lines = tr["lines"]
    out = translator.translate(
        [Line(t, b - a) for a, b, t in lines], source=source, target=run.request["target"]
    )
    rows = [
        {"start": a, "end": b, "text": t, "target": o, "speaker": lab}
        for (a, b, t), o, lab in zip(lines, out, labels, strict=True)
    ]
    dump_json(run.path("translation.json"), {"source": source, "lines": rows})
    return {
        "lines": len(rows),
        "source": source,
        "fallback": bool(getattr(translator, "fallback_used", False)),
    }


def _tts(ctx: AppContext, run: Run) -> dict[str, Any]:
    """Synthesize each line; re-synthesize faster where it overruns its slot.

    The TTS's own rate is tried up to three times before any time-stretch: its duration does
    not scale exactly with the rate, and the Praat overlap-add stretch that made up the rest
    smeared consonants (the worst round-trip lines of the bench were the stretched ones)."""
    s = ctx.settings
    rows = run.load("translation.json")["lines"]
    voices = {sp["id"]: sp["voice"] for sp in run.load("speakers.json")["speakers"]}
    duration = run.marker("probe")["duration"]  # type: ignore[index]
    slots = timing.slots(
        [(r["start"], r["end"], r["target"]) for r in rows],
        duration=duration,
        max_borrow=s.dub_max_borrow_s,
    )
    synth, target = _synth(ctx), run.request["target"]
    folder = run.path("tts")
    folder.mkdir(exist_ok=True)
    speeds = []
    for i, (row, slot) in enumerate(zip(rows, slots, strict=True)):
        voice = voices[row["speaker"]]
        clip = timing.trim(synth.synthesize(row["target"], lang=target, voice=voice))
        speed = timing.needed_speed(clip.size / SR, slot, max_tempo=s.dub_max_tempo)
        if speed > 1.0:
            for attempt in range(3):
                clip = timing.trim(
                    synth.synthesize(row["target"], lang=target, voice=voice, speed=speed)
                )
                rest = timing.needed_speed(clip.size / SR, slot, max_tempo=s.dub_max_tempo / speed)
                if rest <= 1.01 or attempt == 2:
                    break
                speed *= rest
            clip = timing.stretch(clip, rest)  # only what three rates left (no-op under 1%)
            speed *= rest
        speeds.append(round(speed, 3))
        write_wav(folder / f"{i:04d}.wav", clip, SR)
    return {"lines": len(rows), "max_speed": max(speeds, default=1.0), "speeds": speeds}


def _match(ctx: AppContext, run: Run) -> dict[str, Any]:
    """Convert each line toward its speaker's voice (with the parameters the speakers stage
    tuned for the praat matcher, then one EQ per speaker matching the converted lines' long-term
    spectrum to the speaker's; else the backend's own mapping)."""
    from twinengine.capability.dubbing.voice import (
        PraatMatcher,
        apply_gain,
        long_term_spectrum,
        spectrum_gain,
    )

    rows = run.load("translation.json")["lines"]
    folder = run.path("match")
    folder.mkdir(exist_ok=True)
    if not run.request.get("voice_match"):
        return {"matched": False}
    speakers = {sp["id"]: sp for sp in run.load("speakers.json")["speakers"]}
    backend = ctx.settings.dub_voice_matcher
    matcher = MATCHERS.get(backend)(command=ctx.settings.dub_voice_command)
    source, _ = read_wav(run.path("source.wav"))
    outs: list[np.ndarray] = []
    for i, row in enumerate(rows):
        sp = speakers[row["speaker"]]
        clip, _ = read_wav(run.path("tts", f"{i:04d}.wav"))
        tuned = sp.get("tuned")
        if isinstance(matcher, PraatMatcher) and tuned:
            out = matcher.convert(
                clip,
                shift=tuned["shift"],
                pitch_median=sp["profile"]["pitch_median"],
                range_factor=tuned["range_factor"],
            )
        else:
            ref = run.path("match", f"ref{sp['id']}.wav")
            if not ref.exists():
                write_wav(ref, source[int(row["start"] * SR) : int(row["end"] * SR)], SR)
            synth_profile = VoiceProfile(**(sp["synth_profile"] or sp["profile"]))
            out = matcher.match(
                clip, source=VoiceProfile(**sp["profile"]), synth=synth_profile, reference=ref
            )
        outs.append(out)
    if isinstance(matcher, PraatMatcher):
        for k in speakers:
            idx = [i for i, r in enumerate(rows) if r["speaker"] == k]
            ltas = run.path(f"speaker{k}-ltas.npy")
            if not idx or not ltas.exists():
                continue
            gain = spectrum_gain(
                np.load(ltas), long_term_spectrum(np.concatenate([outs[i] for i in idx]))
            )
            for i in idx:
                outs[i] = apply_gain(outs[i], gain)
    for i, out in enumerate(outs):
        write_wav(folder / f"{i:04d}.wav", out, SR)
    return {"matched": True, "backend": backend}


def _line_clip(run: Run, i: int) -> np.ndarray:
    p = run.path("match", f"{i:04d}.wav")
    return read_wav(p if p.exists() else run.path("tts", f"{i:04d}.wav"))[0]


def _mix(ctx: AppContext, run: Run) -> dict[str, Any]:
    rows = run.load("translation.json")["lines"]
    duration = run.marker("probe")["duration"]  # type: ignore[index]
    lines = [(r["start"], r["end"], r["target"]) for r in rows]
    slots = timing.slots(lines, duration=duration, max_borrow=ctx.settings.dub_max_borrow_s)
    bg = read_wav(run.path("background.wav"))[0] if run.path("background.wav").exists() else None
    clips = [_line_clip(run, i) for i in range(len(rows))]
    track, placed = timing.place(clips, slots, duration=duration, background=bg)
    write_wav(run.path("dub.wav"), track, SR)
    dump_json(run.path("timing.json"), {"placed": placed})
    return {"lines": len(rows)}


def _lipsync(ctx: AppContext, run: Run) -> dict[str, Any]:
    if not run.request.get("lipsync"):
        return {"lipsync": False}
    from twinengine.capability.dubbing.external import lipsync

    lipsync(
        ctx.settings.dub_lipsync_command,
        video=run.path(run.request["video"]),
        audio=run.path("dub.wav"),
        output=run.path("lipsync.mp4"),
    )
    return {"lipsync": True}


def _mux(ctx: AppContext, run: Run) -> dict[str, Any]:
    tr = run.load("translation.json")
    rows, source, target = tr["lines"], tr["source"], run.request["target"]
    src_subs = _media.write_subtitles(
        run.path(f"subs-{source}"), [(r["start"], r["end"], r["text"]) for r in rows]
    )
    tgt_subs = _media.write_subtitles(
        run.path(f"subs-{target}"), [(r["start"], r["end"], r["target"]) for r in rows]
    )
    video = (
        run.path("lipsync.mp4")
        if run.path("lipsync.mp4").exists()
        else run.path(run.request["video"])
    )
    _media.mux(
        video=video,
        dub=run.path("dub.wav"),
        original=run.path("source.wav"),
        subs=[(tgt_subs[0], target), (src_subs[0], source)],
        out=run.path("output.mp4"),
        source_lang=source,
        target_lang=target,
    )
    return {"output": "output.mp4", "subtitles": [p.name for p in (*tgt_subs, *src_subs)]}


def _publish(ctx: AppContext, run: Run) -> dict[str, Any]:
    from twinengine.capability.dubbing.publish import publish

    return publish(ctx, run)


def _quality(ctx: AppContext, run: Run) -> dict[str, Any]:
    from twinengine.capability.dubbing.report import quality_report

    return quality_report(ctx, run)


_STAGE_FUNCS: dict[str, Callable[[AppContext, Run], dict[str, Any]]] = {
    "probe": _probe,
    "extract": _extract,
    "asr": _asr,
    "speakers": _speakers,
    "translate": _translate,
    "tts": _tts,
    "match": _match,
    "mix": _mix,
    "lipsync": _lipsync,
    "mux": _mux,
    "publish": _publish,
    "quality": _quality,
}

__all__ = ["STAGES", "Run", "Segment", "open_run", "run_all", "run_stage", "runs_root"]
