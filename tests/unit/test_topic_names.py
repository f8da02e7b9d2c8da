"""Discovered topics' names are kept between batches (read once per profile) and follow the clusters
as new texts arrive, and when a newer state is loaded."""

from __future__ import annotations

import numpy as np

from encoders.topic_clusters import TopicClusters


def unit(*xs: float) -> np.ndarray:
    v = np.asarray(xs, dtype=np.float64)
    return v / np.linalg.norm(v)


def test_names_follow_new_texts_and_loaded_state():
    clusters = TopicClusters(k=2, dim=2)
    clusters.observe(np.stack([unit(1, 0), unit(0, 1)]), ["trail running shoes", "espresso grinder beans"])
    assert clusters.names() == ["trail running shoes", "espresso grinder beans"]
    assert clusters.shares(unit(1, 0.1), top=1)[0][0] == "trail running shoes"
    # The running cluster's texts turn to marathons: its name must change with them.
    clusters.observe(np.stack([unit(1, 0.05)] * 3), ["marathon pacing marathon"] * 3)
    assert clusters.names()[0].split()[0] == "marathon"
    assert clusters.shares(unit(1, 0.1), top=1)[0][0] == clusters.names()[0]
    names = clusters.names()
    names[0] = "changed by a caller"
    assert clusters.names()[0] != "changed by a caller"
    # A newer state read from the heads table replaces the names as well.
    other = TopicClusters(k=2, dim=2)
    other.observe(np.stack([unit(1, 0), unit(0, 1)]), ["tomato seeds compost", "chess openings"])
    for _ in range(2):  # a newer version than this one's 2 batches
        other.observe(np.stack([unit(1, 0)] * 2), ["tomato seeds compost"] * 2)
    assert other.version > clusters.version
    clusters.load(other.to_dict())
    assert clusters.names() == other.names() == ["tomato seeds compost", "chess openings"]
