"""Applying decoded events to user state, and reading state back as profiles (no Faust here)."""

from __future__ import annotations

from typing import Mapping

import numpy as np

from schemas import ClickEvent, ReviewEvent, SearchEvent, UserProfile
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


def apply_event(
    state: InterestState,
    event: UserEvent,
    z: np.ndarray,
    settings: Settings,
    source: tuple[str, int, int] | None = None,
) -> bool:
    """Fold one valid user event with its facet vector (concatenated) into the user's state.

    ``source`` is the event's (topic, partition, offset). Offsets only grow within a partition,
    so an event at or below the highest offset already folded in from that partition is a
    redelivery: it is skipped and False is returned.
    """
    if source is not None:
        key = f"{source[0]}:{source[1]}"
        if state.offsets.get(key, -1) >= source[2]:
            return False
        state.offsets[key] = source[2]
    state.add(z, settings.decay.event_weights[event.kind], event.ts, settings.decay.half_life_s)
    state.counts[event.kind] = state.counts.get(event.kind, 0) + 1
    if isinstance(event, (ClickEvent, ReviewEvent)):
        state.remember_item(event.item_id, settings.seen_items_max)
    state.updated_at = max(state.updated_at, event.ts)
    state.last_event_id = event.event_id
    return True


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
    z = unit_facets(state, layout)
    return UserProfile(
        user_id=user_id,
        z={name: np.round(vec, 6).tolist() for name, vec in z.items()},
        weight=state.mass(state.updated_at, settings.decay.half_life_s),
        event_counts=dict(state.counts),
        updated_at=state.updated_at,
        last_event_id=state.last_event_id,
        summary=dict(summary),
    )
