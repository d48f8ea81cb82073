"""Experiment analysis on per-user data, with GrowthBook's stats engine (``gbstats``).

gbstats does the statistics: ratio metrics by the delta method (``RatioStatistic``), CUPED
(``RegressionAdjustedStatistic`` with a pre-period covariate), fixed-horizon and sequential
(always-valid, Waudby-Smith et al.) t-tests, Bayesian chance-to-win, and the SRM chi-square
check. This module only turns per-user rows into gbstats' sufficient statistics, adds the
multiple-testing correction gbstats 0.8 lacks (Holm; Benjamini-Hochberg from SciPy), and
turns the numbers into a decision with its reason.

``units`` is one row per user: ``variant`` plus the columns the metrics name
(``impressions``, ``clicks``, ``conversions``, ``revenue``, their ``pre_*`` values from
before the experiment, and ``retained_d1`` / ``retained_d7`` as 0/1, NaN when not yet
observable).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from gbstats.bayesian.tests import EffectBayesianABTest, EffectBayesianConfig
from gbstats.frequentist.tests import (
    FrequentistConfig,
    SequentialConfig,
    SequentialTwoSidedTTest,
    TwoSidedTTest,
)
from gbstats.models.statistics import (
    ProportionStatistic,
    RatioStatistic,
    RegressionAdjustedStatistic,
    SampleMeanStatistic,
    TestStatistic,
)
from gbstats.utils import check_srm
from scipy.stats import false_discovery_control

MetricKind = Literal["ratio", "mean", "proportion"]


@dataclass(frozen=True)
class Metric:
    """A metric: how to build its statistic from per-user columns."""

    id: str
    label: str
    kind: MetricKind
    column: str
    denominator: str | None = None  # ratio metrics
    covariate: str | None = None  # pre-period column for CUPED (mean metrics)
    percent: bool = False  # show the value as a percentage


METRICS: dict[str, Metric] = {
    m.id: m
    for m in (
        Metric("ctr", "CTR (clicks / impressions)", "ratio", "clicks", "impressions", percent=True),
        Metric("cvr", "CVR (conversions / clicks)", "ratio", "conversions", "clicks", percent=True),
        Metric("clicks_per_user", "Clicks per user", "mean", "clicks", covariate="pre_clicks"),
        Metric(
            "conversions_per_user",
            "Conversions per user",
            "mean",
            "conversions",
            covariate="pre_conversions",
        ),
        Metric("revenue_per_user", "Revenue per user", "mean", "revenue", covariate="pre_revenue"),
        Metric("retention_d1", "D1 retention", "proportion", "retained_d1", percent=True),
        Metric("retention_d7", "D7 retention", "proportion", "retained_d7", percent=True),
    )
}

SRM_THRESHOLD = 0.001  # GrowthBook's default: below this the split is not the one configured


@dataclass
class AnalysisSettings:
    """How to analyse: engine, alpha, sequential testing, correction, CUPED, stopping rule."""

    engine: Literal["frequentist", "bayesian"] = "frequentist"
    alpha: float = 0.05
    sequential: bool = True
    # Sample size at which the sequential interval is tightest (gbstats' tuning parameter).
    sequential_tuning: float = 5000
    correction: Literal["holm", "bh", "none"] = "holm"
    cuped: bool = True
    min_users: int = 100  # per variant, before any decision
    target_users: int | None = None  # planned total; a fixed-horizon test decides only then
    srm_threshold: float = SRM_THRESHOLD


@dataclass
class Comparison:
    """One treatment variant against control on one metric (relative lift)."""

    variant: str
    n: int
    value: float
    lift: float = 0.0
    ci: tuple[float, float] = (0.0, 0.0)
    p_value: float = 1.0
    p_adjusted: float = 1.0
    chance_to_win: float = 0.5
    significant: bool = False
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (NaN and infinities become None)."""
        return {
            "variant": self.variant,
            "n": self.n,
            "value": _finite(self.value),
            "lift": _finite(self.lift),
            "ci": [_finite(self.ci[0]), _finite(self.ci[1])],
            "p_value": _finite(self.p_value),
            "p_adjusted": _finite(self.p_adjusted),
            "chance_to_win": _finite(self.chance_to_win),
            "significant": self.significant,
            "error": self.error,
        }


@dataclass
class MetricResult:
    """A metric's value in control and its comparison for each treatment."""

    metric: Metric
    role: Literal["primary", "guardrail", "secondary"]
    control: Comparison
    treatments: list[Comparison] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "id": self.metric.id,
            "label": self.metric.label,
            "role": self.role,
            "percent": self.metric.percent,
            "control": self.control.to_dict(),
            "treatments": [t.to_dict() for t in self.treatments],
        }


def _finite(x: float) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


def _mean_stat(values: np.ndarray) -> SampleMeanStatistic:
    return SampleMeanStatistic(
        n=int(len(values)), sum=float(values.sum()), sum_squares=float((values**2).sum())
    )


