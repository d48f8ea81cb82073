"""Docs stay true: every setting documented, every CLI command explained."""

from __future__ import annotations

from typing import Any

import typer.main

from twinengine.cli.main import app
from twinengine.config import Settings
from twinengine.docs import DOCS, settings_markdown


def test_every_setting_has_a_description() -> None:
    missing = [n for n, f in Settings.model_fields.items() if not f.description]
    assert missing == []


def test_configuration_doc_is_current() -> None:
    assert (DOCS / "configuration.md").read_text(encoding="utf-8") == settings_markdown(), (
        "docs/configuration.md is stale: run `python -m twinengine.docs`"
    )


def _commands(group: Any, prefix: str = "") -> list[tuple[str, Any]]:
    # typer vendors its own click: walk anything that has sub-commands.
    out = []
    for name, cmd in getattr(group, "commands", {}).items():
        out.append((f"{prefix}{name}", cmd))
        out.extend(_commands(cmd, f"{prefix}{name} "))
    return out


def test_every_cli_command_has_help() -> None:
    root = typer.main.get_command(app)
    assert len(_commands(root)) >= 8
    undocumented = [name for name, cmd in _commands(root) if not (cmd.help or cmd.short_help)]
    assert undocumented == []
