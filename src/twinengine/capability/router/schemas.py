"""Router inputs and outputs."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, Field


class ProviderConfig(BaseModel):
    """One OpenAI-compatible endpoint (or a ``local:NAME`` model shipped in a package)."""

    name: str
    base_url: str = ""
    api_key: str = ""
    model: str = ""
    price_in_per_1k: float = 0.0
    price_out_per_1k: float = 0.0

    @property
    def is_local(self) -> bool:
        """Whether this provider runs in-process (no HTTP, no spend)."""
        return self.name.startswith("local:")

    def cost(self, tokens_in: int, tokens_out: int) -> float:
        """USD for a call with these token counts."""
        return tokens_in / 1000 * self.price_in_per_1k + tokens_out / 1000 * self.price_out_per_1k


class RouteResult(BaseModel):
    """What ``complete`` returns: the reply, its parsed form, and what it cost."""

    text: str
    parsed: Any = None
    model: str
    provider: str
    cost_usd: float = 0.0
    tokens_in: int = 0
    tokens_out: int = 0
    latency_ms: float = 0.0
    cached: bool = False


class LedgerEntry(BaseModel):
    """One row of the cost ledger."""

    id: str
    ts: dt.datetime
    task: str
    run_id: str | None = None
    step: str | None = None
    provider: str
    model: str
    tokens_in: int
    tokens_out: int
    cost_usd: float
    latency_ms: float
    cached: bool
    status: str
    attempts: int = 1
    error: str | None = None


class CostRow(BaseModel):
    """Spend grouped by a key (day, task or model)."""

    key: str
    calls: int
    cached: int
    errors: int
    tokens_in: int
    tokens_out: int
    cost_usd: float
    latency_ms_p50: float = 0.0


class CostSummary(BaseModel):
    """The costs page and CLI: totals, groupings, budgets left and the latest calls."""

    total_usd: float
    today_usd: float
    budget_day_usd: float
    budget_run_usd: float
    by_day: list[CostRow] = Field(default_factory=list)
    by_task: list[CostRow] = Field(default_factory=list)
    by_model: list[CostRow] = Field(default_factory=list)
    recent: list[LedgerEntry] = Field(default_factory=list)
