"""Understand a brief: language, subject, style, deliverable, constraints, taxonomy topics.

Everything here is rules over the taxonomy's own keywords plus a small glossary, so it runs
in well under a millisecond; embeddings (and the tagger's model, when it exposes one) only add
topics the keywords missed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from twinengine.capability.assistant._lexicon import GLOSSARY, STOPWORDS
from twinengine.capability.assistant.language import LANGUAGE_NAMES, detect_language
from twinengine.capability.assistant.schemas import TopicGuess, Understanding

# English spellings and words the taxonomy keywords lack, mapped onto its topic ids.
EXTRA_KEYWORDS: dict[str, tuple[str, ...]] = {
    "cozy-warm": ("cosy", "cozy", "warm"),
    "product-shot": ("product photo", "product shot", "product image", "product"),
    "studio-portrait": ("portrait",),
    "ad-creative": ("ad", "ads"),
    "cinematic-still": ("cinematic",),
    "thumbnail-banner": ("thumbnail", "banner"),
    "card-design": ("greeting card", "card"),
    "comic-manga": ("comic", "manga", "comics"),
    "merchandise": ("t-shirt", "t-shirt design", "mug"),
    "logo-branding": ("brand", "branding"),
    "food-drink": ("bread", "cake", "pastry", "pastries", "tea", "sushi", "pizza", "burger"),
    "cafe-restaurant-bar": ("cafe",),
    "animals-pets": ("cats", "dogs", "kitten", "bird", "birds", "rabbit"),
    "flowers-plants": ("flower", "tree", "trees"),
    "landscape-nature": ("mountain", "sea", "nature"),
    "ui-mockup": ("app", "ui design"),
    "sketch-lineart": ("line art", "sketch", "pencil"),
    "3d-render": ("3d",),
    "minimalist": ("minimalist", "minimal", "simple"),
    "space-scifi": ("space",),
    "night-scene": ("night",),
    "golden-hour-sunset": ("sunset",),
    "festivals-celebrations": ("festival", "birthday"),
    "video-generation": ("video", "videos", "animated"),
    "retro-nostalgic": ("vintage", "retro"),
    "chibi-kawaii": ("chibi",),
    "cute-playful": ("cute",),
    "horror-creepy": ("spooky",),
    "luxury-elegant": ("elegant", "luxury"),
    "dreamy-ethereal": ("dreamy",),
    "epic-dramatic": ("epic",),
    "ink-wash": ("ink wash",),
}  # fmt: skip
# Facets whose matched words describe the look (style), the artefact (deliverable), the mood.
STYLE_FACETS = ("style", "photo")
DELIVERABLE_FACETS = ("deliverable", "video")
MOOD_FACETS = ("mood",)

_TARGET_LANG = [
    (
        re.compile(
            r"\b(?:in|into|to)\s+(japanese|chinese|korean|spanish|french|german|portuguese|"
            r"italian|english|arabic)\b",
            re.I,
        ),
        None,
    ),
    (re.compile(r"日本語|にほんご|日语|日文|일본어|japonés|japonais|japanisch"), "ja"),
    (re.compile(r"中国語|中文|汉语|漢語|중국어|chino|chinois|chinesisch"), "zh"),
    (re.compile(r"韓国語|韩语|韓語|한국어|coreano|coréen|koreanisch"), "ko"),
    (re.compile(r"スペイン語|西班牙语|스페인어|en español|espagnol"), "es"),
    (re.compile(r"英語|英语|英文|영어|en inglés|en anglais|auf englisch"), "en"),
    (re.compile(r"フランス語|法语|프랑스어|en francés|en français"), "fr"),
]
_NAME_TO_CODE = {v.lower(): k for k, v in LANGUAGE_NAMES.items()}
_RATIOS = {"1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9", "9:21"}
_RATIO = re.compile(r"(?<!\d)(\d{1,2})\s*[:：]\s*(\d{1,2})(?!\d)")
_ORIENTATION = [
    (
        re.compile(r"\bsquare\b|正方形|정사각형|cuadrad[oa]|carré|quadratisch|quadrad[oa]", re.I),
        "1:1",
    ),
    (
        re.compile(
            r"\bvertical\b|\bportrait (?:format|orientation)\b|縦長|縦型|竖版|竖屏|세로|"
            r"\bhochformat\b|\bstory format\b",
            re.I,
        ),
        "9:16",
    ),
    (
        re.compile(
            r"\bhorizontal\b|\blandscape (?:format|orientation)\b|\bwidescreen\b|横長|横型|"
            r"横版|横屏|가로|\bquerformat\b|\bpaysage\b",
            re.I,
        ),
        "16:9",
    ),
]
_NO_TEXT = re.compile(
    r"\b(?:no|without|zero)\s+(?:any\s+)?(?:text|words|lettering|typography|letters)\b|"
    r"\btext[- ]free\b|sin texto|sans texte|ohne text|sem texto|文字なし|文字を入れない|文字無し|"
    r"无文字|不要文字|没有文字|텍스트 없이|글자 없이|글씨 없이",
    re.I,
)
_NEGATION = re.compile(
    r"\b(?:no|without|avoid|sin|sans|ohne|sem)\s+([^\W\d][\w\-' ]{1,40}?)"
    r"(?=\s*(?:[,.;!?]|$|\band\b|\by\b|\bet\b))",
    re.I,
)
_QUOTED = re.compile(
    r"[\"“”「『«]([^\"“”「」『』«»]{1,80})[\"“”」』»]|(?:(?<=\s)|^)'([^']{2,60})'(?=[\s,.;!?]|$)"
)
_NAMED = re.compile(
    r"\b(?:called|named|llamad[oa]|nommée?|namens|chamad[oa])\s+[\"'“「]([^\"'”」]{1,60})", re.I
)
_HIRES = re.compile(r"\b(?:4k|8k|high[- ]res(?:olution)?|ultra[- ]hd|hd)\b", re.I)
_COUNT = re.compile(
    r"\b(\d{1,2})\s+(panels|images|variations|slides|frames|stickers|icons|views)\b", re.I
)
_SECONDS = re.compile(
    r"(?<!\d)(\d{1,3})\s*(?:-\s*)?(?:s\b|sec\b|secs\b|seconds?\b|秒|초|segundos?\b)", re.I
)
_COLOURS = (
    "red orange yellow green blue purple violet pink gold golden silver black white teal "
    "turquoise beige brown navy burgundy cream lavender mint coral crimson emerald"
).split()
_COLOUR = re.compile(r"\b(" + "|".join(_COLOURS) + r")\b", re.I)
_REQUEST = re.compile(
    r"^\s*(?:please\s+)?(?:(?:can|could) you\s+)?(?:i\s+(?:want|need|would like)(?:\s+to\s+(?:make|"
    r"create|generate|have))?|make(?: me)?|create(?: me)?|generate(?: me)?|design(?: me)?|"
    r"draw(?: me)?|"
    r"give me|write(?: me)?|a prompt for|prompt for)\s+",
    re.I,
)
_REMIX_VERB = re.compile(
    r"^\s*(?:make|turn|change|render|redo|remix)\s+(?:this|it)(?:\s+prompt)?\s*", re.I
)
_CJK_FILLERS = re.compile(
    r"のための|のために|向けの|向け|っぽい|みたいな|的な|な感じ|を作って(?:ください)?|作って|ください|"
    r"を生成|して|一张|一个|一幅|帮我|给我|请|生成|设计|制作|画一|用于|为了|만들어\s*줘|만들어\s*주세요|"
    r"만들어|주세요|위한|그려\s*줘|を?描いて|で描く|風の|な感じ|感じ|风格|風格|느낌|스타일|"
    r"一瓶|一杯|一只|一位|一座"
)
_EDGE_PARTICLES = re.compile(r"^[のをにでがはと的与和及、,\s]+|[のをにでがはとな的与和及、,\s]+$")
# Korean particles come off only when a word of two syllables or more stays ("가을" keeps its 을).
_KO_PARTICLE = re.compile(
    r"(?<=[\uac00-\ud7af]{2})(?:으로|에서|로|을|를|이|가|의|에|와|과|은|는|도|풍)$"
)
# Material words ("marble table", "glass jar") name a look only together with sculpture words.
NOT_STYLE_WORDS = frozenset(
    {
        "marble",
        "glass",
        "bronze",
        "crystal",
        "canvas",
        "clay",
        "texture",
        "wash",
        "sprite",
        "relief",
        "ice sculpture",
        "statue",
    }
)
_LATIN_WORD = re.compile(r"[^\W_][\w'’\-]*", re.UNICODE)


def _is_cjk(text: str) -> bool:
    return any(
        0x3040 <= ord(c) <= 0x30FF or 0x4E00 <= ord(c) <= 0x9FFF or 0xAC00 <= ord(c) <= 0xD7AF
        for c in text
    )


@dataclass
class TopicIndex:
    """The taxonomy in the shapes ``understand`` needs (built once per context)."""

    topics: dict[str, dict[str, Any]]
    # (keyword lower-cased, topic id), longest first so "product photography" beats "product".
    keywords: list[tuple[str, str]]
    # (term, English, topic, is CJK), longest first: taxonomy keywords, then the glossary.
    candidates: list[tuple[str, str, str | None, bool]] = field(default_factory=list)
    latin_candidates: list[tuple[str, str, str | None, bool]] = field(default_factory=list)
    style_pattern: re.Pattern[str] | None = None
    vectors: np.ndarray | None = None
    vector_ids: list[str] = field(default_factory=list)

    @classmethod
    def build(cls, topics: list[dict[str, Any]]) -> TopicIndex:
        """Index topic rows (id, facet, name, definition, keywords)."""
        by_id = {t["id"]: t for t in topics}
        pairs: dict[str, str] = {}
        for t in topics:
            for kw in [t["name"], *(t.get("keywords") or [])]:
                kw = kw.strip().lower()
                # One- and two-letter keywords ("he", "SD", "AI") match far too much prose.
                if len(kw) >= 3 or _is_cjk(kw):
                    pairs.setdefault(kw, t["id"])
        for tid, kws in EXTRA_KEYWORDS.items():
            if tid in by_id:
                for kw in kws:
                    pairs.setdefault(kw, tid)
        ordered = sorted(pairs.items(), key=lambda p: -len(p[0]))
        kw_topic = dict(ordered)
        # CJK taxonomy keywords ("ポスター") retrieve better through their English gloss.
        tax = [
            (kw, GLOSSARY.get(kw, kw) if _is_cjk(kw) else kw, tid, _is_cjk(kw))
            for kw, tid in ordered
        ]
        gloss = [(w, en, kw_topic.get(en), _is_cjk(w)) for w, en in GLOSSARY.items()]
        both = sorted([*tax, *gloss], key=lambda c: -len(c[0]))
        english_only = sorted(tax, key=lambda c: -len(c[0]))
        style_words = [
            kw for kw, tid in ordered if by_id[tid]["facet"] == "style" and not _is_cjk(kw)
        ]
        style = (
            re.compile(
                r"(?<![\w-])(" + "|".join(re.escape(w) for w in style_words) + r")(?![\w-])", re.I
            )
            if style_words
            else None
        )
        return cls(
            topics=by_id,
            keywords=ordered,
            candidates=both,
            latin_candidates=english_only,
            style_pattern=style,
        )

    def style_words_in(self, text: str) -> list[str]:
        """The taxonomy's style words that ``text`` uses, as written there."""
        if self.style_pattern is None:
            return []
        return list(dict.fromkeys(m.group(1) for m in self.style_pattern.finditer(text)))


