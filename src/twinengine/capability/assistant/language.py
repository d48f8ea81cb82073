"""Language detection: Unicode scripts first, then py3langid's packaged model for Latin text.

Scripts settle Japanese (kana), Korean (hangul), Chinese (han without kana) and a few others
outright; short Latin briefs are where statistical detectors go wrong, so their answer is
checked against stopword votes and English wins a tie (the catalog is mostly English).
"""

from __future__ import annotations

import re
import threading
import unicodedata
from typing import Any

from twinengine.capability.assistant._lexicon import STOPWORDS

# Languages the statistical model may answer for Latin-script text.
LATIN_LANGS = ["en", "es", "fr", "de", "pt", "it", "nl", "id", "tr", "pl", "vi"]
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
_lock = threading.Lock()
_identifier: Any = None


def _model() -> Any:
    """py3langid's bundled model, loaded once (None when the package is missing)."""
    global _identifier
    with _lock:
        if _identifier is None:
            try:
                from py3langid.langid import MODEL_FILE, LanguageIdentifier
            except ImportError:
                _identifier = False
            else:
                ident = LanguageIdentifier.from_pickled_model(MODEL_FILE, norm_probs=True)
                ident.set_languages(LATIN_LANGS)
                _identifier = ident
    return _identifier or None


def script_counts(text: str) -> dict[str, int]:
    """Letters of ``text`` counted by script (kana, hangul, han, arabic, cyrillic, latin...)."""
    counts: dict[str, int] = {}
    for ch in text:
        if not ch.isalpha():
            continue
        code = ord(ch)
        if 0x3040 <= code <= 0x30FF or 0x31F0 <= code <= 0x31FF or 0xFF66 <= code <= 0xFF9F:
            key = "kana"
        elif 0xAC00 <= code <= 0xD7AF or 0x1100 <= code <= 0x11FF or 0x3130 <= code <= 0x318F:
            key = "hangul"
        elif 0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or 0xF900 <= code <= 0xFAFF:
            key = "han"
        else:
            name = unicodedata.name(ch, "")
            key = name.split(" ")[0].lower() if name else "other"
        counts[key] = counts.get(key, 0) + 1
    return counts


_SCRIPT_LANG = {
    "arabic": "ar",
    "cyrillic": "ru",
    "thai": "th",
    "hebrew": "he",
    "greek": "el",
    "devanagari": "hi",
}


def detect_language(text: str) -> tuple[str, float]:
    """ISO 639-1 code of ``text`` and a confidence in [0, 1]; 'en' without letters."""
    counts = script_counts(text)
    letters = sum(counts.values())
    if not letters:
        return "en", 0.0
    kana, hangul, han = counts.get("kana", 0), counts.get("hangul", 0), counts.get("han", 0)
    cjk = kana + hangul + han
    # Any kana means Japanese (Chinese never uses it); hangul means Korean.
    if cjk / letters >= 0.3 or (cjk and letters - cjk <= 3):
        if kana:
            return "ja", min(1.0, 0.6 + kana / max(cjk, 1))
        if hangul >= han:
            return "ko", 0.95
        return "zh", 0.9
    for script, lang in _SCRIPT_LANG.items():
        if counts.get(script, 0) / letters >= 0.5:
            return lang, 0.9
    words = [w.lower() for w in _WORD.findall(text)]
    votes = {lang: sum(w in stop for w in words) for lang, stop in STOPWORDS.items()}
    model = _model()
    if model is not None:
        lang, prob = model.classify(text)
        prob = float(prob)
        # Two-word briefs fool the model ("logo café"); trust it when stopwords agree or it is sure.
        if (
            lang == "en"
            or (prob >= 0.9 and len(words) >= 3)
            or votes.get(lang, 0) >= max(1, votes.get("en", 0))
        ):
            return lang, prob
    best = max(votes, key=lambda k: (votes[k], k == "en"))
    if votes[best] > votes.get("en", 0):
        return best, 0.6
    return "en", 0.5


LANGUAGE_NAMES = {
    "en": "English", "ja": "Japanese", "zh": "Chinese", "ko": "Korean", "es": "Spanish",
    "fr": "French", "de": "German", "pt": "Portuguese", "it": "Italian", "ar": "Arabic",
    "ru": "Russian", "nl": "Dutch", "th": "Thai", "hi": "Hindi", "he": "Hebrew", "el": "Greek",
    "id": "Indonesian", "tr": "Turkish", "pl": "Polish", "vi": "Vietnamese",
}  # fmt: skip
