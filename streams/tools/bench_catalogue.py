"""The live item index at catalogue sizes the bundled stream cannot reach (10^6 items): synthetic
clustered facet vectors of the worker's layout, against raw FAISS on the same vectors in the same run.

``big_catalogue`` (in process, the real ``ItemIndex``) measures the raw ceilings (exact
``IndexFlatIP`` and an IVF index with the same lists and nprobe, single queries), the background
IVF build (snapshot -> swapped in) while the catalogue keeps changing (upserts and deletes during
the build), then the live index's retrieval as the recommender calls it (``nearest``, k=10, 20
excluded items per query): latency and recall@10 against exact search over the catalogue as it is
after the changes.

``big_catalogue_over_http`` measures the same catalogue in a worker process: the vectors are
written straight into the item vectors log (encoding 10^6 texts would take hours on 2 cores; the
log is what every worker builds its index from), then a new worker starts from it, reads it,
trains its IVF index, applies clicks, and answers recommendations over HTTP.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Mapping

import faiss
import numpy as np
from tqdm import tqdm

from index import IndexConfig, ItemIndex
from index.ann import lists_for, train_ivf
from schemas import join_facets
from schemas.topics import item_vectors_topic
from streams.tools.broker import EmbeddedBroker
from streams.tools.process import WorkerProcess, get_json
from streams.tools.replay import replay
from streams.worker.items import vectors_log_key, vectors_log_value
from streams.worker.placement import partition_for
from streams.worker.topic_admin import ensure_topics


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


def _vectors(layout: Mapping[str, int], items: int, queries: int, seed: int):
    """The synthetic catalogue and user queries: the same for a seed in both steps."""
    rng = np.random.default_rng(seed)
    centers = {name: rng.normal(size=(256, d)).astype(np.float32) for name, d in layout.items()}
    return rng, centers, clustered(rng, items, layout, centers), clustered(rng, queries, layout, centers)


def big_catalogue(layout: Mapping[str, int], base: IndexConfig, items: int, queries: int = 200,
                  churn: int = 2000, seed: int = 0) -> dict[str, float]:
    bar = tqdm(total=5, desc=f"catalogue of {items}", unit="step", file=sys.stderr, leave=False)
    rng, centers, facets, zs = _vectors(layout, items, queries, seed)
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


async def write_vectors_log(bootstrap: str, topic: str, partitions: int, layout: Mapping[str, int],
                            facets: Mapping[str, np.ndarray], chunk: int = 20_000) -> None:
    """Item records as the item agent writes them (``streams.worker.items``), ids ``big-<n>``."""
    from aiokafka import AIOKafkaProducer

    await ensure_topics(bootstrap, [topic], partitions, compacted=[topic])
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=1 << 20)
    await producer.start()
    try:
        n = len(next(iter(facets.values())))
        for lo in tqdm(range(0, n, chunk), desc="vectors log", unit="chunk", file=sys.stderr, leave=False):
            joined = join_facets({f: v[lo:lo + chunk] for f, v in facets.items()}, layout)
            sends = []
            for i, row in enumerate(joined, start=lo):
                item_id = f"big-{i}"
                sends.append(await producer.send(topic, vectors_log_value(row, item_id, "synthetic", 1.0),
                                                 key=vectors_log_key(item_id), partition=partition_for(item_id, partitions)))
            await asyncio.gather(*sends)
    finally:
        await producer.stop()


def _rss_mb(pid: int) -> dict[str, float]:
    """Resident and peak resident memory of a process (Linux), MB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return {"rss_mb": int(fields["VmRSS"].split()[0]) / 1024, "peak_rss_mb": int(fields["VmHWM"].split()[0]) / 1024}


def _http_ms(urls: list[str]) -> list[float]:
    out = []
    for url in urls:
        t = time.perf_counter()
        status, _ = get_json(url)
        out.append((time.perf_counter() - t) * 1000)
        if status != 200:
            raise RuntimeError(f"{url} answered {status}")
    return out


def _served_recall(base: str, clicked: Mapping[str, set[str]], exact: faiss.Index, pack, k: int = 10) -> float:
    """recall@k of the worker's facet ranking (``?ranking=facet``: its index's top k for the user's
    Z, seen items left out) against exact search over the same catalogue for the Z the worker
    publishes, with the same items left out."""
    users = sorted(clicked)
    zs = [get_json(f"{base}/users/{u}/profile")[1]["z"] for u in users]
    queries = np.concatenate([pack({f: np.asarray(v, dtype=np.float32) for f, v in z.items()}) for z in zs])
    _, rows = exact.search(queries, k + max(len(c) for c in clicked.values()))
    hits = 0
    for user, row in zip(users, rows):
        want = [f"big-{n}" for n in row if f"big-{n}" not in clicked[user]][:k]
        status, body = get_json(f"{base}/users/{user}/recommendations?ranking=facet&k={k}")
        if status != 200:
            raise RuntimeError(f"facet ranking for {user} answered {status}: {body}")
        hits += len({i["item_id"] for i in body["items"]} & set(want))
    return hits / (k * len(users))


