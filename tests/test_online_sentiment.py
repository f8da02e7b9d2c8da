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


# VADER's compound score is 0 for all of these (and negative for "No wear ..."): its lexicon has no
# word for wear and tear, so only learning from the ratings can tell them apart.
DIED = ["Fell apart after {} uses.", "Returned it, it lasted {} days.", "The screen cracked after {} days.",
        "Sent it back after {} days.", "The sole came off after {} runs.", "Leaks after {} washes."]
LASTED = ["Works every day for {} months now.", "Holds a charge for {} days.", "Ran {} marathons in them.",
          "Still waterproof after {} hikes.", "No wear after {} months of daily use."]


def test_the_real_sentiment_head_learns_from_rated_reviews(encoder):
    """Wear-and-tear complaints that the lexicon reads as neutral, rated 1-2, and durability praise
    that it reads as neutral or negative, rated 4-5: after learning, the head reads held-out ones of the same kind better."""
    from encoders.heads import SentimentHead

    head = SentimentHead(encoder.embed)  # a fresh head, so the session encoder stays untouched
    train = [(t.format(k), 1) for t in DIED for k in range(2, 14)] + [(t.format(k), 5) for t in LASTED for k in range(2, 16)]
    test = [(t.format(k), 0) for t in DIED for k in (21, 33)] + [(t.format(k), 2) for t in LASTED for k in (21, 33)]
    e_test = encoder.embed([t for t, _ in test])
    y_test = np.array([y for _, y in test])
    before = float(np.mean(head.probabilities(e_test, [t for t, _ in test]).argmax(axis=1) == y_test))
    rng = np.random.default_rng(4)
    for _ in range(6):  # a replayed stream: the same kind of reviews, in micro-batches
        order = rng.permutation(len(train))
        for start in range(0, len(order), 20):
            chunk = [train[i] for i in order[start : start + 20]]
            head.learn(encoder.embed([t for t, _ in chunk]), [t for t, _ in chunk], [r for _, r in chunk])
    after = float(np.mean(head.probabilities(e_test, [t for t, _ in test]).argmax(axis=1) == y_test))
    assert head.version > 0 and after > before, (before, after, head.online.status())
    assert after >= 0.8, (before, after)
