"""Property tests for the decay-weighted average (streams/state/decay.py)."""

from __future__ import annotations

import math

import numpy as np
import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.state.decay import STATE_MAGIC, InterestState
from streams.state.recent_ids import RecentIds

HALF_LIFE = 3600.0
DIM = 4

vectors = st.lists(st.floats(-1, 1, allow_nan=False), min_size=DIM, max_size=DIM).map(np.array)
events = st.lists(
    st.tuples(vectors, st.floats(0.1, 5.0), st.floats(0, 30 * 86400.0)),  # (z, weight, ts)
    min_size=1,
    max_size=30,
)


def brute_force(evts, at: float) -> np.ndarray:
    """The definition, evaluated directly at time ``at`` >= every ts."""
    tau = HALF_LIFE / math.log(2.0)
    w = np.array([wt * math.exp(-(at - ts) / tau) for _, wt, ts in evts])
    z = np.stack([v for v, _, _ in evts])
    return (w[:, None] * z).sum(axis=0) / w.sum()


def fold(evts) -> InterestState:
    state = InterestState()
    for z, w, ts in evts:
        state.add(z, w, ts, HALF_LIFE)
    return state


@given(events)
def test_matches_the_definition(evts):
    # Evaluate the definition at the newest event time, where no weight can underflow.
    at = max(ts for _, _, ts in evts)
    np.testing.assert_allclose(fold(evts).mean(), brute_force(evts, at), rtol=1e-9, atol=1e-9)


@given(events, st.randoms(use_true_random=False))
def test_order_independent(evts, rnd):
    shuffled = list(evts)
    rnd.shuffle(shuffled)
    np.testing.assert_allclose(fold(evts).mean(), fold(shuffled).mean(), rtol=1e-9, atol=1e-9)


@given(vectors, st.integers(1, 20), st.floats(0.1, 5.0))
def test_identical_events_give_that_vector(z, n, w):
    evts = [(z, w, 1000.0 + i * 60.0) for i in range(n)]
    np.testing.assert_allclose(fold(evts).mean(), z, atol=1e-12)


@given(vectors, vectors)
def test_half_life_halves_the_weight(a, b):
    # Same weight, b one half-life newer: b counts twice as much as a.
    state = fold([(a, 1.0, 0.0), (b, 1.0, HALF_LIFE)])
    np.testing.assert_allclose(state.mean(), (a + 2 * b) / 3, atol=1e-12)


@given(vectors, vectors, st.floats(0.1, 10.0))
def test_event_type_weights_scale_contribution(a, b, w):
    state = fold([(a, 1.0, 500.0), (b, w, 500.0)])
    np.testing.assert_allclose(state.mean(), (a + w * b) / (1 + w), atol=1e-12)


@given(events)
def test_mass_decays_and_state_round_trips(evts):
    state = fold(evts)
    later = state.t_ref + HALF_LIFE
    assert math.isclose(state.mass(later, HALF_LIFE), state.den / 2, rel_tol=1e-12)
    restored = InterestState.from_dict(state.to_dict())
    np.testing.assert_array_equal(restored.mean(), state.mean())
    assert restored.t_ref == state.t_ref and restored.den == state.den


@settings(max_examples=50)
@given(vectors, vectors)
def test_far_future_event_dominates_without_overflow(a, b):
    state = fold([(a, 1.0, 0.0), (b, 1.0, 1e6 * HALF_LIFE)])
    assert np.all(np.isfinite(state.mean()))
    np.testing.assert_allclose(state.mean(), b, atol=1e-12)


ids = st.lists(st.text(min_size=1, max_size=12), max_size=8)


def is1_bytes(state: InterestState) -> bytes:
    """The users table's value as written from 2026-12-02 to 2026-12-07 ("IS1"): every field but
    ``num`` in the JSON header, the id lists included, then ``num`` as raw float64."""
    header = {k: v for k, v in state.to_dict().items() if k != "num"}
    head = orjson.dumps({**header, "num_size": None if state.num is None else state.num.size})
    body = b"" if state.num is None else state.num.astype("<f8").tobytes()
    return b"\x00IS1" + len(head).to_bytes(4, "little") + head + body


@settings(max_examples=60, deadline=None)
@given(st.one_of(st.none(), events), ids, ids, st.dictionaries(st.text(max_size=6), st.integers(0, 2**40), max_size=3),
       st.dictionaries(st.sampled_from(["AAPL", "TSLA"]), st.floats(0, 5)))
def test_stored_bytes_round_trip_and_the_formats_before_them_are_still_read(evts, seen, recent, offsets, entities):
    state = fold(evts) if evts else InterestState()
    state.seen_items, state.recent_event_ids = RecentIds(seen), RecentIds(recent)
    state.offsets, state.entities = offsets, entities
    state.movers = [{"event_id": "e1", "kind": "click", "ts": 5.0, "moved": {"topic": 0.25}}]
    raw = state.to_bytes()
    assert raw.startswith(STATE_MAGIC)
    legacy = orjson.dumps(state.to_dict())  # what the users table held before the binary formats
    for restored in (InterestState.from_bytes(raw), InterestState.from_bytes(is1_bytes(state)),
                     InterestState.from_bytes(legacy)):
        assert restored.to_dict() == state.to_dict()
        assert restored.seen_items == state.seen_items and restored.recent_event_ids == state.recent_event_ids
        if evts:  # the sums themselves, bit for bit (no text round trip)
            assert restored.num.tobytes() == state.num.tobytes() and restored.den == state.den
        else:
            assert restored.num is None


def test_seen_items_are_bounded_and_most_recent_last():
    state = InterestState()
    for i in range(10):
        state.remember_item(f"i{i}", limit=3)
    state.remember_item("i8", limit=3)
    assert state.seen_items == ["i7", "i9", "i8"]


mentions = st.lists(
    st.tuples(st.sampled_from(["AAPL", "TSLA", "XOM"]), st.floats(0.1, 5.0), st.floats(0, 30 * 86400.0)),
    min_size=1,
    max_size=30,
)


@settings(max_examples=80, deadline=None)
@given(mentions, st.randoms())
def test_entity_weights_are_decayed_sums_whatever_the_order(evts, rnd):
    """A user's entity weights: sum of w * 2^(-(at - ts)/half_life) per entity, order-independent."""
    state = InterestState()
    shuffled = list(evts)
    rnd.shuffle(shuffled)
    for entity, w, ts in shuffled:
        state.note_entities([entity], w, ts, HALF_LIFE)
    at = max(ts for _, _, ts in evts)
    got = state.entity_weights(at, HALF_LIFE)
    for entity in {e for e, _, _ in evts}:
        want = sum(w * 2 ** (-(at - ts) / HALF_LIFE) for e, w, ts in evts if e == entity)
        assert math.isclose(got[entity], want, rel_tol=1e-9, abs_tol=1e-12)
