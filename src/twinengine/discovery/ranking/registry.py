"""Versioned ranking artifacts on disk, and which version serves each surface.

Layout under ``settings.home / "models" / "ranking"``::

    <version>/rank.txt ctr.txt cvr.txt   LightGBM text models
    <version>/schema.json                feature schema, blend, propensity curve, surfaces
    <version>/metrics.json               offline metrics of the training run
    active.json                          {"surfaces": {surface: version}}
    rules.json                           {surface: Rules}

Every write goes to a temporary file first and is renamed into place, so a server reading
concurrently sees the old file or the new one, never half of one. Servers notice a change by
the modification time of ``active.json`` and ``rules.json`` (hot reload, see ``service``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import secrets
import shutil
from pathlib import Path
from typing import Any

from twinengine.discovery.events.models import SURFACES
from twinengine.errors import InvalidInput, NotFound

_VERSION = re.compile(r"^r\d{14}-[0-9a-f]{6}$")


def check_surface(surface: str) -> str:
    """The surface name, or ``InvalidInput`` naming the valid ones."""
    if surface not in SURFACES:
        raise InvalidInput(f"unknown surface {surface!r}: choose one of {', '.join(SURFACES)}")
    return surface


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
    os.replace(tmp, path)


class ModelRegistry:
    """The folder of ranking model versions."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    # --- versions ----------------------------------------------------------------------------
    def new_version(self) -> str:
        """A fresh, sortable version id."""
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%S")
        return f"r{stamp}-{secrets.token_hex(3)}"

    def folder(self, version: str) -> Path:
        """Folder of ``version``; ``NotFound`` if there is none, ``InvalidInput`` if malformed."""
        if not _VERSION.match(version or ""):
            raise InvalidInput(
                f"malformed model version {version!r} (expected rYYYYmmddHHMMSS-xxxxxx)"
            )
        path = self.root / version
        if not (path / "schema.json").exists():
            raise NotFound(f"no ranking model {version}")
        return path

    def staging(self, version: str) -> Path:
        """A temporary folder to write ``version`` into before ``publish``."""
        path = self.root / f".staging-{version}"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def publish(self, version: str, staging: Path) -> Path:
        """Move a complete staging folder into place (atomic rename)."""
        final = self.root / version
        os.replace(staging, final)
        return final

    def discard(self, staging: Path) -> None:
        """Remove a staging folder after a failed training run."""
        shutil.rmtree(staging, ignore_errors=True)

    def versions(self) -> list[str]:
        """Every published version, newest first."""
        if not self.root.exists():
            return []
        found = [p.name for p in self.root.iterdir() if _VERSION.match(p.name)]
        return sorted((v for v in found if (self.root / v / "schema.json").exists()), reverse=True)

    def describe(self, version: str) -> dict[str, Any]:
        """Schema and metrics of ``version``, plus the surfaces it serves."""
        path = self.folder(version)
        schema = json.loads((path / "schema.json").read_text())
        metrics_path = path / "metrics.json"
        metrics = json.loads(metrics_path.read_text()) if metrics_path.exists() else {}
        active = self.active()
        return {
            "version": version,
            "trained_at": schema.get("trained_at"),
            "surfaces": schema.get("surfaces"),
            "active_for": sorted(s for s, v in active.items() if v == version),
            "heads": sorted(schema.get("heads", {})),
            "features": schema.get("features", []),
            "blend": schema.get("blend"),
            "propensity": schema.get("propensity"),
            "metrics": metrics,
        }

    # --- activation --------------------------------------------------------------------------
    @property
    def active_path(self) -> Path:
        """Where the surface -> version map lives."""
        return self.root / "active.json"

    @property
    def rules_path(self) -> Path:
        """Where the per-surface rules live."""
        return self.root / "rules.json"

    def active(self) -> dict[str, str]:
        """Surface -> active version."""
        if not self.active_path.exists():
            return {}
        return dict(json.loads(self.active_path.read_text()).get("surfaces", {}))

    def activate(self, version: str, surfaces: list[str]) -> dict[str, str]:
        """Serve ``version`` on ``surfaces``; returns the new map."""
        self.folder(version)
        for s in surfaces:
            check_surface(s)
        current = self.active()
        current.update({s: version for s in surfaces})
        self.root.mkdir(parents=True, exist_ok=True)
        _write_json(self.active_path, {"surfaces": current})
        return current

    def deactivate(self, surfaces: list[str]) -> dict[str, str]:
        """Stop serving any model on ``surfaces`` (they fall back to generator scores)."""
        current = {s: v for s, v in self.active().items() if s not in surfaces}
        self.root.mkdir(parents=True, exist_ok=True)
        _write_json(self.active_path, {"surfaces": current})
        return current

    def rules(self) -> dict[str, dict[str, Any]]:
        """Surface -> stored rules JSON."""
        if not self.rules_path.exists():
            return {}
        return dict(json.loads(self.rules_path.read_text()))

    def set_rules(self, surface: str, rules: dict[str, Any]) -> None:
        """Store the rules of one surface."""
        check_surface(surface)
        current = self.rules()
        current[surface] = rules
        self.root.mkdir(parents=True, exist_ok=True)
        _write_json(self.rules_path, current)

    def stamp(self) -> tuple[int, ...]:
        """Identity of the active map and rules files: a change means reload.

        Inode and size join the modification time because two writes within one clock tick
        can share an mtime, while each rename brings a new inode.
        """
        out: list[int] = []
        for path in (self.active_path, self.rules_path):
            try:
                st = path.stat()
                out += [st.st_ino, st.st_mtime_ns, st.st_size]
            except FileNotFoundError:
                out += [0, 0, 0]
        return tuple(out)
