"""The sentiment head learning online from review ratings (encoders/online_sentiment.py)."""

from __future__ import annotations

import numpy as np

from encoders.online_sentiment import LearningConfig, OnlineSentiment, rating_label, softmax


def synthetic(rng: np.random.Generator, n: int, dim: int = 8):
    """Three classes along three directions, plus noise; unit rows like the encoder's."""
    y = rng.integers(0, 3, n)
    e = rng.normal(0, 0.3, (n, dim))
    e[np.arange(n), y] += 1.0
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    return e, y


def uninformed(n: int) -> np.ndarray:
    return np.tile([0.0, 1.0, 0.0], (n, 1))  # a lexicon that says "neutral" to everything


def test_starts_as_the_prototype_classifier_and_labels_map_from_ratings():
    w0 = np.random.default_rng(0).normal(size=(3, 8))
    head = OnlineSentiment(w0, lexicon_weight=0.7)
    e = np.random.default_rng(1).normal(size=(5, 8))
    np.testing.assert_allclose(head.head_probs(e), softmax(e @ w0.T))
    assert [rating_label(r) for r in (1, 2, 3, 4, 5)] == [0, 0, 1, 2, 2]


def test_learning_moves_the_head_toward_the_labels_and_a_poisoned_update_is_refused():
    rng = np.random.default_rng(2)
    head = OnlineSentiment(np.zeros((3, 8)), lexicon_weight=0.3, config=LearningConfig(lr=0.5))
    e_test, y_test = synthetic(rng, 300)
    accuracy = lambda: float(np.mean(head.probs(e_test, uninformed(300)).argmax(axis=1) == y_test))  # noqa: E731
    start = accuracy()
    losses = []
    for _ in range(40):
        e, y = synthetic(rng, 50)
        head.learn(e, uninformed(50), list(y))
        if head.holdout_loss() is not None:
            losses.append(head.holdout_loss())
    assert head.version > 10 and accuracy() > max(start, 0.8), (start, accuracy())
    assert losses[-1] < losses[0]
    version, w = head.version, head.w.copy()
    e, y = synthetic(rng, 50)
    assert head.learn(e, uninformed(50), list((y + 1) % 3)) is False  # every label wrong
    assert head.version == version and head.rejected >= 1
    np.testing.assert_array_equal(head.w, w)


def test_state_round_trip_and_never_going_back_to_an_older_version():
    rng = np.random.default_rng(3)
    head = OnlineSentiment(np.zeros((3, 8)), lexicon_weight=0.3)
    for _ in range(10):
        e, y = synthetic(rng, 50)
        head.learn(e, uninformed(50), list(y))
    saved = head.to_dict()
    fresh = OnlineSentiment(np.zeros((3, 8)), lexicon_weight=0.3)
    fresh.load(saved)
    assert fresh.version == head.version > 0
    np.testing.assert_array_equal(fresh.w, head.w)
    older = dict(saved, version=1)
    fresh.load(older)
    assert fresh.version == head.version
