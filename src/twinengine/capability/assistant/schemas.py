"""Assistant I/O shapes: one response shape whichever composer wrote the answer."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Composer = Literal["llm", "deterministic"]


class AssistantRequest(BaseModel):
    """What ``POST /v1/assistant`` accepts."""

    model_config = ConfigDict(extra="forbid")

    brief: str = Field(description="what the visitor wants, in their own words, any language")
    language: str | None = Field(
        default=None, max_length=16, description="answer language; default: the brief's"
    )
    remix_of: str | None = Field(
        default=None, max_length=128, description="id of a catalog prompt to remix"
    )
    stream: bool = Field(default=False, description="answer as server-sent events")
    session_id: str | None = Field(
        default=None, max_length=128, description="anonymous session id for the event log"
    )


class TopicGuess(BaseModel):
    """A taxonomy topic the brief maps to, and why."""

    id: str
    name: str
    facet: str
    score: float
    via: Literal["keyword", "embedding", "model"]


class Understanding(BaseModel):
    """What the assistant read from the brief."""

    language: str
    language_confidence: float
    subject: str
    style: list[str]
    deliverable: list[str]
    mood: list[str]
    constraints: list[str]
    quoted_text: list[str]
    names: list[str] = Field(default_factory=list, description="names given ('called \"X\"')")
    media: str | None
    target_language: str | None = Field(
        default=None, description="a language the brief asks the prompt to be in ('in Japanese')"
    )
    topics: list[TopicGuess]
    query: str = Field(description="the retrieval query built from the brief (in English)")
    native_query: str | None = Field(
        default=None, description="the brief as written, searched too when it is not English"
    )


class Placeholder(BaseModel):
    """An ``{argument name=... default=...}`` slot of the composed prompt and its value."""

    name: str
    default: str
    value: str
    filled_from: Literal["brief", "default"]


class SourceRef(BaseModel):
    """A catalog prompt the answer drew on (or offers as an alternative)."""

    id: str
    title: str
    url: str
    score: float
    languages: list[str]
    cited: bool


class RouteInfo(BaseModel):
    """Which composer answered, through which model route, and why."""

    composer: Composer
    task: str
    model: str | None = None
    cached: bool = False
    fallback_reason: str | None = None


class Cost(BaseModel):
    """What the answer cost (0 without an LLM)."""

    usd: float = 0.0
    tokens_in: int = 0
    tokens_out: int = 0


class AssistantAnswer(BaseModel):
    """The assistant's answer: the same shape from the LLM and the deterministic composer."""

    request_id: str
    brief: str
    remix_of: str | None
    understanding: Understanding
    prompt: str = Field(description="the ready prompt, placeholders filled with their values")
    template: str = Field(description="the prompt with {argument ...} placeholders kept usable")
    placeholders: list[Placeholder]
    explanation: str = Field(description="which sources were used and how, in the answer language")
    language: str = Field(
        description="language of the explanation (and of the prompt when an LLM wrote it)"
    )
    sources: list[SourceRef]
    alternatives: list[SourceRef]
    cited_ids: list[str]
    route: RouteInfo
    cost: Cost
    warnings: list[str]
    timings_ms: dict[str, float]
