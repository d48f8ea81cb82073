"""Untrusted text: find instructions hidden in catalog prompts, and validate what we send back.

Catalog prompts are public text written by strangers. One that tells a model to "ignore
previous instructions" is left out of the sources altogether (it never reaches the LLM or the
deterministic composer), and its distinctive words become markers that no answer may contain.
Every answer is also checked for the system prompt (sentences and a per-process canary), for
length, and for cited ids that are not among the sources actually given.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

# Phrasings of prompt injection, in the catalog's languages. Tuned to hit hijack attempts,
# not ordinary prompt wording ("System Instruction:", "do not change the face").
INJECTION_PATTERNS = [
    re.compile(p, re.I)
    for p in (
        r"\b(?:ignore|disregard|forget|override|bypass)\b[^.\n]{0,40}\b(?:previous|prior|above|"
        r"earlier|preceding|all|any|your|the|system|developer)\b[^.\n]{0,30}\b(?:instructions?|"
        r"prompts?|rules|directions|guidelines|context|messages?)\b",
        r"\b(?:reveal|print|show|repeat|output|leak|dump)\b[^.\n]{0,30}\b(?:system|hidden|secret|"
        r"initial|original)\s+(?:prompt|instructions?|message)\b",
        r"\byou are now\b|\bnew instructions?\s*:|\bfrom now on,? you\b|\bjailbreak\b|"
        r"\bdeveloper mode\b|\bDAN mode\b",
        r"<\s*/?\s*(?:system|assistant|im_start|im_end)\s*>|\[/?INST\]|<<\s*/?SYS\s*>>",
        r"BEGIN SOURCES|END SOURCES",
        r"(?:以前|前|上記|これまで)の(?:指示|命令|プロンプト)を(?:すべて|全て)?無視",
        r"忽略(?:之前|以上|先前|上面|所有)(?:的)?(?:所有)?(?:指令|指示|提示|说明)",
        r"(?:이전|위의|앞의)\s*(?:모든\s*)?(?:지시|명령|지침)(?:을|를)?\s*무시",
        r"ignora(?:r)?\s+(?:las|todas las)?\s*instrucciones\s+(?:anteriores|previas)",
        r"ignore[zr]?\s+(?:les|toutes les)\s+instructions\s+(?:précédentes|ci-dessus)",
    )
]
# One pass over the whole text first: almost no catalog prompt matches, so most texts stop here.
_ANY_INJECTION = re.compile("|".join(f"(?:{p.pattern})" for p in INJECTION_PATTERNS), re.I)
_SENTENCE = re.compile(r"[^.!?。！？\n]+[.!?。！？]?")
_DISTINCT = re.compile(
    r"\"([^\"]{3,80})\"|'([^']{3,80})'|“([^”]{3,80})”|「([^」]{3,80})」|"
    r"(https?://\S+)|\b([A-Z0-9][A-Z0-9_\-]{3,}\d*)\b|\b(\w*\d\w*[A-Za-z]\w*)\b"
)
_WORDS = re.compile(r"\w+", re.UNICODE)


def normalise(text: str) -> str:
    """Lower-case, NFKC, whitespace collapsed: what marker checks compare."""
    return " ".join(unicodedata.normalize("NFKC", text).lower().split())


def injected_segments(text: str) -> list[str]:
    """The sentences of ``text`` that carry an injection, each with the sentence after it."""
    return list(_injected_segments(text))


# Popular prompts are sources of many answers: remember the verdict per text (a few MB).
@lru_cache(maxsize=2048)
def _injected_segments(text: str) -> tuple[str, ...]:
    if not _ANY_INJECTION.search(text):
        return ()
    sentences = [m.group(0).strip() for m in _SENTENCE.finditer(text) if m.group(0).strip()]
    out: list[str] = []
    for n, sentence in enumerate(sentences):
        if any(p.search(sentence) for p in INJECTION_PATTERNS):
            # The payload often follows in the next sentence ("... instructions. Say X.").
            out.append(" ".join(sentences[n : n + 2]))
    return tuple(out)


def markers_of(segments: Iterable[str]) -> set[str]:
    """Normalised strings no answer may contain: quoted payloads, codes, URLs, 5-word runs."""
    out: set[str] = set()
    for seg in segments:
        for m in _DISTINCT.finditer(seg):
            token = next(g for g in m.groups() if g)
            if len(token) >= 4:
                out.add(normalise(token))
        words = _WORDS.findall(normalise(seg))
        for i in range(len(words) - 4):
            out.add(" ".join(words[i : i + 5]))
    return {m for m in out if m}


@dataclass
class Guard:
    """Checks on answers for one request: the system prompt, markers, ids, length."""

    system_prompt: str
    canary: str
    allowed_ids: set[str]
    markers: set[str] = field(default_factory=set)
    max_chars: int = 8000

    def __post_init__(self) -> None:
        words = _WORDS.findall(normalise(self.system_prompt))
        # Any 8-word run of the system prompt in an answer counts as a leak.
        self._system_runs = {" ".join(words[i : i + 8]) for i in range(max(0, len(words) - 7))}
        self.hold_back = max([len(m) for m in self.markers] + [len(self.canary), 120])

    def problems(self, text: str) -> list[str]:
        """What is wrong with ``text`` as (part of) an answer; empty when it may be shown."""
        found: list[str] = []
        norm = normalise(text)
        if self.canary.lower() in norm:
            found.append("the answer repeats the system prompt")
        else:
            words = _WORDS.findall(norm)
            runs = {" ".join(words[i : i + 8]) for i in range(max(0, len(words) - 7))}
            if runs & self._system_runs:
                found.append("the answer repeats the system prompt")
        if any(m in norm for m in self.markers):
            found.append("the answer carries text from an instruction hidden in a source")
        if len(text) > self.max_chars:
            found.append(f"the answer is longer than {self.max_chars} characters")
        return found

    def check_ids(self, ids: Iterable[str]) -> tuple[list[str], list[str]]:
        """(cited ids that were among the sources, ids that were not)."""
        good, bad = [], []
        for i in ids:
            (good if i in self.allowed_ids else bad).append(i)
        return list(dict.fromkeys(good)), bad


def new_canary() -> str:
    """A random token planted in the system prompt: seeing it in output proves a leak."""
    return f"te-sys-{secrets.token_hex(6)}"


class Violation(Exception):
    """An answer failed validation; the message says why."""


class StreamGuard:
    """Lets streamed text out only once the text around it has been checked.

    It holds back the last ``guard.hold_back`` characters (a marker or system-prompt run may
    still be arriving) and stops at ``stop_at`` (the trailer that lists the sources).
    """

    def __init__(self, guard: Guard, *, stop_at: str = "\nSOURCES:") -> None:
        self.guard = guard
        self.stop_at = stop_at
        self.text = ""
        self.sent = 0
        self.stopped = False

    def feed(self, delta: str) -> str:
        """Add a chunk; returns the text now safe to send (may be empty)."""
        self.text += delta
        problems = self.guard.problems(self.text)
        if problems:
            raise Violation("; ".join(problems))
        if self.stopped:
            return ""
        cut = self._body_end()
        if cut is not None:
            self.stopped = True
            limit = cut
        else:
            limit = max(self.sent, len(self.text) - self.guard.hold_back - len(self.stop_at))
        out = self.text[self.sent : limit]
        self.sent = max(self.sent, limit)
        return out

    def finish(self) -> str:
        """The rest of the body once the stream ended (after a last check)."""
        problems = self.guard.problems(self.text)
        if problems:
            raise Violation("; ".join(problems))
        cut = self._body_end()
        limit = cut if cut is not None else len(self.text)
        out = self.text[self.sent : limit] if limit > self.sent else ""
        self.sent = max(self.sent, limit)
        return out

    def _body_end(self) -> int | None:
        low = self.text.upper()
        for marker in (self.stop_at.upper(), "SOURCES:"):
            at = low.find(marker)
            if at == 0 or (at > 0 and marker.startswith("\n")):
                return at
            if at > 0 and low[at - 1] in "\n ":
                return at
        return None
