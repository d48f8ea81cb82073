"""Name -> class registries for the dubbing stages' pluggable backends."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from twinengine.errors import InvalidInput

T = TypeVar("T")


class Registry(Generic[T]):
    """Backends of one stage by name; the names build the error message for an unknown one."""

    def __init__(self, family: str) -> None:
        self.family = family
        self._classes: dict[str, type[T]] = {}

    def register(self, name: str) -> Callable[[type[T]], type[T]]:
        """Class decorator: make ``cls`` available as ``name`` (built-ins use it too)."""

        def deco(cls: type[T]) -> type[T]:
            self._classes[name] = cls
            return cls

        return deco

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._classes)

    def get(self, name: str) -> type[T]:
        """The class registered as ``name``; ``InvalidInput`` naming the choices otherwise."""
        try:
            return self._classes[name]
        except KeyError:
            raise InvalidInput(
                f"unknown {self.family} backend {name!r}; choose one of: {', '.join(self.names())}"
            ) from None
