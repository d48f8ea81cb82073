"""Tagger features: cleaned text, structural and per-topic regex cues, keyword hints, TF-IDF.

Everything here is plain numpy/scipy and JSON-serialisable state, so the model is saved as
``.npz`` / ``.json`` and never pickled.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

ARG = re.compile(r'\{argument name="[^"]*" default="([^"]*)"\}')
PROMPT_CHARS = 6000
HEAD_CHARS = 600


@dataclass(frozen=True)
class Doc:
    """What the tagger reads of an item."""

    id: str
    title: str
    description: str
    body: str
    media: str = "image"
    languages: tuple[str, ...] = ()
    has_input_images: bool = False

    @property
    def head(self) -> str:
        """Title and description: short, English, written to summarise the prompt."""
        return f"{self.title} . {self.description}"

    @property
    def prompt(self) -> str:
        """The prompt with ``{argument}`` markup replaced by its default (the guidelines' rule)."""
        return ARG.sub(r"\1", self.body or "")[:PROMPT_CHARS]

    @property
    def full(self) -> str:
        """Head plus prompt, for word n-grams."""
        return f"{self.head} . {self.prompt}"

    def digest(self) -> str:
        """Content hash used to key cached embeddings."""
        return hashlib.sha256(self.head.encode()).hexdigest()[:24]


def doc_of(item: Any) -> Doc:
    """A ``Doc`` from an ``ItemPublic`` (or anything with the same attributes)."""
    attrs = getattr(item, "attributes", None) or {}
    return Doc(
        id=item.id,
        title=item.title or "",
        description=item.description or "",
        body=item.body or "",
        media=item.media or "image",
        languages=tuple(item.languages or ()),
        has_input_images=bool(attrs.get("input_image_urls")),
    )


# Structural cues named in the annotation guidelines (templates, JSON, negative sections...).
# They are features, not rules: the model learns how much each one counts.
GENERIC_RX: dict[str, str] = {
    "json": r"^\s*[\{\[]",
    "jsonkeys": r'"[\w ]+"\s*:',
    "yaml": r"^\s*[a-z_]+:\s",
    "slots": r"\[[A-Z][A-Z0-9 _/-]{2,}\]|<<[^>]+>>|\{\{[^}]+\}\}|insert (your|the)|placeholder",
    "ref": r"(reference|uploaded|attached|provided|input|this|my|original|source) "
    r"(image|photo|picture|portrait|selfie)",
    "face": r"(same|identical|exact|original|preserve|keep|retain|maintain)[^.\n]{0,40}"
    r"(face|facial|identity|likeness|features)",
    "camparam": r"\b\d{2,3} ?mm\b|f/ ?\d|\biso ?\d{2,}|1/\d{2,} ?s|shutter speed|aperture",
    "neg": r"negative prompt|\bavoid\b|\bdo not\b|\bdon't\b|\bno [a-z]+|\bwithout\b|must not",
    "negsec": r"negative( prompt)?\s*[:：]|\"negative",
    "quote": r"[\"“「『][^\"”」』\n]{2,60}[\"”」』]",
    "textw": r"\btext\b|headline|title|caption|typography|font|lettering|slogan|reads|written",
    "role": r"\byou are (an?|the)\b|\brole\b|\bstep \d|phase \d|^#+ |\brules?\b",
    "steps": r"^\s*(\d+[.)]|[-*•])\s",
    "skin": r"pores|skin texture|imperfection|unretouched|raw photo|peach fuzz|freckles",
    "research": r"search|look up|infer|automatically|you decide|research|analy[sz]e",
    "grid": r"\b\d ?[x×] ?\d\b|grid|collage|panels?|triptych|split[- ]screen|contact sheet",
    "consist": r"consistent|consistency|same (person|character|woman|man|girl|boy)|"
    r"across (all|every)",
    "transform": r"transform|convert|turn (this|the|it|me|him|her)|redraw|re-?imagine",
    "edit": r"\bedit\b|replace|remove|change the background|keep everything|retouch",
    "video": r"\bvideo\b|seconds|\d+s\b|shot \d|dolly|tracking shot",
    "selfie": r"\bselfie\b",
    "mirror": r"mirror",
    "woman": r"\b(woman|women|girl|lady|she|her|female)\b",
    "man": r"\b(man|men|boy|guy|he|his|male)\b",
    "names": r"\b[A-Z][a-z]+ [A-Z][a-z]+\b",
}
_CASE_SENSITIVE = {"names", "slots", "negsec"}

# Extra cues for topics of the bundled taxonomy, keyed by topic id; a taxonomy without these
# ids simply gets none (its keyword hints still apply).
TOPIC_RX: dict[str, str] = {
    "text-rendering": r"[\"“「『][^\"”」』\n]{2,60}[\"”」』]|\btext\b|headline|title|caption|"
    r"typograph|font|lettering|slogan|reads|written|label",
    "identity-preservation": r"(same|identical|exact|original|preserve|keep|retain|maintain|lock)"
    r"[^.\n]{0,40}(face|facial|identity|likeness|features)|face ?lock|identity",
    "camera-specs": r"\b\d{2,3} ?mm\b|f/ ?\d|\biso ?\d{2,}|1/\d{2,} ?s|shutter|aperture|\bcanon\b|"
    r"\bnikon\b|\bsony\b|\bleica\b|fujifilm|hasselblad|\blens\b|shot on",
    "negative-constraints": r"negative prompt|\bavoid\b|\bdo not\b|\bdon't\b|\bno [a-z]+|"
    r"\bwithout\b|must not|never ",
    "hyperreal-skin": r"pores|skin texture|imperfection|unretouched|raw photo|peach fuzz|freckles|"
    r"natural skin|realistic skin|not plastic|airbrush",
    "celebrity-likeness": r"celebrit|\bactor\b|actress|\bidol\b|singer|famous|lookalike|resembl|"
    r"k-pop|footballer|president",
    "fictional-character": r"cosplay|anime character|pok[eé]mon|marvel|disney|naruto|one piece|"
    r"ghibli|harry potter|batman|spider-?man|genshin|dragon ball|sailor moon|character from|"
    r"superhero|jujutsu|demon slayer|star wars|zelda|mario",
    "style-transfer": r"transform|convert|turn (this|the|it|me|him|her|my)|redraw|re-?imagine|"
    r"(style|version) of|real-life version|live-action",
    "image-editing": r"\bedit\b|replace|remove|change the (background|color|colour)|"
    r"keep everything|retouch|add (a|an|the) |modify",
    "reusable-template": r"\[[A-Z][A-Z0-9 _/-]{2,}\]|<<[^>]+>>|\{\{[^}]+\}\}|insert (your|the)|"
    r"placeholder|variables?:|template|customi[sz]able|fill in",
    "json-structured": r"^\s*[\{\[]|\"[\w ]+\"\s*:",
    "role-stepwise": r"\byou are (an?|the)\b|\brole\b|\bstep \d|phase \d|^#+ |\brules?\b|workflow",
    "auto-research": r"search|look up|infer|automatically|you decide|research|"
    r"based on (the|your) knowledge|analy[sz]e|determine",
    "grid-collage": r"\b\d ?[x×] ?\d\b|grid|collage|panels?|triptych|split[- ]screen|"
    r"contact sheet|photo strip",
    "consistent-character": r"consistent|consistency|"
    r"same (person|character|woman|man|girl|boy|face)|across (all|every)",
    "video-generation": r"\bvideo\b|seconds|camera (moves|pans)|dolly|tracking shot|"
    r"animation|animate",
    "selfie": r"selfie|front camera|arm'?s length",
    "mirror-selfie": r"mirror",
    "woman": r"\b(woman|women|girl|lady|she|her|female)\b",
    "man": r"\b(man|men|boy|guy|he|his|male)\b",
    "camera-angle": r"aerial|drone|bird'?s[- ]eye|top[- ]down|flat[- ]lay|low[- ]angle|"
    r"high[- ]angle|worm|fisheye|ultra[- ]wide|\bpov\b|first[- ]person|overhead",
    "studio-portrait": r"studio|backdrop|softbox|seamless|ring light|beauty dish",
    "couple": r"couple|boyfriend|girlfriend|husband|wife|lovers",
    "group-family": r"family|group|friends|three|crowd|team",
    "multi-image-composition": r"(two|2|both|multiple|three) (images|photos|pictures|references)|"
    r"image 1|image 2|first image|second image",
    "timed-shot-sequence": r"\d+\s*[-–]\s*\d+\s*s|\d+s\b|shot \d|\[\d+:\d+|0:0\d|second \d",
    "camera-movement": r"dolly|pan|tracking|orbit|push[- ]in|zoom|crane|handheld|"
    r"camera (moves|follows|rotates)",
    "dialogue-audio": r"says|dialogue|voice|speaks|sound|audio|music|narrat",
    "image-to-video": r"(this|the|uploaded|reference) (image|photo)|animate",
    "sketch-layout-reference": r"sketch|wireframe|pose reference|layout",
    "try-on-makeover": r"try[- ]on|outfit|hairstyle|makeup|wear(ing)? (this|the)",
    "restoration-colorization": r"restor|coloriz|colouris|upscale|repair|old photo",
    "fashion-outfits": r"outfit|fashion|wearing|dress|jacket|shirt|jeans|skirt|sneakers|jewel|"
    r"accessor|handbag|coat",
    "luxury-elegant": r"luxur|premium|high-end|opulent|elegan|upscale|glamo",
}

_GENERIC = {
    k: re.compile(v, re.M if k in _CASE_SENSITIVE else re.I | re.M) for k, v in GENERIC_RX.items()
}
_TOPIC = {k: re.compile(v, re.I | re.M) for k, v in TOPIC_RX.items()}


def _count(rx: re.Pattern[str], text: str, cap: int) -> float:
    return min(len(rx.findall(text)), cap) / cap


def item_features(docs: list[Doc]) -> np.ndarray:
    """Per-item structural cues (n, f) in [0, 1]."""
    out = np.zeros((len(docs), 7 + 2 * len(_GENERIC)), dtype=np.float32)
    for n, d in enumerate(docs):
        p, head = d.prompt, d.head
        row = [d.media == "video", "{argument" in d.body, d.has_input_images,
               min(len(p), 4000) / 4000, "ja" in d.languages, "zh" in d.languages,
               "ko" in d.languages]
        for rx in _GENERIC.values():
            row += [_count(rx, p, 5), _count(rx, head, 3)]
        out[n] = row
    return out


def keyword_patterns(keywords: list[list[str]]) -> list[re.Pattern[str] | None]:
    """One case-insensitive alternation per topic (None when a topic has no keywords)."""
    return [
        re.compile("|".join(re.escape(k.lower()) for k in kws)) if kws else None
        for kws in keywords
    ]


def topic_features(docs: list[Doc], topic_ids: list[str], keywords: list[list[str]]) -> np.ndarray:
    """Per (item, topic) cues: keyword hints in head and prompt, topic regex in prompt and head.

    Shape (n, 4, topics).
    """
    pats = keyword_patterns(keywords)
    rxs = [_TOPIC.get(t) for t in topic_ids]
    out = np.zeros((len(docs), 4, len(topic_ids)), dtype=np.float32)
    for n, d in enumerate(docs):
        head, prompt = d.head.lower(), d.prompt
        low = prompt.lower()
        for j, (kw, rx) in enumerate(zip(pats, rxs, strict=True)):
            if kw is not None:
                out[n, 0, j] = _count(kw, head, 3)
                out[n, 1, j] = _count(kw, low, 3)
            if rx is not None:
                out[n, 2, j] = _count(rx, prompt, 6)
                out[n, 3, j] = _count(rx, d.head, 3)
    return out


# --- TF-IDF with JSON-serialisable state ----------------------------------------------------
class Tfidf:
    """A TF-IDF vectoriser whose vocabulary and idf save to plain arrays."""

    def __init__(self, **params: Any) -> None:
        try:
            from sklearn.feature_extraction.text import TfidfVectorizer
        except ImportError as exc:
            from twinengine.errors import MissingDependency

            raise MissingDependency("scikit-learn", "tagging") from exc

        self.params = params
        self.vec = TfidfVectorizer(sublinear_tf=True, min_df=2, dtype=np.float32, **params)

    def fit_transform(self, texts: list[str]) -> sp.csr_matrix:
        """Learn vocabulary and idf; return the matrix."""
        return self.vec.fit_transform(texts).tocsr()

    def transform(self, texts: list[str]) -> sp.csr_matrix:
        """Vectorise with the learnt vocabulary."""
        return self.vec.transform(texts).tocsr()

    def state(self, prefix: str) -> dict[str, np.ndarray]:
        """Arrays for ``np.savez``."""
        vocab = sorted(self.vec.vocabulary_.items(), key=lambda kv: kv[1])
        return {
            f"{prefix}_terms": np.array([t for t, _ in vocab], dtype=str),
            f"{prefix}_idf": self.vec.idf_.astype(np.float32),
        }

    @classmethod
    def from_state(cls, params: dict[str, Any], arrays: Any, prefix: str) -> Tfidf:
        """Rebuild from ``state`` arrays."""
        obj = cls(**params)
        terms = [str(t) for t in arrays[f"{prefix}_terms"]]
        obj.vec.vocabulary_ = {t: i for i, t in enumerate(terms)}
        obj.vec.idf_ = np.asarray(arrays[f"{prefix}_idf"], dtype=np.float64)
        return obj


def tuple_params(params: dict[str, Any]) -> dict[str, Any]:
    """JSON turns tuples into lists; sklearn wants ``ngram_range`` as a tuple."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}


# --- embeddings cache ----------------------------------------------------------------------
def embed_heads(settings: Any, docs: list[Doc], cache_dir: Path) -> np.ndarray:
    """Sentence embeddings of each doc's head, cached on disk by content hash."""
    from twinengine.embedding import load_embedder

    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / "head_embeddings.npz"
    known: dict[str, np.ndarray] = {}
    if path.exists():
        with np.load(path, allow_pickle=False) as z:
            known = dict(zip((str(k) for k in z["keys"]), z["vecs"], strict=True))
    keys = [d.digest() for d in docs]
    missing = [n for n, k in enumerate(keys) if k not in known]
    if missing:
        embedder = load_embedder(settings)
        # ~600 characters is ~130 tokens: the whole catalog embeds in a few minutes on 2 cores
        # (the shared model's own max_seq_length is left alone: search uses it too).
        vecs = embedder.encode([docs[n].head[:HEAD_CHARS] for n in missing])
        for n, v in zip(missing, vecs, strict=True):
            known[keys[n]] = v
        all_keys = list(known)
        np.savez(path, keys=np.array(all_keys, dtype=str),
                 vecs=np.stack([known[k] for k in all_keys]).astype(np.float32))
    if not docs:
        return np.zeros((0, 384), dtype=np.float32)
    return np.stack([known[k] for k in keys]).astype(np.float32)
