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


_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number


@functools.lru_cache(maxsize=1)
def _libc() -> Any:
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if not sys.platform.startswith("linux") or not name:
        return None
    try:
        libc = ctypes.CDLL(name)
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


def bound_native_heap() -> bool:
    """Fix glibc's mmap threshold at 128 KiB in long-running processes (servers, workers).

    glibc raises the threshold each time a large mmapped block is freed (up to 32 MiB), after
    which big arrays come from the heap and freed ones stay in RSS. Rebuilding the
    recommendation state every 30 s grew a server's RSS by ~12 MB a rebuild that way, with
    Python's own traced memory flat; with the threshold fixed it stayed within a few MB.
    True when the setting took (glibc).
    """
    libc = _libc()
    return libc is not None and libc.mallopt(_M_MMAP_THRESHOLD, 128 * 1024) == 1


def trim_native_heap() -> None:
    """Hand free heap pages back to the OS after a large rebuild (glibc only; else a no-op)."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
