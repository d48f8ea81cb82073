"""Retrieve source prompts: hybrid search, topic filters and boosts, related alternatives.

The search engine's hybrid index (BM25 + embeddings) ranks the catalog for the brief's query;
a second search restricted to the brief's main topic pulls in prompts tagged with it, and
topic overlap and the visitor's language re-rank the union. Without a built index (a fresh
install) it falls back to the catalog's word filter so the assistant still answers.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

from twinengine.capability.assistant.guard import injected_segments
from twinengine.capability.assistant.schemas import Understanding
from twinengine.catalog import service as catalog
from twinengine.catalog.schemas import ItemPublic
from twinengine.context import AppContext
from twinengine.errors import AppError, BackendUnavailable, InvalidInput, NotFound

log = logging.getLogger(__name__)

POOL = 24  # candidates read from search before re-ranking
# Only some items carry topic links (human labels, the tagger's output): keep the boost small
# so that labelled items do not crowd out better text matches.
TOPIC_BOOST = 0.02  # per understood topic the item carries, times its facet weight
TOPIC_BOOST_CAP = 0.06
FACET_WEIGHT = {"deliverable": 2.0, "style": 1.5, "video": 1.5, "subject": 1.0}
LANGUAGE_BOOST = 0.05
# Hybrid fusion ranks a prompt that shares the deliverable and the style with the brief above
# one about the brief's subject ("an autumn poster" over "a bakery poster"): a prompt whose
# title and text name the subject's words and the deliverable gains up to this much.
COVERAGE_BOOST = 0.15
SUBJECT_SHARE = 0.65  # of the coverage score; the rest is the deliverable's words
_WORD = re.compile(r"\w{3,}", re.UNICODE)
_LATIN = re.compile(r"[a-z][a-z0-9\-]{2,}")
_NOT_SUBJECT = frozenset(
    "the and with for from into onto over under about its their your our this that "
    "some very make create design image photo picture prompt style how what set doing step "
    "front side back view".split()
)


@dataclass
class Candidate:
    """A retrieved catalog prompt with its score and why it ranked."""

    item: ItemPublic
    score: float
    reasons: list[str] = field(default_factory=list)


@dataclass
class Retrieved:
    """What retrieval found: sources to compose from, alternatives, and what it left out."""

    sources: list[Candidate]
    alternatives: list[Candidate]
    flagged: dict[str, list[str]]  # item id -> injected segments (left out)
    backend: str
    warnings: list[str] = field(default_factory=list)


def _search(
    ctx: AppContext,
    q: str,
    *,
    topics: tuple[str, ...] = (),
    media: str | None = None,
    k: int = POOL,
) -> list[tuple[ItemPublic, float]]:
    from twinengine.discovery.index import service as index

    flt = catalog.make_filter(topics=topics, media=media)
    res = index.search(
        ctx, q=q[: ctx.settings.max_query_chars], flt=flt, k=k, mode="hybrid", details=False
    )
    return [(h.item, float(h.score)) for h in res.hits]


def _fallback_search(
    ctx: AppContext, q: str, *, media: str | None
) -> list[tuple[ItemPublic, float]]:
    """No index: items holding the query's words (catalog word filter), scored by where they hit."""
    words = [w for w in dict.fromkeys(_WORD.findall(q.lower()))][:6]
    pool: dict[str, ItemPublic] = {}
    for w in words:
        flt = catalog.make_filter(q=w, media=media)
        page = catalog.list_items(ctx.db, flt=flt, limit=300, with_count=False)
        for item in page.data:
            pool.setdefault(item.id, item)
    scored = []
    for item in pool.values():
        title, rest = item.title.lower(), f"{item.description} {item.body}".lower()
        # A word in the title says more about what the prompt is than one deep in its body.
        score = sum(2.0 * (w in title) + 1.0 * (w in rest) for w in words) / (3.0 * len(words))
        scored.append((item, score))
    return sorted(scored, key=lambda p: -p[1])[:POOL]


def _stem(word: str) -> str:
    """A crude English stem ("bakery's" -> "bakery", "waves" -> "wave") for substring checks."""
    word = word.removesuffix("'s").removesuffix("’s")
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def _terms(text: str) -> list[str]:
    return list(dict.fromkeys(_stem(w) for w in _LATIN.findall(text.lower())))


def coverage_terms(u: Understanding) -> tuple[list[str], list[str]]:
    """(subject words, deliverable and style words): English words a source should name."""
    # The style counts with the deliverable: "3D isometric room" names the artefact as well.
    deliverable = _terms(" ".join([*u.deliverable, *u.style]))
    look = set(_terms(" ".join(u.mood))) | set(deliverable) | _NOT_SUBJECT
    # The query holds the English reading of the subject (glosses for other languages).
    subject = [w for w in _terms(u.query) if w not in look]
    return subject[:8], deliverable[:6]


def coverage(item: ItemPublic, subject: list[str], deliverable: list[str]) -> float:
    """0..1: how much of the brief's subject and deliverable the prompt names (title most)."""
    title = item.title.lower()
    rest = f"{item.description} {item.body[:3000]}".lower()

    def share(words: list[str]) -> float:
        if not words:
            return 0.0
        hit = 0.0
        for w in words:
            hit += 1.0 if _starts_word(title, w) else 0.5 if _starts_word(rest, w) else 0.0
        return hit / len(words)

    if not deliverable:
        return share(subject)
    if not subject:
        return share(deliverable)
    return SUBJECT_SHARE * share(subject) + (1 - SUBJECT_SHARE) * share(deliverable)


