"""Reading catalog files: JSONL and CSV, plain or gzip, with a small field mapping.

Parsing and validation happen here and never touch the database; ``service.ingest`` writes
the valid rows in one transaction.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from pydantic import ValidationError

from twinengine.catalog.schemas import ITEM_FIELDS, ItemCreate

# Source field names understood without a --map option: canonical name <- aliases.
DEFAULT_ALIASES: dict[str, tuple[str, ...]] = {
    "body": ("prompt", "text", "content"),
    "licence": ("license",),
    "image_urls": ("images",),
    "languages": ("language", "lang"),
}
LIST_FIELDS = {"languages", "image_urls"}


@dataclass
class RowError:
    """One rejected row: where, which field, why."""

    file: str
    line: int
    field: str
    message: str
    raw: str = ""

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.field}: {self.message}"


@dataclass
class ParsedFile:
    """Valid items with their line numbers, and the rows that failed."""

    items: list[tuple[int, ItemCreate]] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)


def parse_mapping(pairs: list[str] | None) -> dict[str, str]:
    """Turn ``["body=prompt", ...]`` (canonical=source) into a dict."""
    mapping: dict[str, str] = {}
    for pair in pairs or []:
        target, sep, source = pair.partition("=")
        if not sep or target not in ITEM_FIELDS or not source:
            raise ValueError(
                f"bad mapping {pair!r}: use FIELD=SOURCE with FIELD one of {', '.join(ITEM_FIELDS)}"
            )
        mapping[target] = source
    return mapping


def open_text(path: Path) -> TextIO:
    """Open a plain or gzip text file as UTF-8."""
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return path.open("r", encoding="utf-8", newline="")


def detect_format(path: Path) -> str:
    """``jsonl`` or ``csv`` from the file name."""
    name = path.name.lower().removesuffix(".gz")
    if name.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    if name.endswith(".csv"):
        return "csv"
    raise ValueError(f"{path}: unknown format; name it .jsonl, .csv (optionally .gz)")


def count_rows(path: Path) -> int:
    """Lines in the file (an upper bound on rows), for the progress bar."""
    with open_text(path) as fh:
        return sum(1 for _ in fh)


def _raw_rows(path: Path, fmt: str) -> Iterator[tuple[int, dict[str, Any] | None, str, str]]:
    """Yield (line number, row or None, raw text, parse error)."""
    with open_text(path) as fh:
        if fmt == "jsonl":
            for lineno, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    yield lineno, None, line, f"invalid JSON: {exc.msg} at column {exc.colno}"
                    continue
                if not isinstance(row, dict):
                    yield lineno, None, line, "expected a JSON object"
                    continue
                yield lineno, row, line, ""
        else:
            reader = csv.DictReader(fh)
            start = reader.line_num
            for row in reader:
                lineno = start + 1 if start else reader.line_num
                start = reader.line_num
                if None in row:
                    yield lineno, None, json.dumps(row, default=str), "more fields than the header"
                    continue
                yield lineno, dict(row), json.dumps(row), ""


def _csv_value(name: str, value: Any) -> Any:
    """CSV cells are strings: decode list and JSON fields."""
    if not isinstance(value, str):
        return value
    if value == "":
        return None
    if name in LIST_FIELDS:
        if value.startswith("["):
            return json.loads(value)
        return [v.strip() for v in value.split("|") if v.strip()]
    if name == "attributes":
        return json.loads(value)
    return value


def map_row(
    row: Mapping[str, Any], mapping: Mapping[str, str], *, csv_mode: bool
) -> dict[str, Any]:
    """Rename source fields to canonical ones; unknown fields become attributes."""
    out: dict[str, Any] = {}
    used: set[str] = set()
    for target in ITEM_FIELDS:
        candidates = (
            [mapping[target]] if target in mapping else [target, *DEFAULT_ALIASES.get(target, ())]
        )
        for source in candidates:
            if source in row and source not in used:
                out[target] = row[source]
                used.add(source)
                break
    attrs = dict(out.get("attributes") or {}) if not csv_mode else {}
    if csv_mode and "attributes" in out:
        attrs = _csv_value("attributes", out["attributes"]) or {}
    for key, value in row.items():
        if key not in used and key is not None:
            attrs[key] = value
    if csv_mode:
        out = {k: _csv_value(k, v) for k, v in out.items() if k != "attributes"}
    if isinstance(out.get("languages"), str):
        out["languages"] = [out["languages"]]
    out["attributes"] = attrs
    return out


def parse_file(
    path: Path,
    *,
    mapping: Mapping[str, str] | None = None,
    on_row: Any = None,
) -> ParsedFile:
    """Parse and validate every row of ``path``; never raises for a bad row."""
    fmt = detect_format(path)
    mapping = mapping or {}
    result = ParsedFile()
    seen: dict[str, int] = {}
    for lineno, row, raw, error in _raw_rows(path, fmt):
        if on_row:
            on_row()
        if row is None:
            result.errors.append(RowError(str(path), lineno, "(row)", error, raw))
            continue
        try:
            mapped = map_row(row, mapping, csv_mode=fmt == "csv")
            item = ItemCreate.model_validate(mapped)
        except (ValueError, json.JSONDecodeError) as exc:
            for fld, msg in _describe(exc):
                result.errors.append(RowError(str(path), lineno, fld, msg, raw))
            continue
        if item.id in seen:
            result.errors.append(
                RowError(
                    str(path),
                    lineno,
                    "id",
                    f"duplicate id {item.id!r} (first on line {seen[item.id]})",
                    raw,
                )
            )
            continue
        seen[item.id] = lineno
        result.items.append((lineno, item))
    return result


def _describe(exc: Exception) -> list[tuple[str, str]]:
    if isinstance(exc, ValidationError):
        out = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"]) or "(row)"
            msg = "missing" if err["type"] == "missing" else err["msg"]
            out.append((loc, msg))
        return out
    return [("(row)", str(exc))]
