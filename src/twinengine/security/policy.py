"""Which scope a request needs, decided from its method and path in one table."""

from __future__ import annotations

# (method set or None for any, path prefix, scope). First match wins. ``None`` scope: public.
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
RULES: list[tuple[frozenset[str] | None, str, str | None]] = [
    (None, "/v1/health", None),
    (None, "/v1/version", None),
    (frozenset({"POST"}), "/v1/events", "events:write"),
    # POSTs that only read (a query in the body) count as reads.
    (frozenset({"POST"}), "/v1/search", "search:read"),
    (frozenset({"POST"}), "/v1/assistant", "search:read"),
    # Operator APIs: workflows, ranking models, experiments, keys, costs.
    (None, "/v1/flows", "admin"),
    (None, "/v1/ranking", "admin"),
    (None, "/v1/experiments", "admin"),
    (None, "/v1/keys", "admin"),
    (None, "/v1/costs", "admin"),
    (None, "/v1/router", "admin"),
    (READ_METHODS, "/v1/", "search:read"),
    (None, "/v1/", "catalog:write"),
    # Operator pages.
    (None, "/flows", "admin"),
    (None, "/costs", "admin"),
    (None, "/experiments", "admin"),
    (None, "/admin", "admin"),
]


def required_scope(method: str, path: str) -> str | None:
    """The scope ``method path`` needs, or None when it is public."""
    for methods, prefix, scope in RULES:
        if (methods is None or method in methods) and (
            path == prefix.rstrip("/") or path.startswith(prefix)
        ):
            return scope
    return None


def is_page(path: str) -> bool:
    """Whether ``path`` is an HTML page rather than the JSON API."""
    return not path.startswith("/v1/") and path != "/v1"
