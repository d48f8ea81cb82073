"""Compose the answer: through the model router (LLM) or deterministically; same shape either way.

The deterministic composer adapts the best source: it fills the source's
``{argument name=... default=...}`` slots from the brief (subject, style, text...), swaps the
source's style words for the visitor's, lists what it could not place, and says which sources
it used. The LLM composer sends the sources as delimited data and parses a fixed trailer
(``SOURCES:`` and ``WHY:`` lines) from the reply.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from twinengine.capability.assistant._messages import EXPLAIN, NONE_FOUND, SYSTEM_PROMPT
from twinengine.capability.assistant.language import LANGUAGE_NAMES
from twinengine.capability.assistant.retrieve import Candidate
from twinengine.capability.assistant.schemas import Placeholder, Understanding

# {argument name="x" default="y"}, also JSON-escaped ({argument name=\"x\" ...}).
ARGUMENT = re.compile(r'\{argument name=(\\?)"([^"\\]*)\\?" default=\\?"([^"\\]*)\\?"\}')
BRACKET = re.compile(
    r"\[(?:insert |your |enter |add )?(?:your )?([a-z][a-z \-]{1,40}?)(?: here)?\]", re.I
)

SUBJECT_SLOTS = re.compile(
    r"^(?:main )?(?:subject|product|object|item|theme|topic|scene|character|"
    r"animal|person|invention|concept|idea|dish|food|building|place|event|"
    r"subject description|subject name|product name|product type|"
    r"character description|character name)"
    r"(?: name| description| type)?$",
    re.I,
)
STYLE_SLOTS = re.compile(
    r"^(?:art |visual |illustration |drawing |rendering )?style$|^aesthetic$", re.I
)
MOOD_SLOTS = re.compile(r"^(?:mood|atmosphere|vibe|tone|feeling)$", re.I)
TEXT_SLOTS = re.compile(
    r"^(?:headline|headline text|text|title|main title|slogan|tagline|caption|"
    r"quote|label text|poster text|title text)$",
    re.I,
)
NAME_SLOTS = re.compile(
    r"^(?:brand|brand name|shop name|store name|business name|company name|"
    r"name|character name|product name)$",
    re.I,
)
# British spellings the catalog writes the American way (so "cosy" is found in "cozy").
_SPELLING = {
    "cosy": "cozy",
    "colour": "color",
    "watercolour": "watercolor",
    "grey": "gray",
    "favourite": "favorite",
    "centre": "center",
}


def _in(term: str, low: str) -> bool:
    term = term.lower()
    return term in low or _SPELLING.get(term, term) in low


RATIO_SLOTS = re.compile(r"^(?:aspect ratio|ratio|format)$", re.I)
COLOUR_SLOTS = re.compile(r"^(?:colou?r palette|colou?rs|colou?r scheme|palette)$", re.I)
LANGUAGE_SLOTS = re.compile(r"^(?:language|text language|output language)$", re.I)


@dataclass
class Composed:
    """A composer's result before it becomes an ``AssistantAnswer``."""

    prompt: str
    template: str
    placeholders: list[Placeholder]
    explanation: str
    cited_ids: list[str]
    notes: list[str] = field(default_factory=list)


def slot_value(name: str, default: str, u: Understanding) -> str | None:
    """The brief's value for a slot called ``name``, or None to keep its default."""
    ratio = next((c.split()[-1] for c in u.constraints if c.startswith("aspect ratio")), None)
    colours = next(
        (c.split(": ", 1)[1] for c in u.constraints if c.startswith("colour palette")), None
    )
    if NAME_SLOTS.match(name) and u.names:
        return u.names[0]
    unnamed = [q for q in u.quoted_text if q not in u.names]
    if TEXT_SLOTS.match(name) and unnamed:
        return unnamed[0]
    if SUBJECT_SLOTS.match(name) and u.subject:
        return u.subject
    if STYLE_SLOTS.match(name) and u.style:
        return ", ".join(u.style)
    if MOOD_SLOTS.match(name) and u.mood:
        return ", ".join(u.mood)
    if RATIO_SLOTS.match(name) and ratio:
        return ratio
    if COLOUR_SLOTS.match(name) and colours:
        return colours
    if LANGUAGE_SLOTS.match(name) and (u.target_language or u.language) != "en":
        return LANGUAGE_NAMES.get(u.target_language or u.language, u.target_language or u.language)
    return None


