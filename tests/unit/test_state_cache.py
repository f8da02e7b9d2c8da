"""Decoded user states kept between micro-batches (streams/state/state_cache.py): the states a
worker computes with them are the ones it computes decoding every read, whatever else writes the
table meanwhile."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import ClickEvent, ForgetEvent, SearchEvent
from streams.settings import Settings
from streams.state.decay import InterestState
from streams.state.state_cache import DecodedStates
from streams.state.updates import UserInput, apply_user_batch

SETTINGS = Settings()
LAYOUT = {"a": 2, "b": 3}
USERS = "uvwx"


def z(i: int) -> np.ndarray:
    return np.random.default_rng(i).normal(size=5)


# A micro-batch: (kind, user, event number); event numbers repeat (re-sent events: duplicates,
# which change a state in place without a write) and offsets rewind (redeliveries).
events = st.lists(st.tuples(st.sampled_from(["search", "click", "forget"]), st.sampled_from(USERS), st.integers(0, 12)),
                  max_size=12)
# Between batches, something other than this agent may rewrite a user's bytes (a rebalance's
# restore of another worker's writes) or delete them.
outside = st.lists(st.tuples(st.sampled_from(USERS), st.sampled_from(["rewrite", "delete"]), st.integers(0, 99)), max_size=2)


def inputs_of(batch, first_offset: int) -> list[UserInput]:
    out = []
    for n, (kind, user, e) in enumerate(batch):
        source = ("user-events", 0, first_offset + n)
        if kind == "search":
            out.append(UserInput(SearchEvent(f"e{e}", user, "q", 1000.0 + e), source, z(e)))
        elif kind == "click":
            out.append(UserInput(ClickEvent(f"e{e}", user, f"i{e}", 2000.0 - e), source, z(e + 50)))
        else:
            out.append(UserInput(ForgetEvent(f"f{n}", user, 1000.0), source))
    return out


def run_batch(table: dict[str, bytes], batch: list[UserInput], cache: DecodedStates | None) -> None:
    """One micro-batch as the user handler runs it (streams/worker/users.py): read, apply, write,
    settle the cache; without a cache every read decodes the table's bytes."""
    stored = {}
    for item in batch:
        user = item.record.user_id
        if user not in stored:
            raw = table.get(user)
            stored[user] = cache.read(user, raw) if cache is not None else (InterestState.from_bytes(raw) if raw else None)
    result = apply_user_batch(batch, stored, SETTINGS, LAYOUT)
    written = {}
    for user, state in result.states.items():
        if state is None:
            table.pop(user, None)
            written[user] = None
        else:
            table[user] = raw = state.to_bytes()
            written[user] = (raw, state)
    if cache is not None:
        cache.settle(stored, written)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(events, outside, st.integers(0, 3)), min_size=1, max_size=8), st.integers(0, 3))
def test_states_with_the_cache_equal_states_decoded_at_every_read(steps, capacity):
    plain: dict[str, bytes] = {}
    cached: dict[str, bytes] = {}
    cache = DecodedStates(capacity)
    offset = 0
    for batch, changes, rewind in steps:
        for user, op, seed in changes:
            for table in (plain, cached):
                if op == "delete":
                    table.pop(user, None)
                else:
                    other = InterestState()
                    other.add(z(seed + 100), 1.0, 500.0 + seed, SETTINGS.decay.half_life_s)
                    table[user] = other.to_bytes()
        offset = max(0, offset - rewind)  # a crash before the commit: records read again
        run_batch(plain, inputs_of(batch, offset), None)
        run_batch(cached, inputs_of(batch, offset), cache)
        offset += len(batch)
        assert cached == plain
        assert len(cache) <= capacity


def test_a_kept_state_is_reused_only_for_the_bytes_it_was_kept_with():
    cache = DecodedStates(8)
    state = InterestState()
    state.add(z(1), 2.0, 10.0, 3600.0)
    raw = state.to_bytes()
    cache.keep("u", raw, state)
    assert cache.read("u", bytes(raw)) is state  # equal bytes, another object (as RocksDB returns)
    other = InterestState()
    other.add(z(2), 2.0, 10.0, 3600.0)
    read = cache.read("u", other.to_bytes())
    assert read is not state and np.array_equal(read.num, other.num)
    assert cache.read("u", None) is None and len(cache) == 0
    assert (cache.reused, cache.decoded) == (1, 1)


def test_the_least_recently_used_user_goes_first_and_zero_keeps_none():
    cache = DecodedStates(2)
    states = {u: InterestState(den=float(n)) for n, u in enumerate("abc")}
    for u in "ab":
        cache.keep(u, states[u].to_bytes(), states[u])
    cache.read("a", states["a"].to_bytes())  # a is now the most recent
    cache.keep("c", states["c"].to_bytes(), states["c"])
    assert cache.read("a", states["a"].to_bytes()) is states["a"]
    assert cache.read("b", states["b"].to_bytes()) is not states["b"]  # b was dropped: decoded again
    none = DecodedStates(0)
    none.keep("a", states["a"].to_bytes(), states["a"])
    assert len(none) == 0 and none.read("a", states["a"].to_bytes()) is not states["a"]
