"""Search service: hybrid search, related items, index build/status, vectors for other engines."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import numpy as np

from twinengine.catalog import service as catalog
from twinengine.catalog.schemas import FacetCounts, ItemPublic, ValueCount
from twinengine.catalog.store import ItemFilter
from twinengine.context import AppContext
from twinengine.discovery.index.dense import top_rows
from twinengine.discovery.index.docs import docs_of
from twinengine.discovery.index.hybrid import Fusion, fuse
from twinengine.discovery.index.lifecycle import Snapshot, build_snapshot
from twinengine.discovery.index.schemas import IndexStatus, Mode, SearchHit, SearchResults
from twinengine.discovery.index.snippets import highlight
from twinengine.discovery.index.state import state_of
from twinengine.discovery.index.tokenize import is_cjk, tokenize
from twinengine.errors import BackendUnavailable, InvalidInput, NotFound

log = logging.getLogger(__name__)

MODES = ("lexical", "dense", "hybrid")
CANDIDATES = 100  # per side before fusion; also the dense result-set size
MAX_OFFSET = 1000
_SIMILAR_TERMS = 24
CJK_FUSION = Fusion("blend", 0.8)


def _snapshot(ctx: AppContext) -> Snapshot:
    snap = state_of(ctx).snapshot
    if snap is None:
        raise BackendUnavailable("search index not built: run `twinengine index build`")
    return snap


def search(
    ctx: AppContext,
    *,
    q: str,
    flt: ItemFilter | None = None,
    k: int = 10,
    offset: int = 0,
    mode: Mode = "hybrid",
    details: bool = True,
) -> SearchResults:
    """Rank items for ``q`` within ``flt``: a page of hits plus facet counts of the result set.

    ``details=False`` skips the facet counts and the snippets (empty), for callers that only
    use the ranking, such as the assistant's retrieval: they are ~40% of a query's CPU.
    """
    t0 = time.perf_counter()
    q = (q or "").strip()
    if not q:
        raise InvalidInput("q must not be empty")
    if len(q) > ctx.settings.max_query_chars:
        raise InvalidInput(f"q is longer than {ctx.settings.max_query_chars} characters")
    if mode not in MODES:
        raise InvalidInput(f"mode must be one of {', '.join(MODES)}")
    if not 1 <= k <= ctx.settings.max_page_size:
        raise InvalidInput(f"k must be between 1 and {ctx.settings.max_page_size}")
    if not 0 <= offset <= MAX_OFFSET:
        raise InvalidInput(f"offset must be between 0 and {MAX_OFFSET}")
    state = state_of(ctx)
    snap = _snapshot(ctx)
    if flt is not None and flt.q:  # the query is ours to rank, not a LIKE filter
        flt = ItemFilter(**{**flt.__dict__, "q": None})
    mask = snap.mask(flt)
    pool = max(CANDIDATES, offset + k)
    tokens = tokenize(q)
    corrected = snap.lexical.correct(tokens) if mode != "dense" else tokens
    expanded = snap.lexical.expand(corrected) if mode != "dense" else corrected
    ls = ds = None
    lex_rows = dense_rows = np.zeros(0, dtype=np.int64)
    if mode != "dense":
        ls = snap.lexical.scores(expanded)
        hit = ls > 0
        matched = hit if mask is None else hit & mask
        lex_rows = top_rows(ls, pool, matched)
    if mode != "lexical":
        qv = state.embedder().encode_query(q)
        ds = snap.dense.scores(qv)
        dense_rows = top_rows(ds, pool, mask)
    if mode == "lexical":
        ranked, fused_scores = lex_rows, ls[lex_rows]
        result_set = np.flatnonzero(matched)
    elif mode == "dense":
        ranked, fused_scores = dense_rows, ds[dense_rows]
        result_set = dense_rows
    else:
        fusion = Fusion.parse(ctx.settings.search_fusion)
        if is_cjk(q):
            # all-MiniLM-L6-v2 is English-only: CJK text embeds near noise, so let the
            # bigram matches lead and the dense side only fill in behind them.
            fusion = CJK_FUSION
        ranked, fused_scores = fuse(lex_rows, ls, dense_rows, ds, fusion)
        result_set = ranked
    page = ranked[offset : offset + k]
    items = docs_of(snap).get(ctx.db, [snap.ids[r] for r in page])
    query_terms = set(expanded) | set(tokens)
    hits = []
    for n, row in enumerate(page):
        item = items.get(snap.ids[row])
        if item is None:  # deleted a moment ago; the index catches up in the background
            continue
        hits.append(
            _hit(
                item, float(fused_scores[offset + n]), row, ls, ds, query_terms if details else None
            )
        )
    return SearchResults(
        q=q,
        mode=mode,
        total=len(result_set),
        offset=offset,
        k=k,
        hits=hits,
        facets=facet_counts(snap, result_set) if details else _no_facets(len(result_set)),
        corrected_q=" ".join(corrected) if corrected != tokens else None,
        took_ms=round((time.perf_counter() - t0) * 1000, 2),
    )


def _hit(
    item: ItemPublic,
    score: float,
    row: int,
    ls: np.ndarray | None,
    ds: np.ndarray | None,
    terms: set[str] | None,
) -> SearchHit:
    snippet, spans, title_spans = "", [], []
    if terms is not None:
        snippet, spans = highlight(item.description, item.body, terms)
        _, title_spans = highlight(item.title, "", terms, whole=True)
    return SearchHit(
        id=item.id,
        score=score,
        lexical_score=float(ls[row]) if ls is not None else None,
        dense_score=float(ds[row]) if ds is not None else None,
        item=item,
        snippet=snippet,
        highlights=spans,
        title_highlights=title_spans,
    )


def _no_facets(total: int) -> FacetCounts:
    return FacetCounts(total=total, topics=[], languages=[], collections=[], media=[])


def facet_counts(snap: Snapshot, rows: np.ndarray) -> FacetCounts:
    """Counts of topics, languages, collections and media over ``rows`` of the snapshot."""

    def vc(name: str) -> list[ValueCount]:
        return [ValueCount(value=v, count=n) for v, n in snap.facet(name).counts(rows)]

    return FacetCounts(
        total=len(rows),
        topics=vc("topics"),
        languages=vc("languages"),
        collections=vc("collection"),
        media=vc("media"),
    )


def similar(
    ctx: AppContext, *, item_id: str, k: int = 10, flt: ItemFilter | None = None
) -> list[SearchHit]:
    """Items most like ``item_id``: its vector's neighbours fused with a BM25 query of its words."""
    if not 1 <= k <= ctx.settings.max_page_size:
        raise InvalidInput(f"k must be between 1 and {ctx.settings.max_page_size}")
    snap = _snapshot(ctx)
    row = snap.row_of.get(item_id)
    if row is None:
        catalog.get_item(ctx.db, item_id=item_id)  # NotFound when it is not in the catalog
        raise NotFound(f"item {item_id!r} is not in the search index yet")
    mask = snap.mask(flt)
    mask = np.ones(len(snap), dtype=bool) if mask is None else mask.copy()
    mask[row] = False
    # Its most distinctive words (highest idf among its own tokens) make the lexical query.
    own = list(dict.fromkeys(snap.lexical.doc_tokens(row)))
    df = np.array([snap.lexical.df[snap.lexical.token_id[t]] for t in own]) if own else np.zeros(0)
    terms = [own[i] for i in np.argsort(df, kind="stable")[:_SIMILAR_TERMS]]
    ls = snap.lexical.scores(terms)
    ds = snap.dense.scores(snap.dense.matrix[row])
    lex_rows = top_rows(ls, CANDIDATES, mask & (ls > 0))
    dense_rows = top_rows(ds, CANDIDATES, mask)
    ranked, scores = fuse(lex_rows, ls, dense_rows, ds, Fusion.parse(ctx.settings.search_fusion))
    page = ranked[:k]
    items = docs_of(snap).get(ctx.db, [snap.ids[r] for r in page])
    return [
        SearchHit(
            id=snap.ids[r],
            score=float(scores[n]),
            lexical_score=float(ls[r]),
            dense_score=float(ds[r]),
            item=items[snap.ids[r]],
            snippet=(items[snap.ids[r]].description or "")[:200],
        )
        for n, r in enumerate(page)
        if snap.ids[r] in items
    ]