@dataclass
class _Hit:
    start: int
    end: int
    text: str  # as written in the brief
    english: str  # the English term (gloss or keyword)
    topic: str | None


def _find_terms(text: str, lang: str, index: TopicIndex) -> list[_Hit]:
    """Non-overlapping glossary and keyword matches, longest first."""
    low = text.lower()
    taken = [False] * len(low)
    hits: list[_Hit] = []

    def claim(start: int, end: int) -> bool:
        if any(taken[start:end]):
            return False
        for i in range(start, end):
            taken[i] = True
        return True

    def scan(term: str, cjk: bool) -> list[tuple[int, int]]:
        if cjk:
            if all(0xAC00 <= ord(c) <= 0xD7AF for c in term) and len(term) == 1:
                # A one-syllable Korean word must stand alone (with a particle at most).
                pat = (
                    rf"(?<![\uac00-\ud7af]){re.escape(term)}"
                    r"(?:을|를|이|가|의|에|은|는|도)?(?![\uac00-\ud7af])"
                )
                return [(m.start(), m.start() + len(term)) for m in re.finditer(pat, low)]
            return [(m.start(), m.end()) for m in re.finditer(re.escape(term), low)]
        return [
            (m.start(), m.end()) for m in re.finditer(rf"(?<![\w]){re.escape(term)}(?![\w])", low)
        ]

    use_glossary = lang != "en" or _is_cjk(text)
    candidates = index.candidates if use_glossary else index.latin_candidates
    for term, english, tid, cjk in candidates:
        if term not in low:
            continue
        for start, end in scan(term, cjk):
            if claim(start, end):
                hits.append(_Hit(start, end, text[start:end], english, tid))
    hits.sort(key=lambda h: h.start)
    return hits