def fill(text: str, u: Understanding) -> tuple[str, str, list[Placeholder]]:
    """(template with the brief's values as defaults, rendered prompt, the slots)."""
    slots: dict[str, Placeholder] = {}

    def as_template(m: re.Match[str]) -> str:
        esc, name, default = m.group(1), m.group(2), m.group(3)
        value = slot_value(name, default, u)
        slot = slots.setdefault(
            name,
            Placeholder(
                name=name,
                default=default,
                value=value if value is not None else default,
                filled_from="brief" if value is not None else "default",
            ),
        )
        clean = slot.value.replace('"', "'").replace("\\", "")
        return f'{{argument name={esc}"{name}{esc}" default={esc}"{clean}{esc}"}}'

    template = ARGUMENT.sub(as_template, text)
    rendered = ARGUMENT.sub(lambda m: slots[m.group(2)].value.replace('"', "'"), template)

    def bracket(m: re.Match[str]) -> str:
        value = slot_value(m.group(1).strip(), "", u)
        if value is None:
            return m.group(0)
        slots.setdefault(
            m.group(0),
            Placeholder(
                name=m.group(1).strip(), default=m.group(0), value=value, filled_from="brief"
            ),
        )
        return value

    rendered = BRACKET.sub(bracket, rendered)
    template = BRACKET.sub(bracket, template)
    return template, rendered, list(slots.values())


def swap_style(text: str, u: Understanding, style_words: list[str]) -> tuple[str, list[str]]:
    """Replace the source's style words (from the taxonomy) with the visitor's first style."""
    if not u.style or not style_words:
        return text, []
    target = u.style[0]
    swapped: list[str] = []
    for word in sorted(set(style_words), key=len, reverse=True):
        if word.lower() in (s.lower() for s in u.style):
            continue
        pattern = re.compile(rf"(?<![\w-]){re.escape(word)}(?![\w-])", re.I)
        if pattern.search(text):
            text = pattern.sub(target, text)
            swapped.append(word)
    return text, swapped


def compose_deterministic(
    u: Understanding,
    sources: list[Candidate],
    *,
    style_words_of: dict[str, list[str]],
    answer_language: str,
) -> Composed:
    """Adapt the best source to the brief, without any model."""
    if not sources:
        return _no_sources(u, answer_language)
    best = sources[0].item
    template, rendered, slots = fill(best.body or best.title, u)
    template, swapped = swap_style(template, u, style_words_of.get(best.id, []))
    rendered, _ = swap_style(rendered, u, style_words_of.get(best.id, []))
    used = {s.name.lower() for s in slots if s.filled_from == "brief"}
    low = rendered.lower()
    added: list[str] = []
    lines: list[str] = []
    if u.subject and not _in(u.subject, low):
        lines.append(f"Subject: {u.subject}")
        added.append(u.subject)
    missing_style = [s for s in u.style if not _in(s, low)]
    if missing_style:
        lines.append(f"Style: {', '.join(missing_style)}")
        added.extend(missing_style)
    missing_del = [d for d in u.deliverable if not _in(d, low)]
    if missing_del:
        lines.append(f"Format: {', '.join(missing_del)}")
        added.extend(missing_del)
    missing_mood = [m for m in u.mood if not _in(m, low)]
    if missing_mood:
        lines.append(f"Mood: {', '.join(missing_mood)}")
        added.extend(missing_mood)
    quoted = [q for q in u.quoted_text if not _in(q, low)]
    if quoted:
        lines.append("Text to render: " + ", ".join(f'"{q}"' for q in quoted))
        added.extend(f'"{q}"' for q in quoted)
    cons = [c for c in u.constraints if c.split()[-1].lower() not in low]
    if cons:
        lines.append("Constraints: " + "; ".join(cons))
        added.extend(cons)
    target = u.target_language
    if target and target not in best.languages:
        lines.append(f"Write any text in the image in {LANGUAGE_NAMES.get(target, target)}.")
    if lines:
        block = "\n\n" + "\n".join(lines)
        template += block
        rendered += block
    t = EXPLAIN.get(answer_language, EXPLAIN["en"])
    parts = [t[0].format(title=best.title, id=best.id)]
    if used:
        parts.append(t[1].format(slots=", ".join(sorted(used))))
    if swapped:
        parts.append(t[2].format(old=", ".join(swapped), new=u.style[0]))
    if added:
        parts.append(t[3].format(added="; ".join(added)))
    if len(sources) > 1:
        others = ", ".join(f"{c.item.title} ({c.item.id})" for c in sources[1:])
        parts.append(t[4].format(others=others))
    if target and target not in best.languages:
        parts.append(t[5].format(lang=LANGUAGE_NAMES.get(target, target)))
    return Composed(
        prompt=rendered,
        template=template,
        placeholders=slots,
        explanation=" ".join(parts),
        cited_ids=[best.id],
    )


