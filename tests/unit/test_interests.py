"""Several interests per user (streams/state/interests.py): clusters of recent items, by hand and
as properties."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.state.interests import InterestsConfig, cluster_interests


def unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


def around(axis: int, rng: np.random.Generator, dim: int = 8, noise: float = 0.1) -> np.ndarray:
    return unit(np.eye(dim)[axis] + noise * rng.normal(size=dim))


def test_two_separate_tastes_are_two_interests_with_the_right_members_and_shares():
    rng = np.random.default_rng(0)
    # Most recent first: 3 cooking items, then 2 camping items, then 1 more cooking item.
    ids = ["cook1", "cook2", "cook3", "camp1", "camp2", "cook4"]
    vecs = np.stack([around(0, rng)] * 3 + [around(1, rng)] * 2 + [around(0, rng)])
    cfg = InterestsConfig(decay=0.5)
    [first, second] = cluster_interests(ids, vecs, cfg)
    assert first.items == ("cook1", "cook2", "cook3", "cook4") and second.items == ("camp1", "camp2")
    w = 0.5 ** np.arange(6)
    assert np.isclose(first.share, (w[:3].sum() + w[5]) / w.sum())
    assert np.isclose(first.share + second.share, 1.0)
    assert first.centroid @ np.eye(8)[0] > 0.9 and second.centroid @ np.eye(8)[1] > 0.9


def test_one_taste_is_one_interest_and_no_items_none():
    rng = np.random.default_rng(1)
    [only] = cluster_interests([f"i{n}" for n in range(10)], np.stack([around(3, rng) for _ in range(10)]))
    assert len(only.items) == 10 and np.isclose(only.share, 1.0)
    assert cluster_interests([], np.zeros((0, 8))) == []


def test_only_the_most_recent_items_are_clustered():
    rng = np.random.default_rng(2)
    vecs = np.stack([around(0, rng)] * 3 + [around(1, rng)] * 5)
    [only] = cluster_interests([f"i{n}" for n in range(8)], vecs, InterestsConfig(recent=3))
    assert only.items == ("i0", "i1", "i2")


@settings(max_examples=80, deadline=None)
@given(st.integers(0, 2**31), st.integers(1, 40), st.integers(1, 5), st.floats(0.0, 0.99))
def test_every_recent_item_is_in_exactly_one_interest_and_shares_sum_to_one(seed, n, max_k, join):
    rng = np.random.default_rng(seed)
    vecs = np.stack([unit(rng.normal(size=6)) for _ in range(n)])
    cfg = InterestsConfig(max_interests=max_k, join_cosine=join)
    found = cluster_interests([f"i{j}" for j in range(n)], vecs, cfg)
    members = [i for interest in found for i in interest.items]
    assert sorted(members) == sorted(f"i{j}" for j in range(min(n, cfg.recent)))
    assert 1 <= len(found) <= max_k
    assert np.isclose(sum(i.share for i in found), 1.0)
    assert [i.share for i in found] == sorted((i.share for i in found), reverse=True)
    for interest in found:
        assert np.isclose(np.linalg.norm(interest.centroid), 1.0)
