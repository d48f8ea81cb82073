"""BM25 over pre-tokenised documents, scored by bm25s, with typo tolerance for short queries.

We keep each document's token ids ourselves (CSR arrays) and hand them to bm25s, which turns
them into its precomputed sparse score matrix. That keeps incremental updates cheap: a changed
document is re-tokenised alone, then the score matrix is rebuilt from the cached ids (well under
a second for the 11k catalog) and swapped in whole.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from twinengine.discovery.index.tokenize import is_cjk

_TYPO_MIN_LEN = 4  # shorter words have too many one-edit neighbours to guess from
_CJK_EXPANSIONS = 64  # bigrams a lone CJK character may stand for (the most common ones)
SHORT_QUERY_TOKENS = 3  # typo tolerance applies to queries with at most this many tokens


class LexicalIndex:
    """BM25 (bm25s, Lucene variant) over documents given as token lists."""

    def __init__(
        self,
        vocab: list[str],
        indptr: np.ndarray,
        indices: np.ndarray,
        *,
        k1: float = 1.5,
        b: float = 0.75,
        bm25: Any = None,
    ) -> None:
        import bm25s

        self.vocab = vocab
        self.token_id = {t: i for i, t in enumerate(vocab)}
        self.indptr = indptr.astype(np.int64, copy=False)
        self.indices = indices.astype(np.int32, copy=False)
        self.k1, self.b = k1, b
        self.n_docs = len(self.indptr) - 1
        if bm25 is None:
            ptr, idx = self.indptr, self.indices
            docs = [idx[ptr[i] : ptr[i + 1]].tolist() for i in range(self.n_docs)]
            vocab_dict = {t: i for i, t in enumerate(vocab)}
            if "" not in vocab_dict:
                # bm25s scores an empty document against this token; keep our ids stable.
                vocab_dict[""] = len(vocab_dict)
            bm25 = bm25s.BM25(k1=k1, b=b)
            bm25.index((docs, vocab_dict), show_progress=False)
        self._bm25 = bm25
        bm_indptr = self._bm25.scores["indptr"]
        self.df = np.diff(bm_indptr)[: len(vocab)].astype(np.int32)
        self._deletes: dict[str, list[str]] | None = None
        self._grams_of: dict[str, list[str]] | None = None
        self._tables_lock = threading.Lock()

    # --- building ---------------------------------------------------------------------------
    @classmethod
    def from_tokens(
        cls, docs: Sequence[Sequence[str]], *, vocab: list[str] | None = None, **kw: float
    ) -> LexicalIndex:
        """Index ``docs`` (token lists), extending ``vocab`` (kept append-only) as needed."""
        vocab = list(vocab or [])
        ids = {t: i for i, t in enumerate(vocab)}
        indptr = np.zeros(len(docs) + 1, dtype=np.int64)
        flat: list[int] = []
        for n, doc in enumerate(docs):
            for tok in doc:
                tid = ids.get(tok)
                if tid is None:
                    tid = ids[tok] = len(vocab)
                    vocab.append(tok)
                flat.append(tid)
            indptr[n + 1] = len(flat)
        return cls(vocab, indptr, np.asarray(flat, dtype=np.int32), **kw)

    def doc_tokens(self, row: int) -> list[str]:
        """The tokens of document ``row`` (as indexed)."""
        return [self.vocab[t] for t in self.indices[self.indptr[row] : self.indptr[row + 1]]]

    # --- querying ---------------------------------------------------------------------------
    def scores(self, tokens: Sequence[str]) -> np.ndarray:
        """BM25 score of every document for the query ``tokens`` (float32, zeros = no match)."""
        ids = [self.token_id[t] for t in tokens if t in self.token_id]
        if not ids:
            return np.zeros(self.n_docs, dtype=np.float32)
        return self._bm25.get_scores_from_ids(ids)

    def expand(self, tokens: Sequence[str]) -> list[str]:
        """``tokens`` plus, for a lone CJK character, the indexed bigrams that contain it.

        CJK text is indexed as character bigrams, so a one-character query ("猫", cat; the
        commonest way to search in Chinese and Japanese) would only match the rare documents
        where the character stands alone. It stands for its bigrams instead ("黒猫", "猫の"...):
        a document scores by how many of them it holds and how rare they are.
        """
        out = list(tokens)
        for tok in tokens:
            if len(tok) == 1 and is_cjk(tok):
                out.extend(self._tables()[1].get(tok, ()))
        return out

    def warm(self) -> None:
        """Build the typo-correction and lone-CJK-character tables now (~1 s for the 11k
        catalog). The search state does this in the background when a snapshot goes live, so
        that no query, which runs on the server's event loop, has to."""
        self._tables()

    def _tables(self) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
        if self._deletes is None or self._grams_of is None:
            with self._tables_lock:  # a query that comes first waits for the one build
                if self._deletes is None:
                    self._deletes = self._build_deletes()
                if self._grams_of is None:
                    self._grams_of = self._build_grams_of()
        return self._deletes, self._grams_of

    def _build_grams_of(self) -> dict[str, list[str]]:
        df = self.df.tolist()  # plain ints: numpy scalar indexing costs ~100 ns a lookup
        table: dict[str, list[tuple[int, str]]] = {}
        for tid, word in enumerate(self.vocab):
            if len(word) == 2 and is_cjk(word) and df[tid] > 0:
                for ch in set(word):
                    table.setdefault(ch, []).append((-df[tid], word))
        return {ch: [w for _, w in sorted(grams)[:_CJK_EXPANSIONS]] for ch, grams in table.items()}

    def correct(self, tokens: Sequence[str]) -> list[str]:
        """Short queries: swap each unknown word for its most common one-edit neighbour."""
        if len(tokens) > SHORT_QUERY_TOKENS:
            return list(tokens)
        out = []
        for tok in tokens:
            tid = self.token_id.get(tok)
            if (tid is not None and self.df[tid] > 0) or len(tok) < _TYPO_MIN_LEN or is_cjk(tok):
                out.append(tok)
                continue
            best = self._nearest(tok)
            out.append(best or tok)
        return out

    def _nearest(self, tok: str) -> str | None:
        """Vocabulary word within one edit (insert, delete, substitute, swap) with highest df."""
        deletes = self._tables()[0]
        found: set[str] = set()
        for key in {tok, *_deletes1(tok)}:
            found.update(deletes.get(key, ()))
        found.discard(tok)
        found = {w for w in found if _within_one_edit(tok, w)}
        if not found:
            return None
        return max(found, key=lambda w: (self.df[self.token_id[w]], w))

    def _build_deletes(self) -> dict[str, list[str]]:
        # SymSpell: a word and every one-character deletion of it point back to the word, so
        # two words within one edit share a key; lookups cost O(len(word)).
        table: dict[str, list[str]] = {}
        for word, tid in self.token_id.items():
            if len(word) < _TYPO_MIN_LEN - 1 or self.df[tid] == 0 or is_cjk(word):
                continue
            for key in {word, *_deletes1(word)}:
                table.setdefault(key, []).append(word)
        return table

    # --- persistence ------------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        """Write token ids (``.npy``), the vocabulary (JSON) and bm25s's own files: no pickle."""
        # bm25s's score matrix is saved too, so a restart loads it instead of recomputing it.
        self._bm25.save(str(folder / "bm25s"), show_progress=False)
        np.save(folder / "lex_indptr.npy", self.indptr)
        np.save(folder / "lex_indices.npy", self.indices)
        (folder / "lex_vocab.json").write_text(
            json.dumps({"k1": self.k1, "b": self.b, "vocab": self.vocab}, ensure_ascii=False)
        )

    @classmethod
    def load(cls, folder: Path) -> LexicalIndex:
        """Inverse of ``save``; rebuilds the bm25s score matrix from the stored ids."""
        import bm25s

        meta = json.loads((folder / "lex_vocab.json").read_text())
        saved = folder / "bm25s"
        bm25 = None
        if saved.is_dir():
            bm25 = bm25s.BM25.load(str(saved), show_progress=False, verbosity=0)
        return cls(
            meta["vocab"],
            np.load(folder / "lex_indptr.npy", allow_pickle=False),
            np.load(folder / "lex_indices.npy", allow_pickle=False),
            k1=meta["k1"],
            b=meta["b"],
            bm25=bm25,
        )


def _deletes1(word: str) -> set[str]:
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


def _within_one_edit(a: str, b: str) -> bool:
    """Damerau-Levenshtein distance <= 1 (adjacent swap counts as one edit)."""
    if a == b:
        return True
    la, lb = len(a), len(b)
    if abs(la - lb) > 1:
        return False
    if la == lb:
        diff = [i for i in range(la) if a[i] != b[i]]
        if len(diff) == 1:
            return True
        return (
            len(diff) == 2
            and diff[1] == diff[0] + 1
            and a[diff[0]] == b[diff[1]]
            and a[diff[1]] == b[diff[0]]
        )
    short, long_ = (a, b) if la < lb else (b, a)
    i = 0
    while i < len(short) and short[i] == long_[i]:
        i += 1
    return short[i:] == long_[i + 1 :]
