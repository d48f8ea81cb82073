"""Experiments: create, list, start, stop, report; a user's assignments."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from twinengine.api.app import register
from twinengine.api.deps import ContextDep
from twinengine.discovery.experiments import service
from twinengine.discovery.experiments.schemas import (
    AssignmentsOut,
    ExperimentCreate,
    ExperimentPage,
    ExperimentPublic,
    Report,
    Surface,
)

router = APIRouter(tags=["experiments"])

ExpId = Annotated[str, Path(min_length=1, max_length=64)]


@router.post("/experiments", response_model=ExperimentPublic, status_code=201)
def create_experiment(ctx: ContextDep, body: ExperimentCreate) -> ExperimentPublic:
    """Define an experiment (a draft until started)."""
    return service.create(ctx, spec=body)


@router.get("/experiments", response_model=ExperimentPage)
def list_experiments(
    ctx: ContextDep, status: Literal["draft", "running", "stopped"] | None = None
) -> ExperimentPage:
    """Experiments, newest first."""
    return service.list_experiments(ctx, status=status)


@router.get("/experiments/{exp_id}", response_model=ExperimentPublic)
def get_experiment(ctx: ContextDep, exp_id: ExpId) -> ExperimentPublic:
    """One experiment's definition and status."""
    return service.get(ctx, exp_id=exp_id)


@router.post("/experiments/{exp_id}/start", response_model=ExperimentPublic)
def start_experiment(ctx: ContextDep, exp_id: ExpId) -> ExperimentPublic:
    """Start assigning users."""
    return service.start(ctx, exp_id=exp_id)


@router.post("/experiments/{exp_id}/stop", response_model=ExperimentPublic)
def stop_experiment(ctx: ContextDep, exp_id: ExpId) -> ExperimentPublic:
    """Stop assigning users and record the decision."""
    return service.stop(ctx, exp_id=exp_id)


@router.get("/experiments/{exp_id}/report", response_model=Report)
def experiment_report(
    ctx: ContextDep, exp_id: ExpId, until: dt.datetime | None = None
) -> Report:
    """Metrics with intervals, SRM, cumulative lift, interleaving preference, decision."""
    return service.report(ctx, exp_id=exp_id, until=until)


@router.get("/assignments", response_model=AssignmentsOut)
def assignments(
    ctx: ContextDep,
    user_key: Annotated[str, Query(min_length=1, max_length=140)],
    surface: Surface = "feed",
    language: Annotated[str | None, Query(max_length=16)] = None,
) -> AssignmentsOut:
    """The variants this user gets on this surface, and the merged variant config."""
    assigned, config = service.serving_plan(
        ctx, user_key=user_key, surface=surface, language=language
    )
    return AssignmentsOut(user_key=user_key, surface=surface, assignments=assigned, config=config)


register(router)

import twinengine.web.experiments  # noqa: E402,F401  (the dashboard pages register themselves)
