"""Experiment statistics without a database: hashing, interleaving, gbstats analysis, decision."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chisquare

from twinengine.discovery.experiments.analysis import (
    AnalysisSettings,
    adjust,
    analyze,
    holm,
)
from twinengine.discovery.experiments.assignment import (
    assign,
    bucket_ranges,
    choose_variation,
    gb_hash,
    in_layer,
)
from twinengine.discovery.experiments.interleaving import (
    coin_covariate,
    credit_weights,
    credited_team,
    interleave,
    parse_label,
    position_credit,
    preference_test,
    rank_gaps,
    slate_credit,
    team_at,
    team_draft,
    teams_label,
    user_credit,
)

# --- hashing: GrowthBook's own test vectors (sdk-js test/cases.json) ---------------------------


@pytest.mark.parametrize(
    ("seed", "value", "version", "expected"),
    [
        ("feature", "123", 1, 0.863),
        ("feature", "456", 1, 0.178),
        ("feature", "fds", 1, 0.514),
        ("feature", "123", 2, 0.5231),
        ("", "a", 1, 0.22),
        ("b", "a", 1, 0.946),
    ],
)
def test_hash_matches_growthbook(seed: str, value: str, version: int, expected: float) -> None:
    assert gb_hash(seed, value, version) == expected


def test_growthbook_force_rule_v2_range() -> None:
    # cases.json "Force rule, hash version 2": id "1" with seed "feature" lands in [0.96, 0.97).
    assert 0.96 <= gb_hash("feature", "1", 2) < 0.97


def test_bucket_ranges_and_coverage() -> None:
    assert bucket_ranges([1, 1]) == [(0.0, 0.5), (0.5, 1.0)]
    assert bucket_ranges([0.5, 0.5], coverage=0.5) == [(0.0, 0.25), (0.5, 0.75)]
    ranges = bucket_ranges([0.2, 0.8])
    assert choose_variation(0.1, ranges) == 0
    assert choose_variation(0.9, ranges) == 1
    assert choose_variation(0.3, bucket_ranges([1, 1], coverage=0.5)) == -1


def test_assignment_follows_weights_and_is_deterministic() -> None:
    users = [f"user-{i}" for i in range(20000)]
    got = [assign(u, salt="s1", weights=(1, 3)) for u in users]
    counts = np.bincount(got, minlength=2)
    assert chisquare(counts, [5000, 15000]).pvalue > 0.001
    assert got == [assign(u, salt="s1", weights=(1, 3)) for u in users]
    # Another salt reshuffles: independent of the first split.
    other = [assign(u, salt="s2", weights=(1, 3)) for u in users]
    table = pd.crosstab(np.array(got), np.array(other)).to_numpy()
    expected = np.outer(table.sum(1), table.sum(0)) / table.sum()
    assert chisquare(table.ravel(), expected.ravel(), ddof=2).pvalue > 0.001


def test_layer_slices_exclude_each_other() -> None:
    users = [f"u{i}" for i in range(5000)]
    first = {u for u in users if assign(u, salt="x", weights=(1, 1), layer="rank",
                                        layer_range=(0.0, 0.5)) >= 0}  # fmt: skip
    second = {u for u in users if assign(u, salt="y", weights=(1, 1), layer="rank",
                                         layer_range=(0.5, 1.0)) >= 0}  # fmt: skip
    assert not first & second
    assert abs(len(first) - 2500) < 200 and len(first | second) == len(users)
    assert all(in_layer(u, "rank", 0.0, 0.5) for u in first)


# --- interleaving -----------------------------------------------------------------------------


def test_team_draft_merges_fairly_and_deterministically() -> None:
    a = [f"a{i}" for i in range(10)]
    b = ["a0", "b1", "a2", "b3", "b4", "a5", "b6", "b7", "b8", "b9"]
    merged, teams = team_draft(a, b, key="req-1", k=10)
    assert len(merged) == 10 and len(set(merged)) == 10
    assert (merged, teams) == team_draft(a, b, key="req-1", k=10)
    # Both rankers' first pick is a0: whoever drafts it, it is neutral (capital letter).
    assert merged[0] == "a0" and teams[0] in ("A", "B")
    lower = [t.lower() for t in teams]
    # Every prefix is balanced: the teams' pick counts differ by at most one.
    for i in range(1, len(teams) + 1):
        assert abs(lower[:i].count("a") - lower[:i].count("b")) <= 1
    # Each team's items appear in its ranker's order.
    for team, ranking in (("a", a), ("b", b)):
        mine = [m for m, t in zip(merged, lower, strict=True) if t == team]
        assert mine == sorted(mine, key=ranking.index)
    # A pick is neutral exactly when it was the other ranker's next pick too.
    for i, (item, t) in enumerate(zip(merged, teams, strict=True)):
        other = b if t.lower() == "a" else a
        nxt = next(x for x in other if x not in merged[:i])
        assert t.isupper() == (nxt == item)
    # Over many requests, each ranker leads first equally often.
    leads = [team_draft(a, b, key=f"r{i}", k=2)[1][0].lower() for i in range(2000)]
    assert 900 < leads.count("a") < 1100


def test_team_draft_identical_lists_and_short_list() -> None:
    same = ["x", "y", "z"]
    merged, teams = team_draft(same, same, key="k")
    assert merged == same and len(teams) == 3
    assert all(t in ("A", "B") for t in teams)  # identical rankers: nothing earns credit
    merged, teams = team_draft(["p"], ["q", "r", "s"], key="k", k=4)
    assert sorted(merged) == ["p", "q", "r", "s"] and teams.count("a") == 1


def _interleaved_experiment(
    rng: np.random.Generator, users: int, *, better_b: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-user click credit (rank-gap weighted, as logged by ``interleave``) and coin
    covariate of an interleaving test: ranker a is a noisy oracle, ranker b an exact one (or
    equally noisy); users click by the truth with a position bias."""
    ca, cb, coin = np.zeros(users), np.zeros(users), np.zeros(users)
    for u in range(users):
        for s in range(3):
            truth = rng.random(20)
            items = list(range(20))
            la = sorted(items, key=lambda i: -(truth[i] + rng.normal(0, 0.3)))
            noise_b = 0.0 if better_b else 0.3
            lb = sorted(items, key=lambda i: -(truth[i] + rng.normal(0, noise_b)))
            merged, label = interleave(la, lb, key=f"u{u}-{s}", k=10)
            clicked = [p for p, i in enumerate(merged, 1) if rng.random() < truth[i] ** 2 / p]
            got = slate_credit(label, clicked)
            ca[u] += got[0]
            cb[u] += got[1]
            coin[u] += coin_covariate(label)
    return ca, cb, coin


