"""Fixtures for the capability engine: a real local OpenAI-compatible server.

``llm_server`` is a running ``tests.llm_server.LLMServer``; ``llm_settings`` are the test's
settings pointed at it (fast backoff, short timeout, generous budgets); ``llm_ctx`` is an open
context built from them. Use them from any test package by importing the fixtures, e.g.
``from tests.capability.conftest import llm_server, llm_settings, llm_ctx  # noqa: F401``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.llm_server import LLMServer
from twinengine.config import Settings
from twinengine.context import AppContext, open_context


@pytest.fixture
def llm_server() -> Iterator[LLMServer]:
    """A real OpenAI-compatible HTTP server on a free 127.0.0.1 port."""
    with LLMServer() as server:
        yield server


@pytest.fixture
def llm_settings(settings: Settings, llm_server: LLMServer) -> Settings:
    """The test's settings with the default LLM provider pointed at ``llm_server``."""
    return settings.model_copy(
        update={
            "llm_base_url": llm_server.url,
            "llm_api_key": "test-key",
            "llm_model": "test-model",
            "llm_price_in_per_1k": 0.5,
            "llm_price_out_per_1k": 1.5,
            "llm_timeout_s": 2.0,
            "llm_backoff_s": 0.01,
            "llm_max_retries": 2,
        }
    )


@pytest.fixture
def llm_ctx(llm_settings: Settings) -> Iterator[AppContext]:
    """An open, migrated context whose router talks to ``llm_server``."""
    context = open_context(llm_settings)
    try:
        yield context
    finally:
        context.close()
