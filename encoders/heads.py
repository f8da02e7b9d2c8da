"""Facet heads: pooled sentence embeddings (+ the raw text) -> one unit vector per facet.

Every head is a documented, deterministic function of the text; none is random. Each returns
L2-normalised rows so that a decay-weighted average of them, renormalised, is again comparable by
cosine, and each can turn such an (averaged) vector back into named readings for people.
"""

from __future__ import annotations

import math
import re
from typing import Callable, Protocol, Sequence

import numpy as np

from encoders.anchors import FORMALITY_ANCHORS, SENTIMENT_ANCHORS
from encoders.online_sentiment import OnlineSentiment, rating_label, softmax
from schemas.facets import SENTIMENT_LABELS, STYLE_READINGS, l2_normalise

Embedder = Callable[[Sequence[str]], np.ndarray]  # texts -> (n, d) unit rows


class FacetHead(Protocol):
    name: str
    dim: int

    def __call__(self, embeddings: np.ndarray, texts: Sequence[str]) -> np.ndarray: ...

    def describe(self, vector: np.ndarray) -> dict[str, float]: ...

    def describe_rows(self, rows: np.ndarray) -> list[dict[str, float]]: ...


class TopicHead:
    """z_topic: the pooled sentence embedding itself, i.e. what the text is about."""

    name = "topic"

    def __init__(self, dim: int) -> None:
        self.dim = dim

    def __call__(self, embeddings: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        return l2_normalise(embeddings.astype(np.float32, copy=False))

    def describe(self, vector: np.ndarray) -> dict[str, float]:
        return self.describe_rows(np.asarray(vector)[None, :])[0]

    def describe_rows(self, rows: np.ndarray) -> list[dict[str, float]]:
        # The norm of an averaged topic vector says how focused the interests are (1 = one topic);
        # named shares come from the catalogue categories (ItemIndex.category_shares).
        return [{"coherence": float(n)} for n in np.linalg.norm(rows, axis=1)]


VADER_NEUTRAL_BAND = 0.05  # VADER's documented threshold on its compound score
LEXICON_FEATURES = 2  # VADER's compound c and |c|, inputs of the sentiment head's learned layer


class SentimentHead:
    """z_sentiment: probabilities over (negative, neutral, positive), then L2-normalised.

    p = lexicon_weight * p_lexicon + (1 - lexicon_weight) * p_prototype, where
    - p_lexicon comes from VADER's compound score c in [-1, 1] (rule-based, its lexicon ships in
      the `vaderSentiment` package; it reads negation, intensifiers and slang) as
      softmax(sharpness * (-c, 2 * 0.05 - |c|, c)): its most probable class is exactly VADER's
      documented rule (positive at c >= 0.05, negative at c <= -0.05). VADER's neg/neu/pos
      *proportions* are not class probabilities (most texts are mostly "neu" words); used as
      such they made the shipped facet call most texts neutral (accuracy 0.38 against 0.63 for
      VADER's own rule on human-rated snippets, `interest-stream eval`);
    - p_prototype is a softmax over the cosine of the text's embedding to the *centred* centroids
      of each class's anchor sentences (encoders/anchors.py). Centring removes what all anchors
      share (e.g. "this is a product review"), leaving the polar direction the encoder sees.
      That softmax is a linear layer (encoders/online_sentiment.py) over the embedding, c, |c|
      and a middle layer of the encoder (``EncoderConfig.sentiment_layer``) that starts as the
      prototype classifier (no weight on c, |c| or the middle layer) and learns online from
      labelled text (review ratings), guarded by held-back data.

    Its rows of input (``__call__``, ``probabilities``, ``learn``) are the embedding and the middle
    layer side by side (``FacetEncoder.sentiment_inputs``); the learned layer reads them as
    [embedding, c, |c|, middle layer], so a head saved before a column existed is a prefix of it
    (``OnlineSentiment.load``).
    """

    name = "sentiment"
    labels = SENTIMENT_LABELS
    dim = 3

    def __init__(self, embed: Embedder, temperature: float = 10.0, lexicon_weight: float = 0.7,
                 lexicon_sharpness: float = 2.0, middle_dim: int = 0) -> None:
        """``embed``: the encoder's sentence embedding (the anchors'); ``middle_dim``: the width of
        the middle layer's rows in the inputs (0: none)."""
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        self.temperature = temperature
        self.lexicon_weight = lexicon_weight
        self.lexicon_sharpness = lexicon_sharpness
        self.lexicon_analyzer = SentimentIntensityAnalyzer()
        centroids = np.stack([embed(SENTIMENT_ANCHORS[label]).mean(axis=0) for label in self.labels])
        self.centroids = l2_normalise(centroids - centroids.mean(axis=0)).astype(np.float32)
        self.middle_dim = middle_dim
        self.online = OnlineSentiment(self._start_weights(), lexicon_weight)

    def _start_weights(self) -> np.ndarray:
        """The learned layer's start: the prototype classifier, and no weight yet on the lexicon's
        columns (``lexicon``) or the middle layer's, so the shipped head is the prototype + lexicon
        mixture."""
        return np.hstack([self.temperature * self.centroids,
                          np.zeros((len(self.labels), LEXICON_FEATURES + self.middle_dim))])

    @property
    def version(self) -> int:
        return self.online.version

    def reset_learning(self) -> None:
        """Back to the shipped head (prototype weights, initial lexicon weight), version 0."""
        self.online = OnlineSentiment(self._start_weights(), self.lexicon_weight)

    def lexicon(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """VADER's reading of each text: (p_lexicon (n, 3), its compound c and |c| (n, 2)).

        c and |c| are also inputs of the learned layer (beside the embedding), so that learning can
        weigh the lexicon per class, not only mix its probabilities in: a logistic regression
        fitted offline on the eval's snippets (70 % of each corpus) reached pooled macro-F1 0.70
        with them and 0.66 with the mixture alone (docs/evaluation.md)."""
        c = np.array([self.lexicon_analyzer.polarity_scores(t)["compound"] for t in texts], dtype=np.float64)
        logits = self.lexicon_sharpness * np.stack([-c, 2 * VADER_NEUTRAL_BAND - np.abs(c), c], axis=1).reshape(len(c), 3)
        return softmax(logits), np.stack([c, np.abs(c)], axis=1).reshape(len(c), LEXICON_FEATURES)

    def lexicon_probs(self, texts: Sequence[str]) -> np.ndarray:
        return self.lexicon(texts)[0]

    def _learned_inputs(self, inputs: np.ndarray, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(p_lexicon, the learned layer's rows [embedding, c, |c|, middle layer])."""
        d = self.centroids.shape[1]
        inputs = np.asarray(inputs)
        if inputs.ndim != 2 or inputs.shape[1] != d + self.middle_dim:
            raise ValueError(f"the sentiment head reads rows of {d + self.middle_dim} (embedding and middle layer: "
                             f"FacetEncoder.sentiment_inputs), got shape {inputs.shape}")
        p_lexicon, features = self.lexicon(texts)
        return p_lexicon, np.hstack([inputs[:, :d], features, inputs[:, d:]])

    def probabilities(self, inputs: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        """``inputs``: ``FacetEncoder.sentiment_inputs`` of ``texts``."""
        p_lexicon, x = self._learned_inputs(inputs, texts)
        return self.online.probs(x, p_lexicon)

    def learn(self, inputs: np.ndarray, texts: Sequence[str], ratings: Sequence[int]) -> bool:
        """Online update from rated texts (1-2 negative, 3 neutral, 4-5 positive); True if kept."""
        p_lexicon, x = self._learned_inputs(inputs, texts)
        return self.online.learn(x, p_lexicon, [rating_label(r) for r in ratings])

    def __call__(self, inputs: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        return l2_normalise(self.probabilities(inputs, texts)).astype(np.float32)

    def describe(self, vector: np.ndarray) -> dict[str, float]:
        return self.describe_rows(np.asarray(vector)[None, :])[0]

    def describe_rows(self, rows: np.ndarray) -> list[dict[str, float]]:
        probs = np.clip(np.asarray(rows, dtype=np.float64), 0.0, None)
        probs = probs / np.maximum(probs.sum(axis=1, keepdims=True), 1e-12)
        out = []
        for row in probs.tolist():
            reading = dict(zip(self.labels, row))
            reading["score"] = reading["positive"] - reading["negative"]  # in [-1, 1]
            out.append(reading)
        return out


_WORD = re.compile(r"[A-Za-z']+")
_ELONGATED = re.compile(r"(.)\1{2,}")


class StyleHead:
    """z_style: three named readings in [-1, 1], plus a constant 1, L2-normalised.

    - formality: cosine to the formal anchors minus cosine to the casual anchors, scaled and
      squashed with tanh (+1 formal, -1 casual).
    - detail: log2(word count / 8) / 3, clipped (8 words -> 0, 64+ words -> +1, 1 word -> -1).
    - intensity: exclamation marks, shouted (all-caps) words and elongations ("sooo"), squashed
      to [-1, 1] (-1 calm, +1 intense).
    The constant component keeps the vector defined for all-zero readings and lets ``describe``
    recover the readings exactly from an averaged vector (reading_i = z_i / z_const).
    """

    name = "style"
    readings = STYLE_READINGS
    dim = 4

    def __init__(self, embed: Embedder, formality_scale: float = 8.0) -> None:
        self.formality_scale = formality_scale
        formal = embed(FORMALITY_ANCHORS["formal"]).mean(axis=0)
        casual = embed(FORMALITY_ANCHORS["casual"]).mean(axis=0)
        self.formal_centroid = (formal / np.linalg.norm(formal)).astype(np.float32)
        self.casual_centroid = (casual / np.linalg.norm(casual)).astype(np.float32)

    @staticmethod
    def detail(text: str) -> float:
        words = max(len(_WORD.findall(text)), 1)
        return float(np.clip(math.log2(words / 8.0) / 3.0, -1.0, 1.0))

    @staticmethod
    def intensity(text: str) -> float:
        words = _WORD.findall(text)
        shouted = sum(1 for w in words if len(w) > 1 and w.isupper())
        raw = 0.6 * min(text.count("!"), 5) + 1.0 * min(shouted, 5) + 0.6 * len(_ELONGATED.findall(text))
        return float(2.0 * math.tanh(raw / 2.0) - 1.0)

    def __call__(self, embeddings: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        formality = np.tanh(
            self.formality_scale * (embeddings @ self.formal_centroid - embeddings @ self.casual_centroid)
        )
        rows = np.empty((len(texts), self.dim), dtype=np.float32)
        rows[:, 0] = formality
        rows[:, 1] = [self.detail(t) for t in texts]
        rows[:, 2] = [self.intensity(t) for t in texts]
        rows[:, 3] = 1.0
        return l2_normalise(rows)

    def describe(self, vector: np.ndarray) -> dict[str, float]:
        return self.describe_rows(np.asarray(vector)[None, :])[0]

    def describe_rows(self, rows: np.ndarray) -> list[dict[str, float]]:
        rows = np.asarray(rows, dtype=np.float64)
        const = rows[:, -1:]
        readings = np.clip(rows[:, :-1] / np.where(const > 1e-12, const, 1.0), -1.0, 1.0)
        readings[const[:, 0] <= 1e-12] = 0.0
        return [dict(zip(self.readings, r)) for r in readings.tolist()]
