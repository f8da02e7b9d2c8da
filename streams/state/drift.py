"""Population drift per facet: how far the recent events' facet readings have moved away from a
reference, as the Population Stability Index over named bins (no Faust here).

Each applied user event gives one label per facet (the worker decides how: sentiment class,
leading catalogue category, formality band). The reference is the first ``window`` events this
worker saw (after a restart: the first ``window`` after it); the current distribution is the last
``window`` events. PSI = sum over bins of (c - r) * ln(c / r), with a small floor on empty bins.
Rule of thumb: < 0.1 stable, 0.1-0.25 moving, > 0.25 shifted.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from typing import Iterable

FLOOR = 1e-4  # share given to a bin with no events, so ln() stays finite


def psi(reference: Counter, current: Counter) -> float:
    bins = set(reference) | set(current)
    r_total, c_total = sum(reference.values()), sum(current.values())
    if not r_total or not c_total:
        return 0.0
    out = 0.0
    for b in bins:
        r = max(reference[b] / r_total, FLOOR)
        c = max(current[b] / c_total, FLOOR)
        out += (c - r) * math.log(c / r)
    return out


class DriftMonitor:
    def __init__(self, facets: Iterable[str], window: int = 500) -> None:
        if window < 1:
            raise ValueError("drift window must be >= 1")
        self.window = window
        self.reference: dict[str, Counter] = {f: Counter() for f in facets}
        self.current: dict[str, deque] = {f: deque(maxlen=window) for f in facets}

    def observe(self, labels: dict[str, str]) -> None:
        for facet, label in labels.items():
            ref = self.reference[facet]
            if sum(ref.values()) < self.window:
                ref[label] += 1
            self.current[facet].append(label)

    def report(self) -> dict[str, dict[str, object]]:
        out = {}
        for facet, ref in self.reference.items():
            cur = Counter(self.current[facet])
            ready = sum(ref.values()) >= self.window
            out[facet] = {
                "psi": round(psi(ref, cur), 4) if ready else None,
                "reference": _shares(ref),
                "current": _shares(cur),
                "events": len(self.current[facet]),
            }
        return out


def _shares(counts: Counter) -> dict[str, float]:
    total = sum(counts.values())
    return {k: round(v / total, 4) for k, v in counts.most_common()} if total else {}