def _target_language(text: str) -> str | None:
    for pattern, code in _TARGET_LANG:
        m = pattern.search(text)
        if m:
            return code or _NAME_TO_CODE.get(m.group(1).lower())
    return None


def _constraints(text: str) -> tuple[list[str], list[str], list[tuple[int, int]], str | None]:
    """(constraints, quoted texts, spans to drop from the subject, media)."""
    out: list[str] = []
    spans: list[tuple[int, int]] = []
    quoted = []
    for m in _QUOTED.finditer(text):
        quoted.append((m.group(1) or m.group(2)).strip())
        spans.append(m.span())
    for m in _RATIO.finditer(text):
        ratio = f"{int(m.group(1))}:{int(m.group(2))}"
        if ratio in _RATIOS:
            out.append(f"aspect ratio {ratio}")
            spans.append(m.span())
    if not any(c.startswith("aspect") for c in out):
        for pattern, ratio in _ORIENTATION:
            m = pattern.search(text)
            if m:
                out.append(f"aspect ratio {ratio}")
                spans.append(m.span())
                break
    m = _NO_TEXT.search(text)
    if m:
        out.append("no text in the image")
        spans.append(m.span())
    for m in _NEGATION.finditer(text):
        if _NO_TEXT.search(m.group(0)):
            continue
        out.append(f"no {m.group(1).strip()}")
        spans.append(m.span())
    for m in _HIRES.finditer(text):
        out.append("high resolution")
        spans.append(m.span())
        break
    for m in _COUNT.finditer(text):
        out.append(f"{m.group(1)} {m.group(2).lower()}")
        spans.append(m.span())
    colours = list(dict.fromkeys(c.lower() for c in _COLOUR.findall(text)))
    if colours:
        out.append("colour palette: " + ", ".join(colours))
    media = None
    seconds = _SECONDS.search(text)
    if seconds:
        out.append(f"{seconds.group(1)}-second video")
        spans.append(seconds.span())
        media = "video"
    return list(dict.fromkeys(out)), quoted, spans, media


