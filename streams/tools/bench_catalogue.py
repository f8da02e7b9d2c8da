"""The live item index at catalogue sizes the bundled stream cannot reach (10^6 items): synthetic
clustered facet vectors of the worker's layout in the real ``ItemIndex`` (real FAISS), against
raw FAISS on the same vectors in the same run.

Measured: the raw ceilings (exact ``IndexFlatIP`` and an IVF index with the same lists and nprobe,
single queries), the background IVF build (snapshot -> swapped in) while the catalogue keeps
changing (upserts and deletes during the build), then the live index's retrieval as the
recommender calls it (``nearest``, k=10, 20 excluded items per query): latency and recall@10
against exact search over the catalogue as it is after the changes.
"""

from __future__ import annotations

import sys
import time
from typing import Mapping

import faiss
import numpy as np
from tqdm import tqdm

from index import IndexConfig, ItemIndex
from index.ann import lists_for, train_ivf


def clustered(rng: np.random.Generator, n: int, layout: Mapping[str, int], centers: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Unit facet vectors around shared cluster centres (one cluster per item across facets)."""
    which = rng.integers(0, len(next(iter(centers.values()))), size=n)
    out = {}
    for name, dim in layout.items():
        x = centers[name][which] + rng.normal(size=(n, dim)).astype(np.float32)
        out[name] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def _lat_ms(fn, queries) -> list[float]:
    out = []
    for q in queries:
        t = time.perf_counter()
        fn(q)
        out.append((time.perf_counter() - t) * 1000)
    return out


def _search_ms(index: faiss.Index, queries: list[np.ndarray]) -> list[float]:
    return _lat_ms(lambda q: index.search(q, 10), queries)


def _pct(values: list[float], prefix: str) -> dict[str, float]:
    return {f"{prefix}_p50_ms": float(np.percentile(values, 50)), f"{prefix}_p99_ms": float(np.percentile(values, 99))}


def big_catalogue(layout: Mapping[str, int], base: IndexConfig, items: int, queries: int = 200,
                  churn: int = 2000, seed: int = 0) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    centers = {name: rng.normal(size=(256, d)).astype(np.float32) for name, d in layout.items()}
    bar = tqdm(total=5, desc=f"catalogue of {items}", unit="step", file=sys.stderr, leave=False)
    facets = clustered(rng, items, layout, centers)
    zs = clustered(rng, queries, layout, centers)
    user_z = [{f: v[i] for f, v in zs.items()} for i in range(queries)]
    cfg = IndexConfig(factory=base.factory, device="cpu", facet_weights=base.facet_weights, ann_threshold=items,
                      ann_nprobe=base.ann_nprobe, ann_lists=base.ann_lists, ann_regrow=base.ann_regrow)
    live = ItemIndex(layout, cfg)
    packed = live.pack(facets)
    qpacked = [live.pack(z) for z in user_z]  # each facet is a unit vector already, as the index makes it
    out: dict[str, float] = {"items": float(items), "queries": float(queries)}

    # Ceilings: raw FAISS on the same vectors.
    flat = faiss.IndexFlatIP(packed.shape[1])
    flat.add(packed)
    out.update(_pct(_search_ms(flat, qpacked[:50]), "raw_exact"))
    del flat
    t = time.perf_counter()
    raw_ivf = train_ivf(packed, np.arange(items, dtype=np.int64), lists_for(items, cfg.ann_lists), cfg.ann_nprobe)
    out["raw_ivf_build_s"] = time.perf_counter() - t
    out.update(_pct(_search_ms(raw_ivf, qpacked), "raw_ivf"))
    del raw_ivf
    bar.update()

    # The live index: filled in chunks; the last chunk reaches the threshold and starts the build.
    ids = [f"item-{n}" for n in range(items)]
    t = time.perf_counter()
    for lo in range(0, items, 100_000):
        live.upsert(ids[lo:lo + 100_000], {f: v[lo:lo + 100_000] for f, v in facets.items()})
    out["upsert_per_s"] = items / (time.perf_counter() - t)
    del packed
    bar.update()
    # While it builds: the catalogue keeps changing, and searches keep being answered (exact).
    gone = set(rng.choice(items, size=churn, replace=False).tolist())
    new = clustered(rng, churn, layout, centers)
    during: list[float] = []
    for lo in range(0, churn, 100):
        live.delete([ids[n] for n in sorted(gone)[lo:lo + 100]])
        live.upsert([f"new-{n}" for n in range(lo, min(churn, lo + 100))], {f: v[lo:lo + 100] for f, v in new.items()})
        during += _lat_ms(lambda z: live.nearest([z], 10), user_z[:1])
    out["build_running_after_changes"] = float(live.ann.building)  # 1: every change came during the build
    out.update(_pct(during, "exact_during_build"))
    assert live.wait_for_ann(1800), f"no IVF index: {live.ann.error}"
    out["ivf_build_s"] = live.ann.build_s or 0.0
    out["ivf_lists"] = float(live.ann.lists)
    out["ivf_nprobe"] = float(live.ann.nprobe)
    out["changes_caught_up"] = float(live.ann.caught_up_changes)
    bar.update()

    # Exact truth over the catalogue as it is now, independent of the live index.
    kept = np.array([n for n in range(items) if n not in gone])
    truth_ids = [ids[n] for n in kept] + [f"new-{n}" for n in range(churn)]
    truth = faiss.IndexFlatIP(live.dim)
    truth.add(live.pack({f: facets[f][kept] for f in layout}))
    truth.add(live.pack(new))
    excluded = [set(rng.choice(len(truth_ids), size=20, replace=False).tolist()) for _ in range(queries)]
    bar.update()
    # Timed alone first (an exact search between two timed ones would leave FAISS's threads busy).
    found, lat = [], []
    for z, ex in zip(user_z, excluded):
        names = {truth_ids[i] for i in ex}
        t = time.perf_counter()
        [got] = live.nearest([z], 10, exclude=[names])
        lat.append((time.perf_counter() - t) * 1000)
        found.append({i for i, _ in got})
    _, cand = truth.search(np.concatenate(qpacked), 10 + 20)
    hits = 0
    for got, row, ex in zip(found, cand, excluded):
        want = [truth_ids[i] for i in row if i not in ex][:10]
        hits += len(got & set(want))
    out.update(_pct(lat, "live_ivf_nearest"))
    out["recall_at_10"] = hits / (10 * queries)
    out["items_after_changes"] = float(len(live))
    bar.update()
    bar.close()
    return out
