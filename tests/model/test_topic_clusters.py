"""Topics discovered by streaming k-means (encoders/topic_clusters.py), named by their words."""

from __future__ import annotations

from encoders.topic_clusters import TopicClusters

GROUPS = {
    "running": ["trail running shoes {}", "marathon training plan {}", "running shoes for trails {}", "racing flats for a marathon {}"],
    "audio": ["noise cancelling headphones {}", "wireless earbuds for music {}", "bookshelf speakers {}", "headphones with deep bass {}"],
    "cooking": ["cast iron skillet {}", "dutch oven recipes {}", "chef's knife for the kitchen {}", "skillet and pan set {}"],
}


def test_clusters_find_the_groups_and_name_them_by_their_words(encoder):
    texts = [t.format(n) for n in range(8) for group in GROUPS.values() for t in group]
    vectors = encoder.encode(texts).facets["topic"]
    clusters = TopicClusters(k=3, dim=vectors.shape[1])
    for start in range(0, len(texts), 16):
        clusters.observe(vectors[start : start + 16], texts[start : start + 16])
    names = clusters.names()
    assert sorted(clusters.counts) and sum(clusters.counts) == len(texts)
    for group, templates in GROUPS.items():
        probe = encoder.encode([templates[0].format(99)]).facets["topic"][0]
        leading, share = clusters.shares(probe, top=1)[0]
        assert share > 0.5, (group, leading, share)
        assert any(word in leading for word in ("running", "marathon", "trail", "shoes", "headphones",
                                               "speakers", "earbuds", "music", "bass", "skillet", "oven",
                                               "knife", "kitchen", "recipes", "cast", "iron", "pan")), leading
    assert len(set(names)) == 3, names


def test_state_round_trip_and_older_versions_ignored(encoder):
    texts = ["trail running shoes", "wireless earbuds", "cast iron skillet"] * 3
    clusters = TopicClusters(k=3, dim=384)
    clusters.observe(encoder.encode(texts).facets["topic"], texts)
    copy = TopicClusters(k=3, dim=384)
    copy.load(clusters.to_dict())
    assert copy.names() == clusters.names() and copy.counts == clusters.counts
    copy.load({**clusters.to_dict(), "version": 0})
    assert copy.version == clusters.version
