"""Shared CLI plumbing: the context from the Typer callback, error printing, progress."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from twinengine.config import Settings
from twinengine.context import AppContext, open_context
from twinengine.errors import AppError

console = Console()
err_console = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])


def settings_of(ctx: typer.Context) -> Settings:
    """The settings the callback built."""
    return ctx.ensure_object(dict)["settings"]


def context_of(ctx: typer.Context) -> AppContext:
    """Open (once per command) the app context."""
    obj = ctx.ensure_object(dict)
    if "context" not in obj:
        obj["context"] = open_context(obj["settings"])
        ctx.call_on_close(obj["context"].close)
    return obj["context"]


def handle_errors(fn: F) -> F:
    """Print an ``AppError`` as a message and exit non-zero instead of a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except AppError as exc:
            err_console.print(f"[bold red]error:[/] {exc.message}", markup=True, highlight=False)
            sys.exit(2 if exc.http_status < 500 else 1)

    return wrapper  # type: ignore[return-value]


def progress_bar(**kwargs: Any) -> Progress:
    """A progress bar for long work; quiet when stderr is not a terminal."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=False,
        **kwargs,
    )
