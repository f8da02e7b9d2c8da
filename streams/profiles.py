"""Applying decoded events to user state, and reading state back as profiles (no Faust here)."""

from __future__ import annotations

import enum
import time
from typing import Mapping

import numpy as np

from schemas import ClickEvent, InvalidEvent, ReviewEvent, SearchEvent, UserProfile, WatchlistEvent
from streams.decay import InterestState
from streams.settings import Settings

UserEvent = SearchEvent | ClickEvent | ReviewEvent


def split_facets(vector: np.ndarray, layout: Mapping[str, int]) -> dict[str, np.ndarray]:
    """Concatenated facets (last axis) -> facet name -> its slice."""
    out, start = {}, 0
    for name, dim in layout.items():
        out[name] = vector[..., start : start + dim]
        start += dim
    return out


def join_facets(facets: Mapping[str, np.ndarray], layout: Mapping[str, int]) -> np.ndarray:
    return np.concatenate([np.asarray(facets[name], dtype=np.float64) for name in layout])


RECENT_EVENT_IDS = 100  # per user: how far back a re-sent event id is recognised
RECENT_MOVERS = 20  # per user: recent events kept with how much they moved each facet


def facet_movement(before: np.ndarray | None, after: np.ndarray, layout: Mapping[str, int]) -> dict[str, float]:
    """Per facet, 1 - cosine between the average before and after an event (0 = unmoved, 1 = the
    first event, up to 2 = reversed)."""
    if before is None:
        return {name: 1.0 for name in layout}
    b, a = split_facets(before, layout), split_facets(after, layout)
    out = {}
    for name in layout:
        nb, na = float(np.linalg.norm(b[name])), float(np.linalg.norm(a[name]))
        cos = float(b[name] @ a[name]) / (nb * na) if nb > 1e-12 and na > 1e-12 else 0.0
        out[name] = round(1.0 - cos, 6)
    return out


def top_movers(state: InterestState, per_facet: int = 3) -> dict[str, list[dict[str, object]]]:
    """For each facet, the recent events that moved it most (largest first)."""
    facets = state.movers[-1]["moved"].keys() if state.movers else []
    return {
        f: [{"event_id": m["event_id"], "kind": m["kind"], "ts": m["ts"], "moved": m["moved"][f]}
            for m in sorted(state.movers, key=lambda m: -m["moved"][f])[:per_facet]]
        for f in facets
    }


class Outcome(enum.Enum):
    APPLIED = "applied"
    REDELIVERED = "redelivered"  # same message again (offset already applied): at-least-once delivery
    DUPLICATE = "duplicate"  # same event_id in a new message (a producer re-sent it)


def check_event_time(event: UserEvent, settings: Settings, now: float | None = None) -> None:
    """Refuse events stamped too far in the future: one such event would anchor the user's decay
    at that time and outweigh every real event until then. Old events need no rule: their
    weight decays by itself."""
    ahead = event.ts - (time.time() if now is None else now)
    if ahead > settings.max_future_s:
        raise InvalidEvent(
            f"ts is {ahead:.0f} s in the future (more than max_future_s={settings.max_future_s:.0f}); "
            "check the producer's clock or the unit (seconds, not milliseconds)"
        )


def apply_event(
    state: InterestState,
    event: UserEvent,
    z: np.ndarray,
    settings: Settings,
    source: tuple[str, int, int] | None = None,
    layout: Mapping[str, int] | None = None,
) -> Outcome:
    """Fold one valid user event with its facet vector (concatenated) into the user's state.

    ``source`` is the event's (topic, partition, offset). Offsets only grow within a partition,
    so an event at or below the highest offset already folded in from that partition is a
    redelivery; an event id among the user's recent ones is a duplicate. Neither is applied.
    """
    if source is not None:
        key = f"{source[0]}:{source[1]}"
        if state.offsets.get(key, -1) >= source[2]:
            return Outcome.REDELIVERED
        state.offsets[key] = source[2]
    if event.event_id in state.recent_event_ids:
        return Outcome.DUPLICATE
    state.recent_event_ids.append(event.event_id)
    del state.recent_event_ids[:-RECENT_EVENT_IDS]
    before = state.mean() if layout is not None and not state.empty else None
    state.add(z, settings.decay.event_weights[event.kind], event.ts, settings.decay.half_life_s)
    if layout is not None:
        state.movers.append({"event_id": event.event_id, "kind": event.kind, "ts": event.ts,
                             "moved": facet_movement(before, state.mean(), layout)})
        del state.movers[:-RECENT_MOVERS]
    state.counts[event.kind] = state.counts.get(event.kind, 0) + 1
    if isinstance(event, (ClickEvent, ReviewEvent)):
        state.remember_item(event.item_id, settings.seen_items_max)
    state.updated_at = max(state.updated_at, event.ts)
    state.last_event_id = event.event_id
    return Outcome.APPLIED


def apply_watchlist(state: InterestState, event: WatchlistEvent) -> bool:
    """Follow or unfollow an entity; True if the state changed (replays change nothing)."""
    following = event.entity in state.follows
    if event.op == "add" and not following:
        state.follows.append(event.entity)
        return True
    if event.op == "remove" and following:
        state.follows.remove(event.entity)
        return True
    return False


def interest_changes(state: InterestState, at: float, min_weight: float, half_life_s: float) -> tuple[list[str], list[str]]:
    """Entities to subscribe the user to because their own events keep naming them (decayed weight
    >= min_weight), and earlier such subscriptions to drop (weight fell below min_weight / 2:
    the gap stops a user at the edge from flapping). Followed entities are not touched.
    Updates ``state.subscribed``; the caller publishes the changes."""
    weights = state.entity_weights(at, half_life_s)
    add = [e for e, w in weights.items() if w >= min_weight and e not in state.subscribed]
    drop = [e for e in state.subscribed if weights.get(e, 0.0) < min_weight / 2]
    state.subscribed = [e for e in state.subscribed if e not in drop] + add
    return add, drop


def unit_facets(state: InterestState, layout: Mapping[str, int]) -> dict[str, np.ndarray]:
    """The user's Z: each facet's decay-weighted average, renormalised to unit length."""
    out = {}
    for name, vec in split_facets(state.mean(), layout).items():
        norm = float(np.linalg.norm(vec))
        out[name] = vec / norm if norm > 1e-12 else vec
    return out


def to_profile(
    user_id: str,
    state: InterestState,
    layout: Mapping[str, int],
    summary: Mapping[str, object],
    settings: Settings,
) -> UserProfile:
    z = unit_facets(state, layout) if not state.empty else {}
    summary = {**summary, "moved_by": top_movers(state), "entities": {
        "follows": list(state.follows),
        "reads_about": {e: round(w, 3) for e, w in state.entity_weights(state.updated_at, settings.decay.half_life_s).items()},
    }}
    return UserProfile(
        user_id=user_id,
        z={name: np.round(vec, 6).tolist() for name, vec in z.items()},
        weight=state.mass(state.updated_at, settings.decay.half_life_s),
        event_counts=dict(state.counts),
        updated_at=state.updated_at,
        last_event_id=state.last_event_id,
        summary=dict(summary),
    )
