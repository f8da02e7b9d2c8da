"""One micro-batch of user events as one pure call (streams/state/updates.py: apply_user_batch)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import ClickEvent, ForgetEvent, SearchEvent, WatchlistEvent
from streams.settings import Settings
from streams.state.decay import InterestState
from streams.state.updates import Outcome, UserInput, WatcherChange, apply_event, apply_user_batch, items_before

SETTINGS = Settings()
LAYOUT = {"a": 2, "b": 3}


def z(i: int) -> np.ndarray:
    return np.random.default_rng(i).normal(size=5)


# (kind, user, event number, timestamp); event numbers repeat on purpose (re-sent events).
steps = st.lists(st.tuples(st.sampled_from(["search", "click", "forget", "unknown"]), st.sampled_from("uvw"),
                           st.integers(0, 15), st.floats(0, 1e6)), max_size=40)


def inputs_of(batch) -> list[UserInput]:
    out = []
    for offset, (kind, user, n, ts) in enumerate(batch):
        if kind == "search":
            out.append(UserInput(SearchEvent(f"e{n}", user, "q", ts), ("searches", 0, offset), z(n)))
        elif kind == "click":
            out.append(UserInput(ClickEvent(f"e{n}", user, "i", ts), ("clicks", 0, offset), z(n)))
        elif kind == "unknown":  # a click on an item the index does not know
            out.append(UserInput(ClickEvent(f"e{n}", user, "gone", ts), ("clicks", 0, offset), None))
        else:
            out.append(UserInput(ForgetEvent(f"f{offset}", user, ts), ("forget", 0, offset)))
    return out


@settings(max_examples=200, deadline=None)
@given(before=steps, batch=steps)
def test_a_batch_equals_its_events_applied_one_by_one(before, batch):
    """Whatever mix of users, forgets, re-sent ids and unknown items: the batch's new states are
    what applying each event in order gives, and only changed users are written; the hook before
    each event (where the worker builds its ranking lessons) sees the user's state just then."""
    stored: dict[str, InterestState] = {}
    for item in inputs_of(before):  # some users already have state
        if item.z is not None:
            apply_event(stored.setdefault(item.record.user_id, InterestState()), item.record, item.z, SETTINGS,
                        ("old", 0, len(stored)), LAYOUT)
    expected = {u: InterestState.from_dict(s.to_dict()) for u, s in stored.items()}
    changed, applied, rejected, just_before = {}, [], [], {}
    for pos, item in enumerate(inputs_of(batch)):
        user = item.record.user_id
        if isinstance(item.record, ForgetEvent):
            expected[user] = InterestState()
            changed[user] = None
        elif item.z is None:
            rejected.append(pos)
        elif (just_before.setdefault(pos, expected.setdefault(user, InterestState()).to_dict()) is not None
              and apply_event(expected[user], item.record, item.z, SETTINGS, item.source, LAYOUT) is Outcome.APPLIED):
            changed[user] = expected[user]
            applied.append(pos)

    fresh = {u: InterestState.from_dict(s.to_dict()) for u, s in stored.items()}
    seen: dict[int, dict] = {}
    result = apply_user_batch(inputs_of(batch), fresh, SETTINGS, LAYOUT,
                              before_apply=lambda pos, state: seen.setdefault(pos, state.to_dict()))
    assert seen == just_before
    assert [pos for pos, _ in result.rejected] == rejected
    assert all("unknown item_id 'gone'" in reason for _, reason in result.rejected)
    assert result.applied == applied and result.tally.applied == len(applied)
    assert set(result.states) == set(changed)
    for user, state in result.states.items():
        if changed[user] is None:
            assert state is None, user
        else:
            assert state.to_dict() == changed[user].to_dict(), user
    assert all(inputs_of(batch)[pos].record.user_id == user for user, pos in result.last_input.items())


