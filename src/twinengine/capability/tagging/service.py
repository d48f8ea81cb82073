"""Auto-tagging service: train, evaluate and apply the local tagger, escalating to an LLM.

The cascade: the local model (``model.py``) scores every topic; topics far from the threshold
are decided locally, and an item with topics inside the uncertainty margin escalates to the
router's ``tagging`` route (when one is configured and the budget allows), prompted with the
candidate topics' definitions and the nearest labelled examples. The LLM decides only the
uncertain topics. Tags are stored with source ``model`` or ``llm``; items a human tagged are
left alone (a human link wins).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from twinengine.capability.tagging.features import Doc, doc_of, embed_heads
from twinengine.capability.tagging.model import TaggerModel
from twinengine.capability.tagging.schemas import (
    EvalReport,
    LlmTags,
    Scores,
    TagReport,
    TrainReport,
)
from twinengine.catalog import service as catalog
from twinengine.catalog.models import item_topics
from twinengine.context import AppContext
from twinengine.errors import BackendUnavailable, BudgetExceeded, InvalidInput, NotFound

log = logging.getLogger(__name__)

TASK = "tagging"
LLM_CONFIDENCE = 0.8
NEIGHBOURS = 3
CANDIDATES = 16


def model_dir(ctx: AppContext) -> Path:
    """Where the trained tagger lives."""
    return ctx.settings.home / "models" / "tagger"


def _cache_dir(ctx: AppContext) -> Path:
    return ctx.settings.home / "cache" / "tagger"


# --- inputs ----------------------------------------------------------------------------------
@dataclass
class Taxonomy:
    """The catalog's topics, in a fixed order."""

    ids: list[str]
    facets: list[str]
    names: list[str]
    definitions: list[str]
    keywords: list[list[str]]

    def index(self) -> dict[str, int]:
        """Topic id -> column."""
        return {t: j for j, t in enumerate(self.ids)}


def _taxonomy(ctx: AppContext) -> Taxonomy:
    topics = sorted(catalog.list_topics(ctx.db), key=lambda t: t.id)
    if not topics:
        raise InvalidInput("the catalog has no taxonomy: run `twinengine taxonomy load FILE`")
    return Taxonomy([t.id for t in topics], [t.facet for t in topics], [t.name for t in topics],
                    [t.definition for t in topics], [list(t.keywords) for t in topics])


def read_labels(path: Path) -> list[tuple[str, list[str]]]:
    """``(id, topics)`` pairs from a labels JSONL file."""
    path = Path(path)
    if not path.exists():
        raise NotFound(f"{path}: no such file")
    out = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            out.append((str(row["id"]), [str(t) for t in row.get("topics", [])]))
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidInput(f"{path}:{lineno}: not a {{\"id\", \"topics\"}} object") from exc
    if not out:
        raise InvalidInput(f"{path}: no labelled items")
    return out


def _docs(ctx: AppContext, ids: Sequence[str]) -> list[Doc]:
    docs: list[Doc] = []
    for start in range(0, len(ids), 500):
        docs.extend(doc_of(i) for i in catalog.get_items(ctx.db, ids=ids[start : start + 500]))
    return docs


def _labelled(ctx: AppContext, path: Path, tax: Taxonomy) -> tuple[list[Doc], np.ndarray, int]:
    labels = read_labels(path)
    docs = _docs(ctx, [i for i, _ in labels])
    by_id = dict(labels)
    col = tax.index()
    y = np.zeros((len(docs), len(tax.ids)), dtype=np.int8)
    for n, d in enumerate(docs):
        for t in by_id[d.id]:
            if t in col:
                y[n, col[t]] = 1
    return docs, y, len(labels) - len(docs)


def _embed(ctx: AppContext, docs: list[Doc]) -> np.ndarray:
    return embed_heads(ctx.settings, docs, _cache_dir(ctx))


