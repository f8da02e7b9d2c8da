"""How the item index and user state scale: FAISS add/search cost and recall@10 against exact
search for Flat, IVF and HNSW at 10^3..10^5 items (10^6 with --max-items 1000000), and the
size of one user's state. Synthetic clustered vectors of the worker's dimension (391).

    .venv/bin/python benchmarks/index_scaling.py [--max-items N] [--json out.json]
"""

from __future__ import annotations

import argparse
import time

import faiss
import numpy as np
import orjson

from streams.state.decay import InterestState
from streams.state.recent_ids import RecentIds

DIM = 391  # sentiment 3 + topic 384 + style 4
QUERIES = 200


def clustered(n: int, rng: np.random.Generator, centers: np.ndarray) -> np.ndarray:
    x = centers[rng.integers(0, len(centers), size=n)] + 1.0 * rng.normal(size=(n, DIM)).astype(np.float32)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def measure(factory: str, xb: np.ndarray, xq: np.ndarray, exact: np.ndarray, nprobe: int | None = None) -> dict:
    index = faiss.index_factory(DIM, factory, faiss.METRIC_INNER_PRODUCT)
    t = time.perf_counter()
    if not index.is_trained:
        index.train(xb[: min(len(xb), 50_000)])
    index.add_with_ids(xb, np.arange(len(xb), dtype=np.int64))
    build_s = time.perf_counter() - t
    if nprobe is not None:
        faiss.extract_index_ivf(index).nprobe = nprobe
    lat = []
    for q in xq:
        t = time.perf_counter()
        _, ids = index.search(q[None, :], 10)
        lat.append((time.perf_counter() - t) * 1000)
    _, ids = index.search(xq, 10)
    recall = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids, exact)]))
    return {"factory": factory, "nprobe": nprobe, "build_s": round(build_s, 3), "recall@10": round(recall, 4),
            "search_p50_ms": round(float(np.percentile(lat, 50)), 3), "search_p99_ms": round(float(np.percentile(lat, 99)), 3)}


def state_bytes(seen: int) -> int:
    s = InterestState()
    s.add(np.ones(DIM), 1.0, 0.0, 3600.0)
    s.counts = {"search": 10, "click": 10, "review": 2}
    s.seen_items = RecentIds(f"item-{i:06d}" for i in range(seen))
    s.offsets = {"searches:3": 123456, "clicks:3": 654321, "reviews:3": 1234}
    return len(s.to_bytes())  # as the users table stores it


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--max-items", type=int, default=100_000)
    ap.add_argument("--json")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(256, DIM)).astype(np.float32)
    rows = []
    n = 1000
    while n <= args.max_items:
        xb = clustered(n, rng, centers)
        xq = clustered(QUERIES, rng, centers)
        flat = faiss.IndexFlatIP(DIM)
        flat.add(xb)
        _, exact = flat.search(xq, 10)
        nlist = max(16, int(4 * np.sqrt(n)))
        candidates = [("IDMap2,Flat", None)]
        if n >= 10_000:
            candidates += [(f"IDMap2,IVF{nlist},Flat", p) for p in (8, 32)]
            if n <= 100_000:
                candidates.append(("IDMap2,HNSW32", None))
        for factory, nprobe in candidates:
            row = {"items": n, **measure(factory, xb, xq, exact, nprobe)}
            rows.append(row)
            print(orjson.dumps(row).decode(), flush=True)
        n *= 10
    users = {"state_bytes_10_seen": state_bytes(10), "state_bytes_500_seen": state_bytes(500)}
    for u in (10**3, 10**4, 10**5, 10**6):
        users[f"memory_mb_{u}_users_10_seen"] = round(u * users["state_bytes_10_seen"] / 2**20, 1)
    print(orjson.dumps(users).decode())
    if args.json:
        with open(args.json, "wb") as fh:
            fh.write(orjson.dumps({"index": rows, "users": users}, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    main()
