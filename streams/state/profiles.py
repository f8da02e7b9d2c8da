"""Reading user state back for people: the unit Z, explanations (which events moved each facet)
and the published profile record. Pure: the facet readings (named shares, sentiment, style) are
passed in by the caller, who has the encoder and the index."""

from __future__ import annotations

import functools
from typing import Mapping

import numpy as np

from schemas import UserProfile, unit_facets
from schemas.facets import Layout
from streams.state.decay import InterestState


def user_z(state: InterestState, layout: Layout) -> dict[str, np.ndarray]:
    """The user's Z: each facet's decay-weighted average, renormalised to unit length."""
    return unit_facets(state.mean(), layout)


def facet_movement(before: np.ndarray | None, after: np.ndarray, layout: Layout) -> dict[str, float]:
    """Per facet, 1 - cosine between the average before and after an event (0 = unmoved, 1 = the
    first event, up to 2 = reversed). Every facet's sums in one pass over the vector: per facet
    (norms and a dot product each) it was most of applying a click."""
    if before is None:
        return {name: 1.0 for name in layout}
    starts = _facet_starts(tuple(layout.values()))
    bb, aa, ab = (np.add.reduceat(x * y, starts).tolist() for x, y in ((before, before), (after, after), (before, after)))
    out = {}
    for name, b2, a2, dot in zip(layout, bb, aa, ab):
        nb, na = b2**0.5, a2**0.5
        cos = dot / (nb * na) if nb > 1e-12 and na > 1e-12 else 0.0
        out[name] = round(1.0 - cos, 6)
    return out


@functools.lru_cache(maxsize=8)
def _facet_starts(dims: tuple[int, ...]) -> np.ndarray:
    return np.cumsum((0, *dims[:-1]))


def top_movers(state: InterestState, per_facet: int = 3) -> dict[str, list[dict[str, object]]]:
    """For each facet, the recent events that moved it most (largest first; ties: earliest first).
    Plain sorts of a few tens of entries: a numpy array built from the dicts cost twice as much."""
    movers = state.movers
    if not movers:
        return {}
    out = {}
    for f in movers[-1]["moved"]:
        top = sorted(movers, key=lambda m: -m["moved"][f])[:per_facet]  # stable: ties stay earliest first
        out[f] = [{"event_id": m["event_id"], "kind": m["kind"], "ts": m["ts"], "moved": m["moved"][f]} for m in top]
    return out


def published_z(z: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Unit facet vectors (one user's, or rows of several: one call for a whole batch) as the
    profile record carries them: rounded to 6 decimals. Arrays, not lists: orjson writes them
    with the same digits at a third less cost, and no Python float is made per component."""
    return {name: np.ascontiguousarray(np.round(vec, 6)) for name, vec in z.items()}


def to_profile(
    user_id: str,
    state: InterestState,
    layout: Layout,
    readings: Mapping[str, object],
    half_life_s: float,
    z: Mapping[str, np.ndarray] | None = None,
) -> UserProfile:
    """The profile record: Z, evidence, counts, and ``readings`` (named facet readings) with the
    events that moved each facet and the entities the user follows or reads about. ``z``: the
    user's Z as published (``published_z``) when the caller has it already."""
    if z is None:
        z = published_z(user_z(state, layout)) if not state.empty else {}
    summary = {**readings, "moved_by": top_movers(state), "entities": {
        "follows": list(state.follows),
        "reads_about": {e: round(w, 3) for e, w in state.entity_weights(state.updated_at, half_life_s).items()},
    }}
    return UserProfile(
        user_id=user_id,
        z=dict(z),
        weight=state.mass(state.updated_at, half_life_s),
        event_counts=dict(state.counts),
        updated_at=state.updated_at,
        last_event_id=state.last_event_id,
        summary=dict(summary),
    )
