"""Item-side behaviour from engagements (streams/state/engagement.py): decayed popularity against its
definition, co-engagement links, re-sent engagements."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.state.engagement import EngagementConfig, Engagements

HALF_LIVES = (3600.0, 86400.0)
ITEMS = ["a", "b", "c", "d"]

engagements = st.lists(
    st.tuples(st.sampled_from(ITEMS), st.floats(0, 60 * 86400.0), st.floats(0.1, 5.0)),  # (item, ts, weight)
    min_size=1, max_size=40,
)


def fold(events, config: EngagementConfig | None = None) -> Engagements:
    eng = Engagements(config or EngagementConfig(pop_half_lives_s=HALF_LIVES))
    for n, (item, ts, w) in enumerate(events):
        eng.observe("u", f"e{n}", item, ts, w, previous=())
    return eng


def definition(events, item: str, at: float, half_life: float) -> float:
    lam = math.log(2.0) / half_life
    return sum(w * math.exp(-lam * (at - ts)) for i, ts, w in events if i == item)


@settings(deadline=None)  # the first Engagements of a process loads the behaviour facet's compiled step
@given(engagements, st.randoms())
def test_decayed_popularity_equals_its_definition_in_any_order(events, rnd):
    shuffled = list(events)
    rnd.shuffle(shuffled)
    eng = fold(shuffled)
    at = max(ts for _, ts, _ in events) + 1234.0
    got = eng.popularity_of(ITEMS, at=at)
    for h, half_life in enumerate(HALF_LIVES):
        for n, item in enumerate(ITEMS):
            want = definition(events, item, at, half_life)
            assert got[h, n] == pytest.approx(want, rel=1e-9, abs=1e-12)


@settings(max_examples=200, deadline=None)
@given(events=st.lists(st.tuples(st.sampled_from("abcdefgh"), st.sampled_from([0.0, 3600.0, 86400.0]),
                                 st.sampled_from([1.0, 2.0])), min_size=1, max_size=40),  # ties on purpose
       n=st.integers(0, 9), excluded=st.lists(st.sets(st.sampled_from("abcdefghz")), min_size=1, max_size=4))
def test_most_popular_for_several_users_is_each_ones_order_of_all_items(events, n, excluded):
    """Each user's first n of all items by (decayed popularity, then row: the order items were
    first engaged with), their excluded items left out; one call for all of them."""
    eng = fold(events)
    for which in range(len(HALF_LIVES)):
        pop = eng.popularity_of(eng.ids_of(range(len(eng))))[which]
        ranked = [eng.ids_of([r])[0] for r in sorted(range(len(eng)), key=lambda r: (-pop[r], r))]
        got = eng.most_popular_many(n, which, [eng.rows_of(ex) for ex in excluded])
        assert got == [[i for i in ranked if i not in ex][:n] for ex in excluded]
        assert got == [eng.most_popular(n, which, exclude=ex) for ex in excluded]


def test_rebasing_over_years_of_event_time_stays_exact():
    # A one-hour half-life over two years of events crosses the rebase threshold many times.
    events = [("a", day * 86400.0, 1.0) for day in range(0, 730, 3)] + [("b", 729 * 86400.0, 2.0)]
    eng = fold(events)
    at = 730 * 86400.0
    got = eng.popularity_of(["a", "b"], at=at)
    assert np.isfinite(got).all()
    assert got[0, 1] == pytest.approx(definition(events, "b", at, HALF_LIVES[0]), rel=1e-9)
    assert got[1, 0] == pytest.approx(definition(events, "a", at, HALF_LIVES[1]), rel=1e-9)


def test_most_popular_uses_the_chosen_half_life_and_skips_excluded():
    # "old" was popular a month ago, "new" has a little activity today.
    events = [("old", 0.0, 1.0)] * 20 + [("new", 30 * 86400.0, 1.0)] * 2
    eng = fold(events)
    assert eng.most_popular(2, which=0) == ["new", "old"]  # one-hour half-life: today wins
    assert eng.most_popular(2, which=1) == ["new", "old"]  # 20 * 2^-30 < 2
    long = fold(events, EngagementConfig(pop_half_lives_s=(3600.0, 365 * 86400.0)))
    assert long.most_popular(2, which=1) == ["old", "new"]  # a one-year half-life remembers
    assert long.most_popular(5, which=1, exclude={"old"}) == ["new"]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.sampled_from(["x", "y", "p", "q"]), min_size=0, max_size=4))
def test_a_co_engagement_moves_co_engaged_items_closer_and_leaves_others_alone(history):
    eng = Engagements(EngagementConfig(window=5))
    for n, item in enumerate(history):
        eng.observe("other", f"h{n}", item, float(n), 1.0, previous=history[:n][::-1])
    before = {a: eng.co_engaged([a], 1, 1.0) for a in ("x", "y", "p", "q")}
    links_before = {a: eng.links_of(a) for a in ("p", "q")}
    eng.observe("u", "new", "y", 100.0, 1.0, previous=["x"])
    after = {a: eng.co_engaged([a], 1, 1.0) for a in ("x", "y", "p", "q")}
    assert after["x"].get("y", 0.0) > before["x"].get("y", 0.0)  # what followed x: more of y
    assert after["y"].get("x", 0.0) > before["y"].get("x", 0.0)  # and the reverse link
    for a in ("p", "q"):  # neither item was involved: their links are untouched
        assert eng.links_of(a) == links_before[a]


def test_links_weigh_earlier_items_by_step_decay_and_skip_the_item_itself():
    eng = Engagements(EngagementConfig(window=3, step_decay=0.5, back_weight=0.25))
    eng.observe("u", "e1", "d", 0.0, 2.0, previous=["c", "d", "b", "a"])  # a is beyond the window
    assert eng.links_of("c") == {"d": 2.0}
    assert eng.links_of("b") == {"d": 2.0 * 0.25}  # third earlier item: 0.5^2
    assert eng.links_of("a") == {}  # beyond the window
    assert eng.links_of("d") == {"c": 2.0 * 0.25, "b": 2.0 * 0.25 * 0.25}  # not itself, not a


def test_a_row_keeps_its_strongest_links_and_scores_stay_shares():
    eng = Engagements(EngagementConfig(row_max=3, back_weight=0.0))
    for n in range(10):
        for r in range(n + 1):  # item i{n} follows "a" n+1 times
            eng.observe(f"u{n}-{r}", "e", f"i{n}", float(n), 1.0, previous=["a"])
    row = eng.links_of("a")
    assert len(row) < 2 * 3  # pruned to row_max whenever it reaches twice that
    assert {"i7", "i8", "i9"} <= set(row)  # the strongest survive
    assert not {"i0", "i1", "i2"} & set(row)
    total = sum(range(1, 11))
    assert eng.co_engaged(["a"], 1, 1.0)["i9"] == pytest.approx(10 / (total + 1))  # a share of all links


def test_a_resent_engagement_is_dropped():
    eng = Engagements()
    assert eng.observe("u", "e1", "a", 0.0, 1.0, previous=["b"])
    assert not eng.observe("u", "e1", "a", 0.0, 1.0, previous=["b"])
    assert eng.observe("v", "e1", "a", 0.0, 1.0, previous=["b"])  # another user's id is another event
    assert eng.duplicates == 1
    assert eng.popularity_of(["a"])[0, 0] == pytest.approx(2.0)


histories = st.lists(  # (item, the items before it, most recent first)
    st.tuples(st.sampled_from(ITEMS), st.lists(st.sampled_from(ITEMS), max_size=4)), min_size=1, max_size=30)


@settings(max_examples=60, deadline=None)
@given(histories, st.integers(0, 300), st.lists(st.sampled_from(ITEMS), min_size=1, max_size=6))
def test_co_engagement_of_recent_items_equals_its_definition_whatever_the_catalogue_size(history, fillers, recent):
    """co_engaged_many sums per linked item with a sort when links are few among many items and
    with one pass over the rows otherwise (``fillers``: items engaged with once, unlinked, make the
    state large); both are the definition: sum_j decay^j * link(a_j, i) / (total(a_j) + 1)."""
    eng = Engagements(EngagementConfig(window=4, step_decay=0.6, back_weight=0.3))
    for n in range(fillers):
        eng.observe("f", f"f{n}", f"filler{n}", 0.0, 1.0, previous=())
    for n, (item, before) in enumerate(history):
        eng.observe("u", f"e{n}", item, 1.0 + n, 1.0, previous=before)
    memories = [(3, 0.5), (1, 1.0), (6, 0.9)]
    rows, scores = eng.co_engaged_many(recent, memories)
    got = {m: {eng.ids_of([r])[0]: s for r, s in zip(rows, scores[k])} for k, m in enumerate(memories)}
    for k, (depth, decay) in enumerate(memories):
        expected: dict[str, float] = {}
        for j, a in enumerate(recent[:depth]):
            links = eng.links_of(a)
            total = sum(links.values())  # rows are not pruned at this size: total is every link
            for item, w in links.items():
                expected[item] = expected.get(item, 0.0) + decay**j * w / (total + 1.0)
        linked = {i for a in recent[: max(d for d, _ in memories)] for i in eng.links_of(a)}
        assert set(got[memories[k]]) == linked  # every linked item, scored 0 beyond this memory's depth
        for item in linked:
            assert got[memories[k]][item] == pytest.approx(expected.get(item, 0.0), rel=1e-12, abs=1e-15)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 80), chunk=st.integers(1, 30))
def test_folding_in_chunks_equals_folding_one_by_one(seed, n, chunk):
    """``observe_many`` (the engagement follower's call per fetch) leaves every part of the state as
    ``observe`` one at a time does, bit for bit: popularity, links, and the behaviour facet, whose
    steps it takes together after adding the chunk's new items (re-sent engagements included)."""
    rng = np.random.default_rng(seed)
    items = [f"i{j}" for j in range(12)]
    stream, history = [], {}
    for k in range(n):
        user, item = f"u{int(rng.integers(4))}", items[int(rng.integers(len(items)))]
        earlier = history.setdefault(user, [])
        event = f"e{int(rng.integers(n))}"  # some ids again: re-sent engagements, dropped by both
        stream.append((user, event, item, 1000.0 + k + float(rng.uniform()), float(rng.uniform(0.5, 2.0)), earlier[::-1][:5]))
        earlier.append(item)
    one, many = Engagements(), Engagements()
    news = [one.observe(*e) for e in stream]
    assert sum(many.observe_many(stream[a : a + chunk]) for a in range(0, n, chunk)) == sum(news)
    assert one.rows_of(items).tolist() == many.rows_of(items).tolist() and one.duplicates == many.duplicates
    np.testing.assert_array_equal(one.popularity()[1], many.popularity()[1])
    for item in items:
        assert one.links_of(item) == many.links_of(item)
    assert one.behaviour.steps == many.behaviour.steps
    np.testing.assert_array_equal(one.behaviour.W, many.behaviour.W)
    np.testing.assert_array_equal(one.behaviour.C, many.behaviour.C)