def item_vectors(ctx: AppContext) -> tuple[list[str], np.ndarray]:
    """(item ids, their unit-length embeddings as an (n, dim) float32 matrix), row-aligned."""
    snap = _snapshot(ctx)
    return list(snap.ids), snap.dense.matrix


def build_index(
    ctx: AppContext, *, progress: Callable[[int, int], None] | None = None
) -> IndexStatus:
    """Build the whole index from the catalog, persist it, and make it live."""
    state = state_of(ctx)
    total = catalog.count_items(ctx.db)
    snap = build_snapshot(
        ctx.db, state.embedder(), (lambda done: progress(done, total)) if progress else None
    )
    state.swap(snap)
    state.listen()
    if len(snap) > ctx.settings.search_ann_threshold:
        log.warning(
            "search index holds %d items, above search_ann_threshold=%d: exact dense search "
            "costs ~%.0f ms per query now; an ANN index (hnswlib/usearch) would be faster",
            len(snap),
            ctx.settings.search_ann_threshold,
            len(snap) * snap.dense.dim * 4 / 5e9 * 1000,
        )
    return index_status(ctx)


def ensure_index(
    ctx: AppContext, progress: Callable[[int, int], None] | None = None
) -> IndexStatus:
    """Load the persisted index, or build it when there is none."""
    state = state_of(ctx)
    if state.snapshot is None:
        return build_index(ctx, progress=progress)
    return index_status(ctx)


def index_status(ctx: AppContext) -> IndexStatus:
    """What the index holds right now."""
    state = state_of(ctx)
    snap = state.snapshot
    base = IndexStatus(
        built=snap is not None,
        path=str(state.root),
        catalog_items=catalog.count_items(ctx.db),
        pending_changes=state.pending,
    )
    if snap is None:
        return base
    return base.model_copy(
        update={
            "items": len(snap),
            "vocabulary": len(snap.lexical.vocab),
            "model": snap.model,
            "built_at": snap.built_at,
        }
    )
