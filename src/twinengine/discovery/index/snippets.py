"""Snippets and highlight offsets: plain text plus [start, end) spans, never HTML.

Pages render the spans with ``<mark>`` themselves, so untrusted text is still escaped.
"""

from __future__ import annotations

import re
from functools import lru_cache

from twinengine.discovery.index.tokenize import LATIN_RUN, STOPWORDS_EN, is_cjk, stem

SNIPPET_CHARS = 220
SCAN_CHARS = 2000
_LEAD = 40  # characters of context kept before the first match


def highlight(
    primary: str, secondary: str, terms: set[str], *, whole: bool = False
) -> tuple[str, list[tuple[int, int]]]:
    """(snippet, spans): the best window of ``primary`` (else ``secondary``) and its matches.

    ``whole=True`` returns all of ``primary`` (used for titles). Without any match the snippet
    is the start of ``primary`` (or ``secondary`` when ``primary`` is empty).
    """
    for text in (primary, secondary):
        if not text:
            continue
        # Matches deep inside a long prompt make poor snippets and cost time: look at the start.
        flat = " ".join(text[:SCAN_CHARS].split())
        spans = term_spans(flat, terms)
        if whole:
            return flat, _merge(spans)
        if spans:
            return _window(flat, spans)
    fallback = " ".join((primary or secondary or "").split())
    return (fallback if whole else _cut(fallback, 0)[0]), []


def _window(text: str, spans: list[tuple[int, int]]) -> tuple[str, list[tuple[int, int]]]:
    # Start just before the densest cluster: the match followed by the most matches in range.
    best = max(
        range(len(spans)),
        key=lambda i: (sum(1 for s, _ in spans[i:] if s < spans[i][0] + SNIPPET_CHARS - _LEAD), -i),
    )
    start = max(0, spans[best][0] - _LEAD)
    if start > 0:
        space = text.find(" ", start)
        start = space + 1 if 0 <= space < spans[best][0] else start
    snippet, end = _cut(text, start)
    inside = [(s - start, e - start) for s, e in spans if s >= start and e <= end]
    prefix = "…" if start > 0 else ""
    shift = len(prefix)
    return prefix + snippet, _merge([(s + shift, e + shift) for s, e in inside])


def _cut(text: str, start: int) -> tuple[str, int]:
    end = min(len(text), start + SNIPPET_CHARS)
    if end < len(text):
        space = text.rfind(" ", start, end)
        end = space if space > start + SNIPPET_CHARS // 2 else end
        return text[start:end].rstrip() + "…", end
    return text[start:end], end


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sort and merge overlapping spans (CJK bigrams overlap by one character)."""
    out: list[tuple[int, int]] = []
    for s, e in sorted(spans):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def term_spans(text: str, terms: set[str] | frozenset[str]) -> list[tuple[int, int]]:
    """[start, end) of every token of ``text`` that ``tokenize`` would turn into one of ``terms``.

    The same spans as filtering ``tokenize.words(text)``, at a fraction of the cost (this runs
    for every hit of every search): instead of stemming each word of the text, a regex finds
    the words that start like a wanted stem and only those are stemmed and checked. CJK terms
    are literal character bigrams (or lone characters), so they are found with ``str.find``.
    """
    if not terms:
        return []
    lower = text.lower()
    latin, cjk = _split_terms(frozenset(terms))
    spans: list[tuple[int, int]] = []
    if latin:
        for m in _prefix_pattern(latin).finditer(lower):
            at = m.start()
            if at > 0 and LATIN_RUN.match(lower, at - 1):
                continue  # inside a word, not at its start
            end = LATIN_RUN.match(lower, at).end()  # type: ignore[union-attr]
            piece = lower[at:end]
            if len(piece) >= 2 and piece not in STOPWORDS_EN and stem(piece) in latin:
                spans.append((at, end))
    for gram in cjk:
        at = lower.find(gram)
        while at >= 0:
            # A lone character is a token only where it is a one-character CJK run.
            lone = len(gram) == 1 and (
                (at > 0 and is_cjk(lower[at - 1])) or is_cjk(lower[at + 1 : at + 2])
            )
            if not lone:
                spans.append((at, at + len(gram)))
            at = lower.find(gram, at + 1)
    spans.sort()
    return spans


@lru_cache(maxsize=4096)
def _split_terms(terms: frozenset[str]) -> tuple[frozenset[str], tuple[str, ...]]:
    latin = frozenset(t for t in terms if not is_cjk(t))
    return latin, tuple(sorted(t for t in terms if is_cjk(t)))


@lru_cache(maxsize=4096)
def _prefix_pattern(stems: frozenset[str]) -> re.Pattern[str]:
    # A Snowball stem is a prefix of its word except for its last two letters at most
    # ("citi" <- "cities", "tie" <- "tying"): checked against all 39,620 distinct catalog words.
    # Literal prefixes only: a pattern with the tokenizer's big character classes costs ~20 ms
    # to compile, once per distinct query.
    prefixes = sorted({s[: max(1, len(s) - 2)] for s in stems}, key=len, reverse=True)
    return re.compile("|".join(map(re.escape, prefixes)))
