"""Named readings of facet vectors, for people and for the drift monitor: they need the encoder's
heads, the index's categories and the discovered topics, which the pure state code does not see."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from schemas import SENTIMENT_LABELS, UserProfile, split_facets, unit_facets
from streams.state.decay import InterestState
from streams.state.interests import InterestsConfig, recent_interests
from streams.state.profiles import published_z, to_profile
from streams.worker.context import WorkerContext


def profile_of(ctx: WorkerContext, user_id: str, state: InterestState, with_interests: bool = False) -> UserProfile:
    """The profile; ``with_interests`` adds the user's several interests (the API's answer; the
    records on the profiles topic leave them out, they cost a clustering per user)."""
    profile = profiles_of(ctx, {user_id: state})[user_id]
    if with_interests and not state.empty:
        summary = profile.summary  # interests go with the readings, before moved_by and entities
        after = {k: summary.pop(k) for k in ("moved_by", "entities")}
        summary.update(interests=interests_of(ctx, state), **after)
    return profile


def profiles_of(ctx: WorkerContext, states: Mapping[str, InterestState]) -> dict[str, UserProfile]:
    """The profiles of several users (a micro-batch's): the readings that need the index's
    categories and the discovered topics come from one matrix product each, not one per user
    (per user they were the largest part of the user handler's time, benchmarks/RESULTS.md)."""
    layout, half_life = ctx.layout, ctx.settings.decay.half_life_s
    out = {u: to_profile(u, s, layout, {}, half_life) for u, s in states.items() if s.empty}
    users = [u for u, s in states.items() if not s.empty]
    if not users:
        return out
    means = np.stack([states[u].mean() for u in users])
    facets, z = split_facets(means, layout), published_z(unit_facets(means, layout))
    described = ctx.encoder.describe_rows(facets)
    categories = ctx.index.category_shares_rows(facets["topic"])
    discovered = ctx.topics.shares_rows(facets["topic"])
    for n, user in enumerate(users):
        readings = described[n]
        readings["topic"]["categories"] = dict(categories[n])
        readings["topic"]["discovered"] = dict(discovered[n])
        out[user] = to_profile(user, states[user], layout, readings, half_life, z={name: rows[n] for name, rows in z.items()})
    return out


def interests_of(ctx: WorkerContext, state: InterestState, shown_items: int = 5) -> list[dict[str, Any]]:
    """The user's interests (clusters of their recent clicked and reviewed items' topic vectors,
    streams/state/interests.py), each named by its leading catalogue category, else its discovered
    topic, else its most recent item's title."""
    out = []
    for interest in recent_interests(ctx.index, state.seen_items.latest(), InterestsConfig()):
        categories = ctx.index.category_shares(interest.centroid, top=2)
        discovered = ctx.topics.shares(interest.centroid, top=1)
        items = [{"item_id": i, "title": ctx.index.meta(i).get("title", "")} for i in interest.items[:shown_items]]
        name = categories[0][0] if categories else discovered[0][0] if discovered else items[0]["title"] or items[0]["item_id"]
        out.append({"name": name, "share": round(interest.share, 4), "size": len(interest.items),
                    "categories": {c: round(s, 4) for c, s in categories},
                    "discovered": {t: round(s, 4) for t, s in discovered}, "items": items})
    return out


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
