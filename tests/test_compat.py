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


def test_native_heap_settings_are_safe_to_call() -> None:
    # glibc: mallopt/malloc_trim through ctypes; elsewhere a no-op. Either way, no error,
    # and allocating and freeing a large array afterwards works.
    import platform

    import numpy as np

    from twinengine._compat import bound_native_heap, trim_native_heap

    applied = bound_native_heap()
    assert applied or platform.libc_ver()[0] != "glibc"
    big = np.ones(8_000_000)
    del big
    trim_native_heap()
