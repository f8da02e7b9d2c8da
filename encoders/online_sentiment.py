"""The sentiment head's learnable part, updated online from labelled text (review ratings).

p = lexicon_weight * p_lexicon + (1 - lexicon_weight) * softmax(W e + b)

W starts as ``temperature * centred anchor centroids`` and b as 0, i.e. exactly the prototype
classifier the head had before any learning. Each update is one gradient step of the mixture's
cross-entropy on the labelled batch: for W and b (pulled back toward the start, L2 ``anchor``; step
bounded by ``lr`` and a clipped gradient norm) and for the lexicon weight itself (kept within
[0.2, 0.95], so the lexicon keeps a say): where the stream's labels show the lexicon is blind
(wear-and-tear complaints read as neutral) the learned part gets more weight. Every ``holdout_every``-th labelled example is held
back instead of trained on; an update is kept only if the held-back loss of the *whole* head does
not get worse, otherwise it is dropped (counted as rejected). Each kept update bumps ``version``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from schemas import pack_vector, unpack_vector


def rating_label(rating: int) -> int:
    """Review rating -> class index: 1-2 negative, 3 neutral, 4-5 positive."""
    return 0 if rating <= 2 else 1 if rating == 3 else 2


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


@dataclass
class LearningConfig:
    lr: float = 0.5
    lr_lexicon_weight: float = 0.05
    anchor: float = 0.01  # L2 pull toward the initial weights, per step
    max_grad_norm: float = 1.0
    holdout_every: int = 5
    holdout_size: int = 200
    min_holdout: int = 10  # updates wait until this many examples are held back
    tolerance: float = 1e-4  # held-back loss may rise by at most this much


class OnlineSentiment:
    def __init__(self, w0: np.ndarray, lexicon_weight: float, config: LearningConfig | None = None) -> None:
        self.w0 = np.asarray(w0, dtype=np.float64)
        self.w = self.w0.copy()
        self.b = np.zeros(self.w.shape[0])
        self.lexicon_weight = lexicon_weight
        self.config = config or LearningConfig()
        self.version = 0
        self.accepted = 0
        self.rejected = 0
        self.seen = 0  # labelled examples received
        self._held: deque = deque(maxlen=self.config.holdout_size)  # (embedding, p_lexicon, label)
        self._train: list = []  # waiting for enough held-back examples

    def head_probs(self, embeddings: np.ndarray) -> np.ndarray:
        return softmax(np.asarray(embeddings, dtype=np.float64) @ self.w.T + self.b)

    def probs(self, embeddings: np.ndarray, p_lexicon: np.ndarray) -> np.ndarray:
        lam = self.lexicon_weight
        return lam * np.asarray(p_lexicon, dtype=np.float64) + (1.0 - lam) * self.head_probs(embeddings)

    def holdout_loss(self, w: np.ndarray | None = None, b: np.ndarray | None = None,
                     lam: float | None = None) -> float | None:
        if not self._held:
            return None
        e = np.stack([h[0] for h in self._held])
        lex = np.stack([h[1] for h in self._held])
        y = np.array([h[2] for h in self._held])
        lam = self.lexicon_weight if lam is None else lam
        head = softmax(e @ (self.w if w is None else w).T + (self.b if b is None else b))
        p = lam * lex + (1.0 - lam) * head
        return float(-np.mean(np.log(np.maximum(p[np.arange(len(y)), y], 1e-12))))

    def learn(self, embeddings: np.ndarray, p_lexicon: np.ndarray, labels: list[int]) -> bool:
        """Take a batch of labelled examples; returns True if the head changed (a new version)."""
        for e, lex, y in zip(np.asarray(embeddings, dtype=np.float64), np.asarray(p_lexicon), labels):
            self.seen += 1
            if self.seen % self.config.holdout_every == 0:
                self._held.append((e, lex, int(y)))
            else:
                self._train.append((e, lex, int(y)))
        if not self._train or len(self._held) < self.config.min_holdout:
            return False
        e = np.stack([t[0] for t in self._train])
        lex = np.stack([t[1] for t in self._train]).astype(np.float64)
        y = np.array([t[2] for t in self._train])
        self._train = []
        rows, lam = np.arange(len(y)), self.lexicon_weight
        head = self.head_probs(e)
        p_y = np.maximum(lam * lex[rows, y] + (1.0 - lam) * head[rows, y], 1e-12)
        # d(-log p_y)/d(logits) for p = lam * lexicon + (1 - lam) * softmax(logits)
        g = head.copy()
        g[rows, y] -= 1.0
        g *= ((1.0 - lam) * head[rows, y] / p_y)[:, None]
        grad_w = g.T @ e / len(y) + self.config.anchor * (self.w - self.w0)
        grad_b = g.mean(axis=0)
        grad_lam = float(np.mean(-(lex[rows, y] - head[rows, y]) / p_y))
        norm = float(np.sqrt((grad_w**2).sum() + (grad_b**2).sum()))
        scale = self.config.lr * min(1.0, self.config.max_grad_norm / max(norm, 1e-12))
        w, b = self.w - scale * grad_w, self.b - scale * grad_b
        new_lam = float(np.clip(lam - self.config.lr_lexicon_weight * np.clip(grad_lam, -1, 1), 0.2, 0.95))
        before, after = self.holdout_loss(), self.holdout_loss(w, b, new_lam)
        if after is not None and before is not None and after > before + self.config.tolerance:
            self.rejected += 1
            return False
        self.w, self.b, self.lexicon_weight = w, b, new_lam
        self.version += 1
        self.accepted += 1
        return True

    def status(self) -> dict[str, Any]:
        return {"version": self.version, "accepted": self.accepted, "rejected": self.rejected,
                "lexicon_weight": round(self.lexicon_weight, 4),
                "labelled_seen": self.seen, "held_back": len(self._held), "holdout_loss": self.holdout_loss()}

    def to_dict(self) -> dict[str, Any]:
        """The learned weights and counters (held-back examples stay in memory)."""
        return {"w": pack_vector(self.w), "b": pack_vector(self.b), "shape": list(self.w.shape), "version": self.version,
                "lexicon_weight": self.lexicon_weight,
                "accepted": self.accepted, "rejected": self.rejected, "seen": self.seen}

    def load(self, data: dict[str, Any]) -> None:
        if data.get("version", 0) <= self.version or list(data["shape"]) != list(self.w.shape):
            return  # never go back to an older head (or one for another model)
        self.w = unpack_vector(data["w"]).reshape(data["shape"])
        self.b = unpack_vector(data["b"])
        self.lexicon_weight = float(data.get("lexicon_weight", self.lexicon_weight))
        self.version, self.accepted = int(data["version"]), int(data["accepted"])
        self.rejected, self.seen = int(data["rejected"]), int(data["seen"])