def test_slate_credit_keeps_the_null_and_finds_the_better_ranker() -> None:
    rng = np.random.default_rng(3)
    # A against an equally good ranker: about alpha of the tests are significant.
    nulls = [_interleaved_experiment(rng, 40, better_b=False) for _ in range(60)]
    for adjusted in (False, True):
        false_pos = sum(
            preference_test(ca, cb, signal="clicks", coin=coin if adjusted else None).preferred
            is not None
            for ca, cb, coin in nulls
        )
        assert false_pos <= 8
    ca, cb, coin = _interleaved_experiment(rng, 150, better_b=True)
    assert preference_test(ca, cb, signal="clicks").preferred == "b"
    assert preference_test(ca, cb, signal="clicks", coin=coin).preferred == "b"


def test_coin_covariate_is_the_top_credited_slot() -> None:
    assert coin_covariate("td:ba") == 1.0 and coin_covariate(["a", "b"]) == -1.0
    # Position 1 neutral: the coin's loser drafted position 2, the top slot with credit.
    assert coin_covariate("td:Ab") == 1.0 and coin_covariate("Ba") == -1.0
    assert coin_covariate("td:") == 0.0
    # Its mean is 0 whatever the rankings: the coin decides who drafts first.
    a, b = [f"a{i}" for i in range(10)], ["a0", *(f"b{i}" for i in range(1, 10))]
    covs = [coin_covariate(team_draft(a, b, key=f"q{i}", k=10)[1]) for i in range(4000)]
    assert abs(np.mean(covs)) < 0.05