def _starts_word(text: str, w: str) -> bool:
    """Whether ``w`` occurs in ``text`` not preceded by a letter (``(?<![a-z])w``, by
    ``str.find``: the regex took ~10 us a prompt, run ~300 times an answer)."""
    at = text.find(w)
    while at >= 0:
        if at == 0 or not "a" <= text[at - 1] <= "z":
            return True
        at = text.find(w, at + 1)
    return False


def _text(item: ItemPublic) -> str:
    return f"{item.title}. {item.description}\n{item.body}"


def retrieve(
    ctx: AppContext,
    u: Understanding,
    *,
    k: int = 3,
    k_alternatives: int = 6,
    remix: ItemPublic | None = None,
) -> Retrieved:
    """Top ``k`` sources for the brief (the remixed prompt first), plus alternatives."""
    warnings: list[str] = []
    backend = "hybrid"
    keyword_topics = [t for t in u.topics if t.via in ("keyword", "model")]
    main_topic = next((t.id for t in keyword_topics if t.facet in ("deliverable", "style")), None)
    query = u.query or (remix.title if remix else "")
    ranked: dict[str, Candidate] = {}
    try:
        base = _search(ctx, query, media=u.media) if query else []
        extra = _search(ctx, query, topics=(main_topic,), media=u.media, k=12) if main_topic else []
        if u.native_query and u.native_query != query:
            extra += _search(ctx, u.native_query, media=u.media, k=12)
    except BackendUnavailable:
        backend = "catalog-words"
        warnings.append(
            "search index not built: ranked by word matches (run `twinengine index build`)"
        )
        base, extra = _fallback_search(ctx, query, media=u.media), []
    except InvalidInput:
        base, extra = [], []
    for item, score in base:
        ranked.setdefault(item.id, Candidate(item=item, score=score, reasons=["search"]))
    # Fusion normalises scores within each result set, so the topic-filtered (and the
    # as-written) search's top hit scores 1.0 whatever it is: its hits join at half score.
    for item, score in extra:
        if item.id not in ranked:
            ranked[item.id] = Candidate(item=item, score=score * 0.5, reasons=["topic search"])
    facet_of = {t.id: t.facet for t in u.topics}
    subject_words, deliverable_words = coverage_terms(u)
    for cand in ranked.values():
        cover = coverage(cand.item, subject_words, deliverable_words)
        if cover:
            cand.score += COVERAGE_BOOST * cover
            cand.reasons.append(f"coverage:{cover:.2f}")
        carried = {link.topic_id for link in cand.item.topics}
        boost = 0.0
        for tid in carried & set(facet_of):
            boost += TOPIC_BOOST * FACET_WEIGHT.get(facet_of[tid], 0.5)
            cand.reasons.append(f"topic:{tid}")
        cand.score += min(boost, TOPIC_BOOST_CAP)
        if u.language != "en" and u.language in cand.item.languages:
            cand.score += LANGUAGE_BOOST
            cand.reasons.append(f"language:{u.language}")
    ordered = sorted(ranked.values(), key=lambda c: -c.score)
    if remix is not None:
        ordered = [Candidate(item=remix, score=1.0, reasons=["remix"])] + [
            c for c in ordered if c.item.id != remix.id
        ]
    flagged: dict[str, list[str]] = {}
    clean: list[Candidate] = []
    for cand in ordered:
        # Only as many as the answer uses are scanned: the injection scan is the costliest
        # step of an answer without an LLM (~0.3 ms a long prompt, ~35 candidates a brief).
        if len(clean) >= k + k_alternatives:
            break
        segments = injected_segments(_text(cand.item))
        if segments:
            flagged[cand.item.id] = segments
            continue
        clean.append(cand)
    if flagged:
        warnings.append(
            f"{len(flagged)} catalog prompt(s) held instructions to the model and were left out"
        )
    sources = clean[:k]
    alternatives = clean[k : k + k_alternatives]
    if sources and backend == "hybrid" and len(alternatives) < k_alternatives:
        alternatives += _similar(
            ctx,
            sources[0].item.id,
            {c.item.id for c in clean[: k + len(alternatives)]},
            k_alternatives - len(alternatives),
            flagged,
        )
    return Retrieved(
        sources=sources,
        alternatives=alternatives,
        flagged=flagged,
        backend=backend,
        warnings=warnings,
    )


def _similar(
    ctx: AppContext, item_id: str, seen: set[str], n: int, flagged: dict[str, list[str]]
) -> list[Candidate]:
    from twinengine.discovery.index import service as index

    try:
        hits = index.similar(ctx, item_id=item_id, k=min(ctx.settings.max_page_size, n + len(seen)))
    except (NotFound, AppError) as exc:
        log.debug("similar(%s) unavailable: %s", item_id, exc)
        return []
    out = []
    for h in hits:
        if h.id in seen or h.id in flagged or injected_segments(_text(h.item)):
            continue
        out.append(Candidate(item=h.item, score=float(h.score), reasons=["similar"]))
        if len(out) >= n:
            break
    return out
