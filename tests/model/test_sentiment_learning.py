"""The real sentiment head (real model) learning from rated reviews the lexicon cannot read."""

from __future__ import annotations

import numpy as np

from tests.helpers.texts import DIED, LASTED


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


def test_the_shipped_head_is_the_prototype_and_lexicon_mixture(encoder):
    """Before any learning the lexicon's columns of the learned layer (VADER's c and |c|) weigh
    nothing: the head is the lexicon's probabilities mixed with the prototype classifier's."""
    from encoders.heads import SentimentHead
    from encoders.online_sentiment import softmax

    head = SentimentHead(encoder.embed)
    texts = ["Not good at all, I regret buying this.", "Great value, would buy again!", "The box arrived on Tuesday."]
    e = encoder.embed(texts)
    p_lexicon, features = head.lexicon(texts)
    c = np.array([head.lexicon_analyzer.polarity_scores(t)["compound"] for t in texts])
    np.testing.assert_allclose(features, np.stack([c, np.abs(c)], axis=1))
    lam = head.lexicon_weight
    want = lam * p_lexicon + (1 - lam) * softmax(e.astype(np.float64) @ (head.temperature * head.centroids).T)
    np.testing.assert_allclose(head.probabilities(e, texts), want, atol=1e-6)
    assert p_lexicon[0].argmax() == 0 and p_lexicon[1].argmax() == 2  # VADER's rule on the plain cases