def test_preference_test_coin_adjustment() -> None:
    rng = np.random.default_rng(11)
    coin = rng.choice([-3.0, -1.0, 1.0, 3.0], 400)
    diff = 0.2 + 0.8 * coin + rng.normal(0, 1, 400)  # position luck plus a small preference
    plain = preference_test(np.zeros(400), diff, signal="x")
    adj = preference_test(np.zeros(400), diff, signal="x", coin=coin)
    assert adj.p_value < plain.p_value and adj.preferred == "b"
    assert adj.mean_diff == pytest.approx(0.2, abs=0.15)
    # A constant covariate carries nothing: the plain test.
    same = preference_test(np.zeros(400), diff, signal="x", coin=np.ones(400))
    assert same.p_value == pytest.approx(plain.p_value)


def test_slate_credit_by_team() -> None:
    assert slate_credit("td:abba", [1, 2, 3, 4], [2]) == (2, 2, 0, 1)
    assert slate_credit("td:Abab", [1, 2], [1, 2]) == (0, 1, 0, 1)  # a neutral pick: no credit
    assert credited_team("Ab", 1) is None and credited_team("Ab", 2) == "b"
    assert credited_team("Ab", 3) is None and team_at("td:Ab", 1) == "a"
    assert slate_credit("ab", [3, 9, 0], [3]) == (0, 0, 0, 0)  # positions outside the slate
    assert slate_credit(["b", "a"], [1], [1]) == (0, 1, 0, 1)


def test_user_credit_per_slate_votes_and_summed_scores() -> None:
    slates = pd.DataFrame(
        [("u1", 2, 0, 0, 0), ("u1", 0, 1, 0, 1), ("u1", 1, 1, 0, 0), ("u2", 0, 0, 0, 0),
         ("u3", 3, 1, 0, 1)],
        columns=["user_key", "clicks_a", "clicks_b", "conversions_a", "conversions_b"],
    )  # fmt: skip
    slates = slates.assign(coin=[1.0, -1.0, 1.0, 1.0, -1.0])
    votes = user_credit(slates, conversion_weight=3.0, per_slate=True)[["credit_a", "credit_b"]]
    assert votes.loc["u1"].tolist() == [1.0, 1.0] and votes.loc["u2"].tolist() == [0.0, 0.0]
    assert votes.loc["u3"].tolist() == [0.0, 1.0]  # 3 clicks < 1 click + 1 conversion
    sums = user_credit(slates, per_slate=False, conversion_weight=3.0)[["credit_a", "credit_b"]]
    assert sums.loc["u1"].tolist() == [3.0, 5.0] and sums.loc["u3"].tolist() == [3.0, 4.0]
    clicks = user_credit(slates, per_slate=True, conversion_weight=0.0)[["credit_a", "credit_b"]]
    assert clicks.loc["u3"].tolist() == [1.0, 0.0] and list(clicks.index) == ["u1", "u2", "u3"]
    default = user_credit(slates)  # clicks + 1 x conversions summed per user, coin summed
    assert default.loc["u1"].tolist() == [3.0, 3.0, 1.0]
    assert default.loc["u3"].tolist() == [3.0, 2.0, -1.0]
    convs = user_credit(slates, click_weight=0.0, conversion_weight=1.0)
    assert convs.loc["u1", "credit_b"] == 1.0 and convs.loc["u1", "credit_a"] == 0.0


def test_rank_gaps_weigh_credit() -> None:
    a, b = ["x", "y", "z", "w"], ["z", "y", "x"]  # "w" is missing from b: ranks after its end
    assert rank_gaps(a, b, ["x", "z", "y", "w"]) == [2, 2, 0, 0]
    merged, label = interleave(a, b, key="req-9", k=4)
    assert merged == team_draft(a, b, key="req-9", k=4)[0]
    letters = parse_label(label)
    assert letters is not None and len(letters) == 4 and "/" not in letters
    gaps = rank_gaps(a, b, merged)
    assert label == teams_label(letters, gaps) and credit_weights(label) == pytest.approx(
        np.log1p(gaps).tolist())
    # log(1 + gap) a click; a label without gaps credits 1, a neutral pick or gap 0 nothing.
    w = np.log1p(3.0)
    assert slate_credit("td:abBa/3.3.0.1", [1, 2, 3], [2]) == pytest.approx((w, w, 0.0, w))
    assert slate_credit("td:ab/0.5", [1, 2]) == pytest.approx((0.0, np.log1p(5.0), 0.0, 0.0))
    assert slate_credit("td:ab", [1, 2]) == (1.0, 1.0, 0.0, 0.0)
    assert position_credit("td:ab/0.5", 2) == ("b", pytest.approx(np.log1p(5.0)))
    assert position_credit("td:Ab/2.5", 1) == (None, 0.0)
    assert position_credit("td:ab", 1) == ("a", 1.0) and position_credit("ctl", 1) == (None, 0.0)
    assert coin_covariate("td:ba/1.2") == coin_covariate("td:ba") == 1.0
    assert team_at("td:ab/3.1", 2) == "b" and credit_weights("td:ab") is None


