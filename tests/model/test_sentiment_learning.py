"""The real sentiment head (real model) learning from rated reviews the lexicon cannot read."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers.texts import DIED, LASTED


def test_the_real_sentiment_head_learns_from_rated_reviews(encoder):
    """Wear-and-tear complaints that the lexicon reads as neutral, rated 1-2, and durability praise
    that it reads as neutral or negative, rated 4-5: after learning, the head reads held-out ones of the same kind better."""
    from encoders.heads import SentimentHead

    # A fresh head, so the session encoder stays untouched.
    head = SentimentHead(encoder.embed, middle_dim=encoder.heads["sentiment"].middle_dim)
    train = [(t.format(k), 1) for t in DIED for k in range(2, 14)] + [(t.format(k), 5) for t in LASTED for k in range(2, 16)]
    test = [(t.format(k), 0) for t in DIED for k in (21, 33)] + [(t.format(k), 2) for t in LASTED for k in (21, 33)]
    e_test = encoder.sentiment_inputs([t for t, _ in test])
    y_test = np.array([y for _, y in test])
    before = float(np.mean(head.probabilities(e_test, [t for t, _ in test]).argmax(axis=1) == y_test))
    rng = np.random.default_rng(4)
    for _ in range(6):  # a replayed stream: the same kind of reviews, in micro-batches
        order = rng.permutation(len(train))
        for start in range(0, len(order), 20):
            chunk = [train[i] for i in order[start : start + 20]]
            head.learn(encoder.sentiment_inputs([t for t, _ in chunk]), [t for t, _ in chunk], [r for _, r in chunk])
    after = float(np.mean(head.probabilities(e_test, [t for t, _ in test]).argmax(axis=1) == y_test))
    assert head.version > 0 and after > before, (before, after, head.online.status())
    assert after >= 0.8, (before, after)


def test_the_shipped_head_is_the_prototype_and_lexicon_mixture(encoder):
    """Before any learning the lexicon's columns of the learned layer (VADER's c and |c|) and the
    middle layer's weigh nothing: the head is the lexicon's probabilities mixed with the prototype
    classifier's, which reads the sentence embedding only."""
    from encoders.heads import SentimentHead
    from encoders.online_sentiment import softmax

    head = SentimentHead(encoder.embed, middle_dim=encoder.heads["sentiment"].middle_dim)
    assert head.middle_dim == encoder.embedding_dim  # the bundled model's default reads a middle layer
    texts = ["Not good at all, I regret buying this.", "Great value, would buy again!", "The box arrived on Tuesday."]
    inputs = encoder.sentiment_inputs(texts)
    e = inputs[:, : encoder.embedding_dim]
    p_lexicon, features = head.lexicon(texts)
    c = np.array([head.lexicon_analyzer.polarity_scores(t)["compound"] for t in texts])
    np.testing.assert_allclose(features, np.stack([c, np.abs(c)], axis=1))
    lam = head.lexicon_weight
    want = lam * p_lexicon + (1 - lam) * softmax(e.astype(np.float64) @ (head.temperature * head.centroids).T)
    np.testing.assert_allclose(head.probabilities(inputs, texts), want, atol=1e-6)
    with pytest.raises(ValueError, match="FacetEncoder.sentiment_inputs"):
        head.probabilities(e, texts)  # the embedding alone is not what this head reads
    assert p_lexicon[0].argmax() == 0 and p_lexicon[1].argmax() == 2  # VADER's rule on the plain cases


def test_sentiment_inputs_are_the_embedding_and_a_middle_layer_as_encode_gives_them(encoder):
    """The first block is the sentence embedding (``embed``); the second is another layer (unit
    rows, not a copy); ``encode`` hands the same rows over for learning, from the cache too."""
    from encoders import EncoderConfig, FacetEncoder
    from encoders.errors import ModelLoadError

    texts = ["The strap snapped after two weeks.", "Works exactly as described, five stars.", "shipping to Oslo"]
    d = encoder.embedding_dim
    inputs = encoder.sentiment_inputs(texts)
    assert inputs.shape == (3, 2 * d)
    np.testing.assert_allclose(inputs[:, :d], encoder.embed(texts), atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(inputs[:, d:], axis=1), 1.0, atol=1e-5)
    assert np.max(np.abs(inputs[:, d:] - inputs[:, :d])) > 0.05
    np.testing.assert_allclose(encoder.sentiment_inputs(texts[1:2])[0], inputs[1], atol=1e-5)  # alone as in a batch
    fresh = encoder.encode(texts)
    cached = encoder.encode(texts[::-1])  # all three from the cache now
    np.testing.assert_allclose(fresh.sentiment_inputs, inputs, atol=1e-5)
    np.testing.assert_array_equal(cached.sentiment_inputs, fresh.sentiment_inputs[::-1])
    last_only = FacetEncoder(EncoderConfig(sentiment_layer=0, cache_size=0))
    assert last_only.sentiment_inputs(texts).shape == (3, d)
    assert last_only.encode(texts).facets["sentiment"].shape == (3, 3)
    with pytest.raises(ModelLoadError, match="sentiment_layer 7 is not a layer"):
        FacetEncoder(EncoderConfig(sentiment_layer=7))


def test_a_head_stored_before_the_middle_layer_reads_as_it_did(encoder):
    """A head learned and stored by the code before the middle layer (columns: embedding, c, |c|)
    loads into today's (embedding, c, |c|, middle layer) with its weights where they were."""
    from encoders.heads import SentimentHead
    from encoders.online_sentiment import OnlineSentiment

    head = SentimentHead(encoder.embed, middle_dim=encoder.embedding_dim)
    rng = np.random.default_rng(3)
    d = encoder.embedding_dim
    before = OnlineSentiment(rng.normal(size=(3, d + 2)), lexicon_weight=0.4)
    before.version = 5
    head.online.load(before.to_dict())
    assert head.online.version == 5 and head.online.w.shape == (3, 2 * d + 2)
    texts = ["Broke on day three.", "Lovely fit and it lasts.", "Arrived Tuesday."]
    inputs = encoder.sentiment_inputs(texts)
    p_lexicon, features = head.lexicon(texts)
    np.testing.assert_allclose(head.probabilities(inputs, texts),
                               before.probs(np.hstack([inputs[:, :d], features]), p_lexicon), atol=1e-9)
