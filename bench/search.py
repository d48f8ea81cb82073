"""Search benchmark: BEIR quality (lexical / dense / hybrid vs bm25s) and catalog latency.

    python bench/search.py [--beir ../shared/eval/scifact] [--skip-catalog] [--skip-http]

Quality: nDCG@10 and Recall@100 on the BEIR folder's test split, with stock bm25s (its own
tokenizer, English stopwords, PyStemmer, default Lucene BM25) run in the same process as the
named baseline. Hybrid fusion is chosen on the *train* split only (when qrels/train.tsv exists)
and then applied once to test. Latency: the bundled 11k catalog, one query at a time in-process
(query embedding included), then over HTTP with an open-loop load generator on 127.0.0.1.
Writes bench/results/search.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from twinengine.config import Settings  # noqa: E402
from twinengine.discovery.index.dense import DenseIndex, doc_text, top_rows  # noqa: E402
from twinengine.discovery.index.hybrid import Fusion, fuse  # noqa: E402
from twinengine.discovery.index.lexical import LexicalIndex  # noqa: E402
from twinengine.discovery.index.tokenize import tokenize  # noqa: E402
from twinengine.embedding import load_embedder  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "search.json"
CANDIDATES = 100  # per side, before fusion
TITLE_WEIGHT = 3  # as the product weights titles (FIELD_WEIGHTS); best of 1/2/3 on SciFact train


# --- BEIR ----------------------------------------------------------------------------------------
def read_beir(
    folder: Path,
) -> tuple[list[dict], dict[str, str], dict[str, dict[str, dict[str, int]]]]:
    """(corpus rows, query id -> text, split -> qrels)."""
    corpus = [json.loads(line) for line in (folder / "corpus.jsonl").open()]
    queries = {}
    for line in (folder / "queries.jsonl").open():
        row = json.loads(line)
        queries[row["_id"]] = row["text"]
    qrels: dict[str, dict[str, dict[str, int]]] = {}
    for split in ("train", "dev", "test"):
        file = folder / "qrels" / f"{split}.tsv"
        if not file.exists():
            continue
        rel: dict[str, dict[str, int]] = {}
        for n, line in enumerate(file.open()):
            parts = line.rstrip("\n").split("\t")
            if n == 0 and not parts[-1].lstrip("-").isdigit():
                continue
            rel.setdefault(parts[0], {})[parts[1]] = int(parts[2])
        qrels[split] = rel
    return corpus, queries, qrels


def ndcg_at(ranked: list[str], rel: dict[str, int], k: int = 10) -> float:
    """nDCG@k with graded gains (as pytrec_eval computes it for BEIR)."""
    dcg = sum(rel.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sorted((g for g in rel.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at(ranked: list[str], rel: dict[str, int], k: int = 100) -> float:
    """Share of relevant docs in the top k."""
    relevant = {d for d, g in rel.items() if g > 0}
    return len(relevant & set(ranked[:k])) / len(relevant) if relevant else 0.0


def evaluate(runs: dict[str, list[str]], qrels: dict[str, dict[str, int]]) -> dict[str, float]:
    """Mean nDCG@10 and Recall@100 over the judged queries."""
    qids = [q for q in qrels if q in runs]
    return {
        "ndcg10": float(np.mean([ndcg_at(runs[q], qrels[q]) for q in qids])),
        "recall100": float(np.mean([recall_at(runs[q], qrels[q]) for q in qids])),
        "queries": len(qids),
    }


def corpus_vectors(embedder, corpus: list[dict], folder: Path) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Document embeddings, cached on disk by (model, corpus sha256) to make reruns cheap."""
    digest = hashlib.sha256((folder / "corpus.jsonl").read_bytes()).hexdigest()[:16]
    cache_dir = Settings().home / "bench-cache"
    cache_dir.mkdir(parents=True, exist_ok=True)
    cache = cache_dir / f"{folder.name}-{embedder.name}-int8-{digest}.npy"
    if cache.exists():
        return np.load(cache, allow_pickle=False)
    texts = [doc_text(d.get("title", ""), "", d.get("text", "")) for d in corpus]
    t0 = time.perf_counter()
    vecs = embedder.encode(texts, batch_size=32, quantised=True)  # as the product index does
    print(f"  encoded {len(texts)} docs in {time.perf_counter() - t0:.0f}s", flush=True)
    np.save(cache, vecs)
    return vecs


