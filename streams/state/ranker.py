"""One linear ranker over the candidates of every source, with weights learned online from the
stream. Pure: no Faust, no I/O.

score(i) = w . f(i), where f(i) holds each base feature and the same feature times the user's
history depth g = log(1 + history) / 5, so how much a source counts can depend on how much the
user has done (text facets for the newcomer, co-engagement for the regular).

Learning is a sampled softmax: for an engagement with item p shown among candidates C (p added if
missing), one step along  f(p) - sum_{c in C} softmax(w . f)_c f(c),  the gradient of log P(p | C).
The step is bounded (clipped gradient norm, learning rate), and a batch counts each user at most
``per_user`` times, so one user's burst cannot drag the weights. Every ``holdout_every``-th example
is held back instead; an update is kept only if the held-back loss does not rise by more than
``tolerance`` (otherwise it is refused and counted). Each kept update bumps ``version``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Sequence, TypeVar

import numpy as np

T = TypeVar("T")

# Base features of a candidate for a user (streams/state/recommend.py computes them).
BASE_FEATURES: tuple[str, ...] = (
    "co_recent",  # log(1 + 50 * co-engagement with the user's last few items)
    "co_last",  # ... with the last item only
    "co_long",  # ... with the last 20 items, slowly decayed
    "pop_now",  # log(1 + popularity, short half-life)
    "pop_long",  # log(1 + popularity, long half-life)
    "facet",  # facet-weighted cosine of the user's Z and the item (the text facets)
    "engaged",  # 1 if anyone engaged with the item before (0: a new item)
    "behaviour",  # cosine of the user's recent items and the item in the behaviour facet (behaviour.py)
)
FEATURES: tuple[str, ...] = BASE_FEATURES + tuple(f"{f}*depth" for f in BASE_FEATURES)


def start_weights() -> np.ndarray:
    """Before any learning: co-engagement first, then popularity, then the facets (the order the
    evaluation found on MovieLens), so a fresh worker already ranks sensibly. The behaviour facet
    counts with the user's history depth only: a reading of one or two items is noise (on the
    first 30,000 MovieLens ratings, weight 1.5 on behaviour*depth beat 1.0 on behaviour in every
    history bucket)."""
    w = np.zeros(len(FEATURES))
    for name, value in (("co_recent", 3.0), ("pop_long", 0.5), ("pop_now", 0.2), ("facet", 1.0),
                        ("behaviour*depth", 1.5)):
        w[FEATURES.index(name)] = value
    return w


def depth_of(history: int) -> float:
    return float(np.log1p(max(history, 0)) / 5.0)


def with_depth(base: np.ndarray, history: int) -> np.ndarray:
    """(n, base features) -> (n, FEATURES): the base features and the same times the history depth."""
    base = np.atleast_2d(np.asarray(base, dtype=np.float64))
    return np.concatenate([base, base * depth_of(history)], axis=1)


@dataclass(frozen=True)
class RankerConfig:
    lr: float = 0.05
    max_grad_norm: float = 1.0
    per_user: int = 4  # examples per user per update
    holdout_every: int = 5
    holdout_size: int = 300
    min_holdout: int = 20  # updates wait until this many examples are held back
    tolerance: float = 0.002  # held-back loss may rise by at most this much per update


def evenly_spread(items: Sequence[T], at_most: int) -> list[T]:
    """At most ``at_most`` of ``items``, evenly spread over them when there are more (a micro-batch's
    lessons beyond ``learn_per_batch``)."""
    if len(items) <= at_most:
        return list(items)
    return [items[n * len(items) // at_most] for n in range(at_most)] if at_most > 0 else []


def chosen_as_lesson(user_id: str, event_id: str, every: int) -> bool:
    """Whether this engagement is one of the one-in-``every`` the worker learns ranking from.
    Chosen by a hash of its ids, so the same ones in every process and however the stream falls
    into micro-batches (a per-batch quota gave a faster worker fewer lessons, and a worse ranker).
    Python's ``hash`` is salted per process: not that."""
    if every <= 1:
        return True
    digest = hashlib.blake2b(f"{user_id}\x1f{event_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") % every == 0


@dataclass(frozen=True)
class Example:
    """One engagement as a ranking lesson: the candidates' features and which row was engaged with."""

    user_id: str
    features: np.ndarray  # (candidates, FEATURES)
    positive: int


def example_loss(w: np.ndarray, ex: Example) -> float:
    s = ex.features @ w
    m = s.max()
    return float(m + np.log(np.exp(s - m).sum()) - s[ex.positive])


def example_gradient(w: np.ndarray, ex: Example) -> np.ndarray:
    """Gradient of log P(positive | candidates) (ascent direction)."""
    s = ex.features @ w
    p = np.exp(s - s.max())
    p /= p.sum()
    return ex.features[ex.positive] - p @ ex.features