def variant_statistic(rows: pd.DataFrame, metric: Metric, *, cuped: bool) -> TestStatistic:
    """The gbstats sufficient statistic of ``metric`` over one variant's users."""
    if metric.kind == "ratio":
        m = rows[metric.column].to_numpy(float)
        d = rows[metric.denominator].to_numpy(float)
        return RatioStatistic(
            n=len(rows),
            m_statistic=_mean_stat(m),
            d_statistic=_mean_stat(d),
            m_d_sum_of_products=float((m * d).sum()),
        )
    if metric.kind == "proportion":
        v = rows[metric.column].to_numpy(float)
        v = v[~np.isnan(v)]  # users whose window has not closed yet are not counted
        return ProportionStatistic(n=int(len(v)), sum=float(v.sum()))
    post = rows[metric.column].to_numpy(float)
    if cuped and metric.covariate and metric.covariate in rows:
        pre = rows[metric.covariate].to_numpy(float)
        return RegressionAdjustedStatistic(
            n=len(rows),
            post_statistic=_mean_stat(post),
            pre_statistic=_mean_stat(pre),
            post_pre_sum_of_products=float((post * pre).sum()),
            theta=0,  # gbstats fits theta on both variants pooled
        )
    return _mean_stat(post)


def compare(
    rows_a: pd.DataFrame, rows_b: pd.DataFrame, metric: Metric, settings: AnalysisSettings
) -> tuple[Comparison, Comparison]:
    """Control and treatment on one metric: relative lift, interval, p-value, chance to win."""

    def stats() -> tuple[TestStatistic, TestStatistic]:
        # Fresh objects per test: gbstats writes the fitted CUPED theta into them.
        return (
            variant_statistic(rows_a, metric, cuped=settings.cuped),
            variant_statistic(rows_b, metric, cuped=settings.cuped),
        )

    sa, sb = stats()
    control = Comparison("", sa.n, float(sa.unadjusted_mean))
    treat = Comparison("", sb.n, float(sb.unadjusted_mean))
    if settings.sequential:
        seq = SequentialConfig(
            alpha=settings.alpha, sequential_tuning_parameter=settings.sequential_tuning
        )
        freq = SequentialTwoSidedTTest(*stats(), seq).compute_result()
    else:
        freq = TwoSidedTTest(*stats(), FrequentistConfig(alpha=settings.alpha)).compute_result()
    bayes_config = EffectBayesianConfig(alpha=settings.alpha)
    bayes = EffectBayesianABTest(*stats(), bayes_config).compute_result()
    treat.chance_to_win = float(bayes.chance_to_win)
    treat.error = freq.error_message or bayes.error_message
    if settings.engine == "bayesian":
        treat.lift, treat.ci = float(bayes.expected), (float(bayes.ci[0]), float(bayes.ci[1]))
        # A two-sided "p" from the posterior, so the same correction and decision rules apply.
        treat.p_value = float(2 * min(bayes.chance_to_win, 1 - bayes.chance_to_win))
    else:
        treat.lift, treat.ci = float(freq.expected), (float(freq.ci[0]), float(freq.ci[1]))
        treat.p_value = float(freq.p_value)
    treat.p_adjusted = treat.p_value
    return control, treat


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (step-down; controls the family-wise error rate)."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def adjust(p_values: Sequence[float], method: str) -> list[float]:
    """Adjust p-values for multiple testing: ``holm``, ``bh`` (Benjamini-Hochberg) or ``none``."""
    if not p_values or method == "none":
        return list(p_values)
    if method == "holm":
        return holm(p_values)
    if method == "bh":
        return [float(p) for p in false_discovery_control(np.asarray(p_values, float), method="bh")]
    raise ValueError(f"unknown correction {method!r}: holm, bh or none")


def srm(counts: Sequence[int], weights: Sequence[float], threshold: float) -> dict[str, Any]:
    """The sample-ratio-mismatch check: chi-square of observed users against the split."""
    p = float(check_srm(list(counts), list(weights)))
    return {"p_value": p, "ok": p >= threshold, "threshold": threshold}


