"""Read an awesome-list README (the collections' Markdown layout) into catalog rows.

The bundled catalog was gathered from READMEs shaped like this (YouMind-OpenLab's lists)::

    ### No. 12: Title of the prompt
    ![Language-EN](https://img.shields.io/badge/Language-EN-blue) ![Featured](...)
    #### 📖 Description
    One paragraph.
    #### 📝 Prompt
    ```
    the prompt text
    ```
    #### 🖼️ Generated Images
    <img src="https://.../1.jpg" ...>
    #### 📌 Details
    - **Author:** [Name](https://x.com/name)
    - **Source:** [Twitter Post](https://x.com/name/status/1)
    - **Published:** December 10, 2025
    - **Languages:** en, zh

and like jamez-bondos' list (``## Example 72: Title (by [@name](url))``, ``[Source Link](url)``,
``**Prompt:**`` then a code block). Each heading that owns a fenced code block is one prompt;
sections without one (table of contents, licence, ...) are skipped. The rows go through the
catalog's own validation (``catalog.ingest.parse_file``) afterwards, like any JSONL file.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from pathlib import Path
from typing import Any

_HEADING = re.compile(r"^(#{2,3})\s+(.+?)\s*#*\s*$")
_SUBHEADING = re.compile(r"^#{4,6}\s+(.+?)\s*$")
_FENCE = re.compile(r"^\s*(```+|~~~+)")
_NUMBERED = re.compile(
    r"^(?:No\.\s*\d+|Example\s*\d+|Case\s*\d+|\d+(?:\.\d+)*\.?)\s*[:：.-]?\s*", re.I
)
_BY = re.compile(r"\s*\(by\s+\[([^\]]+)\]\(([^)\s]+)\)\s*\)\s*$", re.I)
_BY_PLAIN = re.compile(r"\s*\(by\s+([^)]+)\)\s*$", re.I)
_LINK = re.compile(r"\[([^\]]*)\]\(([^)\s]+)\)")
_IMG_HTML = re.compile(r"<img\b[^>]*\bsrc=[\"']([^\"']+)[\"']", re.I)
_IMG_MD = re.compile(r"!\[[^\]]*\]\(([^)\s]+)\)")
_FIELD = re.compile(r"^\s*[-*]?\s*\*\*([^*:：]+)[:：]?\*\*\s*[:：]?\s*(.*)$")
_BADGE_HOSTS = ("img.shields.io", "badge", "awesome.re")
_MONTHS = "%B %d, %Y", "%b %d, %Y", "%Y-%m-%d", "%d %B %Y"


def _clean_title(raw: str) -> tuple[str, str | None, str | None]:
    """Title without numbering or '(by ...)', plus the author and author URL it named."""
    title = re.sub(r"<[^>]+>", "", raw).strip()
    author = author_url = None
    if m := _BY.search(title):
        author, author_url = m.group(1).lstrip("@"), m.group(2)
        title = title[: m.start()]
    elif m := _BY_PLAIN.search(title):
        author = m.group(1).strip().lstrip("@")
        title = title[: m.start()]
    title = _NUMBERED.sub("", title, count=1).strip(" -:：")
    return title, author, author_url


def _date(text: str) -> str | None:
    text = text.strip().rstrip(".")
    for fmt in _MONTHS:
        try:
            return dt.datetime.strptime(text, fmt).date().isoformat()
        except ValueError:
            continue
    return None


def _sections(lines: list[str]) -> list[tuple[str, list[str]]]:
    """(heading text, body lines) for every level-2/3 heading, ignoring headings in code."""
    out: list[tuple[str, list[str]]] = []
    current: tuple[str, list[str]] | None = None
    in_code = False
    for line in lines:
        if _FENCE.match(line):
            in_code = not in_code
        if not in_code and (m := _HEADING.match(line)):
            current = (m.group(2), [])
            out.append(current)
            continue
        if current is not None:
            current[1].append(line)
    return out


def _parse_section(heading: str, body: list[str]) -> dict[str, Any] | None:
    title, author, author_url = _clean_title(heading)
    code: list[str] | None = None
    blocks: list[str] = []
    fence = ""
    description: list[str] = []
    sub = ""
    fields: dict[str, str] = {}
    images: list[str] = []
    source_url = None
    for line in body:
        if code is not None:
            if line.strip().startswith(fence) and line.strip().strip(fence[0]) == "":
                blocks.append("\n".join(code))
                code = None
            else:
                code.append(line)
            continue
        if m := _FENCE.match(line):
            fence = m.group(1)
            code = []
            continue
        if m := _SUBHEADING.match(line):
            sub = m.group(1).lower()
            continue
        images.extend(u for u in _IMG_HTML.findall(line) + _IMG_MD.findall(line))
        if m := _FIELD.match(line):
            fields[m.group(1).strip().lower()] = m.group(2).strip()
            continue
        stripped = line.strip()
        if stripped.lower().startswith("[source link]") and (links := _LINK.findall(stripped)):
            source_url = links[0][1]
            continue
        if "description" in sub and stripped and not stripped.startswith(("!", "<")):
            description.append(stripped)
    if not blocks or not title:
        return None
    row: dict[str, Any] = {"title": title, "prompt": blocks[0].strip("\n")}
    if description:
        row["description"] = " ".join(description)
    if author_field := fields.get("author"):
        if links := _LINK.findall(author_field):
            author, author_url = links[0][0].lstrip("@"), links[0][1]
        else:
            author = author_field.lstrip("@")
    if src := fields.get("source"):
        if (links := _LINK.findall(src)) and links[0][1] not in ("null", "#"):
            source_url = links[0][1]
    if pub := fields.get("published"):
        row["published"] = _date(pub)
    if langs := fields.get("languages") or fields.get("language"):
        row["languages"] = [x.strip().lower() for x in re.split(r"[,/ ]+", langs) if x.strip()]
    row["author"] = author
    row["author_url"] = author_url
    row["source_url"] = source_url
    row["image_urls"] = list(
        dict.fromkeys(u for u in images if not any(h in u for h in _BADGE_HOSTS))
    )
    return row


def parse_readme(
    path: Path, *, collection: str | None = None, licence: str | None = None, id_prefix: str = "md"
) -> list[dict[str, Any]]:
    """Catalog rows (``prompt`` field, like the JSONL files) from an awesome-list README.

    Ids are stable (a hash of collection, title and prompt), so dropping the same README twice
    updates nothing; a prompt listed twice (e.g. under "Featured" and "All") is kept once.
    """
    text = Path(path).read_text(encoding="utf-8")
    rows: dict[str, dict[str, Any]] = {}
    for heading, body in _sections(text.splitlines()):
        row = _parse_section(heading, body)
        if row is None:
            continue
        digest = hashlib.sha256(
            f"{collection or ''}\x00{row['title']}\x00{row['prompt']}".encode()
        ).hexdigest()[:16]
        row["id"] = f"{id_prefix}-{digest}"
        if collection:
            row["collection"] = collection
        if licence:
            row["licence"] = licence
        row.setdefault("languages", ["en"])
        rows.setdefault(row["id"], row)
    return list(rows.values())
