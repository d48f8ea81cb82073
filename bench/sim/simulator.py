"""The behaviour simulator: users browse slates, examine by position, click and copy.

Ground truth, all exposed so that estimators can be checked against it:

- examination: ``true_examination(p) = (1 / p) ** eta`` (position-based model; ``eta`` is
  ``SimConfig.eta``, 1.0 by default), independent of the item;
- attractiveness: ``true_attractiveness(user, ids) = sigmoid(a * affinity + b * quality + c)``
  where affinity is the user's latent topic preference dotted with the item's topic mix,
  scaled so the user's best item has 1;
- click: ``P(click | shown at p) = true_examination(p) * attractiveness`` (damped for items the
  user clicked or copied before);
- copy (a conversion): ``P(copy | click) = true_copy_prob(user, ids)
  = sigmoid(a' * affinity + b' * quality + u * usefulness + c')``; with ``u = 0`` (the default)
  it is nearly a function of attractiveness, so ordering by clicks already orders by copies;
  ``SimConfig.copy_w_usefulness > 0`` gives items a conversion rate of their own.

The NDCG@10 of a slate uses attractiveness as the graded gain, against the best 10 items of
the whole catalog for that user.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bench.sim.drivers import Driver, SlateRequest
from bench.sim.world import SimUser, World, build_world, make_user
from twinengine.context import AppContext


@dataclass
class SimConfig:
    """Knobs of a simulation run; every run with the same config and catalog is identical."""

    seed: int = 0
    n_users: int = 200
    new_users_per_day: int = 5  # cold-start users joining each day
    days: int = 14
    start: dt.datetime | None = None  # default: midnight UTC ``days`` days ago
    slate_size: int = 10
    max_slates_per_session: int = 4
    continue_prob: float = 0.6  # after a slate, ask for another feed page
    related_prob: float = 0.4  # after a click, open the item's related slate
    eta: float = 1.0  # examination = (1 / position) ** eta
    w_affinity: float = 4.5
    w_quality: float = 0.7
    bias: float = -4.0
    copy_w_affinity: float = 3.0
    copy_w_quality: float = 0.5
    copy_bias: float = -2.5
    copy_w_usefulness: float = 0.0  # weight of the item's usefulness in P(copy | click)
    clicked_damp: float = 0.5  # attractiveness of an item the user already clicked
    copied_damp: float = 0.1  # ... and of one they already copied
    swap_rate: float = 0.0  # randomised swap exploration: P(swap position 1 with a random k)
    # What an exploration slate does: "swap" (position 1 with a random k, ``attributes["swap"]``)
    # or "shuffle" (a random order, ``attributes["orig_positions"]``: the policy's position of
    # each shown item), which moves every item and so says more about deep positions.
    explore: str = "swap"
    user_prefix: str = "sim-u"
    run_id: str = ""  # event ids are "<run_id>-<n>"; default "sim<seed>"


@dataclass
class SlateLog:
    """One shown slate and what the user did with it."""

    request_id: str
    surface: str
    items: list[str]
    clicked: list[int]  # 1-based positions
    copied: list[int]
    ndcg10: float
    swapped: int | None = None  # exploration: position swapped with position 1
    experiments: dict[str, str] = field(default_factory=dict)


@dataclass
class SessionLog:
    """One visit of one user."""

    user_key: str
    day: int
    start: dt.datetime
    slates: list[SlateLog]


@dataclass
class SimResult:
    """Every session of a run plus summary metrics."""

    sessions: list[SessionLog]
    events: int

    def metrics(self, surface: str | None = "feed") -> dict[str, float]:
        """CTR (clicks per shown item), CVR (copies per click), mean NDCG@10, returns."""
        slates = [s for ses in self.sessions for s in ses.slates]
        if surface:
            slates = [s for s in slates if s.surface == surface]
        shown = sum(len(s.items) for s in slates)
        clicks = sum(len(s.clicked) for s in slates)
        copies = sum(len(s.copied) for s in slates)
        users = {ses.user_key for ses in self.sessions}
        visits: dict[str, set[int]] = {}
        for ses in self.sessions:
            visits.setdefault(ses.user_key, set()).add(ses.day)
        d1 = [d + 1 in days for days in visits.values() for d in days]
        return {
            "slates": float(len(slates)),
            "ctr": clicks / shown if shown else 0.0,
            "cvr": copies / clicks if clicks else 0.0,
            "copies_per_slate": copies / len(slates) if slates else 0.0,
            "ndcg10": float(np.mean([s.ndcg10 for s in slates])) if slates else 0.0,
            "users": float(len(users)),
            "sessions": float(len(self.sessions)),
            "d1_return": float(np.mean(d1)) if d1 else 0.0,
        }


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


class Simulator:
    """Simulated users over the real catalog; see the module docstring for the truth."""

    def __init__(
        self, ctx: AppContext, config: SimConfig | None = None, *, world: World | None = None
    ) -> None:
        self.ctx = ctx
        self.config = config or SimConfig()
        self.world = world or build_world(ctx, seed=self.config.seed)
        self.rng = np.random.default_rng([self.config.seed, 1])
        self._user_rng = np.random.default_rng([self.config.seed, 2])
        self.users: list[SimUser] = []
        self._n_event = 0
        self._affinity: dict[str, np.ndarray] = {}
        self._ideal: dict[str, float] = {}
        self.run_id = self.config.run_id or f"sim{self.config.seed}"
        for _ in range(self.config.n_users):
            self.add_user(joined_day=0)

    # --- ground truth ----------------------------------------------------------------------
    def true_examination(self, position: int | np.ndarray) -> float | np.ndarray:
        """P(a user looks at the item shown at 1-based ``position``)."""
        return (1.0 / np.asarray(position, dtype=np.float64)) ** self.config.eta

    def affinity(self, user: SimUser) -> np.ndarray:
        """The user's topic affinity with every item, scaled so the best item has 1."""
        aff = self._affinity.get(user.key)
        if aff is None:
            raw = self.world.topic_matrix @ user.prefs
            aff = raw / raw.max()
            self._affinity[user.key] = aff
        return aff

    def _rows(self, item_ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        rows = self.world.rows(list(item_ids))
        return np.where(rows >= 0, rows, 0), rows >= 0

    def true_attractiveness(self, user: SimUser, item_ids: Sequence[str]) -> np.ndarray:
        """P(click | examined) for each item, before damping for repeats (0 for unknown ids)."""
        rows, known = self._rows(item_ids)
        c = self.config
        a = _sigmoid(
            c.w_affinity * self.affinity(user)[rows]
            + c.w_quality * self.world.quality[rows]
            + c.bias
        )
        return np.where(known, a, 0.0)

    def true_relevance(self, user: SimUser, item_ids: Sequence[str]) -> np.ndarray:
        """The graded gain NDCG uses: attractiveness."""
        return self.true_attractiveness(user, item_ids)

    def true_copy_prob(self, user: SimUser, item_ids: Sequence[str]) -> np.ndarray:
        """P(copy | click) for each item."""
        rows, known = self._rows(item_ids)
        c = self.config
        p = _sigmoid(
            c.copy_w_affinity * self.affinity(user)[rows]
            + c.copy_w_quality * self.world.quality[rows]
            + c.copy_w_usefulness * self.world.usefulness[rows]
            + c.copy_bias
        )
        return np.where(known, p, 0.0)

    def true_click_prob(self, user: SimUser, item_ids: Sequence[str]) -> np.ndarray:
        """P(click) of each item at its position in ``item_ids`` (with repeat damping)."""
        a = self.true_attractiveness(user, item_ids)
        damp = np.array(
            [
                self.config.copied_damp
                if i in user.copied
                else self.config.clicked_damp
                if i in user.clicked
                else 1.0
                for i in item_ids
            ]
        )
        return self.true_examination(np.arange(1, len(item_ids) + 1)) * a * damp

    def ideal_dcg(self, user: SimUser, k: int = 10) -> float:
        """DCG@k of the user's best k items in the whole catalog."""
        if user.key not in self._ideal:
            c = self.config
            gains = _sigmoid(
                c.w_affinity * self.affinity(user) + c.w_quality * self.world.quality + c.bias
            )
            top = np.sort(gains)[::-1][:k]
            self._ideal[user.key] = float((top / np.log2(np.arange(2, len(top) + 2))).sum())
        return self._ideal[user.key]

    def ndcg(self, user: SimUser, slate: Sequence[str], k: int = 10) -> float:
        """NDCG@k of a slate against the user's true attractiveness."""
        gains = self.true_relevance(user, list(slate)[:k])
        dcg = float((gains / np.log2(np.arange(2, len(gains) + 2))).sum())
        return dcg / self.ideal_dcg(user, k)

    def fork(self, ctx: AppContext) -> Simulator:
        """A copy in the same state (users, randomness) bound to ``ctx``: A/B arms replay alike."""
        other = copy.copy(self)
        other.ctx = ctx
        other.users = copy.deepcopy(self.users)
        other.rng = copy.deepcopy(self.rng)
        other._user_rng = copy.deepcopy(self._user_rng)
        other._affinity = dict(self._affinity)
        other._ideal = dict(self._ideal)
        return other

    # --- users -----------------------------------------------------------------------------
    def add_user(self, *, joined_day: int, key: str | None = None) -> SimUser:
        """A new simulated user (a cold-start user if they join after day 0)."""
        key = key or f"{self.config.user_prefix}{len(self.users):05d}"
        user = make_user(self.world, self._user_rng, key, joined_day)
        self.users.append(user)
        return user

    def user(self, key: str) -> SimUser:
        """The simulated user with ``key``."""
        for u in self.users:
            if u.key == key:
                return u
        raise KeyError(key)

    # --- running ---------------------------------------------------------------------------
    def start_time(self) -> dt.datetime:
        """When day 0 begins."""
        if self.config.start is not None:
            return self.config.start
        today = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        return today - dt.timedelta(days=self.config.days)

    def _id(self) -> str:
        self._n_event += 1
        return f"{self.run_id}-{self._n_event}"

    def run(self, driver: Driver, *, days: int | None = None, first_day: int = 0) -> SimResult:
        """Simulate ``days`` days (default: ``config.days``) from ``first_day`` via ``driver``."""
        days = self.config.days if days is None else days
        t0 = self.start_time()
        sessions: list[SessionLog] = []
        written_before = getattr(driver, "written", 0)
        for day in range(first_day, first_day + days):
            if day > 0:
                for _ in range(self.config.new_users_per_day):
                    self.add_user(joined_day=day)
            day_start = t0 + dt.timedelta(days=day)
            driver.on_day(day_start)
            todays: list[tuple[float, SimUser]] = []
            for user in self.users:
                if user.joined_day > day:
                    continue
                p = (
                    1.0
                    if user.joined_day == day
                    else min(0.95, user.return_rate * (1 + user.satisfaction))
                )
                if self.rng.random() < p:
                    todays.append((float(self.rng.uniform(0, 86_000)), user))
            todays.sort(key=lambda x: x[0])
            for offset, user in todays:
                sessions.append(
                    self.session(driver, user, day, day_start + dt.timedelta(seconds=offset))
                )
        driver.flush()
        return SimResult(sessions=sessions, events=getattr(driver, "written", 0) - written_before)

    def session(self, driver: Driver, user: SimUser, day: int, start: dt.datetime) -> SessionLog:
        """One visit: feed pages, and a related slate after some clicks."""
        c = self.config
        now = start
        slates: list[SlateLog] = []
        queue: list[tuple[str, str | None]] = [("feed", None)]
        shown: list[str] = []  # the next page of a session shows new items (infinite scroll)
        copies = 0
        while queue and len(slates) < c.max_slates_per_session:
            surface, item_id = queue.pop(0)
            req = SlateRequest(
                user=user,
                surface=surface,
                k=c.slate_size,
                now=now,
                request_id=self._id(),
                item_id=item_id,
                exclude=tuple(shown),
            )
            log, now, clicked_items = self._browse(driver, req)
            slates.append(log)
            shown.extend(log.items)
            copies += len(log.copied)
            if clicked_items and self.rng.random() < c.related_prob:
                queue.insert(0, ("related", clicked_items[0]))
            if surface == "feed" and self.rng.random() < c.continue_prob:
                queue.append(("feed", None))
        # A good visit brings people back sooner: return rate rises with copies.
        user.satisfaction = 0.7 * user.satisfaction + 0.3 * min(1.0, copies / 2)
        return SessionLog(user_key=user.key, day=day, start=start, slates=slates)

    def _browse(self, driver: Driver, req: SlateRequest) -> tuple[SlateLog, dt.datetime, list[str]]:
        served = driver.slate(req)
        shown = list(dict.fromkeys(served.items))[: req.k]  # a repeated id is shown once
        swapped = None
        orig_positions = None
        if self.config.swap_rate and len(shown) > 1 and self.rng.random() < self.config.swap_rate:
            if self.config.explore == "shuffle":
                perm = self.rng.permutation(len(shown))
                shown = [shown[i] for i in perm]
                orig_positions = [int(i) + 1 for i in perm]
            else:
                swapped = int(self.rng.integers(2, len(shown) + 1))
                shown[0], shown[swapped - 1] = shown[swapped - 1], shown[0]
        user, now = req.user, req.now
        base = {"user_id": user.key, "request_id": served.request_id, "surface": req.surface}
        events: list[dict[str, Any]] = []
        if shown:
            attrs: dict[str, Any] = {"sim": self.run_id}
            if swapped:
                attrs["swap"] = [1, swapped]
            if orig_positions:
                attrs["orig_positions"] = orig_positions
            imp = {"event_id": self._id(), "type": "impression", "ts": now.isoformat()}
            events.append(
                {**base, **imp, "slate": shown, "experiments": served.experiments or None,
                 "attributes": attrs}
            )  # fmt: skip
        p_click = self.true_click_prob(user, shown) if shown else np.zeros(0)
        p_copy = self.true_copy_prob(user, shown) if shown else np.zeros(0)
        clicked: list[int] = []
        copied: list[int] = []
        for pos, item in enumerate(shown, start=1):
            if self.rng.random() >= p_click[pos - 1]:
                continue
            now += dt.timedelta(seconds=float(self.rng.uniform(2, 20)))
            clicked.append(pos)
            user.clicked.add(item)
            ev = {**base, "item_id": item, "position": pos}
            events.append({**ev, "event_id": self._id(), "type": "click", "ts": now.isoformat()})
            dwell = float(self.rng.lognormal(9.0 + p_copy[pos - 1], 0.5))
            if self.rng.random() < p_copy[pos - 1]:
                copied.append(pos)
                user.copied.add(item)
                events.append(
                    {**ev, "event_id": self._id(), "type": "conversion", "kind": "copy",
                     "value": 1.0, "ts": (now + dt.timedelta(milliseconds=dwell / 2)).isoformat()}
                )  # fmt: skip
            events.append(
                {**ev, "event_id": self._id(), "type": "dwell", "value": round(dwell, 1),
                 "ts": (now + dt.timedelta(milliseconds=dwell)).isoformat()}
            )  # fmt: skip
            now += dt.timedelta(milliseconds=dwell)
        driver.send(events)
        log = SlateLog(
            request_id=served.request_id,
            surface=req.surface,
            items=shown,
            clicked=clicked,
            copied=copied,
            ndcg10=self.ndcg(user, shown) if shown else 0.0,
            swapped=swapped,
            experiments=served.experiments,
        )
        return log, now + dt.timedelta(seconds=5), [shown[p - 1] for p in clicked]
