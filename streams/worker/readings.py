"""Named readings of facet vectors, for people and for the drift monitor: they need the encoder's
heads, the index's categories and the discovered topics, which the pure state code does not see."""

from __future__ import annotations

import numpy as np

from schemas import SENTIMENT_LABELS, UserProfile, split_facets
from streams.state.decay import InterestState
from streams.state.profiles import to_profile
from streams.worker.context import WorkerContext


def profile_of(ctx: WorkerContext, user_id: str, state: InterestState) -> UserProfile:
    half_life = ctx.settings.decay.half_life_s
    if state.empty:
        return to_profile(user_id, state, ctx.layout, {}, half_life)
    mean = split_facets(state.mean(), ctx.layout)
    readings = ctx.encoder.describe(mean)
    readings["topic"]["categories"] = dict(ctx.index.category_shares(mean["topic"]))
    readings["topic"]["discovered"] = dict(ctx.topics.shares(mean["topic"]))
    return to_profile(user_id, state, ctx.layout, readings, half_life)


def drift_labels(ctx: WorkerContext, rows: np.ndarray) -> list[dict[str, str]]:
    """Each event's reading per facet, for the drift monitor: sentiment class (largest of the
    facet's probabilities), leading catalogue category, formality band (formality over the style
    facet's constant component, as StyleHead.describe reads it)."""
    facets = split_facets(rows, ctx.layout)
    sentiment = np.argmax(facets["sentiment"], axis=1)
    topics = ctx.index.leading_categories(facets["topic"])
    style = facets["style"]
    formality = style[:, 0] / np.maximum(style[:, -1], 1e-12)
    return [
        {"sentiment": SENTIMENT_LABELS[s], "topic": t or "uncategorised",
         "style": "formal" if f > 0.2 else "casual" if f < -0.2 else "neutral"}
        for s, t, f in zip(sentiment, topics, formality)
    ]
