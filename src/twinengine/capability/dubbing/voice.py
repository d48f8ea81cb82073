"""Speaker embeddings, speaker clustering, voice profiles and voice matching.

Speaker embeddings default to Resemblyzer's GE2E voice encoder: its weights ship inside the
``resemblyzer`` wheel (``pretrained.pt``, checked against the SHA-256 in the wheel's RECORD).
We load only those weights into the same three-layer LSTM here and compute the mel frames with
numpy, so librosa and webrtcvad (Resemblyzer's runtime dependencies) are not needed. ``mfcc``
is a documented weaker fallback: cosine of MFCC mean/std statistics.

Voice matching defaults to Praat's "Change gender" (PSOLA pitch mapping plus a formant-shift
ratio) through praat-parselmouth; ``command`` runs a production converter (OpenVoice, XTTS,
F5-TTS, ...) configured as a command template.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import shlex
import subprocess
import tempfile
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from twinengine.capability.dubbing._media import ASR_SR, SR, read_wav, resample, write_wav
from twinengine.capability.dubbing._registry import Registry
from twinengine.errors import BackendUnavailable, InvalidInput, MissingDependency

# From Resemblyzer-0.1.4's RECORD: resemblyzer/pretrained.pt,sha256=<urlsafe b64>,17090379
RESEMBLYZER_SHA256_B64 = "OTc7hlmPo9qfzd7mFCOC7-CXd-jTfcnAVh9B8AcPE04"


class SpeakerEncoder(ABC):
    """Audio -> unit-length speaker embedding."""

    @abstractmethod
    def embed(self, audio: np.ndarray, rate: int) -> np.ndarray:
        """One L2-normalised vector for the whole clip."""


ENCODERS: Registry[SpeakerEncoder] = Registry("speaker-embedding")


def _slaney_mel(sr: int, n_fft: int, n_mels: int) -> np.ndarray:
    """librosa's default (Slaney) mel filterbank, so the encoder sees what it was trained on."""
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0

    def hz_to_mel(f: np.ndarray) -> np.ndarray:
        f = np.asarray(f, dtype=np.float64)
        return np.where(
            f >= min_log_hz,
            min_log_mel + np.log(np.maximum(f, min_log_hz) / min_log_hz) / logstep,
            f / f_sp,
        )

    def mel_to_hz(m: np.ndarray) -> np.ndarray:
        return np.where(
            m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m
        )

    fft_freqs = np.linspace(0, sr / 2, 1 + n_fft // 2)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(sr / 2), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_freqs[None, :]
    weights = np.maximum(0, np.minimum(-ramps[:-2] / fdiff[:-1, None], ramps[2:] / fdiff[1:, None]))
    return weights * (2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels]))[:, None]


