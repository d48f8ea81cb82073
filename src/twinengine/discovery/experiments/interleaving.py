"""Team-draft interleaving (Radlinski, Kurup and Joachims 2008) and its credit and test.

Two rankers each draft items into one merged slate, taking turns in an order decided by a
coin per round; clicks and conversions on an item credit the team that drafted it. Every
user sees both rankers at once, so the comparison is within-user and needs far fewer users
than an A/B test of the same rankers. The coin is seeded by the request key, so a slate can
be rebuilt exactly.

A pick that is also the other ranker's next pick is *neutral* (logged as its team's capital
letter): both rankers would have put that item there, so only the coin decided its team and
a click on it says nothing about which ranker is better. Neutral picks earn no credit, which
removes that coin noise without favouring either side (the "neutral" items of common
team-draft practice).

Rank gaps: ``interleave`` also logs, for each position, how far apart the two rankings place
its item (``|rank in a - rank in b|``), and a click credits its team ``log(1 + gap)``
instead of 1. A click on an item both rankers place alike says little about which is better;
one on an item that one ranker puts far above the other says much. The weight is symmetric
in a and b, so it favours neither; labels logged without gaps credit 1 a click.

Credit: ``slate_credit`` weighs one slate's clicks and conversions by team, ``user_credit``
turns slates into per-user credit (clicks + ``CONVERSION_WEIGHT`` x conversions, summed; or
per-slate votes), ``coin_covariate`` is the slate's position luck, and ``preference_test``
tests the users' b - a credit, adjusted for that luck.
"""

from __future__ import annotations

import random
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

import numpy as np
import pandas as pd
from scipy.stats import binomtest
from scipy.stats import t as student_t

from twinengine.discovery.experiments.assignment import fnv1a32

T = TypeVar("T", bound=Hashable)

TEAM_A, TEAM_B = "a", "b"
NEUTRAL_A, NEUTRAL_B = "A", "B"  # drafted by a (b), but the other ranker's next pick too
LABEL_PREFIX = "td:"
GAP_SEP = "/"  # label = td:<team letters>/<rank gap of each position, "." separated>
# Credit = clicks + this x conversions. Fixed before the fresh-seed benchmark run: a
# conversion is one more event of the same worth (weight 1; the pilot's variance-optimal
# weight was 1.08, and 3 was never validated).
CONVERSION_WEIGHT = 1.0
# The test winsorizes users' b - a credit at this quantile of its nonzero magnitudes: a few
# heavy users' large differences carry mostly noise. Clipping is symmetric in a and b, so
# under "no difference" the clipped credit stays centred on 0. Fixed on the pilot users
# (population n80 48 against 56 unclipped) before the fresh-seed benchmark run.
WINSOR_QUANTILE = 0.9


def team_draft(
    list_a: Sequence[T], list_b: Sequence[T], *, key: str, k: int | None = None
) -> tuple[list[T], list[str]]:
    """Merge two rankings by team draft; returns the slate and each position's team.

    Teams are "a"/"b", or "A"/"B" for a neutral pick: the item was the other ranker's next
    pick too (see the module docstring). ``key`` (the request id) seeds the coin flips, so the
    same inputs give the same slate in any process. ``k`` caps the slate length (default:
    every distinct item of both lists).
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
            neutral = b_left and list_b[ib] == item
        else:
            item, ib, picks_b, team = list_b[ib], ib + 1, picks_b + 1, TEAM_B
            neutral = a_left and list_a[ia] == item
        if neutral:
            team = NEUTRAL_A if team == TEAM_A else NEUTRAL_B
        seen.add(item)
        merged.append(item)
        teams.append(team)
    return merged, teams


def rank_gaps(list_a: Sequence[T], list_b: Sequence[T], merged: Sequence[T]) -> list[int]:
    """For each merged item, how far apart the two rankings place it (an item missing from a
    list ranks just after its end)."""
    ra = {x: i for i, x in enumerate(list_a)}
    rb = {x: i for i, x in enumerate(list_b)}
    return [abs(ra.get(x, len(list_a)) - rb.get(x, len(list_b))) for x in merged]


def interleave(
    list_a: Sequence[T], list_b: Sequence[T], *, key: str, k: int | None = None
) -> tuple[list[T], str]:
    """What serving calls: the team-draft slate and the label to log with its impression
    (team letters and rank gaps, which ``slate_credit`` reads back)."""
    merged, teams = team_draft(list_a, list_b, key=key, k=k)
    return merged, teams_label(teams, rank_gaps(list_a, list_b, merged))


def teams_label(teams: Iterable[str], gaps: Iterable[int] | None = None) -> str:
    """The compact string logged as the experiment's variant: ``td:`` + one letter a position,
    then (when given) ``/`` and each position's rank gap."""
    label = LABEL_PREFIX + "".join(teams)
    return label if gaps is None else label + GAP_SEP + ".".join(map(str, gaps))


