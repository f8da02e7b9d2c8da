"""Item-side behaviour learned from the click/review stream: popularity decayed in event time,
co-engagement between items (what users engage with after what) and, from the same pairs, the
behaviour facet's item vectors (streams/state/behaviour.py). Pure: no Faust, no I/O.

Every worker folds the same engagement log into one ``Engagements`` (streams/worker/engagement.py),
so each has the whole picture, whichever partitions it owns.

Decayed popularity of item i at time t, for half-life h (lambda = ln 2 / h):
    pop_h(i, t) = sum_j w_j e^{-lambda (t - t_j)}   over the engagements j with item i.
It is kept as v_i = sum_j w_j e^{lambda (t_j - t_base)}, so an event touches one number (O(1), not a
rescale of every item); pop_h(i, t) = v_i e^{-lambda (t - t_base)}. t_base moves forward (one O(n)
rescale) only when the exponent would grow large. Sums commute, so out-of-order events are exact.

Co-engagement: when a user engages with b after a_1 (most recent), a_2, ..., each a_j -> b gains
step_decay^(j-1) * w and b -> a_j gains back_weight times that. A row keeps its ``row_max``
strongest links and the newest one (pruned in one pass when it reaches twice that); the row total counts every link
ever added, so scores stay a conditional share even after pruning.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from itertools import repeat
from typing import Any, Iterable, Sequence

import numpy as np

from schemas import json_array, string_list
from streams.state.behaviour import BehaviourConfig, BehaviourVectors, ContentLookup

MAX_EXPONENT = 50.0  # rescale when lambda (t - t_base) passes this (e^50 is far from overflow)


@dataclass(frozen=True)
class EngagementConfig:
    pop_half_lives_s: tuple[float, ...] = (86400.0, 30 * 86400.0)  # "now" and "this month"
    window: int = 5  # earlier items of the user each engagement is linked to
    step_decay: float = 0.7  # link weight of the j-th earlier item: step_decay^(j-1)
    back_weight: float = 0.5  # weight of the reverse link (b -> a) relative to a -> b
    row_max: int = 200  # links kept per item
    dedup: int = 100_000  # recent (user, event id) pairs remembered to drop a re-sent engagement
    behaviour: BehaviourConfig = BehaviourConfig()  # item vectors learned from the same pairs (behaviour.py)


class LinkRow:
    """One item's links as arrays (read straight into numpy) with a slot per linked item."""

    __slots__ = ("keys", "vals", "n", "slot", "total")

    def __init__(self) -> None:
        self.keys = np.zeros(8, dtype=np.int64)
        self.vals = np.zeros(8)
        self.n = 0
        self.slot: dict[int, int] = {}
        self.total = 0.0  # every link ever added, pruned ones included

    def add(self, b: int, w: float, row_max: int) -> None:
        self.total += w
        at = self.slot.get(b)
        if at is not None:
            self.vals[at] += w
            return
        if self.n == len(self.keys):
            self.keys = np.concatenate([self.keys, np.zeros(self.n, dtype=np.int64)])
            self.vals = np.concatenate([self.vals, np.zeros(self.n)])
        self.keys[self.n], self.vals[self.n] = b, w
        self.slot[b] = self.n
        self.n += 1
        if self.n >= 2 * row_max:
            self._prune(row_max, b)

    def _prune(self, row_max: int, newest: int) -> None:
        order = np.argsort(-self.vals[: self.n], kind="stable")[:row_max]
        keep = set(order.tolist()) | {self.slot[newest]}  # the newest stays, or a rising item could never get in
        rows = sorted(keep)
        self.keys[: len(rows)], self.vals[: len(rows)] = self.keys[rows], self.vals[rows]
        self.n = len(rows)
        self.slot = {int(k): i for i, k in enumerate(self.keys[: self.n])}

    def items(self) -> tuple[np.ndarray, np.ndarray]:
        return self.keys[: self.n], self.vals[: self.n]


