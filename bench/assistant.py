"""Prompt assistant benchmark: latency without an LLM, and the sources it cites for 30 briefs.

Runs every brief of ``bench/assistant_briefs.jsonl`` through ``assistant.service.answer`` on the
full bundled catalog (deterministic composer: no LLM route configured), ``--repeat`` times after
one warm-up pass. The named baseline, run in the same process on the same queries, is the bare
hybrid search call the assistant makes (``discovery.index.service.search``), so the report
shows what understanding, guarding, composing and event logging add on top of retrieval.

Relevance: ``bench/assistant_judgments.json`` holds a person's judgement of each (brief, cited
prompt) pair, written by reading the prompt; the report gives the share judged relevant and
lists pairs not judged yet. Every cited id is also checked to exist in the catalog.

Usage: python bench/assistant.py [--home DIR] [--repeat N] [--dump FILE]
(the home must hold the demo catalog and a built search index: `twinengine demo --no-serve`).
Writes bench/results/assistant.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from twinengine.capability.assistant import service
from twinengine.catalog import service as catalog
from twinengine.config import Settings
from twinengine.context import open_context
from twinengine.discovery.index import service as index

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import git_commit  # noqa: E402

BRIEFS = ROOT / "bench" / "assistant_briefs.jsonl"
JUDGMENTS = ROOT / "bench" / "assistant_judgments.json"
RESULTS = ROOT / "bench" / "results" / "assistant.json"


def pct(values: list[float], q: float) -> float:
    """The q-th percentile in ms, rounded."""
    return round(float(np.percentile(np.array(values), q)), 2)


def main() -> None:
    """Run the benchmark and write the JSON report."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--home", default=os.environ.get("TWINENGINE_HOME", ".twinengine"))
    ap.add_argument("--database-url", default=os.environ.get("TWINENGINE_DATABASE_URL", ""))
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--out", default=str(RESULTS), help="where to write the JSON report")
    ap.add_argument(
        "--no-index",
        action="store_true",
        help="do not build the search index: the assistant falls back to catalog word matches",
    )
    ap.add_argument("--dump", help="write each brief's answer (prompt, sources) to this JSONL")
    args = ap.parse_args()
    # No LLM route: this measures the deterministic path the latency target is about.
    settings = Settings(
        home=Path(args.home),
        database_url=args.database_url,
        llm_base_url="",
        llm_routes="",
        llm_providers="",
    )
    ctx = open_context(settings)
    briefs = [json.loads(line) for line in BRIEFS.read_text(encoding="utf-8").splitlines() if line]
    judgments = json.loads(JUDGMENTS.read_text(encoding="utf-8")) if JUDGMENTS.exists() else {}
    if not args.no_index:
        index.ensure_index(ctx)

    first = {b["id"]: service.answer(ctx, brief=b["brief"]) for b in briefs}  # warm-up + answers
    lat: list[float] = []
    cpu: list[float] = []  # process CPU time: what an answer costs whatever else the box runs
    base: list[float] = []
    base_cpu: list[float] = []
    for _ in range(args.repeat):
        for b in briefs:
            t0, c0 = time.perf_counter(), time.process_time()
            ans = service.answer(ctx, brief=b["brief"])
            lat.append((time.perf_counter() - t0) * 1000)
            cpu.append((time.process_time() - c0) * 1000)
            if not args.no_index:
                t0, c0 = time.perf_counter(), time.process_time()
                index.search(ctx, q=ans.understanding.query, k=40, mode="hybrid")  # type: ignore[union-attr]
                base.append((time.perf_counter() - t0) * 1000)
                base_cpu.append((time.process_time() - c0) * 1000)

    rows = []
    judged = relevant = 0
    unjudged: list[str] = []
    missing: list[str] = []
    for b in briefs:
        ans = first[b["id"]]
        cited = ans.cited_ids  # type: ignore[union-attr]
        exists = {i.id for i in catalog.get_items(ctx.db, ids=cited)}
        missing += [i for i in cited if i not in exists]
        marks = {}
        for cid in cited:
            verdict = judgments.get(b["id"], {}).get(cid)
            if verdict is None:
                unjudged.append(f"{b['id']}:{cid}")
            else:
                judged += 1
                relevant += bool(verdict["relevant"])
                marks[cid] = verdict
        titles = {s.id: s.title for s in ans.sources}  # type: ignore[union-attr]
        rows.append({
            "id": b["id"], "brief": b["brief"], "language": ans.understanding.language,  # type: ignore[union-attr]
            "subject": ans.understanding.subject,  # type: ignore[union-attr]
            "topics": [t.id for t in ans.understanding.topics],  # type: ignore[union-attr]
            "query": ans.understanding.query,  # type: ignore[union-attr]
            "cited": [{"id": c, "title": titles.get(c), **marks.get(c, {})} for c in cited],
            "other_sources": [{"id": s.id, "title": s.title} for s in ans.sources if not s.cited],  # type: ignore[union-attr]
            "composer": ans.route.composer, "total_ms": ans.timings_ms["total"],  # type: ignore[union-attr]
        })  # fmt: skip
    if args.dump:
        with open(args.dump, "w", encoding="utf-8") as fh:
            for b in briefs:
                fh.write(json.dumps(first[b["id"]].model_dump(), ensure_ascii=False) + "\n")  # type: ignore[union-attr]
    commit = git_commit()
    result = {
        "dataset": f"bundled demo catalog ({catalog.count_items(ctx.db)} prompts), "
                   f"{len(briefs)} briefs in bench/assistant_briefs.jsonl",
        "commit": commit,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, shared with other jobs",
        "load_average": os.getloadavg(),
        "repeat": args.repeat,
        "assistant_ms": {"p50": pct(lat, 50), "p95": pct(lat, 95), "p99": pct(lat, 99),
                         "max": round(max(lat), 2), "n": len(lat)},
        "assistant_cpu_ms": {"p50": pct(cpu, 50), "p95": pct(cpu, 95), "n": len(cpu)},
        "retrieval": "catalog word matches (no index)" if args.no_index else "hybrid search",
        "baseline_search_ms": (
            {"p50": pct(base, 50), "p95": pct(base, 95), "n": len(base),
             "cpu_p50": pct(base_cpu, 50), "cpu_p95": pct(base_cpu, 95)} if base else None
        ),
        "ratio_p95_vs_search": (
            round(pct(lat, 95) / max(pct(base, 95), 1e-6), 2) if base else None
        ),
        "cited": sum(len(r["cited"]) for r in rows),
        "cited_missing_from_catalog": missing,
        "judged": judged,
        "judged_relevant": relevant,
        "share_relevant": round(relevant / judged, 3) if judged else None,
        "unjudged": unjudged,
        "briefs": rows,
    }  # fmt: skip
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(
        f"assistant p50 {result['assistant_ms']['p50']} ms, p95 {result['assistant_ms']['p95']} ms "
        f"(search alone p95 {pct(base, 95) if base else None} ms; ratio "
        f"{result['ratio_p95_vs_search']}x); load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"assistant CPU per answer p50 {result['assistant_cpu_ms']['p50']} ms, "
        f"p95 {result['assistant_cpu_ms']['p95']} ms "
        f"(search alone CPU p95 {pct(base_cpu, 95) if base_cpu else None} ms)"
    )
    print(
        f"cited {result['cited']}, missing from catalog {len(missing)}, judged {judged}, "
        f"relevant {relevant} ({result['share_relevant']}), unjudged {len(unjudged)}"
    )
    ctx.close()


if __name__ == "__main__":
    main()