def test_a_forget_then_new_events_start_a_new_state_and_the_last_input_places_the_write():
    old = InterestState()
    apply_event(old, SearchEvent("e0", "u", "q", 1.0), z(0), SETTINGS)
    batch = [
        UserInput(SearchEvent("e1", "u", "q", 2.0), ("searches", 1, 10), z(1)),
        UserInput(ForgetEvent("f", "u", 3.0), ("forget", 1, 4)),
        UserInput(SearchEvent("e2", "u", "q", 4.0), ("searches", 1, 11), z(2)),
    ]
    result = apply_user_batch(batch, {"u": old}, SETTINGS, LAYOUT)
    assert result.states["u"].counts == {"search": 1} and result.states["u"].last_event_id == "e2"
    assert result.last_input == {"u": 2} and result.tally.forgotten == 1


def test_watchlist_changes_and_interest_subscriptions_come_out_as_watcher_changes():
    batch = [UserInput(WatchlistEvent("w1", "u", "TSLA", "add", 1.0), ("watchlists", 0, 0)),
             UserInput(WatchlistEvent("w2", "u", "TSLA", "add", 1.0), ("watchlists", 0, 1))]  # already so
    batch += [UserInput(SearchEvent(f"s{i}", "v", "Apple", 1.0), ("searches", 0, i), z(i), ("AAPL",))
              for i in range(3)]  # 3 searches of weight 1 naming AAPL: interest_min_weight 3
    result = apply_user_batch(batch, {}, SETTINGS, LAYOUT)
    assert result.watcher_changes == [WatcherChange("u", "TSLA", "add", "watchlist"),
                                      WatcherChange("v", "AAPL", "add", "interest")]
    assert result.tally.watchlist == 2 and result.states["u"].empty and result.states["u"].follows == ["TSLA"]


def wl(n: int, op: str, entity: str = "NVDA", offset: int | None = None) -> UserInput:
    return UserInput(WatchlistEvent(f"w{n}", "u", entity, op, 1.0), ("watchlists", 0, n if offset is None else offset))


def test_a_redelivered_follow_after_a_later_unfollow_does_not_follow_again():
    """At-least-once delivery: an "add" read again after the "remove" that followed it must not win."""
    first = apply_user_batch([wl(0, "add", "XOM"), wl(1, "add")], {}, SETTINGS, LAYOUT)
    second = apply_user_batch([wl(2, "remove")], {"u": first.states["u"]}, SETTINGS, LAYOUT)
    assert second.states["u"].follows == ["XOM"]
    again = apply_user_batch([wl(1, "add"), wl(2, "remove")], {"u": second.states["u"]}, SETTINGS, LAYOUT)
    assert again.tally.redelivered == 2 and again.tally.watchlist == 0
    # Read again after a crash, each request re-sends the change that matches the state now (its
    # own may have been lost with the crash; the entity side applies them idempotently).
    assert again.watcher_changes == [WatcherChange("u", "NVDA", "remove", "watchlist")] * 2
    assert again.states["u"].follows == ["XOM"]
    # The same request produced twice (another offset, same event id) is a duplicate.
    dup = apply_user_batch([wl(1, "add", offset=7)], {"u": second.states["u"]}, SETTINGS, LAYOUT)
    assert dup.tally.duplicate == 1 and dup.watcher_changes == []


@settings(max_examples=300, deadline=None)
@given(ops=st.lists(st.tuples(st.sampled_from(["add", "remove"]), st.sampled_from(["A", "B"])), min_size=1, max_size=12),
       sizes=st.lists(st.integers(1, 4), min_size=1, max_size=12), rewinds=st.lists(st.integers(0, 12), max_size=12))