def analyze(
    units: pd.DataFrame,
    *,
    variants: Sequence[str],
    weights: Sequence[float],
    primary: Sequence[str],
    guardrails: Sequence[str] = (),
    secondary: Sequence[str] = (),
    settings: AnalysisSettings | None = None,
) -> dict[str, Any]:
    """Analyse per-user ``units``: every metric for every treatment, SRM, and the decision."""
    settings = settings or AnalysisSettings()
    for mid in (*primary, *guardrails, *secondary):
        if mid not in METRICS:
            raise ValueError(f"unknown metric {mid!r}: one of {', '.join(METRICS)}")
    groups = {v: units[units["variant"] == v] for v in variants}
    counts = [len(groups[v]) for v in variants]
    control_key = variants[0]
    results: list[MetricResult] = []
    roles = [(m, "primary") for m in primary]
    roles += [(m, "guardrail") for m in guardrails if m not in primary]
    roles += [(m, "secondary") for m in secondary if m not in primary and m not in guardrails]
    for mid, role in roles:
        metric = METRICS[mid]
        result: MetricResult | None = None
        for v in variants[1:]:
            control, treat = compare(groups[control_key], groups[v], metric, settings)
            control.variant, treat.variant = control_key, v
            if result is None:
                result = MetricResult(metric, role, control)  # type: ignore[arg-type]
            result.treatments.append(treat)
        if result is not None:
            results.append(result)
    # Correct across every primary metric x treatment: the family a "ship" claim rests on.
    family = [t for r in results if r.role == "primary" for t in r.treatments]
    for t, p in zip(family, adjust([t.p_value for t in family], settings.correction), strict=True):
        t.p_adjusted = p
    for r in results:
        for t in r.treatments:
            t.significant = t.error is None and t.p_adjusted < settings.alpha
    srm_result = srm(counts, weights, settings.srm_threshold)
    decision = decide(results, counts=counts, variants=variants, srm_ok=srm_result["ok"],
                      srm_p=srm_result["p_value"], settings=settings)
    return {
        "users": dict(zip(variants, counts, strict=True)),
        "srm": srm_result,
        "metrics": [r.to_dict() for r in results],
        "decision": decision,
    }


def _pct(x: float) -> str:
    return f"{x * 100:+.2f}%"


def decide(
    results: Sequence[MetricResult],
    *,
    counts: Sequence[int],
    variants: Sequence[str],
    srm_ok: bool,
    srm_p: float,
    settings: AnalysisSettings,
) -> dict[str, Any]:
    """Ship, roll back or keep running, with the reason, from the analysed metrics."""

    def out(action: str, reason: str, variant: str | None = None) -> dict[str, Any]:
        return {"action": action, "variant": variant, "reason": reason}

    total = sum(counts)
    smallest = min(counts) if counts else 0
    if smallest < settings.min_users:
        return out("keep running", f"waiting for data: {smallest} users in the smallest variant, "
                   f"{settings.min_users} needed before deciding")
    if not srm_ok:
        return out("roll back", f"sample ratio mismatch (p={srm_p:.2g}): users {list(counts)} do "
                   "not match the configured split, so assignment or logging is broken and the "
                   "results cannot be trusted")
    primary = [r for r in results if r.role == "primary"]
    guard = [r for r in results if r.role == "guardrail"]
    harmed: dict[str, str] = {}
    for r in guard:
        for t in r.treatments:
            if t.error is None and t.ci[1] < 0:
                harmed.setdefault(t.variant, f"{r.metric.label} {_pct(t.lift)} "
                                  f"(CI {_pct(t.ci[0])} to {_pct(t.ci[1])})")
    reached = settings.target_users is not None and total >= settings.target_users
    may_decide = settings.sequential or settings.engine == "bayesian" or reached \
        or settings.target_users is None
    if not may_decide:
        return out("keep running", f"fixed-horizon test: {total} of {settings.target_users} "
                   "planned users; deciding before then would inflate false positives")
    winners = []
    for v in variants[1:]:
        ts = [t for r in primary for t in r.treatments if t.variant == v]
        if ts and all(t.significant and t.lift > 0 for t in ts):
            winners.append((min(t.lift for t in ts), v, ts))
    if harmed and all(v in harmed for v in variants[1:]):
        v, why = next(iter(harmed.items()))
        return out("roll back", f"guardrail hurt by {v}: {why}")
    winners = [w for w in winners if w[1] not in harmed]
    if winners:
        _, v, ts = max(winners)
        t = ts[0]
        return out("ship", f"{v} lifts {primary[0].metric.label} by {_pct(t.lift)} "
                   f"(CI {_pct(t.ci[0])} to {_pct(t.ci[1])}, adjusted p={t.p_adjusted:.3g}, "
                   f"chance to win {t.chance_to_win:.1%}); no guardrail hurt", v)
    losers = [t for r in primary for t in r.treatments if t.significant and t.lift < 0]
    if losers and len({t.variant for t in losers}) == len(variants) - 1:
        t = losers[0]
        return out("roll back", f"{t.variant} lowers {primary[0].metric.label} by "
                   f"{_pct(t.lift)} (CI {_pct(t.ci[0])} to {_pct(t.ci[1])}, adjusted "
                   f"p={t.p_adjusted:.3g})")
    if harmed:
        v, why = next(iter(harmed.items()))
        return out("roll back", f"no variant wins and {v} hurts a guardrail: {why}")
    if reached:
        return out("roll back", f"no detectable effect at the planned {settings.target_users} "
                   "users: keep control")
    best = max((t for r in primary for t in r.treatments), key=lambda t: t.chance_to_win,
               default=None)
    hint = f"; best is {best.variant} with chance to win {best.chance_to_win:.1%}" if best else ""
    return out("keep running", f"no significant difference yet with {total} users{hint}")