def _topic_embeddings(ctx: AppContext, tax: Taxonomy) -> np.ndarray:
    from twinengine.embedding import load_embedder

    texts = [f"{n}: {d} Keywords: {', '.join(k)}"
             for n, d, k in zip(tax.names, tax.definitions, tax.keywords, strict=True)]
    return load_embedder(ctx.settings).encode(texts)


def _new_model(ctx: AppContext, tax: Taxonomy) -> TaggerModel:
    model = TaggerModel(topic_ids=tax.ids, facets=tax.facets, keywords=tax.keywords)
    model.topic_emb = _topic_embeddings(ctx, tax)
    return model


# --- train / load --------------------------------------------------------------------------
def train(ctx: AppContext, *, labels_path: Path) -> TrainReport:
    """Train the local tagger on a labels JSONL whose items are in the catalog; save it."""
    started = time.perf_counter()
    tax = _taxonomy(ctx)
    docs, y, missing = _labelled(ctx, labels_path, tax)
    if not docs:
        raise InvalidInput(f"{labels_path}: none of the labelled items is in the catalog")
    model = _new_model(ctx, tax)
    model.fit(docs, _embed(ctx, docs), y)
    model.info = {"labels": str(labels_path), "items": len(docs), "trained_at": time.time(),
                  "titles": [d.title for d in docs]}
    folder = model_dir(ctx)
    model.save(folder)
    ctx.extras.pop("tagger", None)
    return TrainReport(labelled=len(docs) + missing, used=len(docs), missing_items=missing,
                       topics=len(tax.ids), topics_with_examples=int((y.sum(0) > 0).sum()),
                       seconds=time.perf_counter() - started, path=str(folder))


class _Loaded:
    """The loaded model, reloaded when the files change."""

    def __init__(self, model: TaggerModel, stamp: float) -> None:
        self.model, self.stamp = model, stamp


def load_model(ctx: AppContext) -> TaggerModel:
    """The trained tagger (cached on the context)."""
    folder = model_dir(ctx)
    marker = folder / "model.json"
    if not marker.exists():
        raise NotFound("no trained tagger: run `twinengine tag train LABELS.jsonl`")
    stamp = marker.stat().st_mtime
    held = ctx.extras.get("tagger")
    if not isinstance(held, _Loaded) or held.stamp != stamp:
        held = _Loaded(TaggerModel.load(folder), stamp)
        ctx.extras["tagger"] = held
    return held.model


# --- scoring -----------------------------------------------------------------------------------
def score(pred: np.ndarray, true: np.ndarray, topic_ids: list[str], facets: list[str]) -> Scores:
    """Micro and macro F1, precision, recall, F1 per facet and per topic."""
    pred, true = pred.astype(bool), true.astype(bool)

    def f1(p: np.ndarray, t: np.ndarray) -> float:
        tp = (p & t).sum()
        denom = p.sum() + t.sum()
        return float(2 * tp / denom) if denom else 0.0

    per_topic = {
        t: f1(pred[:, j], true[:, j])
        for j, t in enumerate(topic_ids)
        if pred[:, j].any() or true[:, j].any()
    }
    per_facet = {}
    for facet in sorted(set(facets)):
        cols = [j for j, f in enumerate(facets) if f == facet]
        per_facet[facet] = f1(pred[:, cols], true[:, cols])
    tp = (pred & true).sum()
    return Scores(
        micro_f1=f1(pred, true),
        macro_f1=float(np.mean(list(per_topic.values()))) if per_topic else 0.0,
        precision=float(tp / pred.sum()) if pred.sum() else 0.0,
        recall=float(tp / true.sum()) if true.sum() else 0.0,
        per_facet=per_facet,
        per_topic=per_topic,
        mean_predicted=float(pred.sum(1).mean()) if len(pred) else 0.0,
        mean_true=float(true.sum(1).mean()) if len(true) else 0.0,
    )


# --- the cascade ---------------------------------------------------------------------------
@dataclass
class Decision:
    """Tags of one item: (topic id, confidence, source)."""

    links: list[tuple[str, float, str]]
    escalated: bool = False


