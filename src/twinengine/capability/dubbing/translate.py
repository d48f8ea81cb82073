"""Translation backends: one target line per source line, in order.

- ``apertium``: Debian's Apertium (``apertium`` + ``apertium-en-es``), offline, rule-based.
- ``llm``: the model router's LLM route with a glossary, asked to fit each line's time slot;
  falls back to Apertium when the router says the budget is spent or no backend answers, or
  when the model's JSON is broken.
- ``ct2``: an NLLB/Marian model converted to CTranslate2, loaded from ``dub_ct2_model_path``.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from twinengine.capability.dubbing._registry import Registry
from twinengine.errors import BackendUnavailable, BudgetExceeded, InvalidInput, MissingDependency

log = logging.getLogger(__name__)


@dataclass
class Line:
    """One line to translate and the time it must fit in."""

    text: str
    seconds: float


class Translator(ABC):
    """Translates lines from ``source`` to ``target`` (ISO 639-1 codes)."""

    @abstractmethod
    def translate(self, lines: list[Line], *, source: str, target: str) -> list[str]:
        """One translation per line, same order."""


TRANSLATORS: Registry[Translator] = Registry("translation")

# Apertium mode names of the pairs Debian ships that we know of (639-1 -> Apertium's 639-3).
_APERTIUM_MODES = {("en", "es"): "eng-spa", ("es", "en"): "spa-eng"}


@TRANSLATORS.register("apertium")
class ApertiumTranslator(Translator):
    """Debian's Apertium: one process for all lines (it keeps newlines)."""

    def __init__(self, **_: Any) -> None:
        if not shutil.which("apertium"):
            raise BackendUnavailable(
                "apertium is not installed: make media-deps "
                "(apt-get install apertium apertium-en-es)"
            )

    def translate(self, lines: list[Line], *, source: str, target: str) -> list[str]:
        """Translate all lines in one call; ``-u`` drops Apertium's unknown-word asterisks."""
        mode = _APERTIUM_MODES.get((source, target))
        if mode is None:
            raise InvalidInput(f"apertium has no {source}->{target} pair here")
        if not lines:
            return []
        text = "\n".join(" ".join(ln.text.split()) for ln in lines) + "\n"
        proc = subprocess.run(
            ["apertium", "-u", mode], input=text, capture_output=True, text=True, timeout=300
        )
        if proc.returncode != 0:
            raise BackendUnavailable(f"apertium failed: {proc.stderr.strip()[-300:]}")
        out = [
            " ".join(s.replace(" .", ".").replace(" ,", ",").split())
            for s in proc.stdout.rstrip("\n").split("\n")
        ]
        if len(out) != len(lines):
            raise BackendUnavailable(f"apertium returned {len(out)} lines for {len(lines)}")
        return out


class _Lines(BaseModel):
    """The JSON the LLM must answer with."""

    lines: list[str]


@TRANSLATORS.register("llm")
class RouterTranslator(Translator):
    """The model router's LLM route; Apertium when it is unavailable or answers badly."""

    def __init__(
        self,
        *,
        ctx: Any = None,
        glossary: dict[str, str] | None = None,
        run_id: str | None = None,
        **_: Any,
    ) -> None:
        self.ctx = ctx
        self.glossary = glossary or {}
        self.run_id = run_id
        self.fallback_used = False

    def _prompt(self, lines: list[Line], source: str, target: str) -> list[dict[str, str]]:
        gloss = "\n".join(f"- {k} -> {v}" for k, v in self.glossary.items()) or "(none)"
        numbered = "\n".join(f"{i}. [{ln.seconds:.1f}s] {ln.text}" for i, ln in enumerate(lines, 1))
        return [
            {
                "role": "system",
                "content": (
                    f"You translate video dialogue from {source} to {target} for dubbing. "
                    "Keep each line speakable within its time slot (shown in seconds: "
                    "about 2.5 words per second at most), keep meaning, never merge or "
                    "split lines. Use the glossary. "
                    'Answer JSON only: {"lines": [one string per input line]}.'
                ),
            },
            {"role": "user", "content": f"Glossary:\n{gloss}\n\nLines:\n{numbered}"},
        ]

    def translate(self, lines: list[Line], *, source: str, target: str) -> list[str]:
        """Ask the router; on budget, outage or malformed JSON use Apertium instead."""
        try:
            from twinengine.capability.router import service as router
        except ImportError:
            log.warning("model router not available; translating with apertium")
            return self._fallback(lines, source, target)
        try:
            res = router.complete(
                self.ctx,
                task="translate",
                messages=self._prompt(lines, source, target),
                schema=_Lines,
                run_id=self.run_id,
                step="translate",
            )
            out = _lines_from(res, len(lines))
        except (BudgetExceeded, BackendUnavailable, ValueError) as exc:
            log.warning("LLM translation unavailable (%s); translating with apertium", exc)
            return self._fallback(lines, source, target)
        return out

    def _fallback(self, lines: list[Line], source: str, target: str) -> list[str]:
        self.fallback_used = True
        return ApertiumTranslator().translate(lines, source=source, target=target)


def _lines_from(res: Any, n: int) -> list[str]:
    """Pull the ``lines`` list out of a router result; ``ValueError`` if it is not n strings."""
    parsed = getattr(res, "parsed", None)
    data = parsed.model_dump() if isinstance(parsed, BaseModel) else parsed
    if data is None:
        text = getattr(res, "text", None) or getattr(res, "content", None) or str(res)
        data = json.loads(text)
    lines = data.get("lines") if isinstance(data, dict) else None
    if not isinstance(lines, list) or len(lines) != n or not all(isinstance(s, str) for s in lines):
        raise ValueError(f"router answer is not {n} lines")
    return [" ".join(s.split()) for s in lines]


# NLLB's language codes for the ct2 backend.
_NLLB = {
    "en": "eng_Latn",
    "es": "spa_Latn",
    "fr": "fra_Latn",
    "de": "deu_Latn",
    "it": "ita_Latn",
    "pt": "por_Latn",
    "ca": "cat_Latn",
}


@TRANSLATORS.register("ct2")
class CTranslate2Translator(Translator):
    """NLLB (or Marian) converted with ct2-transformers-converter, from a local folder."""

    def __init__(self, *, model_path: str = "", threads: int = 2, **_: Any) -> None:
        path = Path(model_path).expanduser() if model_path else None
        if path is None or not (path / "model.bin").exists():
            raise BackendUnavailable(
                f"ct2 translation model folder {model_path!r} has no model.bin"
            )
        try:
            import ctranslate2
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise MissingDependency("ctranslate2", "dubbing") from exc
        self.nllb = "nllb" in path.name.lower() or (path / "sentencepiece.bpe.model").exists()
        self.model = ctranslate2.Translator(str(path), device="cpu", intra_threads=threads)
        self.tok = Tokenizer.from_file(str(path / "tokenizer.json"))

    def translate(self, lines: list[Line], *, source: str, target: str) -> list[str]:
        """Batch-translate; NLLB gets its language tokens, Marian models are one pair each."""
        batch = []
        for ln in lines:
            toks = self.tok.encode(ln.text).tokens
            batch.append(([_NLLB[source]] + toks) if self.nllb else toks)
        prefix = [[_NLLB[target]] for _ in lines] if self.nllb else None
        results = self.model.translate_batch(batch, target_prefix=prefix, beam_size=2)
        out = []
        for r in results:
            toks = [t for t in r.hypotheses[0] if t not in _NLLB.values()]
            ids = [self.tok.token_to_id(t) for t in toks]
            out.append(self.tok.decode([i for i in ids if i is not None]).strip())
        return out
