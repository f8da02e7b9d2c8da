"""The facet layout: names, labels, and how facet vectors are concatenated, split and normalised.

A user's Z and an item's stored vector are the facets concatenated in the encoder's layout order
(facet name -> dimension); everything that slices them goes through ``split_facets``.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

FACET_NAMES = ("sentiment", "topic", "style")
SENTIMENT_LABELS = ("negative", "neutral", "positive")  # the sentiment facet's components, in order
STYLE_READINGS = ("formality", "detail", "intensity")  # the style facet's components before its constant

Layout = Mapping[str, int]  # facet name -> dimension, in concatenation order


def l2_normalise(rows: np.ndarray) -> np.ndarray:
    """Each row (last axis) scaled to unit length; all-zero rows stay zero."""
    norms = np.linalg.norm(rows, axis=-1, keepdims=True)
    return rows / np.maximum(norms, 1e-12)


def split_facets(vector: np.ndarray, layout: Layout) -> dict[str, np.ndarray]:
    """Concatenated facets (last axis) -> facet name -> its slice (a view)."""
    out, start = {}, 0
    for name, dim in layout.items():
        out[name] = vector[..., start : start + dim]
        start += dim
    return out


def join_facets(facets: Mapping[str, np.ndarray], layout: Layout) -> np.ndarray:
    """Facet name -> vector (or rows) -> the concatenation in layout order, float64."""
    return np.concatenate([np.asarray(facets[name], dtype=np.float64) for name in layout], axis=-1)


def unit_facets(vector: np.ndarray, layout: Layout) -> dict[str, np.ndarray]:
    """Concatenated facets -> each facet renormalised to unit length (how Z is compared by cosine)."""
    return {name: l2_normalise(part) for name, part in split_facets(vector, layout).items()}
