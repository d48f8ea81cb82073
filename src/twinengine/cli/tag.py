"""``twinengine tag train|eval|apply``: the auto-tagger."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from twinengine.capability.tagging import service
from twinengine.capability.tagging.schemas import EvalReport, Scores
from twinengine.catalog.store import CatalogStore
from twinengine.cli._common import console, context_of, handle_errors, progress_bar

app = typer.Typer(help="Auto-tagger: train, evaluate, apply.", no_args_is_help=True)


@app.command("train")
@handle_errors
def train(
    ctx: typer.Context,
    labels: Annotated[Path, typer.Argument(help='JSONL of {"id", "topics"} for catalog items')],
) -> None:
    """Train the local tagger on LABELS (the items must be in the catalog)."""
    r = service.train(context_of(ctx), labels_path=labels)
    console.print(
        f"trained on {r.used} labelled prompts ({r.missing_items} not in the catalog), "
        f"{r.topics_with_examples}/{r.topics} topics with examples, {r.seconds:.1f}s -> {r.path}"
    )


def _print_scores(title: str, s: Scores) -> None:
    console.print(
        f"[bold]{title}[/]: micro-F1 {s.micro_f1:.3f}  macro-F1 {s.macro_f1:.3f}  "
        f"precision {s.precision:.3f}  recall {s.recall:.3f}  "
        f"topics/prompt {s.mean_predicted:.2f} (true {s.mean_true:.2f})"
    )
    table = Table(title="F1 per facet")
    table.add_column("facet")
    table.add_column("F1", justify="right")
    for facet, f1 in s.per_facet.items():
        table.add_row(facet, f"{f1:.3f}")
    console.print(table)


def _print_report(r: EvalReport) -> None:
    _print_scores(f"{r.items} prompts" + (f", {r.folds}-fold CV" if r.folds else ""), r.scores)
    if r.local_scores is not None:
        _print_scores("local model alone", r.local_scores)
    console.print(
        f"escalated {r.escalated} ({r.escalated_share:.1%}), LLM cost ${r.cost_usd:.4f}, "
        f"{r.seconds:.1f}s"
    )


@app.command("eval")
@handle_errors
def evaluate(
    ctx: typer.Context,
    labels: Annotated[Path, typer.Argument(help="labelled prompts the model was NOT trained on")],
    llm: Annotated[bool, typer.Option("--llm/--no-llm", help="escalate uncertain items")] = True,
    cv: Annotated[int, typer.Option(help="instead: K-fold cross-validation on LABELS")] = 0,
) -> None:
    """Score the trained tagger on LABELS: micro/macro F1, F1 per facet, escalated share, cost."""
    context = context_of(ctx)
    if cv:
        report, sweep = service.cross_validate(
            context, labels_path=labels, folds=cv, thresholds=(0.3, 0.35, 0.4, 0.45, 0.5)
        )
        _print_report(report)
        console.print("micro-F1 by threshold: " + ", ".join(
            f"{t:.2f}: {f:.3f}" for t, f in sweep.items()))
        return
    _print_report(service.evaluate(context, labels_path=labels, allow_llm=llm))


@app.command("apply")
@handle_errors
def apply(
    ctx: typer.Context,
    ids: Annotated[
        list[str] | None, typer.Argument(help="item ids (default: untagged items)")
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="re-tag every item")] = False,
    llm: Annotated[bool, typer.Option("--llm/--no-llm", help="escalate uncertain items")] = True,
    run_id: Annotated[
        str | None, typer.Option("--run", help="run id for budget and ledger")
    ] = None,
) -> None:
    """Tag catalog items with the trained tagger (human-tagged items are left alone)."""
    context = context_of(ctx)
    if not ids:
        with context.db.read() as conn:
            every = CatalogStore(context.db).all_ids(conn)
        ids = every if all_ else service.untagged(context, every)
    with progress_bar() as bar:
        task = bar.add_task("tag", total=len(ids))
        r = service.tag_items(context, item_ids=ids, allow_llm=llm, run_id=run_id,
                              on_progress=lambda n: bar.advance(task, n))
    console.print(
        f"tagged {r.tagged} items ({r.skipped_human} human-tagged skipped): {r.model_links} model "
        f"+ {r.llm_links} LLM links; escalated {r.escalated} ({r.escalated_share:.1%}), "
        f"LLM failures {r.llm_failed}{', budget ran out' if r.budget_stopped else ''}, "
        f"cost ${r.cost_usd:.4f}, {r.seconds:.1f}s"
    )
