"""Applying one event to user state (streams/state/updates.py) and reading it back
(streams/state/profiles.py): idempotence under redelivery, counts, seen items, explanations."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import ClickEvent, InvalidEvent, SearchEvent
from streams.settings import Settings
from streams.state.decay import InterestState
from streams.state.profiles import facet_movement, top_movers, user_z
from streams.state.updates import Outcome, apply_event, check_event_time, interest_changes

SETTINGS = Settings()
LAYOUT = {"a": 2, "b": 3}


def search(i: int) -> SearchEvent:
    return SearchEvent(f"e{i}", "u", f"q{i}", 1000.0 + i)


def z(i: int) -> np.ndarray:
    return np.random.default_rng(i).normal(size=5)


@given(st.lists(st.tuples(st.integers(1, 8), st.integers(0, 8)), min_size=1, max_size=12))
def test_redelivered_events_are_not_applied_twice(steps):
    """At-least-once delivery: after each crash the partition is read again from an earlier
    offset. The state must equal applying every offset exactly once."""
    deliveries, pos = [], 0
    for advance, rewind in steps:
        deliveries += range(pos, pos + advance)
        pos = max(0, pos + advance - rewind)  # crash: resume from the last committed offset
    n = max(deliveries) + 1
    once, redelivered = InterestState(), InterestState()
    for off in range(n):
        assert apply_event(once, search(off), z(off), SETTINGS, ("searches", 0, off)) is Outcome.APPLIED
    applied = [
        off for off in deliveries
        if apply_event(redelivered, search(off), z(off), SETTINGS, ("searches", 0, off)) is Outcome.APPLIED
    ]
    assert applied == list(range(n))
    assert redelivered.counts == once.counts == {"search": n}
    np.testing.assert_array_equal(redelivered.mean(), once.mean())


def test_partitions_and_topics_are_tracked_separately():
    state = InterestState()
    assert apply_event(state, search(1), z(1), SETTINGS, ("searches", 0, 5)) is Outcome.APPLIED
    assert apply_event(state, search(2), z(2), SETTINGS, ("searches", 1, 5)) is Outcome.APPLIED
    assert apply_event(state, ClickEvent("c", "u", "i1", 1.0), z(3), SETTINGS, ("clicks", 0, 5)) is Outcome.APPLIED
    assert apply_event(state, search(1), z(1), SETTINGS, ("searches", 0, 5)) is Outcome.REDELIVERED
    assert state.counts == {"search": 2, "click": 1}
    assert state.seen_items == ["i1"]


def test_unit_facets_are_unit_length_per_facet():
    state = InterestState()
    apply_event(state, search(1), np.array([3.0, 4.0, 1.0, 2.0, 2.0]), SETTINGS)
    facets = user_z(state, LAYOUT)
    np.testing.assert_allclose(facets["a"], [0.6, 0.8])
    np.testing.assert_allclose(facets["b"], [1 / 3, 2 / 3, 2 / 3])


def test_a_re_sent_event_id_is_a_duplicate_even_at_a_new_offset():
    state = InterestState()
    assert apply_event(state, search(1), z(1), SETTINGS, ("searches", 0, 1)) is Outcome.APPLIED
    assert apply_event(state, search(1), z(1), SETTINGS, ("searches", 0, 2)) is Outcome.DUPLICATE
    assert state.counts == {"search": 1}


def test_far_future_timestamps_are_refused_and_old_ones_accepted():
    now = 1_800_000_000.0
    check_event_time(SearchEvent("e", "u", "q", now + 60), SETTINGS, now)
    check_event_time(SearchEvent("e", "u", "q", 0.0), SETTINGS, now)
    with pytest.raises(InvalidEvent, match="in the future"):
        check_event_time(SearchEvent("e", "u", "q", now * 1000), SETTINGS, now)


def test_interest_subscriptions_follow_the_users_own_events_with_hysteresis():
    state, hl = InterestState(), 3600.0
    state.note_entities(["TSLA"], 2.0, 0.0, hl)
    assert interest_changes(state, 0.0, 3.0, hl) == ([], [])
    state.note_entities(["TSLA", "AAPL"], 1.0, 0.0, hl)
    assert interest_changes(state, 0.0, 3.0, hl) == (["TSLA"], [])
    assert interest_changes(state, 0.0, 3.0, hl) == ([], [])  # already subscribed: nothing re-sent
    assert interest_changes(state, 0.5 * hl, 3.0, hl) == ([], [])  # 3 -> 2.1: above 3/2, kept
    assert interest_changes(state, 2 * hl, 3.0, hl) == ([], ["TSLA"])  # 3 -> 0.75: dropped
    assert state.subscribed == []


def test_profile_explains_which_recent_events_moved_each_facet():
    state, settings = InterestState(), Settings()
    same_a, same_b = [1.0, 0.0], [1.0, 0.0, 0.0]
    events = [
        (SearchEvent("e1", "u", "x", 100.0), np.array(same_a + same_b)),
        (SearchEvent("e2", "u", "x", 101.0), np.array(same_a + same_b)),  # moves nothing
        (SearchEvent("e3", "u", "x", 102.0), np.array(same_a + [0.0, 1.0, 0.0])),  # turns facet b only
    ]
    for event, z in events:
        assert apply_event(state, event, z, settings, layout=LAYOUT) is Outcome.APPLIED
    moved = {m["event_id"]: m["moved"] for m in state.movers}
    assert moved["e1"] == {"a": 1.0, "b": 1.0}  # the first event makes the facet
    assert moved["e2"] == {"a": 0.0, "b": 0.0}
    assert moved["e3"]["a"] == 0.0 and moved["e3"]["b"] > 0.1
    top = top_movers(state, per_facet=2)
    assert [m["event_id"] for m in top["b"]] == ["e1", "e3"]


@settings(max_examples=50, deadline=None)
@given(moved=st.lists(st.tuples(*[st.sampled_from([0.0, 0.25, 0.5, 1.0, 1.5])] * 3), max_size=20))
def test_top_movers_are_each_facets_largest_moves_earliest_first_on_ties(moved):
    state = InterestState()
    state.movers = [{"event_id": f"e{n}", "kind": "click", "ts": float(n), "moved": dict(zip(("sentiment", "topic", "style"), m))}
                    for n, m in enumerate(moved)]
    got = top_movers(state, per_facet=3)
    for f in ("sentiment", "topic", "style") if moved else ():
        want = sorted(state.movers, key=lambda m: -m["moved"][f])[:3]  # the definition (sorted is stable)
        assert [m["event_id"] for m in got[f]] == [m["event_id"] for m in want]
        assert [m["moved"] for m in got[f]] == [m["moved"][f] for m in want]
    assert got == {} if not moved else set(got) == {"sentiment", "topic", "style"}


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 10**6), dims=st.lists(st.integers(1, 6), min_size=1, max_size=4), zero=st.booleans())
def test_facet_movement_is_one_minus_each_facets_cosine(seed, dims, zero):
    """Against its definition, facet by facet (a zero facet has no direction: cosine 0)."""
    rng = np.random.default_rng(seed)
    layout = {f"f{n}": d for n, d in enumerate(dims)}
    before, after = rng.normal(size=sum(dims)), rng.normal(size=sum(dims))
    if zero:
        before[: dims[0]] = 0.0
    got = facet_movement(before, after, layout)
    start = 0
    for name, d in layout.items():
        b, a = before[start : start + d], after[start : start + d]
        nb, na = np.linalg.norm(b), np.linalg.norm(a)
        cos = float(b @ a / (nb * na)) if nb > 1e-12 and na > 1e-12 else 0.0
        assert got[name] == pytest.approx(1.0 - cos, abs=2e-6)
        start += d
    assert facet_movement(None, after, layout) == {name: 1.0 for name in layout}


def _stored_state() -> bytes:
    state = InterestState()
    apply_event(state, SearchEvent(user_id="u", event_id="e1", query="tents", ts=1000.0), np.ones(6), Settings(),
                (("t", 0, 0)), {"a": 2, "b": 4})
    return state.to_bytes()


@settings(max_examples=300)
@given(st.data())
def test_bytes_that_are_no_state_raise_a_value_error_and_nothing_else(data):
    """The worker dead-letters a user's events when its stored state cannot be read
    (streams/worker/users.py); any other exception would stop the partition instead."""
    good = _stored_state()
    raw = data.draw(st.one_of(
        st.binary(max_size=200),
        st.builds(lambda cut: good[:cut], st.integers(0, len(good) - 1)),  # cut short
        st.builds(lambda at, b: good[:at] + bytes([b]) + good[at + 1:], st.integers(0, len(good) - 1), st.integers(0, 255)),
        st.sampled_from([b"1", b"[]", b'{"den": "x"}', b'{"num": 5, "den": 1, "t_ref": 0}', b"null"]),
    ))
    try:
        state = InterestState.from_bytes(raw)
    except ValueError as exc:
        assert "not a stored user state" in str(exc)
    else:
        assert isinstance(state, InterestState)
    assert InterestState.from_bytes(good).to_bytes() == good
