"""The behaviour facet: item vectors learned online from what users engage with after what,
started from each item's content. Pure: no Faust, no I/O.

Skip-gram with negative sampling (word2vec's objective, as Airbnb's listing embeddings use it on
click sessions) over the engagement stream: when a user engages with b after a_1 (most recent),
a_2, ..., each pair (a_j, b) is a positive with weight step_decay^(j-1), and ``negatives`` items
drawn uniformly from those engaged with so far are negatives. Each item has an input vector W
(as an earlier item) and an output vector C (as the next one); one SGD step per engagement
raises sigma(W[a_j] . C[b]) and lowers sigma(W[a_j] . C[n]).

Both start from the item's content: a fixed random projection of its topic vector (the same
on every worker), scaled to ``init_norm``, so a new item has a place at once and two items with
similar texts start close; an item whose content is unknown starts from a small vector seeded by
its id. A user's behaviour reading is the recency-weighted sum of W over their last items; a
candidate's behaviour score is its cosine with C[candidate].

Unlike decayed popularity and co-engagement (sums: order does not matter), SGD steps depend on the
order engagements are folded in, and the negatives on the sampler's state (seeded, so the same
given the same steps). The worker publishes every engagements record to one partition and folds
only once the catalogue is indexed, so every worker, and every restart rebuilding from the topic,
takes the same steps from the same starts, as long as the catalogue is the same: an item deleted
or re-texted since its first engagement starts elsewhere after a restart (and records an older
version spread over several partitions are read in whatever interleaving the fetches give).
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from typing import Callable, Sequence

import numba
import numpy as np

ContentLookup = Callable[[Sequence[str]], np.ndarray]  # item ids -> (n, topic dim) rows; zeros if unknown


@dataclass(frozen=True)
class BehaviourConfig:
    enabled: bool = True
    dim: int = 32
    lr: float = 0.05
    negatives: int = 5
    init_norm: float = 0.5
    seed: int = 0  # the projection and the negative sampler


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # no overflow for large |x|


def _compiled(fn: Callable) -> Callable:
    """``fn`` compiled by numba, cached on disk where numba finds a writable place for it (beside
    this file, else the user's cache directory); compiled at each start where it finds none (a
    read-only install and home: numba refuses ``cache=True`` there)."""
    try:
        return numba.njit(cache=True)(fn)
    except RuntimeError:
        return numba.njit(fn)


# Compiled: the step is a few hundred multiply-adds, and written as numpy products it was ~30 calls
# on arrays of a few rows (33 us per step, the engagement fold's largest part); compiled, 8 us with
# the same sums to 1e-15 (benchmarks/RESULTS.md).
@_compiled
def _sgns_step(W: np.ndarray, C: np.ndarray, target: int, ctx: np.ndarray, step: np.ndarray, negs: np.ndarray) -> None:
    """In place: for each earlier row ``ctx[i]`` (step size ``step[i]``), the positive pair
    (ctx[i], target) and the negatives ``negs[i]``; every gradient from the vectors before the step
    (rows that repeat add up), and a negative equal to the target skipped."""
    m, k = negs.shape
    d = W.shape[1]
    g = np.empty((m, k + 1))  # d log-likelihood / d logit, times the step: column 0 the target
    for i in range(m):
        a = ctx[i]
        for j in range(k + 1):
            b = target if j == 0 else negs[i, j - 1]
            if j > 0 and b == target:
                g[i, j] = 0.0
                continue
            x = 0.0
            for t in range(d):
                x += C[b, t] * W[a, t]
            g[i, j] = ((1.0 if j == 0 else 0.0) - 0.5 * (1.0 + np.tanh(0.5 * x))) * step[i]
    d_w = np.zeros((m, d))  # from C as it was, before C moves
    for i in range(m):
        for j in range(k + 1):
            b = target if j == 0 else negs[i, j - 1]
            for t in range(d):
                d_w[i, t] += g[i, j] * C[b, t]
    for i in range(m):  # C from W as it was, before W moves
        a = ctx[i]
        for j in range(k + 1):
            b = target if j == 0 else negs[i, j - 1]
            for t in range(d):
                C[b, t] += g[i, j] * W[a, t]
    for i in range(m):
        for t in range(d):
            W[ctx[i], t] += d_w[i, t]


# Every step of a fold in one call: per step in Python (a Generator call for the negatives, two
# arrays and a dispatch) cost more than the step itself. numba's Generator draws the same numbers
# as NumPy's for the same calls, so the steps are the same as one ``learn`` each, in order.
@_compiled
def _sgns_steps(W: np.ndarray, C: np.ndarray, rng: np.random.Generator, targets: np.ndarray, starts: np.ndarray,
                ctx: np.ndarray, step: np.ndarray, rows: np.ndarray, negatives: int) -> None:
    """In place, step s: target ``targets[s]`` after ``ctx[starts[s]:starts[s + 1]]`` (step sizes
    ``step[...]``), negatives drawn from the first ``rows[s]`` rows."""
    for s in range(len(targets)):
        a, b = starts[s], starts[s + 1]
        negs = rng.integers(0, rows[s], size=(b - a, negatives))
        _sgns_step(W, C, targets[s], ctx[a:b], step[a:b], negs)


class BehaviourVectors:
    """Input (W) and output (C) vectors per item row (rows as numbered by ``Engagements``)."""

    def __init__(self, config: BehaviourConfig | None = None, content: ContentLookup | None = None) -> None:
        self.config = config or BehaviourConfig()
        self.content = content
        d = self.config.dim
        self.W = np.zeros((0, d))
        self.C = np.zeros((0, d))
        self.n = 0
        self._projection: np.ndarray | None = None  # (topic dim, d), made on the first content row
        self._rng = np.random.default_rng(self.config.seed)
        self.steps = 0
        self._start: dict[str, np.ndarray] = {}  # start_vectors kept per item, for one catalogue version
        self._start_max = 50_000  # at most this many kept (about 13 MB of vectors): a big catalogue's stay bounded
        self._start_version: int | None = None
        # Compiled (or read from numba's cache) now, not at the first engagement.
        none = np.zeros(0, np.int64)
        _sgns_step(self.W, self.C, 0, none, np.zeros(0), np.zeros((0, 0), np.int64))
        _sgns_steps(self.W, self.C, self._rng, none, np.zeros(1, np.int64), none, np.zeros(0), none, 0)

    def start_vectors(self, item_ids: Sequence[str]) -> np.ndarray:
        """(n, dim) starting vectors: projected content, or a small vector seeded by the id."""
        d = self.config.dim
        out = np.zeros((len(item_ids), d))
        if not len(item_ids):
            return out
        rows = self.content(item_ids) if self.content is not None else np.zeros((len(item_ids), 0))
        has = np.any(rows != 0, axis=1) if rows.shape[1] else np.zeros(len(item_ids), dtype=bool)
        if has.any():
            if self._projection is None or self._projection.shape[0] != rows.shape[1]:
                gen = np.random.default_rng(self.config.seed + 1)
                self._projection = gen.normal(size=(rows.shape[1], d)) / np.sqrt(d)
            out[has] = rows[has] @ self._projection
        for i in np.flatnonzero(~has):
            out[i] = np.random.default_rng(zlib.crc32(item_ids[i].encode())).normal(size=d)
        norms = np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return self.config.init_norm * out / norms

    def _kept_start_vectors(self, item_ids: Sequence[str]) -> np.ndarray:
        """``start_vectors``, kept per item while the catalogue stays as it is, when ``content``
        says which version of it it reads (``version``: ``recommend.TopicLookup``). Candidates not
        engaged with yet are scored from these on every recommendation."""
        version = getattr(self.content, "version", None)
        if version is None:
            return self.start_vectors(item_ids)
        if version != self._start_version or len(self._start) > self._start_max:
            self._start.clear()
            self._start_version = version
        kept = self._start
        missing = list(dict.fromkeys(i for i in item_ids if i not in kept))
        if missing:
            kept.update(zip(missing, self.start_vectors(missing)))
        return np.array([kept[i] for i in item_ids]).reshape(len(item_ids), self.config.dim)

    def add_rows(self, item_ids: Sequence[str]) -> None:
        """Rows for items new to ``Engagements`` (appended in its row order)."""
        if not item_ids:
            return
        start = self.start_vectors(item_ids)
        need = self.n + len(item_ids)
        if need > len(self.W):
            size = max(16, 2 * len(self.W), need)
            for name in ("W", "C"):
                grown = np.zeros((size, self.config.dim))
                grown[: self.n] = getattr(self, name)[: self.n]
                setattr(self, name, grown)
        self.W[self.n : need] = start
        self.C[self.n : need] = start
        self.n = need

    def learn(self, target: int, contexts: Sequence[int], weights: Sequence[float]) -> None:
        """One SGD step: ``target`` engaged with after the ``contexts`` rows, each with its weight."""
        self.learn_many([(target, contexts, weights, self.n)])

    def learn_many(self, steps: Sequence[tuple[int, Sequence[int], Sequence[float], int]]) -> None:
        """``learn`` for each (target, contexts, weights, rows) in order, where ``rows`` is how many
        rows there were at that step (the negatives are drawn from those): the same as one
        ``learn`` per step with the rows added in between, in one compiled call. A step without
        contexts, or with fewer than two rows, is skipped."""
        kept = [s for s in steps if len(s[1]) and s[3] >= 2]
        if not kept:
            return
        # One Generator call per step (a pool of uniforms drawn in blocks was 12 % faster, but a
        # different random stream moved the eval's leave-last-out HR@10 by 0.027 on its own).
        cfg = self.config
        if len(kept) == 1:  # handing the Generator to compiled code costs more than one step
            target, contexts, weights, rows = kept[0]
            negs = self._rng.integers(0, rows, size=(len(contexts), cfg.negatives))
            _sgns_step(self.W, self.C, target, np.asarray(contexts, dtype=np.int64),
                       cfg.lr * np.asarray(weights, dtype=np.float64), negs)
            self.steps += 1
            return
        ctx = np.fromiter((c for s in kept for c in s[1]), dtype=np.int64)
        _sgns_steps(self.W, self.C, self._rng, np.array([s[0] for s in kept], dtype=np.int64),
                    np.cumsum([0] + [len(s[1]) for s in kept], dtype=np.int64), ctx,
                    cfg.lr * np.fromiter((w for s in kept for w in s[2]), dtype=np.float64, count=len(ctx)),
                    np.array([s[3] for s in kept], dtype=np.int64), cfg.negatives)
        self.steps += len(kept)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """What a restart needs to go on exactly where this left off (``from_arrays``): the rows'
        vectors, the step count and the negative sampler's state (JSON: PCG64's are 128-bit ints)."""
        rng = json.dumps({"steps": self.steps, "rng": self._rng.bit_generator.state}).encode()
        return {"W": self.W[: self.n].copy(), "C": self.C[: self.n].copy(), "state": np.frombuffer(rng, dtype=np.uint8)}

    @classmethod
    def from_arrays(cls, config: BehaviourConfig, content: ContentLookup | None, arrays: dict[str, np.ndarray]) -> BehaviourVectors:
        """The vectors ``to_arrays`` took; ValueError if they do not fit ``config``."""
        W, C = np.asarray(arrays["W"], dtype=np.float64), np.asarray(arrays["C"], dtype=np.float64)
        if W.ndim != 2 or W.shape != C.shape or W.shape[1] != config.dim:
            raise ValueError(f"behaviour vectors of shape {W.shape} and {C.shape}, expected (n, {config.dim})")
        state = json.loads(bytes(arrays["state"]))
        out = cls(config, content)
        out.W, out.C, out.n, out.steps = W.copy(), C.copy(), len(W), int(state["steps"])
        out._rng.bit_generator.state = state["rng"]
        return out

    def user_vector(self, rows: Sequence[int], weights: Sequence[float]) -> np.ndarray | None:
        """The recency-weighted sum of the input vectors of a user's last items (None: no rows)."""
        if not len(rows):
            return None
        return np.asarray(weights, dtype=np.float64) @ self.W[np.asarray(rows, dtype=np.int64)]

    def scores(self, user: np.ndarray, rows: np.ndarray, new_items: Sequence[str] = ()) -> np.ndarray:
        """Cosine of ``user`` with each row's output vector; rows < 0 (items never engaged with)
        are read from their starting vectors, in the order of ``new_items``."""
        out = np.zeros(len(rows))
        known = rows >= 0
        vecs = np.zeros((len(rows), self.config.dim))
        vecs[known] = self.C[rows[known]]
        if (~known).any():
            vecs[~known] = self._kept_start_vectors(list(new_items))
        norms = np.linalg.norm(vecs, axis=1) * max(float(np.linalg.norm(user)), 1e-12)
        nz = norms > 1e-12
        out[nz] = (vecs[nz] @ user) / norms[nz]
        return out

    def similarity(self, a: int, b: int) -> float:
        """W[a] . C[b] as a probability: how likely b follows a, as learned."""
        return float(_sigmoid(np.asarray(self.W[a] @ self.C[b])))