def test_follows_equal_the_requests_applied_once_in_order_whatever_is_read_again(ops, sizes, rewinds):
    """Split into micro-batches, each starting by reading again the last few records already taken
    in (as after a rebalance to an older committed offset): the follows are those of applying each
    request once, in order."""
    records = [wl(n, op, entity) for n, (op, entity) in enumerate(ops)]
    expected: list[str] = []
    for op, entity in ops:
        if op == "add" and entity not in expected:
            expected.append(entity)
        if op == "remove" and entity in expected:
            expected.remove(entity)
    state: InterestState | None = None
    watched: set[str] = set()
    lo, n = 0, 0
    while lo < len(records):
        hi = min(len(records), lo + sizes[n % len(sizes)])
        back = rewinds[n] if n < len(rewinds) else 0
        batch = records[max(0, lo - back):hi]  # the first lo - max(0, lo - back) are read again
        result = apply_user_batch(batch, {"u": state} if state else {}, SETTINGS, LAYOUT)
        state = result.states.get("u", state)
        for change in result.watcher_changes:  # the entity side, as NewsHandler applies them
            (watched.add if change.op == "add" else watched.discard)(change.entity)
        lo, n = hi, n + 1
    assert state is not None and state.follows == expected
    assert watched == set(expected)


def apply_watcher_change(watchers: dict[str, str], change: WatcherChange) -> None:
    """One entity's watchers (user -> source) for user "u", as NewsHandler._apply_watcher does it."""
    if change.op == "add":
        if watchers.get(change.user_id) != "watchlist":
            watchers[change.user_id] = change.source
    elif watchers.get(change.user_id) == change.source:
        watchers.pop(change.user_id)


@settings(max_examples=300, deadline=None)
@given(named=st.lists(st.tuples(st.sampled_from(["A", "B"]), st.sampled_from([0.0, 0.0, 0.3, 2.0])), min_size=1, max_size=30),
       sizes=st.lists(st.integers(1, 5), min_size=1, max_size=10), lost=st.lists(st.booleans(), max_size=20))
def test_interest_subscriptions_reach_the_entity_side_whatever_a_crash_loses(named, sizes, lost):
    """Searches naming entities, some far apart in time (so subscriptions are dropped as well as
    made), in micro-batches; a crash loses a batch's watcher changes after its table write, and
    its records are read again in the next batch. In the end the entities watching the user by
    interest are exactly the state's subscriptions."""
    half_life, ts, records = SETTINGS.decay.half_life_s, 0.0, []
    for n, (entity, gap) in enumerate(named):
        ts += gap * half_life
        records.append(UserInput(SearchEvent(f"s{n}", "u", "q", ts), ("searches", 0, n), z(n), (entity,)))
    state: InterestState | None = None
    entity_side: dict[str, dict[str, str]] = {"A": {}, "B": {}}
    lo, n, crashed = 0, 0, False
    while lo < len(records) or crashed:
        hi = min(len(records), lo + sizes[n % len(sizes)])
        result = apply_user_batch(records[lo:hi], {"u": state} if state else {}, SETTINGS, LAYOUT)
        state = result.states.get("u", state)
        crashed = n < len(lost) and lost[n]
        if not crashed:
            for change in result.watcher_changes:
                apply_watcher_change(entity_side[change.entity], change)
            lo = hi  # committed; after a crash the same records are read again
        n += 1
    assert state is not None
    assert {e for e, users in entity_side.items() if users.get("u") == "interest"} == set(state.subscribed)


def test_a_forgotten_user_stops_watching_what_they_followed_or_were_subscribed_to():
    searches = [UserInput(SearchEvent(f"s{i}", "u", "Apple", 1.0), ("searches", 0, i), z(i), ("AAPL",))
                for i in range(3)]
    before = apply_user_batch([wl(0, "add", "XOM", offset=10), *searches], {}, SETTINGS, LAYOUT).states["u"]
    assert before.follows == ["XOM"] and before.subscribed == ["AAPL"]
    forget = UserInput(ForgetEvent("f1", "u", 2.0), ("forget", 0, 0))
    result = apply_user_batch([forget], {"u": before}, SETTINGS, LAYOUT)
    assert result.states == {"u": None}
    assert result.watcher_changes == [WatcherChange("u", "XOM", "remove", "watchlist"),
                                      WatcherChange("u", "AAPL", "remove", "interest")]
    # Within one batch: the state just before the forget; a user never seen sends nothing.
    again = apply_user_batch([wl(1, "add", "NVDA"), forget, UserInput(ForgetEvent("f2", "w", 2.0), ("forget", 0, 1))],
                             {}, SETTINGS, LAYOUT)
    assert again.watcher_changes == [WatcherChange("u", "NVDA", "add", "watchlist"),
                                     WatcherChange("u", "NVDA", "remove", "watchlist")]