class HeldBack:
    """The newest ``size`` held-back examples, their features in one padded float32 array: the
    held-back loss of a weight vector is then a few array operations, not a loop over examples
    (it is computed for two weight vectors per update, on the worker's hot path; float32 is far
    finer than the guard's tolerance and halves the work)."""

    def __init__(self, size: int, n_features: int = len(FEATURES)) -> None:
        if size < 1:
            raise ValueError(f"the ranker holds back at least one lesson, got holdout_size={size}")
        self.size = size
        self._f = np.zeros((size, 0, n_features), dtype=np.float32)  # (slot, candidate, feature)
        self._pad = np.zeros((size, 0), dtype=np.float32)  # -inf where a slot has no candidate
        self._pos = np.zeros(size, dtype=np.int64)  # the engaged candidate of each slot
        self._next = 0
        self.count = 0

    def __len__(self) -> int:
        return self.count

    def append(self, ex: Example) -> None:
        c, cap = len(ex.features), self._f.shape[1]
        if c > cap:
            wider = max(c, 2 * cap)
            f = np.zeros((self.size, wider, self._f.shape[2]), dtype=np.float32)
            f[:, :cap] = self._f
            pad = np.full((self.size, wider), -np.inf, dtype=np.float32)
            pad[:, :cap] = self._pad
            self._f, self._pad = f, pad
        slot = self._next
        self._f[slot, :c] = ex.features
        self._f[slot, c:] = 0.0
        self._pad[slot, :c], self._pad[slot, c:] = 0.0, -np.inf
        self._pos[slot] = ex.positive
        self._next = (slot + 1) % self.size  # the oldest is replaced, as in a bounded deque
        self.count = min(self.count + 1, self.size)

    def mean_losses(self, ws: np.ndarray) -> np.ndarray:
        """(weight vectors, FEATURES) -> the mean ``example_loss`` over the held-back examples for each."""
        n, (cap, d) = self.count, self._f.shape[1:]
        if n == 0:
            return np.zeros(len(ws))
        # (w, n, cap): candidates innermost, so the reductions below run over contiguous memory.
        s = (np.asarray(ws, dtype=np.float32) @ self._f[:n].reshape(-1, d).T).reshape(len(ws), n, cap)
        s += self._pad[:n]
        top = s.max(axis=2)
        engaged = s[:, np.arange(n), self._pos[:n]]
        s -= top[:, :, None]
        np.exp(s, out=s)
        lse = top + np.log(s.sum(axis=2, dtype=np.float64))
        return (lse - engaged).mean(axis=1)


class OnlineRanker:
    def __init__(self, config: RankerConfig | None = None) -> None:
        self.config = config or RankerConfig()
        self.w = start_weights()
        self.version = 0
        self.accepted = 0
        self.rejected = 0
        self.seen = 0
        self._held = HeldBack(self.config.holdout_size)

    def score(self, features: np.ndarray) -> np.ndarray:
        return np.atleast_2d(features) @ self.w

    def contributions(self, features: np.ndarray) -> dict[str, float]:
        """Each feature's part (weight x value) of one candidate's score; zero parts left out."""
        parts = self.w * np.asarray(features, dtype=np.float64)
        return {name: float(v) for name, v in zip(FEATURES, parts) if abs(v) > 1e-9}

    def held_loss(self, w: np.ndarray | None = None) -> float:
        return float(self._held.mean_losses((self.w if w is None else w)[None, :])[0])

    def learn(self, examples: Sequence[Example]) -> bool:
        """One bounded step on a batch of examples, applied here; True if it was kept."""
        step = self.propose(examples)
        if step is None:
            return False
        self.apply(step)
        return True

    def propose(self, examples: Sequence[Example]) -> np.ndarray | None:
        """One bounded step on a batch of examples from the weights as they are, checked against
        the held-back examples: the step (to add to the weights) if kept, else None. The weights
        do not change here; ``apply`` does that (a worker's steps are applied by every worker, in
        the order of the engagements log: streams/worker/engagement.py)."""
        cfg, w = self.config, self.w
        per_user: dict[str, int] = {}
        train = []
        for ex in examples:
            self.seen += 1
            if self.seen % cfg.holdout_every == 0:
                self._held.append(ex)
                continue
            if per_user.get(ex.user_id, 0) >= cfg.per_user:
                continue
            per_user[ex.user_id] = per_user.get(ex.user_id, 0) + 1
            train.append(ex)
        if not train or len(self._held) < cfg.min_holdout:
            return None
        grad = np.mean([example_gradient(w, ex) for ex in train], axis=0)
        norm = float(np.linalg.norm(grad))
        if norm > cfg.max_grad_norm:
            grad *= cfg.max_grad_norm / norm
        step = cfg.lr * grad
        new_loss, old_loss = self._held.mean_losses(np.stack([w + step, w]))
        if new_loss > old_loss + cfg.tolerance:
            self.rejected += 1
            return None
        self.accepted += 1
        return step

    def apply(self, step: np.ndarray) -> None:
        """Add a kept step to the weights (a new version)."""
        self.w = self.w + step
        self.version += 1

    def restart(self) -> None:
        """Back to the starting weights, before every step is applied again (a rebuild from the
        engagements log); what this worker proposed and held back is kept."""
        self.w = start_weights()
        self.version = 0

    def restore(self, w: np.ndarray, version: int) -> None:
        """Weights and version as a snapshot of the engagements log took them (the steps up to
        its offsets applied): the rest is applied on top as it is read."""
        w = np.asarray(w, dtype=np.float64)
        if w.shape != self.w.shape:
            raise ValueError(f"ranker weights of shape {w.shape}, expected {self.w.shape}")
        self.w, self.version = w.copy(), int(version)

    def weights(self) -> dict[str, float]:
        return {name: round(float(v), 4) for name, v in zip(FEATURES, self.w)}

    def status(self) -> dict[str, Any]:
        return {"version": self.version, "accepted": self.accepted, "rejected": self.rejected,
                "examples": self.seen, "held_back": len(self._held), "weights": self.weights()}
