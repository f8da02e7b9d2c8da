"""The online ranker (streams/state/ranker.py): it learns a signal the stream carries, its guard
refuses a poisoned batch, one user's burst is capped, versions round-trip."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.state.ranker import (
    FEATURES,
    Example,
    HeldBack,
    OnlineRanker,
    RankerConfig,
    chosen_as_lesson,
    evenly_spread,
    example_gradient,
    example_loss,
    with_depth,
)

D = len(FEATURES)
FACET = FEATURES.index("facet")
CO = FEATURES.index("co_recent")


def lessons(rng: np.random.Generator, n: int, signal: int, users: int = 50, candidates: int = 20) -> list[Example]:
    """The engaged candidate is the one with the largest value of feature ``signal``."""
    out = []
    for i in range(n):
        f = rng.normal(size=(candidates, D)) * 0.3
        out.append(Example(f"u{i % users}", f, int(np.argmax(f[:, signal]))))
    return out


def test_it_learns_the_feature_that_predicts_engagement():
    rng = np.random.default_rng(0)
    ranker = OnlineRanker(RankerConfig(lr=0.5, min_holdout=10))
    start = ranker.w[FACET]
    for _ in range(40):
        ranker.learn(lessons(rng, 64, FACET))
    assert ranker.accepted > 20
    assert ranker.w[FACET] > start + 1.0
    test = lessons(rng, 200, FACET)
    hits = np.mean([np.argmax(ranker.score(ex.features)) == ex.positive for ex in test])
    assert hits > 0.5  # chance is 1/20


def test_the_guard_refuses_a_poisoned_batch():
    rng = np.random.default_rng(1)
    ranker = OnlineRanker(RankerConfig(lr=2.0, min_holdout=10, holdout_every=2))
    for _ in range(10):
        ranker.learn(lessons(rng, 64, FACET))  # fills the held-back sample with honest lessons
    kept_w, version = ranker.w.copy(), ranker.version
    # Poison: every "engaged" item is the one the honest signal ranks last.
    poison = []
    for i in range(64):
        f = rng.normal(size=(20, D)) * 0.3
        poison.append(Example(f"bot{i}", f, int(np.argmin(f[:, FACET]))))
    assert ranker.learn(poison) is False
    assert ranker.rejected >= 1
    assert np.array_equal(ranker.w, kept_w) and ranker.version == version


def test_one_users_burst_counts_at_most_per_user_times():
    rng = np.random.default_rng(2)
    base = OnlineRanker(RankerConfig(per_user=2, min_holdout=0, holdout_every=10**9, tolerance=10.0))
    burst = lessons(rng, 100, CO, users=1)
    capped = OnlineRanker(base.config)
    capped.learn(burst)
    two = OnlineRanker(base.config)
    two.learn(burst[:2])
    assert np.allclose(capped.w, two.w)  # the other 98 were not trained on


@settings(max_examples=30)
@given(st.integers(0, 2**31 - 1))
def test_the_gradient_is_the_derivative_of_the_loss(seed):
    rng = np.random.default_rng(seed)
    ex = lessons(rng, 1, FACET)[0]
    w = rng.normal(size=D)
    eps = 1e-6
    numeric = np.array([(example_loss(w - eps * e, ex) - example_loss(w + eps * e, ex)) / (2 * eps) for e in np.eye(D)])
    assert np.allclose(example_gradient(w, ex), numeric, atol=1e-5)  # ascent direction = -dLoss


def test_a_batchs_lessons_beyond_its_budget_are_evenly_spread():
    """What the worker keeps of a micro-batch's lessons (and the eval's worker-like ranker too)."""
    assert evenly_spread(list(range(5)), 8) == [0, 1, 2, 3, 4]
    assert evenly_spread(list(range(10)), 4) == [0, 2, 5, 7]  # one from each quarter
    assert evenly_spread(list(range(10)), 0) == []
    for n in range(1, 40):
        for budget in range(1, n + 1):
            got = evenly_spread(list(range(n)), budget)
            assert len(got) == budget == len(set(got)) and got == sorted(got) and got[0] == 0


def test_depth_features_are_the_base_features_times_history_depth():
    base = np.arange(7, dtype=float)[None, :]
    assert np.array_equal(with_depth(base, 0)[0, 7:], np.zeros(7))
    f = with_depth(base, 100)
    assert np.allclose(f[0, 7:], base[0] * np.log1p(100) / 5)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), size=st.integers(1, 12), appended=st.integers(0, 30))
def test_the_held_back_loss_is_the_mean_loss_of_the_newest_examples(seed, size, appended):
    """The padded buffer gives the mean ``example_loss`` of the last ``size`` examples, whatever
    their candidate counts (padding is no candidate) and however many were replaced."""
    rng = np.random.default_rng(seed)
    examples = [Example("u", rng.normal(size=(c, D)), int(rng.integers(c)))
                for c in rng.integers(1, 40, size=appended)]
    held = HeldBack(size)
    for ex in examples:
        held.append(ex)
    ws = rng.normal(size=(2, D))
    kept = examples[-size:] if examples else []
    expected = [np.mean([example_loss(w, ex) for ex in kept]) if kept else 0.0 for w in ws]
    assert len(held) == len(kept)
    assert np.allclose(held.mean_losses(ws), expected)


def test_one_engagement_in_n_is_a_lesson_and_the_choice_is_the_same_in_another_process():
    ids = [(f"u{n % 97}", f"e{n}") for n in range(12_000)]
    chosen = [chosen_as_lesson(u, e, 12) for u, e in ids]
    assert 0.075 < sum(chosen) / len(ids) < 0.092  # 1/12 = 0.083; binomial sd 0.0025
    assert all(chosen_as_lesson(u, e, 1) for u, e in ids[:100])
    # Another interpreter with another hash salt chooses the same ones (Python's hash() would not).
    code = ("import sys; from streams.state.ranker import chosen_as_lesson; "
            f"print(''.join('1' if chosen_as_lesson(u, e, 12) else '0' for u, e in {ids[:400]!r}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONHASHSEED": "12345"}).stdout.strip()
    assert out == "".join("1" if c else "0" for c in chosen[:400])
