"""News-sentiment alert rules per entity: pure logic, no Faust (the news agents feed it).

Per entity the worker keeps
- the trailing **window** (hopping windows of ``window_s`` every ``step_s``, a Faust windowed
  table): news count, sum and sum of squares of their sentiment scores. The rules read the window
  that ends with the newest news (the full one, not the one that just opened);
- a **baseline**: exponentially weighted mean and variance of the scores of news that have left
  that window (each weighs ``baseline_alpha``; the first 1/alpha weigh equally), so the baseline
  is what was normal *before* the window, and a turn does not drag its own yardstick along.

Rules (each needs at least ``min_count`` news in the window):
- ``shift``: |window mean - baseline mean| > shift_k * sigma / sqrt(count), sigma = max(baseline
  std, sigma_floor); needs ``min_baseline`` news in the baseline. A z-test of the window mean.
- ``threshold``: |window mean| >= threshold (0 disables).
- ``volume``: count >= max(volume_min, volume_ratio * the baseline's news per window) (0 disables).
After an alert, the same entity+rule stays quiet for ``cooldown_s`` of event time: one alert per
episode. An alert's id is entity:rule:window start, so a re-sent alert keeps its id.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

from schemas import Alert
from streams.settings import AlertConfig

RECENT_NEWS = 50  # per entity: news kept to explain an alert
SEEN_IDS = 1000  # per entity: news ids remembered to drop a news item delivered twice
PENDING_MAX = 5000  # per entity: news in the window not yet in the baseline (oldest folded first)


def add_to_window(acc: Sequence[float] | None, score: float) -> list[float]:
    """The windowed table's update: [count, sum, sum of squares] + one score."""
    count, total, total_sq = acc if acc else (0, 0.0, 0.0)
    return [count + 1, total + score, total_sq + score * score]


@dataclass(frozen=True)
class WindowStats:
    start: float
    end: float
    count: int
    total: float
    total_sq: float

    @classmethod
    def from_table(cls, window_range: tuple[float, float], value: Sequence[float] | None) -> WindowStats:
        count, total, total_sq = value if value else (0, 0.0, 0.0)
        return cls(float(window_range[0]), float(window_range[1]), int(count), float(total), float(total_sq))

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else 0.0

    def to_dict(self) -> dict[str, float]:
        return {"start": self.start, "end": self.end, "count": self.count, "mean": self.mean}


@dataclass(frozen=True)
class Mention:
    """One news item about one entity, as the news agent scored it."""

    event_id: str
    entity: str
    headline: str
    score: float
    label: str
    confidence: float
    ts: float
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, data: Any) -> Mention:
        """A mention as the news agent wrote it; ValueError, naming the fields, for anything else
        (the topic is internal, but a record the rules cannot read must not stop the entity agent,
        which would read it again at every start)."""
        if not isinstance(data, dict):
            raise ValueError("a mention must be a JSON object")
        texts = {k: data.get(k, "" if k == "source" else None) for k in ("event_id", "entity", "headline", "label", "source")}
        numbers = {k: data.get(k) for k in ("score", "confidence", "ts")}
        bad = [k for k, v in texts.items() if not isinstance(v, str) or (k == "entity" and not v)]
        bad += [k for k, v in numbers.items()
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)]
        if bad:
            raise ValueError(f"mention field(s) missing or invalid: {', '.join(bad)}")
        return cls(**texts, **{k: float(v) for k, v in numbers.items()})


@dataclass
class EntityState:
    base_mean: float = 0.0
    base_var: float = 0.0
    base_count: int = 0
    base_first_ts: float = 0.0
    base_last_ts: float = 0.0
    pending: list[list[float]] = field(default_factory=list)  # [ts, score] still in the window
    recent: list[dict[str, Any]] = field(default_factory=list)  # newest last
    seen_ids: list[str] = field(default_factory=list)
    last_fired: dict[str, float] = field(default_factory=dict)  # rule -> event ts of its last alert

    def seen(self, event_id: str) -> bool:
        return event_id in self.seen_ids

    def fold(self, score: float, ts: float, alpha: float) -> None:
        """One news item leaves the window: fold it into the EW baseline."""
        self.base_count += 1
        a = max(alpha, 1.0 / self.base_count)
        diff = score - self.base_mean
        incr = a * diff
        self.base_mean += incr
        self.base_var = (1.0 - a) * (self.base_var + diff * incr)
        self.base_first_ts = ts if self.base_count == 1 else min(self.base_first_ts, ts)
        self.base_last_ts = max(self.base_last_ts, ts)

    @property
    def base_std(self) -> float:
        return math.sqrt(max(self.base_var, 0.0))

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EntityState:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


def observe(state: EntityState, mention: Mention, window: WindowStats, cfg: AlertConfig,
            now: float) -> list[Alert]:
    """Record ``mention`` (already counted in ``window``) and return the alerts it fires."""
    state.seen_ids.append(mention.event_id)
    del state.seen_ids[:-SEEN_IDS]
    state.recent.append({"event_id": mention.event_id, "headline": mention.headline,
                         "score": round(mention.score, 4), "ts": mention.ts})
    del state.recent[:-RECENT_NEWS]
    state.pending.append([mention.ts, mention.score])
    state.pending.sort(key=lambda p: p[0])
    while state.pending and (state.pending[0][0] < window.start or len(state.pending) > PENDING_MAX):
        ts, score = state.pending.pop(0)
        state.fold(score, ts, cfg.baseline_alpha)
    if window.count < cfg.min_count:
        return []
    fired = []
    for rule, detail in _rules(state, window, cfg):
        last = state.last_fired.get(rule)
        if last is not None and mention.ts < last + cfg.cooldown_s:
            continue
        state.last_fired[rule] = mention.ts
        news = [n for n in state.recent if n["ts"] >= window.start][-10:]
        fired.append(Alert(
            alert_id=f"{mention.entity}:{rule}:{int(window.start)}",
            entity=mention.entity, rule=rule, window_start=window.start, window_end=window.end,
            score=round(window.mean, 4), baseline=round(state.base_mean, 4),
            baseline_std=round(state.base_std, 4), count=window.count, detail=detail, news=news,
            ts=mention.ts, fired_at=now,
        ))
    return fired


def _rules(state: EntityState, window: WindowStats, cfg: AlertConfig) -> list[tuple[str, str]]:
    out = []
    mean, n = window.mean, window.count
    if state.base_count >= cfg.min_baseline:
        sigma = max(state.base_std, cfg.sigma_floor)
        z = (mean - state.base_mean) / (sigma / math.sqrt(n))
        if abs(z) > cfg.shift_k:
            direction = "negative" if z < 0 else "positive"
            out.append(("shift", f"sentiment turned {direction}: window mean {mean:+.2f} over {n} news vs "
                                 f"baseline {state.base_mean:+.2f} ± {sigma:.2f} (z = {z:+.1f})"))
    if cfg.threshold > 0 and abs(mean) >= cfg.threshold:
        side = "below" if mean < 0 else "above"
        out.append(("threshold", f"window mean {mean:+.2f} over {n} news is {side} "
                                 f"{'-' if mean < 0 else '+'}{cfg.threshold:.2f}"))
    if cfg.volume_ratio > 0 and state.base_count >= cfg.min_baseline and state.base_last_ts > state.base_first_ts:
        per_window = (state.base_count - 1) / (state.base_last_ts - state.base_first_ts) * cfg.window_s
        if n >= max(cfg.volume_min, cfg.volume_ratio * per_window):
            out.append(("volume", f"{n} news in the window vs {per_window:.1f} usual"))
    return out