def parse_label(label: str | None) -> str | None:
    """The team letters of a logged label, or None when it is not an interleaving label."""
    if not label or not label.startswith(LABEL_PREFIX):
        return None
    return label[len(LABEL_PREFIX) :].split(GAP_SEP, 1)[0]


def credit_weights(label: str | None) -> list[float] | None:
    """Each position's credit, ``log(1 + rank gap)``, or None when the label logs no gaps
    (then a click credits 1)."""
    if not label or not label.startswith(LABEL_PREFIX) or GAP_SEP not in label:
        return None
    return [float(np.log1p(int(g))) for g in label.split(GAP_SEP, 1)[1].split(".") if g]


def team_at(label: str | None, position: int | None) -> str | None:
    """The team ("a"/"b") that drafted the 1-based ``position`` of a logged slate, if known."""
    letters = parse_label(label)
    if letters is None or position is None or not 1 <= position <= len(letters):
        return None
    return letters[position - 1].lower()


def credited_team(letters: str | Sequence[str], position: int) -> str | None:
    """The team a click at the 1-based ``position`` credits: None outside the slate and on a
    neutral pick. Every credit (bench, report, dashboard) goes through here."""
    if not 1 <= position <= len(letters):
        return None
    team = letters[position - 1]
    return team if team in (TEAM_A, TEAM_B) else None


def coin_covariate(teams: str | Sequence[str]) -> float:
    """The slate's position luck: +1 when the coin gave ranker b the top credited slot, -1
    for a.

    The first coin decides who drafts position 1; when that pick is neutral (which depends on
    the rankings, not on the coin) the coin's loser drafts position 2, the top slot that
    earns credit. So this is the coin times a sign fixed by the rankings: its mean is exactly
    0 under any rankers, yet it explains part of each user's b - a credit (position bias),
    which makes it a free control variate for ``preference_test``.
    """
    if isinstance(teams, str):
        teams = parse_label(teams) if teams.startswith(LABEL_PREFIX) else teams
    if not teams:
        return 0.0
    first = teams[0]
    sign = 1.0 if first.lower() == TEAM_B else -1.0
    return sign if first in (TEAM_A, TEAM_B) else -sign


CREDIT_COLUMNS = ("clicks_a", "clicks_b", "conversions_a", "conversions_b")


def slate_credit(
    teams: str | Sequence[str], clicked: Iterable[int], converted: Iterable[int] = ()
) -> tuple[float, float, float, float]:
    """One interleaved slate's click and conversion credit by team, as ``CREDIT_COLUMNS``.

    ``teams`` is the slate's team letters or its ``td:`` label; a label with rank gaps
    weighs each position by ``credit_weights``, otherwise each counts 1. Positions are
    1-based; a position outside the slate or a neutral pick credits no one.
    """
    weights = None
    if isinstance(teams, str) and teams.startswith(LABEL_PREFIX):
        weights = credit_weights(teams)
        teams = parse_label(teams) or ""
    out = [0.0, 0.0, 0.0, 0.0]
    for offset, positions in ((0, clicked), (2, converted)):
        for p in positions:
            team = credited_team(teams, p)
            if team is None:
                continue
            out[offset + (team == TEAM_B)] += _weight_at(weights, p)
    return out[0], out[1], out[2], out[3]


def position_credit(label: str | None, position: int | None) -> tuple[str | None, float]:
    """The team a click at ``position`` of a logged slate credits (None: no one) and how much:
    ``slate_credit`` for one position, for the report's per-event rows."""
    letters = parse_label(label)
    if letters is None or position is None:
        return None, 0.0
    team = credited_team(letters, position)
    return team, (_weight_at(credit_weights(label), position) if team else 0.0)


def _weight_at(weights: list[float] | None, position: int) -> float:
    """The credit of a 1-based position: its logged weight, or 1 when the label has none."""
    return weights[position - 1] if weights is not None and position <= len(weights) else 1.0