def beir_quality(folder: Path) -> dict:
    """Every quality figure the issue asks for, on one BEIR folder."""
    import bm25s
    import Stemmer

    corpus, queries, qrels = read_beir(folder)
    doc_ids = [d["_id"] for d in corpus]
    test = qrels["test"]
    out: dict = {"dataset": folder.name, "docs": len(corpus)}
    print(f"{folder.name}: {len(corpus)} docs, {len(test)} test queries", flush=True)

    # Baseline: stock bm25s end to end.
    t0 = time.perf_counter()
    stemmer = Stemmer.Stemmer("english")
    texts = [f"{d.get('title', '')} {d.get('text', '')}" for d in corpus]
    base = bm25s.BM25()
    base.index(
        bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False),
        show_progress=False,
    )
    qids = list(test)
    qtok = bm25s.tokenize(
        [queries[q] for q in qids], stopwords="en", stemmer=stemmer, show_progress=False
    )
    res, _ = base.retrieve(qtok, k=100, show_progress=False)
    base_runs = {q: [doc_ids[i] for i in res[n]] for n, q in enumerate(qids)}
    out["bm25s_baseline"] = evaluate(base_runs, test)
    print(
        f"  bm25s baseline {out['bm25s_baseline']}  ({time.perf_counter() - t0:.1f}s)", flush=True
    )

    # Ours: lexical index (title weighted), dense, hybrid.
    lex = LexicalIndex.from_tokens(
        [tokenize(d.get("title", "")) * TITLE_WEIGHT + tokenize(d.get("text", "")) for d in corpus]
    )
    embedder = load_embedder(Settings())
    dense = DenseIndex(corpus_vectors(embedder, corpus, folder))

    def side_runs(split_qrels: dict, fast_query: bool) -> dict[str, tuple]:
        runs = {}
        ids = [q for q in split_qrels if q in queries]
        if fast_query:
            qvecs = np.stack([embedder.encode_query(queries[q], cache=False) for q in ids])
        else:
            qvecs = embedder.encode([queries[q] for q in ids], batch_size=64)
        for n, q in enumerate(ids):
            ls = lex.scores(tokenize(queries[q]))
            ds = dense.scores(qvecs[n])
            lr = top_rows(ls, CANDIDATES, ls > 0)
            dr = top_rows(ds, CANDIDATES)
            runs[q] = (ls, lr, ds, dr)
        return runs

    def to_ids(rows: np.ndarray) -> list[str]:
        return [doc_ids[r] for r in rows]

    t0 = time.perf_counter()
    test_runs = side_runs(test, fast_query=True)
    out["lexical"] = evaluate({q: to_ids(v[1]) for q, v in test_runs.items()}, test)
    out["dense"] = evaluate({q: to_ids(v[3]) for q, v in test_runs.items()}, test)
    print(
        f"  lexical {out['lexical']}\n  dense {out['dense']}  ({time.perf_counter() - t0:.0f}s)",
        flush=True,
    )

    grid = [f"rrf:{k}" for k in (5, 10, 20, 40, 60, 100)] + [
        f"blend:{w / 10:g}" for w in range(1, 10)
    ]
    tuning: dict[str, float] = {}
    if "train" in qrels:
        train_runs = side_runs(qrels["train"], fast_query=True)
        for spec in grid:
            fusion = Fusion.parse(spec)
            fused = {
                q: to_ids(fuse(v[1], v[0], v[3], v[2], fusion)[0]) for q, v in train_runs.items()
            }
            tuning[spec] = evaluate(fused, qrels["train"])["ndcg10"]
        chosen = max(tuning, key=lambda s: tuning[s])
    else:
        chosen = "rrf:60"
    out["fusion_tuning_train_ndcg10"] = tuning
    out["fusion"] = chosen
    fusion = Fusion.parse(chosen)
    out["hybrid"] = evaluate(
        {q: to_ids(fuse(v[1], v[0], v[3], v[2], fusion)[0]) for q, v in test_runs.items()}, test
    )
    print(f"  fusion chosen on train: {chosen}; hybrid test {out['hybrid']}", flush=True)
    return out


def main() -> None:
    """Run the benchmark and write bench/results/search.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--beir", type=Path, default=ROOT.parent / "shared" / "eval" / "scifact")
    parser.add_argument("--skip-beir", action="store_true")
    parser.add_argument("--skip-catalog", action="store_true")
    parser.add_argument("--skip-http", action="store_true")
    parser.add_argument("--http-seconds", type=float, default=30.0)
    parser.add_argument("--http-rps", type=float, default=200.0)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    result: dict = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    result["machine"] = f"{os.cpu_count()} cores (shared with other jobs while measured)"
    if not args.skip_beir:
        q = beir_quality(args.beir)
        result["beir"] = q
        result["ndcg10_lexical"] = q["lexical"]["ndcg10"]
        result["ndcg10_dense"] = q["dense"]["ndcg10"]
        result["ndcg10_hybrid"] = q["hybrid"]["ndcg10"]
        result["ndcg10_bm25s_baseline"] = q["bm25s_baseline"]["ndcg10"]
        result["recall100_lexical"] = q["lexical"]["recall100"]
        result["recall100_dense"] = q["dense"]["recall100"]
        result["recall100_hybrid"] = q["hybrid"]["recall100"]
        result["ratio_lexical_vs_bm25s"] = q["lexical"]["ndcg10"] / q["bm25s_baseline"]["ndcg10"]
        result["ratio_hybrid_vs_bm25s"] = q["hybrid"]["ndcg10"] / q["bm25s_baseline"]["ndcg10"]
    if not args.skip_catalog:
        from bench._search_catalog import catalog_latency

        result.update(
            catalog_latency(http=not args.skip_http, seconds=args.http_seconds, rps=args.http_rps)
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    # Merge with what another run (e.g. --skip-beir) wrote meanwhile; ours wins on overlap.
    latest = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    result = {**latest, **result}
    tmp = RESULTS.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    tmp.replace(RESULTS)
    print(json.dumps({k: v for k, v in result.items() if not isinstance(v, dict)}, indent=2))


if __name__ == "__main__":
    main()
