"""Work-arounds for interpreter bugs, installed once when the package is imported."""

from __future__ import annotations

import ast
import functools
import sys
import threading
from typing import Any


def serialise_ast_parse() -> None:
    """On CPython 3.11, make ``ast.parse`` one thread at a time.

    3.11 keeps the AST constructor's recursion counter in interpreter state shared by all
    threads, so two threads parsing at once can fail with "SystemError: AST constructor
    recursion depth mismatch" (python/cpython#106905 and reports in pytest, langchain, Home
    Assistant). Ours do: the start-up warm-up imports torch and traces the query encoder
    (about 160 ``ast.parse`` calls through torch.jit and inspect) while request threads, or
    pytest's assertion rewriter, parse too. A lock costs nothing measurable; parses are rare.
    """
    if sys.version_info >= (3, 12) or getattr(ast.parse, "_twinengine_locked", False):
        return
    lock = threading.RLock()
    original = ast.parse

    @functools.wraps(original)
    def parse(*args: Any, **kwargs: Any) -> Any:
        with lock:
            return original(*args, **kwargs)

    parse._twinengine_locked = True  # type: ignore[attr-defined]
    ast.parse = parse  # type: ignore[assignment]
