"""Search tokenisation: English words stemmed, CJK runs as overlapping character bigrams.

Latin-script words follow bm25s's own rule (two or more word characters, lower-cased, English
stopwords dropped, Snowball-stemmed by PyStemmer) so the lexical index matches bm25s on English.
Chinese, Japanese and Korean text has no spaces, so each run of CJK characters becomes its
character bigrams (plus the character itself for a one-character run): "猫咪" -> ["猫咪"], and a
query run "黑猫咪" -> ["黑猫", "猫咪"] matches any document containing that phrase.
"""

from __future__ import annotations

import re
from functools import lru_cache

# Han, Hiragana, Katakana (incl. half-width), Hangul syllables and jamo.
_CJK = (
    "\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
    "\uac00-\ud7af\u1100-\u11ff\u3130-\u318f\uff66-\uff9f"
)
_CJK_RUN = re.compile(f"[{_CJK}]+")
_TOKEN_SPAN = re.compile(rf"[{_CJK}]+|[^\W{_CJK}]+")
LATIN_RUN = re.compile(rf"[^\W{_CJK}]+")  # one non-CJK token (as _TOKEN_SPAN cuts them)

# bm25s's English stopword list, kept here so tokens never depend on bm25s internals.
STOPWORDS_EN = frozenset(
    "a an and are as at be but by for if in into is it no not of on or such that the their "
    "then there these they this to was will with".split()
)


@lru_cache(maxsize=1)
def _stemmer():  # type: ignore[no-untyped-def]
    import Stemmer  # PyStemmer

    return Stemmer.Stemmer("english")


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    """The Snowball English stem of a lower-case word (memoised: the vocabulary is small)."""
    return _stemmer().stemWord(word)


def is_cjk(text: str) -> bool:
    """Whether ``text`` contains any CJK character."""
    return _CJK_RUN.search(text) is not None


def cjk_grams(run: str) -> list[str]:
    """Overlapping bigrams of a CJK run (the run itself when it has one character)."""
    if len(run) == 1:
        return [run]
    return [run[i : i + 2] for i in range(len(run) - 1)]


def tokenize(text: str) -> list[str]:
    """Index/query tokens for ``text`` in reading order (duplicates kept for term frequency)."""
    text = text.lower()
    out: list[str] = []
    for match in _TOKEN_SPAN.finditer(text):
        piece = match.group(0)
        if _CJK_RUN.fullmatch(piece):
            out.extend(cjk_grams(piece))
        elif len(piece) >= 2 and piece not in STOPWORDS_EN:
            out.append(stem(piece))
    return out


def words(text: str) -> list[tuple[str, int, int]]:
    """(token, start, end) for each searchable span of ``text``; used to place highlights."""
    spans: list[tuple[str, int, int]] = []
    lower = text.lower()
    for match in _TOKEN_SPAN.finditer(lower):
        piece, start = match.group(0), match.start()
        if _CJK_RUN.fullmatch(piece):
            for i, gram in enumerate(cjk_grams(piece)):
                spans.append((gram, start + i, start + i + len(gram)))
        elif len(piece) >= 2 and piece not in STOPWORDS_EN:
            spans.append((stem(piece), start, match.end()))
    return spans
