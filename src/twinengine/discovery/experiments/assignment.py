"""Deterministic assignment: GrowthBook's FNV-1a hashing of the user key with a salt.

Pure functions of (user key, salt, layer, weights): no state, no randomness, so every process
and every restart assigns a user the same variant. The hashes match GrowthBook's SDKs
(``hash`` versions 1 and 2, ``inNamespace``, ``getBucketRanges``, ``chooseVariation``).
"""

from __future__ import annotations

from collections.abc import Sequence

_FNV_OFFSET = 0x811C9DC5
_FNV_PRIME = 0x01000193
_MASK = 0xFFFFFFFF


def fnv1a32(text: str) -> int:
    """The 32-bit FNV-1a hash of ``text`` (over code points, as GrowthBook's Python SDK)."""
    h = _FNV_OFFSET
    for ch in text:
        h ^= ord(ch)
        h = (h * _FNV_PRIME) & _MASK
    return h


def gb_hash(seed: str, value: str, version: int = 2) -> float:
    """GrowthBook's hash of ``value`` with ``seed`` into [0, 1)."""
    if version == 2:
        # Hashing the hash's decimal string spreads sequential ids better than v1 does.
        return (fnv1a32(str(fnv1a32(seed + value))) % 10000) / 10000
    if version == 1:
        return (fnv1a32(value + seed) % 1000) / 1000
    raise ValueError(f"unknown hash version {version}")


def in_layer(user_key: str, layer: str, start: float, end: float) -> bool:
    """Whether the user falls in the slice [start, end) of ``layer`` (GrowthBook namespaces)."""
    n = gb_hash("__" + layer, user_key, 1)
    return start <= n < end


def bucket_ranges(weights: Sequence[float], coverage: float = 1.0) -> list[tuple[float, float]]:
    """Each variant's [start, end) in hash space: cumulative weights scaled by coverage."""
    coverage = min(1.0, max(0.0, coverage))
    total = sum(weights)
    if total <= 0:
        raise ValueError("variant weights must sum to more than 0")
    ranges: list[tuple[float, float]] = []
    cumulative = 0.0
    for w in weights:
        start = cumulative
        cumulative += w / total
        ranges.append((start, start + coverage * w / total))
    return ranges


def choose_variation(n: float, ranges: Sequence[tuple[float, float]]) -> int:
    """The index of the range holding ``n``, or -1 when the user is outside the coverage."""
    for i, (start, end) in enumerate(ranges):
        if start <= n < end:
            return i
    return -1


def assign(
    user_key: str,
    *,
    salt: str,
    weights: Sequence[float],
    coverage: float = 1.0,
    layer: str | None = None,
    layer_range: tuple[float, float] = (0.0, 1.0),
) -> int:
    """The variant index for ``user_key``, or -1 when the user is not in the experiment."""
    if layer is not None and not in_layer(user_key, layer, *layer_range):
        return -1
    return choose_variation(gb_hash(salt, user_key, 2), bucket_ranges(weights, coverage))
