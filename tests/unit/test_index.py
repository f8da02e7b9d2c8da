"""The FAISS item index against brute force: upserts, deletes, exclusions, per-facet scores."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from index import IndexConfig, ItemIndex, UnknownItem
from schemas import join_facets

LAYOUT = {"sentiment": 3, "topic": 8, "style": 4}
WEIGHTS = {"sentiment": 0.2, "topic": 1.0, "style": 0.1}


def unit_rows(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    out = {}
    for name, d in LAYOUT.items():
        rows = rng.normal(size=(n, d)).astype(np.float32)
        out[name] = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    return out


def make_index() -> ItemIndex:
    return ItemIndex(LAYOUT, IndexConfig(device="cpu", facet_weights=WEIGHTS))


def brute_force(live: dict[str, dict[str, np.ndarray]], query: dict[str, np.ndarray], exclude=()) -> list[tuple[str, float]]:
    scores = []
    for item_id, facets in live.items():
        if item_id in exclude:
            continue
        s = sum(WEIGHTS[f] * float(facets[f] @ (query[f] / np.linalg.norm(query[f]))) for f in LAYOUT)
        scores.append((item_id, s))
    return sorted(scores, key=lambda x: -x[1])


ops = st.lists(
    st.tuples(st.sampled_from(["upsert", "delete"]), st.lists(st.integers(0, 15), min_size=1, max_size=6)),
    min_size=1,
    max_size=12,
)


@settings(max_examples=60, deadline=None)
@given(ops, st.integers(0, 2**31), st.integers(1, 8))
def test_search_matches_brute_force_after_any_upserts_and_deletes(operations, seed, k):
    rng = np.random.default_rng(seed)
    index, live = make_index(), {}
    for op, nums in operations:
        ids = [f"item{n}" for n in nums]
        if op == "upsert":
            rows = unit_rows(rng, len(ids))
            index.upsert(ids, rows, [{"category": "c"}] * len(ids))
            for i, item_id in enumerate(ids):  # a repeated id keeps its last vector
                live[item_id] = {f: rows[f][i] for f in LAYOUT}
        else:
            index.delete(ids)
            for item_id in ids:
                live.pop(item_id, None)
    assert sorted(index.item_ids()) == sorted(live)
    query = {f: v[0] for f, v in unit_rows(rng, 1).items()}
    exclude = set(list(live)[:2])
    [hits] = index.search([query], k, exclude=[exclude])
    expected = brute_force(live, query, exclude)[:k]
    # The recommender prepares a query once, then searches and scores with it: the same answers.
    prepared = index.prepare(query)
    assert index.nearest([prepared], k, exclude=[exclude]) == index.nearest([query], k, exclude=[exclude])
    assert [i for i, _ in index.nearest([prepared], k, exclude=[exclude])[0]] == [h.item_id for h in hits]
    ids = [h.item_id for h in hits] + ["not indexed"]
    assert np.allclose(index.score_items(prepared, ids), [h.score for h in hits] + [0.0], atol=1e-5)
    assert np.array_equal(index.score_items(prepared, ids), index.score_items(query, ids))
    assert [h.item_id for h in hits] == [item_id for item_id, _ in expected]
    for hit, (_, score) in zip(hits, expected):
        assert hit.score == pytest.approx(score, abs=1e-5)
        assert hit.score == pytest.approx(sum(WEIGHTS[f] * hit.facet_scores[f] for f in LAYOUT), abs=1e-5)
        assert hit.score == pytest.approx(sum(hit.contributions.values()), abs=1e-5)
        assert hit.contributions[hit.matched_by] == max(hit.contributions.values())


def test_stored_vectors_come_back_for_clicks():
    rng = np.random.default_rng(1)
    index = make_index()
    rows = unit_rows(rng, 3)
    index.upsert(["a", "b", "c"], rows)
    got = index.vectors("b")
    for f in LAYOUT:
        np.testing.assert_allclose(got[f], rows[f][1], atol=1e-6)
    # A micro-batch's clicks read them all at once: the same vectors, None for an unknown item.
    joined = index.joined_vectors(["c", "a", "gone", "c"])
    assert joined[2] is None
    for item, vec in zip(["c", "a", "c"], [joined[0], joined[1], joined[3]]):
        assert vec.dtype == np.float64 and np.array_equal(vec, join_facets(index.vectors(item), LAYOUT))
    index.delete(["b"])
    with pytest.raises(UnknownItem):
        index.vectors("b")
    assert index.joined_vectors(["b"]) == [None]


def test_empty_index_and_over_large_k():
    index = make_index()
    query = {f: np.ones(d, dtype=np.float32) for f, d in LAYOUT.items()}
    assert index.search([query], 5) == [[]]
    index.upsert(["a", "b"], unit_rows(np.random.default_rng(2), 2))
    [hits] = index.search([query], 50, exclude=[{"a"}])
    assert [h.item_id for h in hits] == ["b"]


def test_category_shares_follow_the_topic_and_forget_deleted_items():
    index = make_index()
    rng = np.random.default_rng(3)
    rows = unit_rows(rng, 2)
    rows["topic"] = np.eye(8, dtype=np.float32)[:2]
    index.upsert(["x", "y"], rows, [{"category": "shoes"}, {"category": "audio"}])
    shares = dict(index.category_shares(np.eye(8)[0]))
    assert shares["shoes"] > 0.9 > shares["audio"]
    assert sum(shares.values()) == pytest.approx(1.0)
    assert index.leading_categories(np.eye(8)[[1, 0]]) == ["audio", "shoes"]
    assert make_index().leading_categories(np.eye(8)[:1]) == [None]
    index.delete(["x"])
    assert [c for c, _ in index.category_shares(np.eye(8)[0])] == ["audio"]


def test_bad_configuration_is_refused_with_a_reason():
    with pytest.raises(ValueError, match="must start with 'IDMap2'"):
        ItemIndex(LAYOUT, IndexConfig(factory="Flat", facet_weights=WEIGHTS))
    with pytest.raises(ValueError, match="needs training"):
        ItemIndex(LAYOUT, IndexConfig(factory="IDMap2,IVF16,Flat", facet_weights=WEIGHTS))
    with pytest.raises(ValueError, match="no retrieval weight"):
        ItemIndex(LAYOUT, IndexConfig(facet_weights={"topic": 1.0}))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 6))
def test_category_shares_of_many_rows_are_the_softmax_of_each_rows_cosines(seed, n):
    """A micro-batch's profiles read their category shares in one product: each row must get what
    the definition gives it alone (softmax of temperature x cosine to each category centroid)."""
    rng = np.random.default_rng(seed)
    index = make_index()
    rows = unit_rows(rng, 6)
    cats = ["shoes", "audio", "tents", "shoes", "books", "audio"]
    index.upsert([f"i{k}" for k in range(6)], rows, [{"category": c} for c in cats])
    topics = rng.normal(size=(n, 8))
    centroids = {c: sum(rows["topic"][k].astype(np.float64) for k in range(6) if cats[k] == c) for c in set(cats)}
    for topic, got in zip(topics, index.category_shares_rows(topics, top=4)):
        cos = {c: float(v @ topic / np.linalg.norm(v) / np.linalg.norm(topic)) for c, v in centroids.items()}
        weights = {c: np.exp(8.0 * x) for c, x in cos.items()}
        want = sorted(((c, w / sum(weights.values())) for c, w in weights.items()), key=lambda cw: -cw[1])
        assert [c for c, _ in got] == [c for c, _ in want]
        np.testing.assert_allclose([s for _, s in got], [s for _, s in want], rtol=1e-9)
        alone = index.category_shares(topic, top=4)
        assert [c for c, _ in alone] == [c for c, _ in got]
        np.testing.assert_allclose([s for _, s in alone], [s for _, s in got], rtol=1e-12)
