"""Exact and near-duplicate detection: normalised-text hashes plus MinHash/LSH on word shingles.

Exact: the prompt text after NFKC, case folding and removing all whitespace hashes the same
(this catches the catalog's pairs that differ only in case or spacing). Near: the Jaccard
similarity of the texts' word 3-shingle sets (hashed) is at or above a threshold; MinHash signatures
(128 permutations, 32 LSH bands of 4 rows) find the candidates and the exact Jaccard of the
shingle sets confirms them, so a reported similarity is never an estimate.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
import zlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

NUM_PERM = 128
BANDS = 32
ROWS = NUM_PERM // BANDS
SHINGLE = 3
_MASK32 = np.uint64(0xFFFFFFFF)
_rng = np.random.default_rng(20240607)  # fixed: signatures must be comparable across runs
_A = _rng.integers(1, 2**63 - 1, size=NUM_PERM, dtype=np.uint64) | np.uint64(1)
_B = _rng.integers(0, 2**63 - 1, size=NUM_PERM, dtype=np.uint64)
_WORD = re.compile(r"\w+", re.UNICODE)


def normalise(text: str) -> str:
    """NFKC, case-folded, whitespace collapsed: the text two near-copies share."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def text_hash(text: str) -> str:
    """sha1 of the normalised text with all whitespace removed (spacing-insensitive)."""
    return hashlib.sha1("".join(normalise(text).split()).encode("utf-8")).hexdigest()


_word_hash: dict[str, int] = {}
_P1 = np.uint64(0x9E3779B97F4A7C15)
_P2 = np.uint64(0xC2B2AE3D27D4EB4F)


def _word_ids(words: list[str]) -> np.ndarray:
    out = np.empty(len(words), dtype=np.uint64)
    cache = _word_hash
    for i, w in enumerate(words):
        h = cache.get(w)
        if h is None:
            h = cache[w] = zlib.crc32(w.encode())
        out[i] = h
    if len(cache) > 2_000_000:  # bound the memo; words repeat a lot across prompts
        cache.clear()
    return out


def shingles(text: str) -> np.ndarray:
    """Sorted unique 32-bit hashes of the text's word 3-shingles (short texts: all words)."""
    words = _WORD.findall(normalise(text))
    if not words:
        return np.zeros(0, dtype=np.uint64)
    ids = _word_ids(words)
    if ids.size < SHINGLE:
        combined = np.array([int(np.bitwise_xor.reduce(ids * _P1))], dtype=np.uint64)
    else:
        # a polynomial combination of three consecutive word hashes, vectorised
        combined = ids[:-2] * _P1 * _P1 + ids[1:-1] * _P1 + ids[2:] * _P2
    return np.unique((combined >> np.uint64(32)) ^ (combined & _MASK32))


def signature(sh: np.ndarray) -> np.ndarray:
    """MinHash signature (NUM_PERM uint32 values) of a shingle set."""
    if sh.size == 0:
        return np.full(NUM_PERM, 0xFFFFFFFF, dtype=np.uint32)
    # multiply-shift hashing: the high 32 bits of a*x+b (mod 2^64) are pairwise independent
    hashed = (sh[:, None] * _A[None, :] + _B[None, :]) >> np.uint64(32)
    return (hashed & _MASK32).min(axis=0).astype(np.uint32)


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Exact Jaccard similarity of two sorted unique hash arrays."""
    if a.size == 0 and b.size == 0:
        return 1.0
    inter = np.intersect1d(a, b, assume_unique=True).size
    return inter / (a.size + b.size - inter)


@dataclass(frozen=True)
class Duplicate:
    """An incoming item that repeats one already known."""

    id: str
    of: str
    kind: str  # exact | near
    similarity: float
    within_drop: bool


class DuplicateIndex:
    """Known texts (the catalog, then accepted drop items) to check new ones against."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self._shingles: list[np.ndarray] = []
        self._exact: dict[str, str] = {}
        self._bands: list[dict[bytes, list[int]]] = [defaultdict(list) for _ in range(BANDS)]
        self._from_drop: set[str] = set()

    def add(self, item_id: str, text: str, *, from_drop: bool = False) -> None:
        """Index one text."""
        sh = shingles(text)
        pos = len(self.ids)
        self.ids.append(item_id)
        self._shingles.append(sh)
        self._exact.setdefault(text_hash(text), item_id)
        sig = signature(sh)
        for band in range(BANDS):
            self._bands[band][sig[band * ROWS : (band + 1) * ROWS].tobytes()].append(pos)
        if from_drop:
            self._from_drop.add(item_id)

    def find(self, item_id: str, text: str, *, threshold: float) -> Duplicate | None:
        """The best-matching known item other than ``item_id`` itself, if any."""
        exact = self._exact.get(text_hash(text))
        if exact is not None and exact != item_id:
            return Duplicate(item_id, exact, "exact", 1.0, exact in self._from_drop)
        sh = shingles(text)
        sig = signature(sh)
        candidates: set[int] = set()
        for band in range(BANDS):
            candidates.update(
                self._bands[band].get(sig[band * ROWS : (band + 1) * ROWS].tobytes(), ())
            )
        best: tuple[float, str] | None = None
        for pos in candidates:
            other = self.ids[pos]
            if other == item_id:
                continue
            sim = jaccard(sh, self._shingles[pos])
            if sim >= threshold and (best is None or sim > best[0]):
                best = (sim, other)
        if best is None:
            return None
        return Duplicate(item_id, best[1], "near", round(best[0], 4), best[1] in self._from_drop)


def find_duplicates(
    known: Sequence[tuple[str, str]], incoming: Sequence[tuple[str, str]], *, threshold: float
) -> list[Duplicate]:
    """Duplicates among ``incoming`` (id, text) against ``known`` and earlier incoming items.

    An incoming item whose id is already known is an update of that item, not a duplicate
    of it; it is still checked against every other item.
    """
    index = DuplicateIndex()
    for item_id, text in known:
        index.add(item_id, text)
    found: list[Duplicate] = []
    for item_id, text in incoming:
        dup = index.find(item_id, text, threshold=threshold)
        if dup is not None:
            found.append(dup)
            continue
        index.add(item_id, text, from_drop=True)
    return found


def item_text(row: dict[str, object]) -> str:
    """The text compared: the prompt body, or title and description when it has none."""
    body = str(row.get("body") or row.get("prompt") or "")
    if body.strip():
        return body
    return f"{row.get('title') or ''} {row.get('description') or ''}"
