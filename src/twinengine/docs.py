"""Generated reference docs: settings and CLI. ``python -m twinengine.docs`` rewrites them."""

from __future__ import annotations

from pathlib import Path

from twinengine.config import Settings

DOCS = Path(__file__).resolve().parents[2] / "docs"


def settings_markdown() -> str:
    """docs/configuration.md: every setting with its variable, default and description."""
    lines = [
        "# Configuration",
        "",
        "Every setting is read from the environment with the prefix `TWINENGINE_` (generated from",
        "`twinengine.config.Settings` by `python -m twinengine.docs`; a test keeps it current).",
        "",
        "| variable | default | description |",
        "|---|---|---|",
    ]
    for name, field in Settings.model_fields.items():
        default = field.get_default(call_default_factory=True)
        shown = "(empty)" if default in ("", [], None) else f"`{default}`"
        desc = (field.description or "").replace("|", "\\|")
        lines.append(f"| `TWINENGINE_{name.upper()}` | {shown} | {desc} |")
    return "\n".join(lines) + "\n"


def write() -> None:
    """Rewrite the generated docs."""
    (DOCS / "configuration.md").write_text(settings_markdown(), encoding="utf-8")


if __name__ == "__main__":
    write()
