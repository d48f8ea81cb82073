"""Public benchmark data in its publishers' own layouts (read from a path; never bundled)."""

from __future__ import annotations

from pathlib import Path

from twinengine.errors import InvalidInput, NotFound


def load_movielens_100k(path: Path) -> list[tuple[str, str, float, float]]:
    """(user, item, timestamp, rating) rows of GroupLens ML-100k's ``u.data``.

    ``path`` is the ``ml-100k`` folder or the ``u.data`` file itself: tab-separated
    ``user id | item id | rating | timestamp``, one rating a line.
    """
    path = Path(path)
    data = path / "u.data" if path.is_dir() else path
    if not data.exists():
        raise NotFound(f"no u.data at {data}")
    rows = []
    with data.open(encoding="latin-1") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 4:
                raise InvalidInput(f"{data}:{n}: expected 4 tab-separated fields, got {len(parts)}")
            user, item, rating, ts = parts
            try:
                rows.append((user, item, float(ts), float(rating)))
            except ValueError as exc:
                raise InvalidInput(f"{data}:{n}: {exc}") from exc
    return rows
