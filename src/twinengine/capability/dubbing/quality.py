"""Quality figures of a dub: round-trip WER, speaker similarity, drift, real-time factor."""

from __future__ import annotations

import re
import unicodedata

import numpy as np

_PUNCT = re.compile(r"[^\w\s']", re.UNICODE)


def normalise(text: str) -> list[str]:
    """Lower-case words without punctuation or accents (ASR and TTS disagree on those)."""
    text = unicodedata.normalize("NFKD", text.lower())
    text = "".join(c for c in text if not unicodedata.combining(c))
    return _PUNCT.sub(" ", text).split()


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate: word-level Levenshtein distance over the reference length."""
    ref, hyp = normalise(reference), normalise(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    prev = np.arange(len(hyp) + 1)
    for i, r in enumerate(ref, 1):
        cur = np.empty_like(prev)
        cur[0] = i
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return float(prev[-1]) / len(ref)