def _llm_messages(doc: Doc, cands: list[int], tax: Taxonomy, neighbours: list[tuple[Doc, list[str]]]
                  ) -> list[dict[str, Any]]:
    topic_lines = "\n".join(
        f"- {tax.ids[j]} ({tax.facets[j]}): {tax.definitions[j]}" for j in cands
    )
    examples = "\n".join(
        f"- {d.title[:160]} -> {', '.join(ts)}" for d, ts in neighbours
    ) or "(none)"
    system = (
        "You tag image- and video-generation prompts with topics of a taxonomy. Tag only "
        "salient, intended features (usually 2-6 topics, never more than 8). The most specific "
        "deliverable wins; treat {argument} defaults as content; tag by meaning, not language."
    )
    user = (
        f"Candidate topics:\n{topic_lines}\n\nSimilar labelled prompts:\n{examples}\n\n"
        f"Prompt to tag:\nTitle: {doc.title}\nDescription: {doc.description[:600]}\n"
        f"Prompt: {doc.prompt[:2500]}\n\n"
        'Answer {"topics": [ids of the candidate topics that apply]}.'
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def cascade(
    ctx: AppContext,
    model: TaggerModel,
    docs: list[Doc],
    emb: np.ndarray,
    tax: Taxonomy,
    *,
    allow_llm: bool,
    run_id: str | None,
    neighbour_pool: tuple[list[Doc], np.ndarray, np.ndarray] | None = None,
) -> tuple[list[Decision], dict[str, Any]]:
    """Local decisions for every doc; uncertain ones escalate to the LLM while allowed."""
    from twinengine.capability.router import service as router

    proba = model.predict_proba(docs, emb)
    th = model.threshold
    margin = ctx.settings.tagger_escalate_margin
    local = model.decide(proba)
    stats: dict[str, Any] = {"escalated": 0, "llm_failed": 0, "budget_stopped": False,
                             "cost_usd": 0.0}
    decisions = [
        Decision([(model.topic_ids[j], float(proba[n, j]), "model")
                  for j in np.flatnonzero(local[n])])
        for n in range(len(docs))
    ]
    if not allow_llm or not router.is_configured(ctx, TASK):
        return decisions, stats
    uncertain = np.abs(proba - th) < margin
    # The least sure items first: those with the most topics near the line.
    order = [n for n in np.argsort(-uncertain.sum(1), kind="stable") if uncertain[n].any()]
    order = order[: ctx.settings.tagger_max_escalations]
    pool_docs, pool_emb, pool_y = neighbour_pool or _training_pool(model)
    col = {t: j for j, t in enumerate(model.topic_ids)}
    for n in order:
        unsure = set(np.flatnonzero(uncertain[n]).tolist())
        cands = [int(j) for j in np.argsort(-proba[n])[:CANDIDATES]]
        cands = sorted(set(cands) | unsure, key=lambda j: -proba[n, j])
        sims = pool_emb @ emb[n] if len(pool_emb) else np.zeros(0)
        near = [int(i) for i in np.argsort(-sims)[:NEIGHBOURS + 1] if pool_docs[i].id != docs[n].id]
        neighbours = [(pool_docs[i], [model.topic_ids[j] for j in np.flatnonzero(pool_y[i])])
                      for i in near[:NEIGHBOURS]]
        messages = _llm_messages(docs[n], cands, tax, neighbours)
        try:
            res = router.complete(ctx, task=TASK, messages=messages, schema=LlmTags,
                                  run_id=run_id, step=f"tag:{docs[n].id}")
        except BudgetExceeded:
            stats["budget_stopped"] = True
            break  # the rest keep their local tags
        except BackendUnavailable as exc:
            stats["llm_failed"] += 1
            log.warning("tagging %s: LLM unavailable, keeping local tags: %s", docs[n].id, exc)
            continue
        stats["escalated"] += 1
        stats["cost_usd"] += res.cost_usd
        picked = {col[t] for t in res.parsed.topics if t in col} & unsure
        keep = [(model.topic_ids[j], float(proba[n, j]), "model")
                for j in np.flatnonzero(proba[n] >= th + margin)]
        chosen = [(model.topic_ids[j], LLM_CONFIDENCE, "llm") for j in sorted(picked)]
        links = (keep + chosen)[:8] or decisions[n].links
        decisions[n] = Decision(links, escalated=True)
    return decisions, stats


def _training_pool(model: TaggerModel) -> tuple[list[Doc], np.ndarray, np.ndarray]:
    # Titles of the labelled examples are kept in model.info for the LLM prompt.
    titles = model.info.get("titles") or []
    assert model.train is not None and model.y is not None
    docs = [Doc(id=f"train-{i}", title=t, description="", body="") for i, t in enumerate(titles)]
    if len(docs) != len(model.y):
        return [], np.zeros((0, model.train.emb.shape[1])), np.zeros((0, len(model.topic_ids)))
    return docs, model.train.emb, model.y


# --- public entry points ---------------------------------------------------------------------
def _human_tagged(ctx: AppContext, ids: Sequence[str]) -> set[str]:
    from sqlalchemy import select

    out: set[str] = set()
    with ctx.db.read() as conn:
        for start in range(0, len(ids), 5000):
            chunk = list(ids[start : start + 5000])
            out.update(conn.execute(
                select(item_topics.c.item_id).where(
                    item_topics.c.source == "human", item_topics.c.item_id.in_(chunk)
                ).distinct()
            ).scalars())
    return out


_TAG_CHUNK = 1000  # items a batch: big enough for vectorised scoring, small for progress


def tag_items(
    ctx: AppContext,
    *,
    item_ids: list[str],
    allow_llm: bool = True,
    run_id: str | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> TagReport:
    """Tag catalog items (source ``model``/``llm``); items a human tagged are skipped."""
    started = time.perf_counter()
    model = load_model(ctx)
    tax = _taxonomy(ctx)
    if tax.ids != model.topic_ids:
        raise InvalidInput("the taxonomy changed since the tagger was trained: train it again")
    human = _human_tagged(ctx, item_ids)
    todo = [i for i in dict.fromkeys(item_ids) if i not in human]
    report = TagReport(items=len(item_ids), tagged=0, links=0, skipped_human=len(human))
    for start in range(0, len(todo), _TAG_CHUNK):
        docs = _docs(ctx, todo[start : start + _TAG_CHUNK])
        decisions, stats = cascade(ctx, model, docs, _embed(ctx, docs), tax,
                                   allow_llm=allow_llm and not report.budget_stopped,
                                   run_id=run_id)
        by_source: dict[str, list[tuple[str, str, float]]] = {"model": [], "llm": []}
        for d, dec in zip(docs, decisions, strict=True):
            for topic, conf, source in dec.links:
                by_source[source].append((d.id, topic, conf))
        ids = [d.id for d in docs]
        for source, links in by_source.items():
            catalog.set_item_topics(ctx.db, links=links, source=source, replace_for=ids)
        report.tagged += len(docs)
        report.model_links += len(by_source["model"])
        report.llm_links += len(by_source["llm"])
        report.escalated += stats["escalated"]
        report.llm_failed += stats["llm_failed"]
        report.budget_stopped = report.budget_stopped or stats["budget_stopped"]
        report.cost_usd += stats["cost_usd"]
        if on_progress:
            on_progress(len(docs))
    report.links = report.model_links + report.llm_links
    report.escalated_share = report.escalated / report.tagged if report.tagged else 0.0
    report.seconds = time.perf_counter() - started
    return report


def _matrix(decisions: list[Decision], col: dict[str, int], topics: int) -> np.ndarray:
    out = np.zeros((len(decisions), topics), dtype=bool)
    for n, dec in enumerate(decisions):
        for t, _, _ in dec.links:
            out[n, col[t]] = True
    return out


def evaluate(
    ctx: AppContext, *, labels_path: Path, allow_llm: bool = False, run_id: str | None = None
) -> EvalReport:
    """Score the trained tagger on labelled prompts (which it should not have been trained on)."""
    started = time.perf_counter()
    model = load_model(ctx)
    tax = _taxonomy(ctx)
    docs, y, _ = _labelled(ctx, labels_path, tax)
    if not docs:
        raise InvalidInput(f"{labels_path}: none of the labelled items is in the catalog")
    emb = _embed(ctx, docs)
    decisions, stats = cascade(ctx, model, docs, emb, tax, allow_llm=allow_llm, run_id=run_id)
    col = tax.index()
    pred = _matrix(decisions, col, len(tax.ids))
    local = model.decide(model.predict_proba(docs, emb))
    return EvalReport(
        items=len(docs),
        scores=score(pred, y, tax.ids, tax.facets),
        local_scores=score(local, y, tax.ids, tax.facets) if stats["escalated"] else None,
        escalated=stats["escalated"],
        escalated_share=stats["escalated"] / len(docs),
        cost_usd=stats["cost_usd"],
        seconds=time.perf_counter() - started,
    )


def cross_validate(
    ctx: AppContext,
    *,
    labels_path: Path,
    folds: int = 5,
    seed: int = 0,
    thresholds: Sequence[float] = (),
) -> tuple[EvalReport, dict[float, float]]:
    """K-fold cross-validation of the local tagger on one labels file.

    Returns the report at the model's threshold and micro-F1 at each extra threshold.
    """
    started = time.perf_counter()
    tax = _taxonomy(ctx)
    docs, y, _ = _labelled(ctx, labels_path, tax)
    if len(docs) < 2 * folds:
        raise InvalidInput(f"need at least {2 * folds} labelled catalog items for {folds} folds")
    emb = _embed(ctx, docs)
    base = _new_model(ctx, tax)
    proba = np.zeros(y.shape)
    order = np.random.default_rng(seed).permutation(len(docs))
    for f in range(folds):
        te = order[f::folds]
        tr = np.setdiff1d(order, te)
        m = TaggerModel(topic_ids=tax.ids, facets=tax.facets, keywords=tax.keywords)
        m.topic_emb = base.topic_emb
        m.fit([docs[i] for i in tr], emb[tr], y[tr], seed=seed)
        proba[te] = m.predict_proba([docs[i] for i in te], emb[te])
    pred = base.decide(proba)
    sweep = {float(t): score(base.decide(proba, t), y, tax.ids, tax.facets).micro_f1
             for t in thresholds}
    return EvalReport(items=len(docs), scores=score(pred, y, tax.ids, tax.facets), folds=folds,
                      seconds=time.perf_counter() - started), sweep


def untagged(ctx: AppContext, ids: Sequence[str]) -> list[str]:
    """The ids among ``ids`` that have no topic link from any source."""
    from sqlalchemy import select

    tagged: set[str] = set()
    with ctx.db.read() as conn:
        tagged.update(conn.execute(select(item_topics.c.item_id).distinct()).scalars())
    return [i for i in ids if i not in tagged]


def predict_text_topics(ctx: AppContext, *, text: str) -> list[tuple[str, float]]:
    """Topics the local tagger gives a free text (e.g. a brief), best first; [] if untrained."""
    from twinengine.capability.tagging.features import HEAD_CHARS
    from twinengine.embedding import load_embedder

    try:
        model = load_model(ctx)
    except NotFound:
        return []
    doc = Doc(id="text", title=text[:200], description=text, body=text)
    emb = load_embedder(ctx.settings).encode_query(doc.head[:HEAD_CHARS])[None, :]
    proba = model.predict_proba([doc], emb)[0]
    keep = np.flatnonzero(model.decide(proba[None, :])[0])
    return sorted(((model.topic_ids[j], float(proba[j])) for j in keep), key=lambda tp: -tp[1])