def test_labels_round_trip() -> None:
    label = teams_label(["a", "b", "b", "a"])
    assert label == "td:abba" and parse_label(label) == "abba"
    assert team_at(label, 2) == "b" and team_at(label, 5) is None and team_at("control", 1) is None


def test_preference_sign_test() -> None:
    strong = preference_test([0] * 60 + [1] * 20, [1] * 60 + [0] * 20, signal="clicks")
    assert strong.wins_b == 60 and strong.wins_a == 20 and strong.preferred == "b"
    assert strong.p_value < 0.001 and strong.p_sign < 0.001 and strong.delta == pytest.approx(0.5)
    assert strong.mean_diff == pytest.approx(0.5)
    even = preference_test([1, 0, 1, 0, 2], [0, 1, 0, 1, 2], signal="clicks")
    assert even.preferred is None and even.ties == 1 and even.p_value == 1.0
    assert even.p_sign == 1.0
    # Magnitudes count for the t-test: few users, each strongly for b.
    few = preference_test([0, 0, 0, 0, 0, 1], [5, 6, 4, 5, 7, 0], signal="clicks")
    assert few.preferred == "b" and few.p_value < few.p_sign


def test_preference_winsorizes_heavy_users() -> None:
    # 40 users mildly for b, one heavy user far for a: the raw mean is dragged to ~0, the
    # winsorized test still sees b; the counts and the sign test are the same either way.
    rng = np.random.default_rng(2)
    diff = np.r_[rng.integers(1, 4, 40).astype(float), [-200.0], np.zeros(9)]
    raw = preference_test(np.zeros(50), diff, signal="x", winsor=None)
    clipped = preference_test(np.zeros(50), diff, signal="x")
    assert raw.preferred is None and clipped.preferred == "b"
    assert (raw.wins_a, raw.wins_b, raw.p_sign) == (clipped.wins_a, clipped.wins_b, clipped.p_sign)
    assert 0 < clipped.mean_diff <= 3
    # Symmetric: swapping a and b mirrors the result.
    mirror = preference_test(diff, np.zeros(50), signal="x")
    assert mirror.preferred == "a" and mirror.p_value == pytest.approx(clipped.p_value)
    assert preference_test(np.zeros(5), np.zeros(5), signal="x").p_value == 1.0  # all ties


# --- multiple testing -------------------------------------------------------------------------


