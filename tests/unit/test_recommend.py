"""Candidates from every source, ranked by the learned ranker (streams/state/recommend.py), over a
real (small) FAISS index."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from index import ItemIndex
from streams.state.decay import InterestState
from streams.state.engagement import Engagements
from streams.state.ranker import FEATURES, OnlineRanker
from streams.state.recommend import RecommendConfig, Recommender, UserView, topic_lookup, user_view

LAYOUT = {"sentiment": 3, "topic": 8, "style": 4}


def unit(v):
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


def facets(topic_axis: int):
    topic = np.full(8, 0.01)
    topic[topic_axis] = 1.0
    return {"sentiment": unit([1, 1, 1]), "topic": unit(topic), "style": unit([1, 1, 1, 1])}


def build(items: dict[str, int]) -> tuple[Recommender, ItemIndex, Engagements]:
    index = ItemIndex(LAYOUT)
    ids = list(items)
    rows = [facets(items[i]) for i in ids]
    index.upsert(ids, {f: np.stack([r[f] for r in rows]) for f in LAYOUT})
    eng = Engagements()
    return Recommender(eng, OnlineRanker(), index, RecommendConfig(per_source=3)), index, eng


def test_each_source_brings_its_own_candidates_and_says_so():
    rec, _, eng = build({"near": 0, "followed": 5, "popular": 6, "seen": 0, "other": 7})
    for n in range(30):
        eng.observe(f"p{n}", "e", "popular", 100.0 + n, 1.0, previous=())
    eng.observe("x", "e", "followed", 50.0, 1.0, previous=["seen"])
    user = UserView(recent=["seen"], z=facets(0), history=3, exclude=frozenset({"seen"}))
    got = {s.item_id: s for s in rec.recommend(user, 10)}
    assert "seen" not in got
    assert "facet" in got["near"].sources
    assert "co-engagement" in got["followed"].sources
    assert "popular" in got["popular"].sources
    co = got["followed"].features[FEATURES.index("co_recent")]
    assert co > 0 and got["near"].features[FEATURES.index("co_recent")] == 0


def test_scores_are_the_ranker_weights_times_the_features_in_order():
    rec, _, eng = build({f"i{n}": n % 8 for n in range(12)})
    for n in range(12):
        eng.observe("u", f"e{n}", f"i{n}", float(n), 1.0, previous=[f"i{n - 1}"] if n else [])
    user = UserView(recent=["i11", "i10"], z=facets(3), history=12, exclude=frozenset({"i11", "i10"}))
    got = rec.recommend(user, 5)
    assert len(got) == 5
    assert [s.score for s in got] == sorted((s.score for s in got), reverse=True)
    for s in got:
        assert s.score == pytest.approx(float(rec.ranker.w @ s.features), rel=1e-12)  # a matrix product vs a dot
        assert sum(rec.ranker.contributions(s.features).values()) == np.float64(s.score) or \
            abs(sum(rec.ranker.contributions(s.features).values()) - s.score) < 1e-9


def test_an_item_that_left_the_catalogue_is_not_recommended():
    rec, index, eng = build({"a": 0, "b": 1, "gone": 2})
    for n in range(5):
        eng.observe(f"p{n}", "e", "gone", 10.0, 1.0, previous=())
    index.delete(["gone"])
    user = UserView(recent=[], z=facets(2), history=1)
    assert "gone" not in [s.item_id for s in rec.recommend(user, 10)]


def test_a_user_without_z_gets_popular_and_co_engaged_items():
    rec, _, eng = build({"a": 0, "b": 1, "c": 2})
    eng.observe("p", "e1", "b", 10.0, 1.0, previous=["a"])
    got = rec.recommend(UserView(recent=["a"], z=None, history=1, exclude=frozenset({"a"})), 10)
    assert [s.item_id for s in got] == ["b"]  # "c" no source brings; "a" was engaged with


def test_an_example_marks_the_engaged_item_among_the_candidates():
    rec, _, eng = build({"a": 0, "b": 1, "c": 2, "d": 3})
    user = UserView(recent=["a"], z=facets(0), history=1, exclude=frozenset({"a"}))
    cands = rec.candidates(user, also=["d"])
    ex = rec.example("u", cands, "d")
    assert ex is not None and cands.ids[ex.positive] == "d"
    assert ex.features.shape == (len(cands.ids), len(FEATURES))
    assert rec.example("u", cands, "unknown") is None
    # "d" only joined as the lesson's item: it is not recommended unless a source brings it
    assert all(s.item_id != "d" or s.sources for s in rec.rank(cands, 10))


def test_user_view_reads_the_state_most_recent_first():
    state = InterestState()
    state.add(np.ones(15), 1.0, 1.0, 3600.0)
    for item in ("x", "y", "z"):
        state.remember_item(item, 10)
    state.counts = {"click": 3, "search": 1}
    view = user_view(state, LAYOUT)
    assert list(view.recent) == ["z", "y", "x"]
    assert view.history == 4 and view.exclude == {"x", "y", "z"}
    assert view.z is not None and set(view.z) == set(LAYOUT)


def test_new_items_behaviour_scores_follow_a_changed_catalogue():
    """Candidates nobody engaged with yet are scored from their starting vectors (their content),
    which are kept between recommendations until the catalogue changes: an item re-indexed with
    another text is scored from the new one."""
    index = ItemIndex(LAYOUT)
    index.upsert(["seen", "fresh", "other"], {f: np.stack([facets(a)[f] for a in (0, 0, 5)]) for f in LAYOUT})
    eng = Engagements(content=topic_lookup(index))
    eng.observe("u", "e1", "seen", 1.0, 1.0, previous=())
    beh = eng.behaviour
    assert beh is not None
    user = beh.user_vector(eng.rows_of(["seen"]), [1.0])
    new = np.array([-1, -1])

    def expected() -> np.ndarray:
        start = beh.start_vectors(["fresh", "other"])
        return start @ user / (np.linalg.norm(start, axis=1) * np.linalg.norm(user))

    before = beh.scores(user, new, ["fresh", "other"])
    assert np.allclose(before, expected(), atol=1e-12) and before[0] > before[1]  # "fresh" starts where "seen" does
    assert np.array_equal(beh.scores(user, new, ["fresh", "other"]), before)  # kept, not recomputed differently
    index.upsert(["fresh"], {f: facets(5)[f][None, :] for f in LAYOUT})  # re-texted: now like "other"
    after = beh.scores(user, new, ["fresh", "other"])
    assert np.allclose(after, expected(), atol=1e-12)
    assert after[0] == pytest.approx(after[1], abs=1e-9) and after[0] < before[0]


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10**6), users=st.integers(1, 6))
def test_candidates_for_several_users_at_once_equal_each_users_own(seed, users):
    """A micro-batch's lessons build their candidates in one call (one index search, one popular
    ordering): every user's ids, sources and features are what asking for that user alone gives."""
    rng = np.random.default_rng(seed)
    index, eng = ItemIndex(LAYOUT), Engagements()
    ids = [f"i{n}" for n in range(40)]
    index.upsert(ids, {f: rng.normal(size=(len(ids), d)) for f, d in LAYOUT.items()})
    for n in range(120):
        item = ids[int(rng.integers(len(ids)))]
        eng.observe(f"u{n % 9}", f"e{n}", item, float(rng.integers(0, 5)), 1.0,  # equal times: ties
                    previous=[ids[int(j)] for j in rng.integers(0, len(ids), size=int(rng.integers(0, 4)))])
    rec = Recommender(eng, OnlineRanker(), index, RecommendConfig(per_source=5))
    views = []
    for _ in range(users):
        seen = [ids[int(j)] for j in rng.choice(len(ids), size=int(rng.integers(0, 12)), replace=False)]
        z = {f: rng.normal(size=d) for f, d in LAYOUT.items()} if rng.random() < 0.8 else None
        views.append(UserView(recent=seen[::-1], z=z, history=len(seen), exclude=frozenset(seen)))
    also = [[ids[int(rng.integers(len(ids)))]] for _ in views]
    together = rec.candidates_many(views, also)
    for view, extra, got in zip(views, also, together):
        alone = rec.candidates(view, also=extra)
        assert got.ids == alone.ids and got.sources == alone.sources
        assert np.allclose(got.features, alone.features, rtol=1e-6, atol=1e-7)
