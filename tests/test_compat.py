"""Interpreter work-arounds the package installs on import."""

from __future__ import annotations

import ast
import sys
import threading

import twinengine  # noqa: F401  (installs them)


def test_ast_parse_is_serialised_on_3_11_and_still_parses() -> None:
    if sys.version_info < (3, 12):
        assert getattr(ast.parse, "_twinengine_locked", False)
    trees: list[ast.Module] = []
    threads = [
        threading.Thread(target=lambda: trees.append(ast.parse("x = [1, (2, {3: 4})]")))
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(trees) == 8 and all(isinstance(t.body[0], ast.Assign) for t in trees)
