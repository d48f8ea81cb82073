"""Snippets and highlight offsets: plain text plus [start, end) spans, never HTML.

Pages render the spans with ``<mark>`` themselves, so untrusted text is still escaped.
"""

from __future__ import annotations

from twinengine.discovery.index.tokenize import words

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
        spans = [(s, e) for tok, s, e in words(flat) if tok in terms]
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
