"""Experiment dashboard pages: the list, and one page per experiment.

The plots are SVG drawn here on the server (no script needed, nothing inline for the CSP to
refuse); the page calls the same ``service.report`` as ``GET /v1/experiments/{id}/report``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse

from twinengine.discovery.experiments import service
from twinengine.discovery.experiments.schemas import Report
from twinengine.web.views import register_page, templates

router = APIRouter(include_in_schema=False)

PLOT_W, PLOT_H, PAD_L, PAD_R, PAD_T, PAD_B = 900, 280, 60, 44, 14, 34
BAR_W, BAR_H = 160, 22


@router.get("/experiments", response_class=HTMLResponse)
def experiments_page(request: Request) -> HTMLResponse:
    """Every experiment with its status and recorded decision."""
    ctx = request.app.state.context
    page = service.list_experiments(ctx)
    return templates.TemplateResponse(request, "experiments.html", {"page": page})


@router.get("/experiments/{exp_id}", response_class=HTMLResponse)
def experiment_page(
    request: Request, exp_id: Annotated[str, Path(min_length=1, max_length=64)]
) -> HTMLResponse:
    """One experiment: decision, SRM, metric table with intervals, lift over time."""
    ctx = request.app.state.context
    exp = service.get(ctx, exp_id=exp_id)
    rep: Report | None = None
    if exp.started_at is not None:
        rep = service.report(ctx, exp_id=exp_id)
    return templates.TemplateResponse(
        request,
        "experiments_detail.html",
        {
            "exp": exp,
            "rep": rep,
            "rows": _metric_rows(rep) if rep else [],
            "plot": lift_plot(rep.timeline) if rep and rep.timeline else None,
            "interleaved": rep is not None and rep.interleaving is not None,
        },
    )


def _fmt(value: float | None, percent: bool) -> str:
    if value is None:
        return "–"
    return f"{value * 100:.2f}%" if percent else f"{value:.3f}"


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{x * 100:+.2f}%"


def _metric_rows(rep: Report) -> list[dict[str, Any]]:
    """Table rows: one per metric x treatment, with a shared-scale interval bar."""
    treats = [(m, t) for m in rep.metrics for t in m["treatments"]]
    bound = max(
        [abs(x) for _, t in treats for x in (t["ci"] or []) if x is not None] + [0.01]
    )
    rows = []
    for m, t in treats:
        lo, hi = t["ci"]
        rows.append(
            {
                "metric": m["label"],
                "role": m["role"],
                "variant": t["variant"],
                "control": _fmt(m["control"]["value"], m["percent"]),
                "value": _fmt(t["value"], m["percent"]),
                "n": f'{m["control"]["n"]:,} / {t["n"]:,}',
                "lift": _pct(t["lift"]),
                "ci": f"{_pct(lo)} … {_pct(hi)}",
                "p": "–" if t["p_adjusted"] is None else f'{t["p_adjusted"]:.3g}',
                "ctw": "–" if t["chance_to_win"] is None else f'{t["chance_to_win"]:.1%}',
                "significant": t["significant"],
                "direction": "up" if (t["lift"] or 0) > 0 else "down",
                "error": _explain(t["error"]) if t["error"] else None,
                "bar": _ci_bar(t["lift"], lo, hi, bound) if t["error"] is None else None,
            }
        )
    return rows


def _explain(code: str) -> str:
    """gbstats' error codes in words."""
    if "ZERO" in code or "NO_UNITS" in code:
        return "not enough data yet"
    return code.replace("_", " ").lower()


def _ci_bar(lift: float | None, lo: float | None, hi: float | None, bound: float) -> dict:
    """Pixel positions of an interval on a symmetric scale [-bound, +bound]."""

    def x(v: float | None) -> float:
        v = 0.0 if v is None else max(-bound, min(bound, v))
        return round(BAR_W / 2 + v / bound * (BAR_W / 2 - 6), 1)

    cls = "pos" if lo is not None and lo > 0 else "neg" if hi is not None and hi < 0 else "flat"
    return {"w": BAR_W, "h": BAR_H, "zero": x(0), "lo": x(lo), "hi": x(hi), "mid": x(lift),
            "cls": cls}


def lift_plot(timeline: list[dict[str, Any]]) -> dict[str, Any]:
    """Cumulative lift (and its interval) against time, as SVG coordinates."""
    series: dict[str, list[dict[str, Any]]] = {}
    for p in timeline:
        series.setdefault(p["variant"], []).append(p)
    values = [p["lift"] for p in timeline if p["lift"] is not None]
    for p in timeline:
        if p.get("ci"):
            values += [v for v in p["ci"] if v is not None]
    top = max([abs(v) for v in values] + [0.01]) * 1.1
    n = max(len(s) for s in series.values())
    inner_w, inner_h = PLOT_W - PAD_L - PAD_R, PLOT_H - PAD_T - PAD_B

    def x(i: int) -> float:
        return round(PAD_L + (i / max(1, n - 1)) * inner_w, 1)

    def y(v: float) -> float:
        return round(PAD_T + (top - v) / (2 * top) * inner_h, 1)

    lines = []
    for k, (variant, pts) in enumerate(series.items()):
        line = " ".join(f"{x(i)},{y(p['lift'] or 0)}" for i, p in enumerate(pts))
        band = None
        if all(p.get("ci") and None not in p["ci"] for p in pts):
            upper = [f"{x(i)},{y(p['ci'][1])}" for i, p in enumerate(pts)]
            lower = [f"{x(i)},{y(p['ci'][0])}" for i, p in reversed(list(enumerate(pts)))]
            band = " ".join(upper + lower)
        dots = [{"x": x(i), "y": y(p["lift"] or 0)} for i, p in enumerate(pts)]
        lines.append({"variant": variant, "line": line, "band": band, "dots": dots,
                      "cls": f"s{k % 4}"})
    first = next(iter(series.values()))
    xticks = [
        {"x": x(i), "label": p["t"][5:10], "users": p["users"]}
        for i, p in enumerate(first)
        if n <= 8 or i % max(1, n // 6) == 0 or i == n - 1
    ]
    yticks = [{"y": y(v), "label": f"{v * 100:+.1f}%"} for v in (top, top / 2, 0, -top / 2, -top)]
    return {"w": PLOT_W, "h": PLOT_H, "left": PAD_L, "right": PLOT_W - PAD_R,
            "top": PAD_T, "bottom": PLOT_H - PAD_B, "zero": y(0), "lines": lines,
            "xticks": xticks, "yticks": yticks}


register_page(router, nav=("/experiments", "Experiments"))
