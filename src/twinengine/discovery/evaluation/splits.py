"""Train/test splits of (user, item, ts) interactions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

Interaction = tuple[str, str, float]  # user, item, timestamp (any orderable number)


def random_split(
    rows: Sequence[Interaction], *, ratio: float = 0.75, seed: int = 42, min_rating_users: int = 1
) -> tuple[list[Interaction], list[Interaction]]:
    """Per-user random split (MS Recommenders' python_random_split with filter_by="user").

    Each user's interactions are shuffled and the first ``ratio`` go to train, so every user
    appears in both sides when they have at least two interactions.
    """
    rng = np.random.default_rng(seed)
    by_user: dict[str, list[Interaction]] = {}
    for r in rows:
        by_user.setdefault(r[0], []).append(r)
    train: list[Interaction] = []
    test: list[Interaction] = []
    for user in sorted(by_user):
        items = by_user[user]
        if len(items) < min_rating_users:
            continue
        order = rng.permutation(len(items))
        cut = int(round(ratio * len(items)))
        train.extend(items[i] for i in order[:cut])
        test.extend(items[i] for i in order[cut:])
    return train, test


def time_split(
    rows: Sequence[Interaction], *, at: Any
) -> tuple[list[Interaction], list[Interaction]]:
    """Everything before ``at`` trains; the rest, for users seen in training, tests."""
    train = [r for r in rows if r[2] < at]
    seen = {r[0] for r in train}
    test = [r for r in rows if r[2] >= at and r[0] in seen]
    return train, test


def relevant_sets(test: Sequence[Interaction]) -> dict[str, set[str]]:
    """user -> held-out items."""
    out: dict[str, set[str]] = {}
    for user, item, _ in test:
        out.setdefault(user, set()).add(item)
    return out
