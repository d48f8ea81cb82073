"""Tagger inputs and reports."""

from __future__ import annotations

from pydantic import BaseModel, Field


class LlmTags(BaseModel):
    """What the LLM must answer when an item escalates."""

    topics: list[str] = Field(description="ids of the topics that apply, from the candidates")


class TrainReport(BaseModel):
    """What ``train`` did."""

    labelled: int
    used: int
    missing_items: int
    topics: int
    topics_with_examples: int
    seconds: float
    path: str


class Scores(BaseModel):
    """Multi-label F1 figures."""

    micro_f1: float
    macro_f1: float
    precision: float
    recall: float
    per_facet: dict[str, float] = Field(default_factory=dict)
    per_topic: dict[str, float] = Field(default_factory=dict)
    mean_predicted: float = 0.0
    mean_true: float = 0.0


class EvalReport(BaseModel):
    """Scores of the tagger on labelled prompts, with the share escalated and the cost."""

    items: int
    scores: Scores
    local_scores: Scores | None = None
    escalated: int = 0
    escalated_share: float = 0.0
    cost_usd: float = 0.0
    folds: int = 0
    seconds: float = 0.0


class TagReport(BaseModel):
    """What ``tag_items`` did."""

    items: int
    tagged: int
    links: int
    model_links: int = 0
    llm_links: int = 0
    skipped_human: int = 0
    escalated: int = 0
    escalated_share: float = 0.0
    llm_failed: int = 0
    budget_stopped: bool = False
    cost_usd: float = 0.0
    seconds: float = 0.0
