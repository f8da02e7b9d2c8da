"""Topics discovered from the stream: mini-batch k-means over topic vectors, named by top terms.

Where items carry no category, the topic facet still needs names a person can read. Each text the
worker encodes (searches, reviews, catalogue items) is assigned to its nearest of ``k`` centroids
(cosine on unit vectors); centroids move by a per-cluster learning rate 1/count (Sculley's
mini-batch k-means); until there are ``k`` clusters, a text farther than cosine 0.5 from every
centroid starts a new one. Each cluster counts the words of the texts
assigned to it; its name is its three most frequent words that are not stop words and not common
to every cluster. A topic vector reads as shares over the named clusters (softmax over cosine).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any, Sequence

import numpy as np

from schemas import pack_vector, unpack_vector

_WORD = re.compile(r"[a-z][a-z'-]{2,}")
STOP_WORDS = frozenset(
    "the and for with this that was are but not you your they them have has had from its it's too very "
    "just than then what when who will would can could should about after before into over under again "
    "more most some such only own same all any both each few other our out off once here there why how "
    "which while where also been being did does doing were she her him his hers their theirs ours itself "
    "one two new best good great like love really".split()
)
TERMS_KEPT = 200  # per cluster


class TopicClusters:
    def __init__(self, k: int = 12, dim: int = 384, temperature: float = 8.0) -> None:
        self.k, self.dim, self.temperature = k, dim, temperature
        self.centroids = np.zeros((0, dim))
        self.counts: list[int] = []
        self.terms: list[Counter] = []
        self.version = 0
        self._names: tuple[int, list[str]] = (-1, [])  # (version, names): read per profile, changed per batch

    def observe(self, vectors: np.ndarray, texts: Sequence[str]) -> None:
        """Fold a batch of unit topic vectors (and their texts) into the clusters."""
        vectors = np.asarray(vectors, dtype=np.float64)
        for v, text in zip(vectors, texts):
            if len(self.counts) < self.k and not self._near_existing(v):
                self.centroids = np.vstack([self.centroids, v])
                self.counts.append(1)
                self.terms.append(Counter(_words(text)))
                continue
            j = int(np.argmax(self.centroids @ v))
            self.counts[j] += 1
            c = self.centroids[j] + (v - self.centroids[j]) / self.counts[j]
            self.centroids[j] = c / max(np.linalg.norm(c), 1e-12)
            self.terms[j].update(_words(text))
            if len(self.terms[j]) > 2 * TERMS_KEPT:
                self.terms[j] = Counter(dict(self.terms[j].most_common(TERMS_KEPT)))
        self.version += 1

    def _near_existing(self, v: np.ndarray, threshold: float = 0.5) -> bool:
        return bool(len(self.counts)) and float(np.max(self.centroids @ v)) > threshold

    def names(self) -> list[str]:
        """Each cluster's three most frequent distinctive words ("trail running shoes")."""
        if self._names[0] != self.version:
            self._names = (self.version, self._compute_names())
        return list(self._names[1])

    def _compute_names(self) -> list[str]:
        everywhere = set.intersection(*(set(t) for t in self.terms)) if len(self.terms) > 1 else set()
        out = []
        for j, terms in enumerate(self.terms):
            top = [w for w, _ in terms.most_common(20) if w not in everywhere][:3]
            out.append(" ".join(top) if top else f"topic {j}")
        return out

    def shares(self, topic: np.ndarray, top: int = 3) -> list[tuple[str, float]]:
        return self.shares_rows(np.asarray(topic)[None, :], top)[0]

    def shares_rows(self, topics: np.ndarray, top: int = 3) -> list[list[tuple[str, float]]]:
        """Each row's shares of the discovered topics (softmax over its cosine to each centroid),
        the ``top`` largest, in one matrix product."""
        if not self.counts:
            return [[] for _ in range(len(topics))]
        rows = np.asarray(topics, dtype=np.float64)
        cos = (rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)) @ self.centroids.T
        w = np.exp(self.temperature * (cos - cos.max(axis=1, keepdims=True)))
        shares = w / w.sum(axis=1, keepdims=True)
        names = self.names()
        order = np.argsort(-shares, axis=1)[:, :top]
        picked = np.take_along_axis(shares, order, axis=1).tolist()  # plain floats: no numpy scalar per share
        return [list(zip([names[i] for i in idx], vals)) for idx, vals in zip(order.tolist(), picked)]

    def to_dict(self) -> dict[str, Any]:
        return {"k": self.k, "version": self.version, "counts": self.counts,
                "centroids": pack_vector(self.centroids),
                "terms": [dict(t.most_common(TERMS_KEPT)) for t in self.terms]}

    def load(self, data: dict[str, Any]) -> None:
        if data.get("version", 0) <= self.version or data.get("k") != self.k:
            return
        self.centroids = unpack_vector(data["centroids"]).reshape(-1, self.dim)
        self.counts = [int(c) for c in data["counts"]]
        self.terms = [Counter(t) for t in data["terms"]]
        self.version = int(data["version"])


def _words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in STOP_WORDS]
