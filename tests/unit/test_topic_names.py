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


def test_shares_of_many_rows_equal_each_rows_own():
    clusters = TopicClusters(k=3, dim=3)
    clusters.observe(np.stack([unit(1, 0, 0), unit(0, 1, 0), unit(0, 0, 1)]), ["running shoes", "espresso beans", "chess"])
    rows = np.stack([unit(1, 0.2, 0.1), unit(0.1, 0.1, 1), unit(0.3, 1, 0)])
    many = clusters.shares_rows(rows, top=3)
    assert [m[0][0] for m in many] == ["running shoes", "chess", "espresso beans"]
    for row, got in zip(rows, many):
        cos = clusters.centroids @ row
        w = np.exp(clusters.temperature * cos)
        np.testing.assert_allclose(sorted((s for _, s in got), reverse=True), sorted(w / w.sum(), reverse=True), rtol=1e-9)
        alone = clusters.shares(row, top=3)
        assert [t for t, _ in alone] == [t for t, _ in got]
        np.testing.assert_allclose([s for _, s in alone], [s for _, s in got], rtol=1e-12)
    assert TopicClusters(k=2, dim=3).shares_rows(rows) == [[], [], []]
