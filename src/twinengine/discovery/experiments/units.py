"""Turn logged requests and outcomes into one row per user (the unit of randomisation)."""

from __future__ import annotations

import pandas as pd

from twinengine.discovery.experiments.interleaving import (
    LABEL_PREFIX,
    coin_covariate,
    position_credit,
)

DAY = pd.Timedelta(days=1)
UNIT_COLUMNS = [
    "user_key", "variant", "first_ts", "impressions", "clicks", "conversions", "revenue",
    "pre_clicks", "pre_conversions", "pre_revenue", "retained_d1", "retained_d7",
]  # fmt: skip


def build_units(
    requests: pd.DataFrame,
    outcomes: pd.DataFrame,
    pre: pd.DataFrame,
    *,
    until: pd.Timestamp,
) -> tuple[pd.DataFrame, int]:
    """Per-user metrics from everything logged before ``until``; also the users dropped
    because they were logged under more than one variant (a serving or config bug)."""
    req = requests[requests["ts"] < until]
    if req.empty:
        return pd.DataFrame(columns=UNIT_COLUMNS), 0
    users = req.groupby("user_key").agg(
        variant=("variant", "first"),
        n_variants=("variant", "nunique"),
        first_ts=("ts", "min"),
        impressions=("impressions", "sum"),
    )
    multiple = int((users["n_variants"] > 1).sum())
    users = users[users["n_variants"] == 1].drop(columns="n_variants")

    out = outcomes[outcomes["ts"] < until]
    clicks = out[out["type"] == "click"].groupby("user_key").size()
    conv = out[out["type"] == "conversion"]
    users["clicks"] = clicks.reindex(users.index, fill_value=0).astype(float)
    users["conversions"] = conv.groupby("user_key").size().reindex(users.index, fill_value=0)
    users["revenue"] = (
        conv["value"].fillna(0.0).groupby(conv["user_key"]).sum().reindex(users.index).fillna(0.0)
    )
    for kind, col in (("click", "clicks"), ("conversion", "conversions")):
        p = pre[pre["type"] == kind].set_index("user_key")
        users[f"pre_{col}"] = p["n"].reindex(users.index).fillna(0).astype(float)
    pc = pre[pre["type"] == "conversion"].set_index("user_key")
    users["pre_revenue"] = pc["value"].reindex(users.index).fillna(0.0).astype(float)

    # Retention: active again on day 1 (or 7) after first exposure; NaN while that day is
    # still in the future, so late arrivals do not count as churned.
    joined = req.join(users["first_ts"], on="user_key", how="inner")
    age = joined["ts"] - joined["first_ts"]
    for days, col in ((1, "retained_d1"), (7, "retained_d7")):
        back = ((age >= days * DAY) & (age < (days + 1) * DAY)).groupby(joined["user_key"]).any()
        flag = back.reindex(users.index, fill_value=False).astype(float)
        observable = users["first_ts"] + (days + 1) * DAY <= until
        users[col] = flag.where(observable)
    users = users.reset_index()
    return users[UNIT_COLUMNS], multiple


def interleaving_credit(
    requests: pd.DataFrame, outcomes: pd.DataFrame, *, until: pd.Timestamp
) -> pd.DataFrame:
    """Per user: click and conversion credit of team a and team b (``CREDIT_COLUMNS``, each
    event weighted by its position's rank gap as ``slate_credit`` does; zeros for users who
    saw interleaved slates and did nothing: they are ties; neutral picks credit no one) and
    ``coin``, the summed ``coin_covariate`` of their slates."""
    req = requests[(requests["ts"] < until) & requests["variant"].str.startswith(LABEL_PREFIX)]
    coin = req["variant"].map(coin_covariate).groupby(req["user_key"]).sum()
    users = pd.DataFrame(index=pd.Index(req["user_key"].unique(), name="user_key"))
    out = outcomes[(outcomes["ts"] < until) & outcomes["variant"].str.startswith(LABEL_PREFIX)]
    pos = out["position"].fillna(0).astype(int)
    credit = [position_credit(v, p) for v, p in zip(out["variant"], pos, strict=True)]
    out = out.assign(team=[t or "" for t, _ in credit], weight=[w for _, w in credit])
    for kind, name in (("click", "clicks"), ("conversion", "conversions")):
        for t in ("a", "b"):
            sel = out[(out["type"] == kind) & (out["team"] == t)]
            users[f"{name}_{t}"] = (sel.groupby("user_key")["weight"].sum()
                                    .reindex(users.index, fill_value=0.0))  # fmt: skip
    users["coin"] = coin.reindex(users.index, fill_value=0.0).astype(float)
    return users.reset_index()