def _strip_particles(piece: str) -> str:
    piece = _EDGE_PARTICLES.sub("", piece)
    # A glossary word keeps its last syllable: "고양이" (cat) is not "고양" + the particle 이.
    return piece if piece.lower() in GLOSSARY else _KO_PARTICLE.sub("", piece)


def _subject(text: str, lang: str, drop: list[tuple[int, int]]) -> str:
    """What is left of the brief once style, deliverable, mood and constraints are taken out."""
    chars = list(text)
    for start, end in drop:
        for i in range(start, min(end, len(chars))):
            chars[i] = " "
    rest = "".join(chars)
    if _is_cjk(rest) and lang in ("ja", "zh", "ko"):
        rest = _CJK_FILLERS.sub(" ", rest)
        pieces = [_strip_particles(p) for p in re.split(r"[\s,，。、!！?？:：;；]+", rest)]
        return " ".join(p for p in pieces if len(p) >= 1).strip()[:120]
    rest = _REMIX_VERB.sub(" ", _REQUEST.sub(" ", rest))
    stop = STOPWORDS.get(lang, STOPWORDS["en"]) | STOPWORDS["en"]
    # Clauses: keep the ones that still carry words after the fillers are trimmed off.
    clauses = []
    for clause in re.split(r"[,;.!?\n]+", rest):
        words = _LATIN_WORD.findall(clause)
        while words and words[0].lower().strip("'’") in stop:
            words.pop(0)
        while words and words[-1].lower() in stop:
            words.pop()
        if words:
            clauses.append(" ".join(words))
    return ", ".join(clauses)[:120]


