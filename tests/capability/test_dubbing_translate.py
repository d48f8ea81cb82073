"""The LLM translation route through the real model router and local OpenAI-compatible server,
and its fallback to Apertium."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.capability.conftest import llm_ctx, llm_server, llm_settings  # noqa: F401
from tests.llm_server import Fail, Malformed
from twinengine.capability.dubbing.translate import Line, RouterTranslator

LINES = [Line("The dog is big.", 1.5), Line("We eat bread.", 1.2)]


def test_llm_route_translates_with_glossary_and_slots(llm_ctx, llm_server) -> None:  # noqa: F811
    llm_server.reply(json.dumps({"lines": ["El perro es grande.", "Comemos pan."]}))
    tr = RouterTranslator(ctx=llm_ctx, glossary={"dog": "can"}, run_id="r1")
    assert tr.translate(LINES, source="en", target="es") == ["El perro es grande.", "Comemos pan."]
    assert not tr.fallback_used
    prompt = json.dumps(llm_server.requests[-1]["messages"])
    assert "dog -> can" in prompt and "[1.5s]" in prompt


@pytest.mark.skipif(not shutil.which("apertium"), reason="apertium not installed (make media-deps)")
@pytest.mark.parametrize(
    "answer", [[Fail(500)] * 6, [Malformed()] * 6, ['{"lines": ["solo una"]}'] * 6]
)
def test_outage_broken_json_or_wrong_count_falls_back_to_apertium(
    llm_ctx,  # noqa: F811
    llm_server,  # noqa: F811
    answer,
) -> None:
    llm_server.queue(*answer)
    tr = RouterTranslator(ctx=llm_ctx, run_id="r2")
    out = tr.translate(LINES, source="en", target="es")
    assert tr.fallback_used
    assert "perro" in out[0].lower() and len(out) == 2