def learner_settled(health: dict) -> bool:
    """The worker's learner process (if it runs one) has read the catalogue and built its index."""
    lessons = (health.get("recommender") or {}).get("lessons") or {}
    if lessons.get("where") != "process":
        return True
    index = lessons.get("index") or {}
    return bool(lessons.get("caught_up")) and not index.get("building") and index.get("search") == health["index"]["search"]


def big_catalogue_over_http(layout: Mapping[str, int], partitions: int, items: int, workdir: Path,
                            facet_weights: Mapping[str, float], users: int = 200, clicks: int = 4000,
                            queries: int = 400, seed: int = 0, env: Mapping[str, str] | None = None) -> dict[str, float]:
    """A new worker on a catalogue of ``items`` (its own bundled broker, so the log's memory is
    returned after). Figures: seconds from the worker's start to the whole catalogue indexed and
    to IVF search; its memory; recommendation latency over HTTP (k=10) for users with clicks on
    the catalogue, beside the profile read over HTTP on the same worker (the API's own floor);
    recall@10 of the served facet ranking against exact search (``facet_weights``: the worker's)."""
    rng, _, facets, _ = _vectors(layout, items, 0, seed)
    packer = ItemIndex(layout, IndexConfig(device="cpu", facet_weights=dict(facet_weights), ann_threshold=0))
    exact = faiss.IndexFlatIP(packer.dim)
    for lo in range(0, items, 100_000):
        exact.add(packer.pack({f: v[lo:lo + 100_000] for f, v in facets.items()}))
    out: dict[str, float] = {"items": float(items), "users": float(users), "queries": float(queries)}
    app_id = "bench-big"
    bar = tqdm(total=4, desc=f"catalogue of {items} over HTTP", unit="step", file=sys.stderr, leave=False)
    with EmbeddedBroker(log_file=workdir / "broker-big.log") as broker:
        t = time.perf_counter()
        asyncio.run(write_vectors_log(broker.bootstrap, item_vectors_topic(app_id), partitions, layout, facets))
        out["log_write_s"] = time.perf_counter() - t
        del facets
        bar.update()
        t = time.perf_counter()
        worker = WorkerProcess(broker.url, workdir, app_id, {**broker.worker_env, **(env or {})})
        try:
            worker.wait_until(lambda h: h["status"] == "ok" and h["items_indexed"] >= items, 1800,
                              "the big catalogue to be indexed")
            out["start_to_indexed_s"] = time.perf_counter() - t
            health = worker.wait_until(lambda h: h["index"]["search"] == "ivf" and not h["index"]["building"], 1800,
                                       "the IVF index")
            out["start_to_ivf_s"] = time.perf_counter() - t
            # Its learner process (ranking lessons) builds its own copy of the index: measured once that is done too.
            worker.wait_until(learner_settled, 1800, "the learner process's index")
            out.update(ivf_lists=health["index"]["lists"], ivf_built_items=health["index"]["built_items"],
                       ivf_builds=health["index"]["builds"], ivf_nprobe=health["index"]["nprobe"])
            bar.update()
            events = [{"type": "click", "event_id": f"big-click-{n}", "user_id": f"u{n % users}",
                       "item_id": f"big-{rng.integers(items)}", "ts": 1_700_000_000.0 + n} for n in range(clicks)]
            clicked: dict[str, set[str]] = {}
            for e in events:
                clicked.setdefault(e["user_id"], set()).add(e["item_id"])
            done = health["events_applied"] + clicks
            asyncio.run(replay(events, broker.url, None, partitions))
            worker.wait_until(lambda h: h["events_applied"] + h["user_events_dead_lettered"] >= done, 600, "the clicks")
            bar.update()
            recs = [f"{worker.base}/users/u{i % users}/recommendations?k=10" for i in range(queries)]
            _http_ms(recs[:20])  # warm-up
            out.update(_pct(_http_ms([f"{worker.base}/users/u{i % users}/profile" for i in range(queries)]), "profile_http"))
            lat = _http_ms(recs)
            out.update(_pct(lat, "recommendation_http"))
            out["recommendation_http_p95_ms"] = float(np.percentile(lat, 95))
            out["facet_recall_at_10_http"] = _served_recall(worker.base, clicked, exact, packer.pack)
            out.update(_rss_mb(worker.proc.pid))
            learner = worker.health()["recommender"]["lessons"].get("process_pid")
            out["learner_rss_mb"] = _rss_mb(learner)["rss_mb"] if learner else 0.0
            out["broker_rss_mb"] = _rss_mb(broker.pid)["rss_mb"] if broker.pid else float("nan")
            bar.update()
        finally:
            worker.stop()
    bar.close()
    return out
