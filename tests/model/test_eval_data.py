"""The real public datasets of `interest-stream eval`, read out of the pinned package files that
scripts/setup downloads (no model, but downloaded data: not a unit test)."""

from __future__ import annotations

from collections import Counter

import pytest

from streams.tools.eval_data import load_movielens, load_snippets
from tests.helpers.paths import EVAL_DATA as DATA


def test_movielens_100k_as_published():
    movies, ratings = load_movielens(DATA)
    assert len(movies) == 1682 and len(ratings) == 100_000
    assert len({r.user_id for r in ratings}) == 943
    assert movies["1"].title == "Toy Story" and movies["1"].year == "1995"
    assert movies["1"].genres == ("Animation", "Children's", "Comedy")
    assert all(1 <= r.rating <= 5 for r in ratings)
    assert min(Counter(r.user_id for r in ratings).values()) >= 20  # MovieLens keeps users with 20+ ratings


def test_vader_ground_truth_snippets_as_published():
    corpora = load_snippets(DATA)
    assert {k: len(v) for k, v in corpora.items()} == {"amazon": 3708, "movie": 10605, "nyt": 5190, "tweets": 4200}
    first = corpora["movie"][0]
    assert first.text.startswith("The Rock is destined") and first.mean_rating == pytest.approx(2.2667, abs=1e-3)
    assert all(-4.0 <= s.mean_rating <= 4.0 for rows in corpora.values() for s in rows)