class Engagements:
    def __init__(self, config: EngagementConfig | None = None, content: ContentLookup | None = None) -> None:
        """``content``: item ids -> their topic vectors, where behaviour vectors start from."""
        self.config = config or EngagementConfig()
        self.content = content
        self.behaviour = BehaviourVectors(self.config.behaviour, content) if self.config.behaviour.enabled else None
        self._lams = np.array([math.log(2.0) / h for h in self.config.pop_half_lives_s])
        self._lam_list, self._lam_max = self._lams.tolist(), float(self._lams.max())
        self._row: dict[str, int] = {}
        self._ids: list[str] = []
        self._pop = np.zeros((len(self._lams), 0))  # v_i per half-life
        self._t_base: float | None = None
        self.t_last = 0.0  # newest event time seen
        self._links: dict[int, LinkRow] = {}  # between item rows (numbers); see links_of
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict()
        self.observed = 0
        self.duplicates = 0

    def __len__(self) -> int:
        return len(self._ids)

    # -- changes -----------------------------------------------------------------------------------
    def observe(self, user_id: str, event_id: str, item_id: str, ts: float, weight: float,
                previous: Sequence[str]) -> bool:
        """Fold one engagement (``previous``: the user's earlier items, most recent first). False if
        this (user, event id) was already folded in (a re-sent engagement)."""
        return self.observe_many([(user_id, event_id, item_id, ts, weight, previous)]) == 1

    def observe_many(self, engagements: Iterable[tuple[str, str, str, float, float, Sequence[str]]]) -> int:
        """``observe`` each (user id, event id, item id, ts, weight, previous) in order; how many
        were new. The behaviour facet's steps are taken together at the end (one compiled call):
        the same steps, since nothing else here reads its vectors."""
        steps: list[tuple[int, list[int], list[float], int]] = []
        new = sum(self._fold(*e, steps) for e in engagements)
        if steps and self.behaviour is not None:
            self.behaviour.learn_many(steps)
        return new

    def _fold(self, user_id: str, event_id: str, item_id: str, ts: float, weight: float,
              previous: Sequence[str], steps: list[tuple[int, list[int], list[float], int]]) -> bool:
        """``observe`` but for the behaviour facet's step, appended to ``steps`` instead."""
        key = (user_id, event_id)
        if key in self._seen:
            self.duplicates += 1
            return False
        self._seen[key] = None
        if len(self._seen) > self.config.dedup:
            self._seen.popitem(last=False)
        self.observed += 1
        cfg = self.config
        self._add_rows([i for i in dict.fromkeys([item_id, *previous[: cfg.window]]) if i not in self._row])
        row = self._row[item_id]
        if self._t_base is None:
            self._t_base = ts
        if self._lam_max * (ts - self._t_base) > MAX_EXPONENT:
            self._rebase(ts)
        for h, lam in enumerate(self._lam_list):  # plain floats: a numpy call per number costs more
            self._pop[h, row] += weight * math.exp(lam * (ts - self._t_base))
        self.t_last = max(self.t_last, ts)
        contexts, weights = [], []
        for j, earlier in enumerate(previous[: cfg.window]):
            if earlier == item_id:
                continue
            w = weight * cfg.step_decay**j
            other = self._row[earlier]
            self._link(other, row, w)
            self._link(row, other, w * cfg.back_weight)
            contexts.append(other)
            weights.append(w)
        if self.behaviour is not None:
            steps.append((row, contexts, weights, self.behaviour.n))
        return True

    def _add_rows(self, item_ids: list[str]) -> None:
        """Rows for items new to the state, numbered in the given order (one content lookup for
        the behaviour facet's starting vectors of all of them)."""
        if not item_ids:
            return
        for item_id in item_ids:
            self._row[item_id] = len(self._ids)
            self._ids.append(item_id)
        if len(self._ids) > self._pop.shape[1]:  # grow by doubling
            grown = np.zeros((len(self._lams), max(16, 2 * self._pop.shape[1], len(self._ids))))
            grown[:, : self._pop.shape[1]] = self._pop
            self._pop = grown
        if self.behaviour is not None:
            self.behaviour.add_rows(item_ids)

    def _rebase(self, ts: float) -> None:
        assert self._t_base is not None
        self._pop *= np.exp(-self._lams * (ts - self._t_base))[:, None]
        self._t_base = ts

    def _link(self, a: int, b: int, w: float) -> None:
        row = self._links.get(a)
        if row is None:
            row = self._links[a] = LinkRow()
        row.add(b, w, self.config.row_max)

    # -- snapshots (streams/worker/snapshot.py) ---------------------------------------------------
    def to_arrays(self) -> dict[str, np.ndarray]:
        """Everything folded so far, as arrays (``from_arrays`` rebuilds it exactly: the same sums,
        links, vectors and sampler state, so folding on from there takes the same steps as folding
        the whole log). The links and the remembered ids in flat arrays: one per row would be a
        file entry per item."""
        n = len(self._ids)
        rows = sorted(self._links)
        kept = [self._links[r] for r in rows]
        out = {
            "ids": json_array(self._ids),
            "pop": self._pop[:, :n].copy(),
            "numbers": np.array([np.nan if self._t_base is None else self._t_base, self.t_last,
                                 self.observed, self.duplicates], dtype=np.float64),
            "link_rows": np.array(rows, dtype=np.int64),
            "link_counts": np.array([row.n for row in kept], dtype=np.int64),
            "link_totals": np.array([row.total for row in kept], dtype=np.float64),
            "link_keys": np.concatenate([row.keys[: row.n] for row in kept]) if kept else np.zeros(0, np.int64),
            "link_vals": np.concatenate([row.vals[: row.n] for row in kept]) if kept else np.zeros(0),
            "seen": json_array([s for pair in self._seen for s in pair]),
        }
        if self.behaviour is not None:
            out.update({f"behaviour_{k}": v for k, v in self.behaviour.to_arrays().items()})
        return out

    @classmethod
    def from_arrays(cls, config: EngagementConfig, content: ContentLookup | None,
                    arrays: dict[str, np.ndarray]) -> Engagements:
        """The state ``to_arrays`` took; ValueError (or KeyError) if the arrays do not hold one."""
        out = cls(config, content)
        ids = string_list(arrays["ids"])
        pop = np.asarray(arrays["pop"], dtype=np.float64)
        if pop.shape != (len(out._lams), len(ids)):
            raise ValueError(f"popularity of shape {pop.shape}, expected {(len(out._lams), len(ids))}")
        out._ids, out._row = ids, {item: r for r, item in enumerate(ids)}
        out._pop = pop.copy()
        t_base, out.t_last, observed, duplicates = arrays["numbers"].tolist()
        out._t_base = None if np.isnan(t_base) else t_base
        out.observed, out.duplicates = int(observed), int(duplicates)
        counts = np.asarray(arrays["link_counts"], dtype=np.int64)
        ends = np.cumsum(counts)
        keys, vals, rows = arrays["link_keys"], arrays["link_vals"], arrays["link_rows"]
        if len(keys) != (ends[-1] if len(ends) else 0) or len(vals) != len(keys) or len(rows) != len(counts):
            raise ValueError("link arrays of different lengths")
        if (counts < 1).any() or any(len(a) and (a.min() < 0 or a.max() >= len(ids)) for a in (keys, rows)):
            raise ValueError(f"links to rows outside the {len(ids)} items")
        for r, total, end, count in zip(rows.tolist(), arrays["link_totals"].tolist(),
                                        ends.tolist(), counts.tolist()):
            row = out._links[r] = LinkRow()
            row.keys, row.vals = keys[end - count : end].astype(np.int64), vals[end - count : end].astype(np.float64)
            row.n, row.total = count, total
            row.slot = {int(k): i for i, k in enumerate(row.keys.tolist())}
        seen = string_list(arrays["seen"])
        if len(seen) % 2:
            raise ValueError("remembered ids are (user, event id) pairs")
        out._seen = OrderedDict.fromkeys(zip(seen[0::2], seen[1::2]))
        if out.behaviour is not None:
            out.behaviour = BehaviourVectors.from_arrays(
                config.behaviour, content, {k[len("behaviour_"):]: v for k, v in arrays.items() if k.startswith("behaviour_")})
            if out.behaviour.n != len(ids):
                raise ValueError(f"{out.behaviour.n} behaviour rows for {len(ids)} items")
        return out

    # -- reads -------------------------------------------------------------------------------------
    def folded(self, user_id: str, event_id: str) -> bool:
        """Whether this engagement is in the state (among the last ``dedup`` folded in)."""
        return (user_id, event_id) in self._seen

    def popularity(self, at: float | None = None) -> tuple[list[str], np.ndarray]:
        """(item ids, (half-lives, items) decayed popularity at time ``at``; default the newest event)."""
        n = len(self._ids)
        if n == 0 or self._t_base is None:
            return [], np.zeros((len(self._lams), 0))
        at = self.t_last if at is None else at
        return self._ids, self._pop[:, :n] * np.exp(-self._lams * (at - self._t_base))[:, None]

    def rows_of(self, item_ids: Iterable[str]) -> np.ndarray:
        """The state's row number of each item id; -1 for an item never engaged with."""
        return np.fromiter(map(self._row.get, item_ids, repeat(-1)), dtype=np.int64)  # map: no generator frame

    def ids_of(self, rows: Iterable[int] | np.ndarray) -> list[str]:
        rows = rows.tolist() if isinstance(rows, np.ndarray) else rows  # Python ints index a list faster
        return list(map(self._ids.__getitem__, rows))

    def popularity_of(self, item_ids: Sequence[str], at: float | None = None, rows: np.ndarray | None = None) -> np.ndarray:
        """(half-lives, len(item_ids)); 0 for an item never engaged with (``rows``: their rows_of)."""
        _, pop = self.popularity(at)
        rows = self.rows_of(item_ids) if rows is None else rows
        out = np.zeros((len(self._lams), len(rows)))
        known = rows >= 0
        out[:, known] = pop[:, rows[known]]
        return out

    def most_popular(self, n: int, which: int = 0, exclude: Iterable[str] = (), exclude_rows: np.ndarray | None = None) -> list[str]:
        """The ``n`` items with the highest decayed popularity for half-life number ``which``
        (``exclude_rows``: rows_of(exclude), when the caller has them)."""
        skip = self.rows_of(exclude) if exclude_rows is None else exclude_rows
        return self.most_popular_many(n, which, [skip])[0]

    def most_popular_many(self, n: int, which: int, exclude_rows: Sequence[np.ndarray]) -> list[list[str]]:
        """``most_popular`` for several users (each with its excluded rows) from one ordering: the
        top n + the most any of them excludes, then each user's first n not excluded. Ties go to
        the lower row, as in a ranking of all items."""
        count = len(self._ids)
        if count == 0:
            return [[] for _ in exclude_rows]
        scores = self._pop[which, :count]  # the order does not depend on the time it is read at
        skips = [set(r[r >= 0].tolist()) for r in exclude_rows]
        take = min(count, n + max((len(s) for s in skips), default=0))
        if take <= 0:
            return [[] for _ in skips]
        if take < count:  # every row scoring at least the take-th best: ties at the edge all in
            top = np.flatnonzero(scores >= -np.partition(-scores, take - 1)[take - 1])
        else:
            top = np.arange(count)
        ordered = top[np.lexsort((top, -scores[top]))].tolist()
        ids, out = self._ids, []
        for skip in skips:
            mine: list[str] = []
            for r in ordered:
                if len(mine) == n:
                    break
                if r not in skip:
                    mine.append(ids[r])
            out.append(mine)
        return out

    def co_engaged(self, recent: Sequence[str], depth: int, step_decay: float) -> dict[str, float]:
        """Co-engagement score of every item linked to the user's ``depth`` most recent items
        (``recent``: most recent first): sum_j step_decay^j * links[a_j][i] / (total[a_j] + 1), a
        share of what followed a_j (+1: an item seen once is not a certainty), weighted by how
        recent a_j is."""
        rows, scores = self.co_engaged_many(recent, [(depth, step_decay)])
        return {self._ids[r]: float(v) for r, v in zip(rows, scores[0]) if v > 0}

    def co_engaged_many(self, recent: Sequence[str], memories: Sequence[tuple[int, float]]) -> tuple[np.ndarray, np.ndarray]:
        """``co_engaged`` for several (depth, step decay) memories at once: (the linked items'
        rows, sorted; (memories, rows) scores), vectorised over the links."""
        keys: list[np.ndarray] = []
        vals: list[np.ndarray] = []
        scales: list[list[float]] = []  # per linked recent item, its weight in each memory
        for j, item in enumerate(recent[: max((d for d, _ in memories), default=0)]):
            a = self._row.get(item)
            row = self._links.get(a) if a is not None else None
            if row is None or row.n == 0:
                continue
            share = 1.0 / (row.total + 1.0)
            scales.append([decay**j * share if j < depth else 0.0 for depth, decay in memories])
            k, v = row.items()
            keys.append(k)
            vals.append(v)
        if not keys:
            return np.zeros(0, dtype=np.int64), np.zeros((len(memories), 0))
        # Every link's weight per memory in one product (one per recent item was most of the time).
        every = np.concatenate(keys)
        flat = np.repeat(np.array(scales).T, [len(k) for k in keys], axis=1) * np.concatenate(vals)
        n = len(self._ids)
        if 4 * len(every) < n:  # few links among many items: sort them
            rows, inverse = np.unique(every, return_inverse=True)
            return rows, np.stack([np.bincount(inverse, weights=w, minlength=len(rows)) for w in flat])
        # Many: one pass over the item rows instead of a sort (the same sums, in the same order).
        rows = np.flatnonzero(np.bincount(every, minlength=n))
        return rows, np.stack([np.bincount(every, weights=w, minlength=n)[rows] for w in flat])

    def links_of(self, item_id: str) -> dict[str, float]:
        """An item's kept links: linked item id -> weight."""
        row = self._links.get(self._row.get(item_id, -1))
        if row is None:
            return {}
        keys, vals = row.items()
        return {self._ids[int(b)]: float(w) for b, w in zip(keys, vals)}

    def status(self) -> dict[str, Any]:
        return {"items": len(self._ids), "engagements": self.observed, "duplicates_dropped": self.duplicates,
                "linked_items": len(self._links), "newest_event_ts": self.t_last}

