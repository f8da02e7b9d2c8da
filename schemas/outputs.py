"""Records the worker publishes: profiles, dead letters, alerts (the API serves the same shapes)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Sequence


def _shallow_dict(record: Any) -> dict[str, Any]:
    # Shallow on purpose: dataclasses.asdict deep-copies every nested list and vector, a hot-path cost.
    return {f.name: getattr(record, f.name) for f in fields(record)}


@dataclass(frozen=True)
class UserProfile:
    """What the ``profiles`` topic and the profile API publish for a user."""

    user_id: str
    # facet name -> unit vector (decay-weighted average, renormalised); 1-D float arrays or lists,
    # written as JSON arrays either way (schemas.codec.dump_json)
    z: dict[str, Sequence[float]]
    weight: float  # decayed total event weight at updated_at: how much evidence stands behind z
    event_counts: dict[str, int]
    updated_at: float  # event time of the newest event applied
    last_event_id: str
    summary: dict[str, Any] = field(default_factory=dict)  # human-readable facet readings

    def to_dict(self) -> dict[str, Any]:
        return _shallow_dict(self)


@dataclass(frozen=True)
class DeadLetter:
    """A record the worker refused, with the reason and the original bytes (base64)."""

    reason: str
    topic: str
    partition: int | None
    offset: int | None
    raw_b64: str
    failed_at: float

    def to_dict(self) -> dict[str, Any]:
        return _shallow_dict(self)


@dataclass(frozen=True)
class Alert:
    """A news-sentiment alert for one entity, as published on the ``alerts`` topic and the API."""

    alert_id: str  # entity:rule:episode start - the same episode always gets the same id
    entity: str
    rule: str  # "shift" | "threshold" | "volume"
    window_start: float
    window_end: float
    score: float  # the window's mean sentiment in [-1, 1]
    baseline: float  # the entity's trailing mean sentiment before this window
    baseline_std: float
    count: int  # news in the window
    detail: str  # one line for people
    news: list[dict[str, Any]]  # [{event_id, headline, score}] of the news that caused it, newest last
    ts: float  # event time of the news that fired it
    fired_at: float  # wall clock when the worker fired it

    def to_dict(self) -> dict[str, Any]:
        return _shallow_dict(self)


@dataclass(frozen=True)
class Engagement:
    """An applied click or review, what item-side behaviour (popularity, co-engagement) is learned
    from. The ``engagements`` topic carries a micro-batch's as {"engagements": [...]}, up to 256 a
    record."""

    user_id: str
    event_id: str
    item_id: str
    ts: float
    weight: float  # the event type's weight
    previous: list[str]  # the user's earlier items, most recent first (a few)

    def to_dict(self) -> dict[str, Any]:
        return _shallow_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Engagement:
        """Raises KeyError, TypeError or ValueError on a malformed record."""
        previous = data["previous"]
        if not isinstance(previous, list) or not all(isinstance(p, str) for p in previous):
            raise ValueError("previous must be a list of item ids")
        return cls(str(data["user_id"]), str(data["event_id"]), str(data["item_id"]), float(data["ts"]),
                   float(data["weight"]), previous)


@dataclass(frozen=True)
class RankerStep:
    """A kept step of the recommender's ranker, proposed by one worker from its lessons and
    applied by every worker: the ``engagements`` record of the micro-batch it was learned in
    carries it as {"ranker_step": {...}} beside its engagements."""

    step_id: str  # unique: a record sent twice must not step twice
    features: list[str]  # the ranker's feature names, in the order of ``step``
    step: list[float]

    def to_dict(self) -> dict[str, Any]:
        return _shallow_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RankerStep:
        """Raises KeyError, TypeError or ValueError on a malformed record."""
        features, step = data["features"], data["step"]
        if not isinstance(features, list) or not isinstance(step, list) or len(features) != len(step):
            raise ValueError("features and step must be lists of the same length")
        return cls(str(data["step_id"]), [str(f) for f in features], [float(x) for x in step])