def test_a_watcher_change_lost_in_a_crash_is_sent_again_when_its_request_is_read_again():
    first = apply_user_batch([wl(0, "add", "XOM")], {}, SETTINGS, LAYOUT)
    assert first.watcher_changes == [WatcherChange("u", "XOM", "add", "watchlist")]
    # The state reached the store, the change did not reach the broker, the offset was not committed.
    again = apply_user_batch([wl(0, "add", "XOM")], {"u": first.states["u"]}, SETTINGS, LAYOUT)
    assert again.tally.redelivered == 1 and again.watcher_changes == first.watcher_changes


def test_a_user_with_a_redelivered_record_is_written_again_unchanged():
    """After a crash between the table write and the commit, the local store may hold a state its
    changelog never got: the batch that reads the records again must write the state once more."""
    first = inputs_of([("click", "u", 1, 10.0), ("search", "u", 2, 20.0)])
    stored = apply_user_batch(first, {}, SETTINGS, LAYOUT).states["u"]
    again = apply_user_batch(first, {"u": InterestState.from_dict(stored.to_dict())}, SETTINGS, LAYOUT)
    assert again.tally.redelivered == 2 and again.applied == [] and again.last_input == {"u": 1}
    assert again.states["u"].to_dict() == stored.to_dict()
    untouched = apply_user_batch(inputs_of([("click", "v", 3, 5.0)]), {"u": stored}, SETTINGS, LAYOUT)
    assert set(untouched.states) == {"v"}  # a user without redelivered records is not written


def test_a_redelivered_click_is_published_again_with_the_items_before_it():
    """A crash between the table write and the commit may have lost the batch's engagements record
    too: the clicks read again come out again, each with the items the user engaged with before it
    (the fold drops a copy that did arrive, by user and event id)."""
    clicks = [UserInput(ClickEvent(f"e{n}", "u", f"item{n}", 10.0 * n), ("clicks", 0, n), z(n)) for n in range(8)]
    first = apply_user_batch(clicks, {}, SETTINGS, LAYOUT)
    assert first.previous_items[7] == ("item6", "item5", "item4", "item3", "item2")  # the window: 5
    stored = InterestState.from_dict(first.states["u"].to_dict())
    again = apply_user_batch(clicks[5:], {"u": stored}, SETTINGS, LAYOUT)
    assert again.applied == [] and again.tally.redelivered == 3
    assert again.previous_items == {n - 5: first.previous_items[n] for n in range(5, 8)}


def test_items_before_reads_the_order_of_latest_engagement():
    seen = ["a", "b", "c", "d"]  # oldest first
    assert items_before(seen, "c", 5) == ("b", "a")
    assert items_before(seen, "a", 5) == ()
    assert items_before(seen, "d", 2) == ("c", "b")
    assert items_before(seen, "gone", 2) == ()  # no longer in the state: where it was is unknown


def test_a_click_dead_lettered_before_is_not_published_when_read_again():
    """A click on an unknown item is dead-lettered, not applied; if a later click of its partition
    was applied, reading it again after a crash finds it below the applied offset. Its item may be
    known by then, but the state never had it: no engagement for it."""
    gone = UserInput(ClickEvent("e0", "u", "late-item", 1.0), ("clicks", 0, 0), None)
    later = UserInput(ClickEvent("e1", "u", "item1", 2.0), ("clicks", 0, 1), z(1))
    first = apply_user_batch([gone, later], {}, SETTINGS, LAYOUT)
    assert [pos for pos, _ in first.rejected] == [0] and first.applied == [1]
    known_now = UserInput(ClickEvent("e0", "u", "late-item", 1.0), ("clicks", 0, 0), z(0))
    again = apply_user_batch([known_now, later], {"u": first.states["u"]}, SETTINGS, LAYOUT)
    assert again.tally.redelivered == 2 and set(again.previous_items) == {1}