def understand(
    text: str,
    index: TopicIndex,
    *,
    language: str | None = None,
    embed: Any = None,
    predict: Any = None,
) -> Understanding:
    """Read a brief (``embed(text) -> vector`` and ``predict(text) -> [(topic, p)]`` optional)."""
    detected, confidence = detect_language(text)
    lang = detected
    hits = _find_terms(text, lang, index)
    constraints, quoted, spans, media = _constraints(text)
    target = _target_language(text)
    style: list[str] = []
    deliverable: list[str] = []
    mood: list[str] = []
    drop = list(spans)
    if target:
        for pattern, _ in _TARGET_LANG:
            m = pattern.search(text)
            if m:
                drop.append(m.span())
                break
    scores: dict[str, tuple[float, str]] = {}
    for hit in hits:
        facet = index.topics[hit.topic]["facet"] if hit.topic in index.topics else None
        if hit.topic:
            scores.setdefault(hit.topic, (1.0, "keyword"))
        if hit.english in NOT_STYLE_WORDS:
            continue
        if facet in STYLE_FACETS:
            style.append(hit.english)
        elif facet in DELIVERABLE_FACETS:
            deliverable.append(hit.english)
        elif facet in MOOD_FACETS:
            mood.append(hit.english)
        else:
            continue
        drop.append((hit.start, hit.end))
        if facet == "video" and hit.topic == "video-generation":
            if any(
                index.topics.get(d.topic or "", {}).get("facet") == "deliverable"
                for d in hits
                if d.end <= hit.start
            ):
                # "a thumbnail for a video", "a poster for my video": the artefact is an image,
                # so the video filter (and topic) would retrieve only the wrong kind of prompt.
                deliverable.remove(hit.english)
                scores.pop(hit.topic, None)
            else:
                media = "video"
    subject = _subject(text, lang, drop)
    glosses = [h.english for h in hits if h.english.lower() != h.text.lower()]
    if lang != "en" and glosses:
        # Keep the visitor's words for the subject; the glosses serve retrieval.
        subject_en = " ".join(h.english for h in hits if not _covered(h, style, deliverable, mood))
    else:
        subject_en = subject
    if predict is not None:
        for tid, p in predict(text if lang == "en" else f"{text} {' '.join(glosses)}"):
            if tid in index.topics and tid not in scores and p >= 0.5:
                scores[tid] = (float(p), "model")
    english_view = text if lang == "en" else " ".join([*glosses, text])
    if embed is not None and index.vectors is not None and len(index.vector_ids):
        vec = embed(english_view)
        sims = index.vectors @ vec
        for row in np.argsort(-sims)[:3]:
            tid = index.vector_ids[int(row)]
            if sims[row] >= 0.45 and tid not in scores:
                scores[tid] = (float(sims[row]), "embedding")
    topics = [
        TopicGuess(
            id=tid,
            name=index.topics[tid]["name"],
            facet=index.topics[tid]["facet"],
            score=round(s, 3),
            via=via,
        )  # type: ignore[arg-type]
        for tid, (s, via) in sorted(scores.items(), key=lambda kv: -kv[1][0])
    ]
    query_parts = [subject_en, *deliverable, *style, *mood]
    query = " ".join(p for p in query_parts if p).strip() or english_view
    # Other languages: the glosses make the main (English) query, the brief as written is
    # searched separately, so its words cannot pull in any prompt in that language.
    native = text if lang != "en" else None
    return Understanding(
        language=language or lang,
        language_confidence=round(confidence, 3),
        subject=subject,
        style=list(dict.fromkeys(style)),
        deliverable=list(dict.fromkeys(deliverable)),
        mood=list(dict.fromkeys(mood)),
        constraints=constraints,
        quoted_text=quoted,
        names=[m.group(1).strip() for m in _NAMED.finditer(text)],
        media=media,
        target_language=target,
        topics=topics,
        query=" ".join(query.split())[:400],
        native_query=native,
    )


def _covered(hit: _Hit, *lists: list[str]) -> bool:
    return any(hit.english in lst for lst in lists)