def user_credit(
    slates: pd.DataFrame,
    *,
    conversion_weight: float = CONVERSION_WEIGHT,
    click_weight: float = 1.0,
    per_slate: bool = False,
    user: str = "user_key",
) -> pd.DataFrame:
    """Per user (the index), ``credit_a``, ``credit_b`` and ``coin`` from rows of ``slates``.

    ``slates`` holds ``user``, ``CREDIT_COLUMNS`` and optionally ``coin`` (``coin_covariate``;
    0 when absent), one row per shown slate (or already one per user); include slates nobody
    clicked, so every exposed user is a row (a tie). A slate's score for a team is
    ``click_weight`` x its clicks plus ``conversion_weight`` x its conversions. ``per_slate``:
    each slate is one vote for the team with the higher score (none on a tie) and a user's
    credit is the votes they cast, the per-impression preference of Chapelle et al. (2012),
    summed per user so that the user stays the unit of the test; otherwise (the default) a
    user's credit is their summed scores.
    """
    w, wc = float(conversion_weight), float(click_weight)
    sa = wc * slates["clicks_a"].to_numpy(float) + w * slates["conversions_a"].to_numpy(float)
    sb = wc * slates["clicks_b"].to_numpy(float) + w * slates["conversions_b"].to_numpy(float)
    if per_slate:
        sa, sb = (sa > sb).astype(float), (sb > sa).astype(float)
    coin = slates["coin"].to_numpy(float) if "coin" in slates else np.zeros(len(slates))
    frame = pd.DataFrame({"credit_a": sa, "credit_b": sb, "coin": coin},
                         index=slates[user].to_numpy())  # fmt: skip
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
    mean_diff: float  # mean over users of credit_b - credit_a (winsorized), coin-adjusted
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
    coin: Sequence[float] | np.ndarray | None = None,
    winsor: float | None = WINSOR_QUANTILE,
) -> PreferenceResult:
    """Does users' credit favour ranker a or b? Units are users, not requests, so one heavy
    user's many slates count once; under "no difference" the coin makes each user's
    b - a credit symmetric around 0, which both tests check.

    ``coin``: each user's summed ``coin_covariate``. Its mean is 0 by design, so regressing
    the difference on it (OLS, testing the intercept with n - 2 degrees of freedom) removes
    the position luck the coin dealt each user without biasing the mean: CUPED with a
    covariate the randomisation itself provides.

    ``winsor``: the t-test clips each user's difference at this quantile of the nonzero
    magnitudes (None: no clipping); the counts and the sign test use the raw differences.
    """
    if len(credit_a) != len(credit_b):
        raise ValueError("credit_a and credit_b must have the same length")
    diff = np.asarray(credit_b, float) - np.asarray(credit_a, float)
    users = len(diff)
    wins_b, wins_a = int((diff > 0).sum()), int((diff < 0).sum())
    ties = users - wins_a - wins_b
    decided = wins_a + wins_b
    p_sign = float(binomtest(wins_b, decided, 0.5).pvalue) if decided else 1.0
    tested = diff
    if winsor is not None and decided:
        cap = float(np.quantile(np.abs(diff[diff != 0]), winsor))
        tested = np.clip(diff, -cap, cap)
    mean, p = _adjusted_mean_test(tested, None if coin is None else np.asarray(coin, float))
    preferred = (TEAM_B if mean > 0 else TEAM_A) if p < alpha else None
    delta = (wins_b - wins_a) / users if users else 0.0
    return PreferenceResult(signal, users, wins_a, wins_b, ties, delta, mean, p, p_sign, preferred)


def _adjusted_mean_test(diff: np.ndarray, coin: np.ndarray | None) -> tuple[float, float]:
    """(mean, two-sided p) of ``diff``: a one-sample t-test, or with ``coin`` the intercept of
    ``diff ~ 1 + coin`` (the mean at coin 0, its expectation)."""
    n = len(diff)
    if n == 0:
        return 0.0, 1.0
    sxx = float(((coin - coin.mean()) ** 2).sum()) if coin is not None else 0.0
    if coin is None or n < 4 or sxx == 0:
        mean = float(diff.mean())
        sd = float(diff.std(ddof=1)) if n > 1 else 0.0
        if sd == 0:
            return mean, 1.0
        return mean, float(2 * student_t.sf(abs(mean) / (sd / np.sqrt(n)), n - 1))
    slope = float(((coin - coin.mean()) * (diff - diff.mean())).sum()) / sxx
    mean = float(diff.mean() - slope * coin.mean())
    resid = diff - mean - slope * coin
    s2 = float((resid**2).sum()) / (n - 2)
    se = float(np.sqrt(s2 * (1.0 / n + coin.mean() ** 2 / sxx)))
    if se == 0:
        return mean, 1.0
    return mean, float(2 * student_t.sf(abs(mean) / se, n - 2))