def _power_frames(wav: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    from scipy.signal import get_window

    padded = np.pad(wav, n_fft // 2, mode="reflect")
    n = 1 + (len(padded) - n_fft) // hop
    idx = np.arange(n_fft)[None, :] + hop * np.arange(n)[:, None]
    frames = padded[idx] * get_window("hann", n_fft, fftbins=True)[None, :]
    return np.abs(np.fft.rfft(frames, n=n_fft, axis=1)) ** 2


def trim_silence(wav: np.ndarray, rate: int, *, floor_db: float = -40.0) -> np.ndarray:
    """Keep the 30 ms windows within ``floor_db`` of the loudest one (drops pauses)."""
    win = int(rate * 0.03)
    if len(wav) < win * 2:
        return wav
    n = len(wav) // win
    energy = (wav[: n * win].reshape(n, win) ** 2).mean(axis=1) + 1e-12
    db = 10 * np.log10(energy / energy.max())
    keep = np.convolve(db > floor_db, np.ones(5), mode="same") > 0  # keep word edges
    return wav[: n * win].reshape(n, win)[keep].reshape(-1)


@ENCODERS.register("resemblyzer")
class ResemblyzerEncoder(SpeakerEncoder):
    """GE2E voice encoder (Resemblyzer's packaged weights), 1.6 s partials averaged."""

    _lock = threading.Lock()
    _model: Any = None

    def __init__(self, **_: Any) -> None:
        try:
            import torch
        except ImportError as exc:
            raise MissingDependency("torch", "dubbing") from exc
        with self._lock:
            if ResemblyzerEncoder._model is None:
                ResemblyzerEncoder._model = self._load(torch)
        self.torch = torch
        self.mel = _slaney_mel(ASR_SR, 400, 40)

    @staticmethod
    def _load(torch: Any) -> Any:
        spec = importlib.util.find_spec("resemblyzer")  # locate without importing librosa
        if spec is None or not spec.submodule_search_locations:
            raise MissingDependency("resemblyzer", "dubbing")
        path = Path(next(iter(spec.submodule_search_locations))) / "pretrained.pt"
        digest = base64.urlsafe_b64encode(hashlib.sha256(path.read_bytes()).digest()).rstrip(b"=")
        if digest.decode() != RESEMBLYZER_SHA256_B64:
            raise BackendUnavailable(f"{path}: checksum mismatch; reinstall resemblyzer==0.1.4")

        class _Encoder(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.lstm = torch.nn.LSTM(40, 256, 3, batch_first=True)
                self.linear = torch.nn.Linear(256, 256)

            def forward(self, mels: Any) -> Any:
                _, (hidden, _) = self.lstm(mels)
                raw = torch.relu(self.linear(hidden[-1]))
                return raw / torch.norm(raw, dim=1, keepdim=True)

        model = _Encoder()
        state = torch.load(path, map_location="cpu", weights_only=True)["model_state"]
        model.load_state_dict({k: v for k, v in state.items() if not k.startswith("similarity")})
        model.eval()
        return model

    def embed(self, audio: np.ndarray, rate: int) -> np.ndarray:
        """Normalise to -30 dBFS, drop pauses, embed 1.6 s partials, average, renormalise."""
        wav = trim_silence(resample(audio, rate, ASR_SR), ASR_SR)
        rms = float(np.sqrt(np.mean(wav**2))) if wav.size else 0.0
        if rms < 1e-5:
            raise InvalidInput("no speech to embed (silent audio)")
        wav = wav * (10 ** (-30 / 20) / rms)
        mels = (_power_frames(wav, 400, 160) @ self.mel.T).astype(np.float32)
        n_part, step = 160, 77  # 1.6 s windows at 1.3 partials a second, as Resemblyzer does
        if len(mels) < n_part:
            mels = np.pad(mels, ((0, n_part - len(mels)), (0, 0)))
        starts = list(range(0, max(len(mels) - n_part, 0) + 1, step))
        batch = np.stack([mels[s : s + n_part] for s in starts])
        # One thread: the LSTM is small, and on a shared 2-core machine torch's OpenMP
        # workers spin-wait, which cost about 10x the CPU time of the work itself here.
        threads = self.torch.get_num_threads()
        self.torch.set_num_threads(1)
        try:
            with self.torch.inference_mode():
                partials = self._model(self.torch.from_numpy(batch)).numpy()
        finally:
            self.torch.set_num_threads(threads)
        emb = partials.mean(axis=0)
        return emb / np.linalg.norm(emb)


@ENCODERS.register("mfcc")
class MfccEncoder(SpeakerEncoder):
    """Fallback: mean and std of 20 MFCCs (weak: it also tracks channel and content)."""

    def __init__(self, **_: Any) -> None:
        self.mel = _slaney_mel(ASR_SR, 512, 40)

    def embed(self, audio: np.ndarray, rate: int) -> np.ndarray:
        """Cepstral statistics vector, unit length."""
        from scipy.fft import dct

        wav = trim_silence(resample(audio, rate, ASR_SR), ASR_SR)
        logmel = np.log(_power_frames(wav, 512, 160) @ self.mel.T + 1e-8)
        mfcc = dct(logmel, type=2, axis=1, norm="ortho")[:, 1:21]
        vec = np.concatenate([mfcc.mean(axis=0), mfcc.std(axis=0)])
        return vec / (np.linalg.norm(vec) + 1e-12)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two vectors."""
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))


def cluster_speakers(embeddings: list[np.ndarray | None], *, threshold: float = 0.72) -> list[int]:
    """Greedy centroid clustering: a segment joins the closest speaker above ``threshold``.

    Segments too short to embed (``None``) join the previous segment's speaker.
    """
    centroids: list[np.ndarray] = []
    labels: list[int] = []
    for emb in embeddings:
        if emb is None:
            labels.append(labels[-1] if labels else 0)
            continue
        sims = [cosine(emb, c) for c in centroids]
        if sims and max(sims) >= threshold:
            k = int(np.argmax(sims))
            centroids[k] = centroids[k] + emb
        else:
            k = len(centroids)
            centroids.append(emb.copy())
        labels.append(k)
    if not centroids:
        return [0] * len(embeddings)
    return labels


@dataclass
class VoiceProfile:
    """What voice matching maps: pitch level and spread, mean formants."""

    pitch_median: float
    pitch_std: float
    formants: list[float]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return dict(self.__dict__)


def _parselmouth() -> Any:
    try:
        import parselmouth
    except ImportError as exc:
        raise MissingDependency("praat-parselmouth", "dubbing") from exc
    return parselmouth


def voice_profile(audio: np.ndarray, rate: int) -> VoiceProfile:
    """Median/std of F0 and mean F1-F3 over voiced frames (Praat's pitch and Burg formants)."""
    pm = _parselmouth()
    snd = pm.Sound(audio.astype(np.float64), sampling_frequency=rate)
    pitch = snd.to_pitch(pitch_floor=60, pitch_ceiling=500)
    f0 = pitch.selected_array["frequency"]
    voiced = f0[f0 > 0]
    if voiced.size < 10:
        raise InvalidInput("too little voiced speech for a voice profile")
    formant = snd.to_formant_burg(max_number_of_formants=5, maximum_formant=5500)
    times = pitch.xs()[f0 > 0]
    fmeans = []
    for k in (1, 2, 3):
        vals = np.array([formant.get_value_at_time(k, t) for t in times[::2]])
        fmeans.append(float(np.nanmedian(vals)))
    return VoiceProfile(float(np.median(voiced)), float(np.std(voiced)), fmeans)


class VoiceMatcher(ABC):
    """Moves synthetic speech toward a source speaker's voice."""

    @abstractmethod
    def match(
        self,
        audio: np.ndarray,
        *,
        source: VoiceProfile,
        synth: VoiceProfile,
        reference: Path | None,
    ) -> np.ndarray:
        """Converted samples at ``SR``, same duration."""


MATCHERS: Registry[VoiceMatcher] = Registry("voice-match")


@MATCHERS.register("none")
class NoMatcher(VoiceMatcher):
    """Leave the synthetic voice as it is."""

    def __init__(self, **_: Any) -> None:
        pass

    def match(
        self,
        audio: np.ndarray,
        *,
        source: VoiceProfile,
        synth: VoiceProfile,
        reference: Path | None,
    ) -> np.ndarray:
        """Unchanged."""
        return audio


@MATCHERS.register("praat")
class PraatMatcher(VoiceMatcher):
    """Praat "Change gender": F0 median and range to the source's, formants shifted by the
    ratio of the source's to the synthetic voice's mean formants (clipped to 0.8-1.25, beyond
    which PSOLA artefacts cost more intelligibility than the match gains)."""

    def __init__(self, **_: Any) -> None:
        self.pm = _parselmouth()

    def match(
        self,
        audio: np.ndarray,
        *,
        source: VoiceProfile,
        synth: VoiceProfile,
        reference: Path | None,
    ) -> np.ndarray:
        """PSOLA resynthesis with the mapped pitch and formants."""

        ratios = [
            s / t for s, t in zip(source.formants, synth.formants, strict=True) if s > 0 and t > 0
        ]
        shift = float(np.clip(np.exp(np.mean(np.log(ratios))) if ratios else 1.0, 0.8, 1.25))
        spread_src = source.pitch_std / max(source.pitch_median, 1.0)
        spread_syn = synth.pitch_std / max(synth.pitch_median, 1.0)
        # espeak-ng is nearly monotone, so a lively speaker may need a 3x wider F0 range
        range_factor = float(np.clip(spread_src / max(spread_syn, 1e-3), 0.5, 3.0))
        return self.convert(
            audio, shift=shift, pitch_median=source.pitch_median, range_factor=range_factor
        )

    def convert(
        self, audio: np.ndarray, *, shift: float, pitch_median: float, range_factor: float
    ) -> np.ndarray:
        """Praat "Change gender" with explicit parameters (same length out)."""
        from parselmouth.praat import call

        if audio.size < SR // 20:
            return audio
        snd = self.pm.Sound(audio.astype(np.float64), sampling_frequency=SR)
        out = call(snd, "Change gender", 60, 500, shift, pitch_median, range_factor, 1.0)
        res = out.values.reshape(-1).astype(np.float32)
        if res.size >= audio.size:
            return res[: audio.size]
        return np.pad(res, (0, audio.size - res.size))


# Long-term average spectrum (LTAS) matching: the timbre that pitch and formant shifts leave
# behind (spectral tilt, nasality, the recording's colour) moved to the source speaker's, by
# one smooth EQ curve per speaker. scipy's STFT/ISTFT do the filtering. On the 60 s bench clip
# it took the Resemblyzer cosine of the Praat-converted espeak voice from 0.63 to 0.68; the
# curve is smoothed over ~100 Hz (5 bins) and clipped to +-12 dB so it cannot copy the
# source's harmonics or blow up a band the synthetic voice lacks.
_LTAS_FFT = 1024


def long_term_spectrum(audio: np.ndarray, rate: int = SR) -> np.ndarray:
    """Mean log power spectrum over the speech frames (pauses dropped), ``_LTAS_FFT`` bins."""
    from scipy.signal import stft

    wav = trim_silence(audio, rate)
    if wav.size < _LTAS_FFT:
        raise InvalidInput("too little speech for a long-term spectrum")
    _, _, z = stft(wav, rate, nperseg=_LTAS_FFT)
    power = np.abs(z) ** 2
    energy = power.sum(axis=0)
    keep = energy > energy.max() * 1e-3
    return np.log(power[:, keep].mean(axis=1) + 1e-10)


def spectrum_gain(
    source: np.ndarray, synth: np.ndarray, *, smooth_bins: int = 5, max_db: float = 12.0
) -> np.ndarray:
    """Per-bin amplitude gain that takes ``synth``'s LTAS to ``source``'s (loudness kept)."""
    diff = (np.asarray(source) - np.asarray(synth)) / 2  # log power -> log amplitude
    kernel = np.ones(smooth_bins) / smooth_bins
    diff = np.convolve(np.pad(diff, smooth_bins // 2, mode="edge"), kernel, mode="valid")
    limit = max_db / (20 / np.log(10))
    diff = np.clip(diff, -limit, limit)
    return np.exp(diff - diff.mean())


def apply_gain(audio: np.ndarray, gain: np.ndarray, rate: int = SR) -> np.ndarray:
    """Filter ``audio`` by a ``spectrum_gain`` curve (same length out)."""
    from scipy.signal import istft, stft

    if audio.size < _LTAS_FFT:
        return audio
    _, _, z = stft(audio, rate, nperseg=_LTAS_FFT)
    _, out = istft(z * gain[:, None], rate, nperseg=_LTAS_FFT)
    out = out[: audio.size].astype(np.float32)
    return np.pad(out, (0, audio.size - out.size))


@MATCHERS.register("command")
class CommandMatcher(VoiceMatcher):
    """A production voice converter run as a command: ``dub_voice_command`` with ``{input}``,
    ``{reference}`` (a clip of the source speaker) and ``{output}`` placeholders."""

    def __init__(self, *, command: str = "", **_: Any) -> None:
        if not command:
            raise BackendUnavailable("voice-match backend 'command' needs dub_voice_command")
        self.command = command

    def match(
        self,
        audio: np.ndarray,
        *,
        source: VoiceProfile,
        synth: VoiceProfile,
        reference: Path | None,
    ) -> np.ndarray:
        """Write the line, run the converter, read its output back at ``SR``."""
        with tempfile.TemporaryDirectory() as tmp:
            src, out = Path(tmp) / "in.wav", Path(tmp) / "out.wav"
            write_wav(src, audio, SR)
            args = [
                a.format(input=src, reference=reference or "", output=out)
                for a in shlex.split(self.command)
            ]
            proc = subprocess.run(args, capture_output=True, text=True, timeout=600)
            if proc.returncode != 0 or not out.exists():
                raise BackendUnavailable(f"voice converter failed: {proc.stderr.strip()[-300:]}")
            data, rate = read_wav(out)
        return resample(data, rate, SR)
