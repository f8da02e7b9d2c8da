"""Alert rules (streams/state/alert_rules.py): hand-made cases and property tests, no broker."""

from __future__ import annotations

import dataclasses
import random
import statistics

from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from streams.settings import AlertConfig
from streams.state.alert_rules import EntityState, Mention, WindowStats, add_to_window, observe

HOUR = 3600.0


class Windows:
    """A plain re-implementation of the hopping windows the worker keeps in a Faust windowed table:
    the rules read the trailing window, [floor((ts - (size - step)) / step) * step, + size)."""

    def __init__(self, cfg: AlertConfig) -> None:
        self.cfg, self.values = cfg, {}

    def add(self, ts: float, score: float) -> WindowStats:
        size, step = self.cfg.window_s, self.cfg.step_s
        first = (ts // step) * step - size + step
        for k in range(int(size // step)):
            start = first + k * step
            self.values[start] = add_to_window(self.values.get(start), score)
        trailing = ((ts - (size - step)) // step) * step
        return WindowStats.from_table((trailing, trailing + size), self.values[trailing])


def run(cfg: AlertConfig, stream: list[tuple[float, float]], entity: str = "ACME"):
    state, windows, alerts = EntityState(), Windows(cfg), []
    for i, (ts, score) in enumerate(stream):
        mention = Mention(f"n{i}", entity, f"headline {i}", score, "", 1.0, ts)
        alerts += observe(state, mention, windows.add(ts, score), cfg, now=0.0)
    return state, alerts


def steady(rng: random.Random, hours: float, per_hour: float = 1.0, start: float = 0.0, mean: float = 0.0):
    out, t = [], start
    while True:
        t += rng.expovariate(per_hour / HOUR)
        if t >= start + hours * HOUR:
            return out
        out.append((t, max(-1.0, min(1.0, rng.gauss(mean, 0.35)))))


def test_a_turn_fires_one_shift_alert_and_steady_noise_fires_none():
    cfg = AlertConfig(threshold=0.0, volume_ratio=0.0)
    rng = random.Random(3)
    before = steady(rng, 72)
    turn_at = before[-1][0] + 1
    after = [(turn_at + i * HOUR / 3, -0.7) for i in range(40)]
    _, quiet = run(cfg, before)
    assert quiet == []
    _, alerts = run(cfg, before + after)
    assert [a.rule for a in alerts] == ["shift"]
    shift = alerts[0]
    assert shift.score < shift.baseline and "negative" in shift.detail
    news_after_turn = sum(1 for ts, _ in after if ts <= shift.ts)
    assert news_after_turn <= 12, news_after_turn
    assert shift.news[-1]["event_id"] == f"n{len(before) + news_after_turn - 1}"  # the news that caused it
    assert shift.alert_id == f"ACME:shift:{int(shift.window_start)}"


def test_threshold_and_volume_rules():
    cfg = AlertConfig(shift_k=100.0, threshold=0.5, volume_ratio=3.0, volume_min=8)
    rng = random.Random(5)
    base = steady(rng, 48)
    t = base[-1][0] + 1
    burst = [(t + i * 60.0, 0.1) for i in range(20)]  # 20 neutral news in 20 minutes
    _, alerts = run(cfg, base + burst)
    assert [a.rule for a in alerts] == ["volume"]
    t = burst[-1][0] + 2 * cfg.window_s
    glowing = [(t + i * HOUR / 2, 0.8) for i in range(6)]
    _, alerts = run(cfg, base + glowing)
    assert [a.rule for a in alerts] == ["threshold"] and alerts[0].score >= 0.5


def test_no_rule_fires_below_min_count():
    cfg = AlertConfig(min_count=5, threshold=0.1)
    _, alerts = run(cfg, [(i * HOUR * 3, -0.9) for i in range(30)])  # one news per 3 h, 6 h window
    assert alerts == []


def test_baseline_holds_only_news_that_left_the_window():
    cfg = AlertConfig(baseline_alpha=0.01)
    stream = [(i * HOUR, float(i % 3) / 3) for i in range(50)]
    state, _ = run(cfg, stream)
    newest = stream[-1][0]
    trailing_start = ((newest - (cfg.window_s - cfg.step_s)) // cfg.step_s) * cfg.step_s
    left = [s for ts, s in stream if ts < trailing_start]
    assert state.base_count == len(left)
    assert abs(state.base_mean - statistics.fmean(left)) < 1e-9  # n <= 1/alpha: the plain mean
    assert abs(state.base_std - statistics.pstdev(left)) < 1e-9
    assert len(state.pending) == len(stream) - len(left)


scores = st.floats(-1.0, 1.0, allow_nan=False)
streams_ = st.lists(st.tuples(st.floats(0, 10 * 24 * HOUR), scores), min_size=1, max_size=150)


@hsettings(max_examples=60, deadline=None)
@given(streams_, st.one_of(st.just(0.0), st.floats(1.0, 48 * HOUR)))
def test_cooldown_means_one_alert_per_rule_per_episode(stream, cooldown):
    cfg = AlertConfig(min_count=1, min_baseline=1, shift_k=0.5, threshold=0.2, volume_ratio=1.0, volume_min=1,
                      cooldown_s=cooldown)
    stream.sort()
    _, alerts = run(cfg, stream)
    for rule in ("shift", "threshold", "volume"):
        times = [a.ts for a in alerts if a.rule == rule]
        assert all(b - a >= cooldown for a, b in zip(times, times[1:])), (rule, times)


@hsettings(max_examples=60, deadline=None)
@given(streams_, st.floats(0.01, 1.0))
def test_baseline_stays_within_the_scores_it_saw(stream, alpha):
    cfg = dataclasses.replace(AlertConfig(), baseline_alpha=alpha)
    stream.sort()
    state, _ = run(cfg, stream)
    folded = [s for _, s in stream][: state.base_count]  # folded oldest first
    if folded:
        assert min(folded) - 1e-9 <= state.base_mean <= max(folded) + 1e-9
        assert state.base_var >= -1e-12
    assert state.base_count + len(state.pending) == len(stream)


def test_state_round_trips_through_json():
    import orjson

    state, _ = run(AlertConfig(), steady(random.Random(1), 30))
    assert EntityState.from_dict(orjson.loads(orjson.dumps(state.to_dict()))) == state