def test_holm_and_bh() -> None:
    p = [0.01, 0.04, 0.03, 0.005]
    # Holm by hand: sorted 0.005*4, 0.01*3, 0.03*2, 0.04*1 with running max.
    assert holm(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert adjust(p, "bh") == pytest.approx([0.02, 0.04, 0.04, 0.02])
    assert adjust(p, "none") == p
    with pytest.raises(ValueError):
        adjust(p, "bonferroni")


# --- analysis with gbstats --------------------------------------------------------------------


def _units(
    n: int, *, lift: float = 0.0, split: float = 0.5, seed: int = 1, imps: int = 30
) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    treat = rng.random(n) < split
    imps = rng.poisson(imps, n) + 1
    base = rng.beta(2, 40, n)  # each user's own CTR: heterogeneous, as real users are
    pre = rng.binomial(imps, base)
    clicks = rng.binomial(imps, np.minimum(1, base * np.where(treat, 1 + lift, 1)))
    conv = rng.binomial(clicks, 0.3)
    return pd.DataFrame({
        "variant": np.where(treat, "treatment", "control"),
        "impressions": imps, "clicks": clicks, "conversions": conv, "revenue": conv * 2.0,
        "pre_clicks": pre, "pre_conversions": rng.binomial(pre, 0.3), "pre_revenue": 0.0,
        "retained_d1": rng.binomial(1, 0.4, n).astype(float), "retained_d7": np.nan,
    })  # fmt: skip


def _run(units: pd.DataFrame, **settings: object) -> dict:
    return analyze(
        units, variants=["control", "treatment"], weights=[1, 1], primary=["ctr"],
        guardrails=["retention_d1"], secondary=["clicks_per_user", "cvr"],
        settings=AnalysisSettings(**settings),  # type: ignore[arg-type]
    )  # fmt: skip


def _metric(result: dict, mid: str) -> dict:
    return next(m for m in result["metrics"] if m["id"] == mid)["treatments"][0]


def test_ratio_metric_is_the_delta_method_ctr() -> None:
    units = _units(20000, lift=0.10)
    res = _run(units, sequential=False)
    t = _metric(res, "ctr")
    g = units.groupby("variant")[["clicks", "impressions"]].sum()
    ctr = g["clicks"] / g["impressions"]
    assert t["value"] == pytest.approx(ctr["treatment"])
    assert t["lift"] == pytest.approx(ctr["treatment"] / ctr["control"] - 1)
    assert t["ci"][0] < t["lift"] < t["ci"][1] and t["ci"][0] > 0
    assert t["significant"] and t["chance_to_win"] > 0.99
    assert res["decision"]["action"] == "ship" and res["decision"]["variant"] == "treatment"


def test_cuped_narrows_the_interval() -> None:
    units = _units(8000, lift=0.05, imps=300)  # enough per user for pre to predict post
    plain = _metric(_run(units, sequential=False, cuped=False), "clicks_per_user")
    cuped = _metric(_run(units, sequential=False, cuped=True), "clicks_per_user")
    width = lambda t: t["ci"][1] - t["ci"][0]  # noqa: E731
    assert width(cuped) < 0.8 * width(plain)
    assert abs(cuped["lift"] - plain["lift"]) < width(plain) / 2


def test_sequential_interval_is_wider_than_fixed() -> None:
    units = _units(5000, lift=0.05)
    fixed = _metric(_run(units, sequential=False), "ctr")
    seq = _metric(_run(units, sequential=True, sequential_tuning=5000), "ctr")
    assert seq["ci"][1] - seq["ci"][0] > fixed["ci"][1] - fixed["ci"][0]
    assert seq["p_value"] >= fixed["p_value"]


def test_aa_false_positive_rate_is_near_alpha() -> None:
    hits = 0
    for s in range(60):
        t = _metric(_run(_units(1500, seed=100 + s), sequential=False, min_users=10), "ctr")
        hits += t["p_value"] < 0.05
    assert hits <= 9  # 5% of 60 is 3; P(>= 10 | alpha=.05) < 0.1%


def test_srm_rolls_back() -> None:
    res = _run(_units(20000, split=0.53), sequential=False)
    assert not res["srm"]["ok"] and res["srm"]["p_value"] < 0.001
    assert res["decision"]["action"] == "roll back"
    assert "sample ratio mismatch" in res["decision"]["reason"]


def test_guardrail_harm_blocks_shipping() -> None:
    units = _units(20000, lift=0.10)
    treat = units["variant"] == "treatment"
    rng = np.random.default_rng(9)
    units.loc[treat, "retained_d1"] = rng.binomial(1, 0.3, int(treat.sum())).astype(float)
    res = _run(units, sequential=False)
    assert _metric(res, "ctr")["significant"]
    assert res["decision"]["action"] == "roll back"
    assert "D1 retention" in res["decision"]["reason"]


def test_fixed_horizon_waits_for_target_and_negative_rolls_back() -> None:
    units = _units(4000, lift=-0.2)
    early = _run(units, sequential=False, target_users=10000)
    assert early["decision"]["action"] == "keep running"
    assert "planned" in early["decision"]["reason"]
    late = _run(units, sequential=False, target_users=4000)
    assert late["decision"]["action"] == "roll back"


def test_too_few_users_keeps_running_and_bayesian_engine() -> None:
    assert _run(_units(50))["decision"]["action"] == "keep running"
    res = _run(_units(20000, lift=0.1), engine="bayesian")
    t = _metric(res, "ctr")
    assert t["chance_to_win"] > 0.99 and res["decision"]["action"] == "ship"


def test_unknown_metric_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown metric"):
        analyze(_units(10), variants=["control", "treatment"], weights=[1, 1], primary=["nope"])
