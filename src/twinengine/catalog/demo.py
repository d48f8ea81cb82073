"""The bundled demo catalog: the reference customer's real prompts, taxonomy and labels."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

DEMO_DIR = Path(str(resources.files("twinengine.catalog") / "demo_data"))
DEMO_CATALOG = DEMO_DIR / "prompts.jsonl.gz"
DEMO_TAXONOMY = DEMO_DIR / "taxonomy.json"
DEMO_LABELS = DEMO_DIR / "labels.jsonl"
DEMO_NOTICE = DEMO_DIR / "NOTICE"