def _no_sources(u: Understanding, answer_language: str) -> Composed:
    head = ", ".join([*u.mood, *u.style, *u.deliverable]) or "image"
    lines = [f"{head}: {u.subject}" if u.subject else head]
    if u.quoted_text:
        lines.append("Text to render: " + ", ".join(f'"{q}"' for q in u.quoted_text))
    if u.constraints:
        lines.append("Constraints: " + "; ".join(u.constraints))
    text = "\n".join(lines)
    return Composed(
        prompt=text,
        template=text,
        placeholders=[],
        explanation=NONE_FOUND.get(answer_language, NONE_FOUND["en"]),
        cited_ids=[],
    )


# --- the LLM composer -----------------------------------------------------------------------


def build_messages(
    u: Understanding,
    brief: str,
    sources: list[Candidate],
    *,
    language: str,
    boundary: str,
    canary: str,
    remix_id: str | None,
    max_source_chars: int = 2500,
) -> tuple[list[dict[str, str]], str]:
    """(chat messages, the system prompt): sources as delimited data, never as instructions."""
    system = SYSTEM_PROMPT.format(
        boundary=boundary, language=LANGUAGE_NAMES.get(language, language), canary=canary
    )
    blocks = []
    for c in sources:
        body = (c.item.body or "")[:max_source_chars].replace(boundary, "")
        blocks.append(f"[id: {c.item.id}]\ntitle: {c.item.title}\nprompt:\n{body}")
    data = "\n\n".join(blocks)
    facts = {
        "subject": u.subject, "style": u.style, "deliverable": u.deliverable, "mood": u.mood,
        "constraints": u.constraints, "text to render": u.quoted_text,
    }  # fmt: skip
    ask = f"Remix the source {remix_id} as asked." if remix_id else "Write a prompt for this brief."
    user = (
        f"{ask}\nBrief: {brief}\nUnderstood: {facts}\n\n"
        f"BEGIN SOURCES {boundary}\n{data}\nEND SOURCES {boundary}"
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": user}], system


_TRAILER = re.compile(r"^\s*SOURCES:\s*(.*)$", re.I | re.M)
_WHY = re.compile(r"^\s*WHY:\s*(.*)$", re.I | re.M | re.S)
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]*")


def parse_reply(text: str) -> tuple[str, list[str], str]:
    """(prompt body, cited ids, explanation) from an LLM reply in the SOURCES/WHY format."""
    m = _TRAILER.search(text)
    if not m:
        return text.strip(), [], ""
    body = text[: m.start()].strip()
    ids = [i.strip(" .[]") for i in _ID.findall(m.group(1))]
    why_m = _WHY.search(text, m.end())
    why = why_m.group(1).strip() if why_m else ""
    return body, [i for i in ids if i], why


def placeholders_of(template: str) -> tuple[str, list[Placeholder]]:
    """(rendered text, slots) of a template an LLM wrote: each slot's default is its value."""
    slots: dict[str, Placeholder] = {}
    for m in ARGUMENT.finditer(template):
        slots.setdefault(
            m.group(2),
            Placeholder(
                name=m.group(2), default=m.group(3), value=m.group(3), filled_from="default"
            ),
        )
    rendered = ARGUMENT.sub(lambda m: m.group(3), template)
    return rendered, list(slots.values())
