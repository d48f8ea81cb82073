"""Team-draft interleaving (Radlinski, Kurup and Joachims 2008) and its credit and test.

Two rankers each draft items into one merged slate, taking turns in an order decided by a
coin per round; clicks and conversions on an item credit the team that drafted it. Every
user sees both rankers at once, so the comparison is within-user and needs far fewer users
than an A/B test of the same rankers. The coin is seeded by the request key, so a slate can
be rebuilt exactly.

Credit: ``slate_credit`` counts one slate's clicks and conversions by team, ``user_credit``
turns slates into per-user credit (per-slate votes or summed scores), and
``preference_test`` tests the users' b - a credit.
"""

from __future__ import annotations

import random
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

import numpy as np
import pandas as pd
from scipy.stats import binomtest, ttest_1samp

from twinengine.discovery.experiments.assignment import fnv1a32

T = TypeVar("T", bound=Hashable)

TEAM_A, TEAM_B = "a", "b"
LABEL_PREFIX = "td:"


def team_draft(
    list_a: Sequence[T], list_b: Sequence[T], *, key: str, k: int | None = None
) -> tuple[list[T], list[str]]:
    """Merge two rankings by team draft; returns the slate and each position's team ("a"/"b").

    ``key`` (the request id) seeds the coin flips, so the same inputs give the same slate in
    any process. ``k`` caps the slate length (default: every distinct item of both lists).
    """
    rng = random.Random(fnv1a32(key))
    limit = k if k is not None else len(set(list_a) | set(list_b))
    merged: list[T] = []
    teams: list[str] = []
    seen: set[T] = set()
    ia = ib = 0
    picks_a = picks_b = 0
    while len(merged) < limit:
        while ia < len(list_a) and list_a[ia] in seen:
            ia += 1
        while ib < len(list_b) and list_b[ib] in seen:
            ib += 1
        a_left, b_left = ia < len(list_a), ib < len(list_b)
        if not a_left and not b_left:
            break
        # The team with fewer picks goes next; a tie is broken by the coin.
        a_turn = picks_a < picks_b or (picks_a == picks_b and rng.random() < 0.5)
        if (a_turn and a_left) or not b_left:
            item, ia, picks_a, team = list_a[ia], ia + 1, picks_a + 1, TEAM_A
        else:
            item, ib, picks_b, team = list_b[ib], ib + 1, picks_b + 1, TEAM_B
        seen.add(item)
        merged.append(item)
        teams.append(team)
    return merged, teams


def teams_label(teams: Iterable[str]) -> str:
    """The compact string logged as the experiment's variant: ``td:`` + one letter a position."""
    return LABEL_PREFIX + "".join(teams)


def parse_label(label: str | None) -> str | None:
    """The team letters of a logged label, or None when it is not an interleaving label."""
    if not label or not label.startswith(LABEL_PREFIX):
        return None
    return label[len(LABEL_PREFIX) :]


def team_at(label: str | None, position: int | None) -> str | None:
    """The team that drafted the 1-based ``position`` of a logged slate, if known."""
    letters = parse_label(label)
    if letters is None or position is None or not 1 <= position <= len(letters):
        return None
    return letters[position - 1]


CREDIT_COLUMNS = ("clicks_a", "clicks_b", "conversions_a", "conversions_b")


def slate_credit(
    teams: str | Sequence[str], clicked: Iterable[int], converted: Iterable[int] = ()
) -> tuple[int, int, int, int]:
    """One interleaved slate's clicks and conversions by team, as ``CREDIT_COLUMNS``.

    ``teams`` is the slate's team letters (or its ``td:`` label); positions are 1-based; a
    position outside the slate credits no one.
    """
    if isinstance(teams, str):
        teams = parse_label(teams) if teams.startswith(LABEL_PREFIX) else teams
    out = [0, 0, 0, 0]
    for offset, positions in ((0, clicked), (2, converted)):
        for p in positions:
            team = teams[p - 1] if 1 <= p <= len(teams) else None
            if team == TEAM_A:
                out[offset] += 1
            elif team == TEAM_B:
                out[offset + 1] += 1
    return out[0], out[1], out[2], out[3]


def user_credit(
    slates: pd.DataFrame,
    *,
    conversion_weight: float = 0.0,
    per_slate: bool = False,
    user: str = "user_key",
) -> pd.DataFrame:
    """Per user (the index), ``credit_a`` and ``credit_b`` from one row per shown slate.

    ``slates`` holds ``user`` and ``CREDIT_COLUMNS``; include slates nobody clicked, so every
    exposed user is a row (a tie). A slate's score for a team is its clicks plus
    ``conversion_weight`` x its conversions. ``per_slate``: each slate is one vote for the team
    with the higher score (none on a tie) and a user's credit is the votes they cast, the
    per-impression preference of Chapelle et al. (2012), summed per user so that the user stays
    the unit of the test; otherwise a user's credit is their summed scores. The defaults
    (clicks summed per user) were the most sensitive of these in ``bench/exp.py``.
    """
    w = float(conversion_weight)
    sa = slates["clicks_a"].to_numpy(float) + w * slates["conversions_a"].to_numpy(float)
    sb = slates["clicks_b"].to_numpy(float) + w * slates["conversions_b"].to_numpy(float)
    if per_slate:
        sa, sb = (sa > sb).astype(float), (sb > sa).astype(float)
    frame = pd.DataFrame({"credit_a": sa, "credit_b": sb}, index=slates[user].to_numpy())
    out = frame.groupby(level=0, sort=True).sum()
    out.index.name = user
    return out


@dataclass
class PreferenceResult:
    """Per-user preference: counts, a paired t-test on the credit difference, a sign test."""

    signal: str
    users: int
    wins_a: int
    wins_b: int
    ties: int
    delta: float  # (wins_b - wins_a) / users: > 0 means ranker b is preferred
    mean_diff: float  # mean over users of credit_b - credit_a
    p_value: float  # paired t-test of credit_b - credit_a against 0 (uses the magnitudes)
    p_sign: float  # sign test over users who prefer one side (robust, less powerful)
    preferred: str | None  # "a", "b", or None when not significant

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def preference_test(
    credit_a: Sequence[float] | np.ndarray,
    credit_b: Sequence[float] | np.ndarray,
    *,
    signal: str,
    alpha: float = 0.05,
) -> PreferenceResult:
    """Does users' credit favour ranker a or b? Units are users, not requests, so one heavy
    user's many slates count once; under "no difference" the coin makes each user's
    b - a credit symmetric around 0, which both tests check."""
    if len(credit_a) != len(credit_b):
        raise ValueError("credit_a and credit_b must have the same length")
    diff = np.asarray(credit_b, float) - np.asarray(credit_a, float)
    users = len(diff)
    wins_b, wins_a = int((diff > 0).sum()), int((diff < 0).sum())
    ties = users - wins_a - wins_b
    decided = wins_a + wins_b
    p_sign = float(binomtest(wins_b, decided, 0.5).pvalue) if decided else 1.0
    p = 1.0
    if users > 1 and diff.std() > 0:
        p = float(ttest_1samp(diff, 0.0).pvalue)
    mean = float(diff.mean()) if users else 0.0
    preferred = (TEAM_B if mean > 0 else TEAM_A) if p < alpha else None
    delta = (wins_b - wins_a) / users if users else 0.0
    return PreferenceResult(signal, users, wins_a, wins_b, ties, delta, mean, p, p_sign, preferred)
