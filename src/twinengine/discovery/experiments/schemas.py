"""Experiment I/O shapes: what ``create`` accepts, what the API and pages show."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from twinengine.discovery.experiments.analysis import METRICS

Kind = Literal["ab", "interleaving"]
Status = Literal["draft", "running", "stopped"]
Surface = Literal["search", "feed", "related", "topic", "trending", "assistant", "other"]
MetricId = Literal[
    "ctr", "cvr", "clicks_per_user", "conversions_per_user", "revenue_per_user",
    "retention_d1", "retention_d7",
]  # fmt: skip
assert set(MetricId.__args__) == set(METRICS)  # type: ignore[attr-defined]  # kept in step

_SLUG = r"^[a-z0-9][a-z0-9_\-]*$"


class VariantSpec(BaseModel):
    """One arm: its key, traffic weight and the config serving applies for it."""

    model_config = ConfigDict(extra="forbid")

    key: str = Field(min_length=1, max_length=32, pattern=_SLUG)
    weight: float = Field(default=1.0, gt=0, le=1000)
    config: dict[str, Any] = Field(
        default_factory=dict,
        description='what serving applies, e.g. {"ranking_model": "v3", "generator_mix": {...}}',
    )


class Targeting(BaseModel):
    """Who is eligible: empty lists mean everyone."""

    model_config = ConfigDict(extra="forbid")

    surfaces: list[Surface] = Field(default_factory=list, max_length=10)
    languages: list[str] = Field(default_factory=list, max_length=50)


class MetricsSpec(BaseModel):
    """Goal metrics (corrected for multiple testing), guardrails, and ones only reported."""

    model_config = ConfigDict(extra="forbid")

    primary: list[MetricId] = Field(default_factory=lambda: ["ctr"], min_length=1, max_length=5)
    guardrails: list[MetricId] = Field(default_factory=lambda: ["retention_d1"], max_length=7)
    secondary: list[MetricId] = Field(
        default_factory=lambda: ["cvr", "conversions_per_user", "revenue_per_user", "retention_d7"],
        max_length=7,
    )


class AnalysisSpec(BaseModel):
    """How the experiment is analysed and when it may decide."""

    model_config = ConfigDict(extra="forbid")

    engine: Literal["frequentist", "bayesian"] = "frequentist"
    alpha: float = Field(default=0.05, gt=0, le=0.2)
    sequential: bool = Field(default=True, description="always-valid intervals: safe to peek")
    correction: Literal["holm", "bh", "none"] = "holm"
    cuped: bool = Field(default=True, description="variance reduction with pre-period data")
    pre_period_days: int = Field(default=14, ge=0, le=90)
    min_users: int = Field(default=100, ge=2, le=10_000_000)
    target_users: int | None = Field(default=None, ge=2, le=1_000_000_000)


class ExperimentCreate(BaseModel):
    """A new experiment (created as a draft; ``start`` makes it live)."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=64, pattern=_SLUG)
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=5000)
    kind: Kind = "ab"
    variants: list[VariantSpec] = Field(
        default_factory=lambda: [VariantSpec(key="control"), VariantSpec(key="treatment")],
        min_length=2,
        max_length=10,
    )
    traffic: float = Field(default=1.0, gt=0, le=1, description="share of eligible users in it")
    layer: str | None = Field(
        default=None, max_length=64, pattern=_SLUG,
        description="experiments in one layer never share a user",
    )
    targeting: Targeting = Field(default_factory=Targeting)
    metrics: MetricsSpec = Field(default_factory=MetricsSpec)
    analysis: AnalysisSpec = Field(default_factory=AnalysisSpec)
    salt: str | None = Field(
        default=None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:\-]+$",
        description="hash seed; default a random one (reuse one to keep the same buckets)",
    )

    @model_validator(mode="after")
    def _consistent(self) -> ExperimentCreate:
        keys = [v.key for v in self.variants]
        if len(set(keys)) != len(keys):
            raise ValueError("variant keys must be unique")
        if self.kind == "interleaving" and len(self.variants) != 2:
            raise ValueError("an interleaving experiment compares exactly two rankers (a, b)")
        return self


class ExperimentPublic(BaseModel):
    """An experiment as stored."""

    id: str
    name: str
    description: str
    kind: Kind
    status: Status
    salt: str
    layer: str | None
    layer_range: tuple[float, float]
    traffic: float
    variants: list[VariantSpec]
    targeting: Targeting
    metrics: MetricsSpec
    analysis: AnalysisSpec
    decision: dict[str, Any] | None
    created_at: dt.datetime
    started_at: dt.datetime | None
    stopped_at: dt.datetime | None


class ExperimentPage(BaseModel):
    """A list of experiments."""

    data: list[ExperimentPublic]
    count: int


class Decision(BaseModel):
    """Ship, roll back or keep running, and why."""

    action: Literal["ship", "roll back", "keep running"]
    variant: str | None = None
    reason: str


class Report(BaseModel):
    """An experiment's analysis now: metrics with intervals, SRM, lift over time, decision."""

    experiment: ExperimentPublic
    computed_at: dt.datetime
    users: dict[str, int]
    multiple_exposures: int = Field(description="users seen in more than one variant (dropped)")
    srm: dict[str, Any]
    metrics: list[dict[str, Any]]
    timeline: list[dict[str, Any]] = Field(description="cumulative primary-metric lift by day")
    interleaving: list[dict[str, Any]] | None = None
    decision: Decision


class AssignmentsOut(BaseModel):
    """The variants a user gets on a surface, and the merged config serving applies."""

    user_key: str
    surface: str
    assignments: dict[str, str]
    config: dict[str, Any]
