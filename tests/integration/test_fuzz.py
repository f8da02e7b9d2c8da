"""Fuzz: 10,000 generated good and bad records through a real worker. Every bad one must be
dead-lettered, every good one applied once, re-sent ones skipped, and the worker must stay up."""

from __future__ import annotations

import random
import time
import uuid

import orjson

from schemas.topics import USERS_REPARTITION
from streams.tools.process import WorkerProcess
from tests.helpers.kafka import produce, produce_raw, read_topic

N = 10_000
ORPHANS = 20  # of N, records on users-repartition that no worker forwarded
NOW = time.time() - 86400
ITEMS = [f"item-{i}" for i in range(20)]
TOPIC = {"search": "searches", "click": "clicks", "review": "reviews"}


def generate(rng: random.Random):
    """Records with what each must become: 'good', 'dup' (a re-sent good one) or 'bad'."""
    out, good, n = [], [], 0

    def new_good() -> dict:
        nonlocal n
        n += 1
        kind = rng.choices(["click", "search", "review"], [0.75, 0.17, 0.08])[0]
        e = {"event_id": f"f{n}", "user_id": f"u{rng.randrange(300)}", "ts": NOW + rng.uniform(-3600, 3600)}
        if kind == "click":
            e["item_id"] = rng.choice(ITEMS)
        elif kind == "search":
            e["query"] = rng.choice(["running shoes", "héadphones 🎧", "x" * rng.choice([1, 50_000]), "cast iron pan"])
        else:
            e.update(item_id=rng.choice(ITEMS), text=rng.choice(["great!", "awful", "ok " * 3000]), rating=rng.randint(1, 5))
        if rng.random() < 0.02:
            e["ts"] = 1.0  # far past: accepted, weighs nothing
        return {"kind": kind, **e}

    bad_makers = [
        lambda e: b"{not json",
        lambda e: b"[1, 2, 3]",
        lambda e: b"",
        lambda e: b'{"event_id": "x", "user_id": "\xff\xfe", "query": "q", "ts": 1}',
        lambda e: orjson.dumps({k: v for k, v in e.items() if k != "user_id"}),
        lambda e: orjson.dumps({**e, "ts": "not a time"}),
        lambda e: orjson.dumps({**e, "ts": time.time() * 1000}),  # milliseconds: far future
        lambda e: orjson.dumps({**e, "user_id": {"nested": 1}}),
        lambda e: orjson.dumps({**e, "type": "purchase"}),
        lambda e: orjson.dumps({**e, "event_id": ""}),
        lambda e: orjson.dumps(e).replace(b'"ts":', b'"ts":NaN,"x":', 1),
    ]
    while len(out) < N - ORPHANS:
        e = new_good()
        kind = e.pop("kind")
        r = rng.random()
        if r < 0.35:
            value = rng.choice(bad_makers)(e)
            if kind == "click" and rng.random() < 0.1:
                value = orjson.dumps({**e, "item_id": "no-such-item"})
            out.append((TOPIC[kind], e["user_id"].encode(), value, "bad"))
        elif r < 0.40 and good:
            topic, key, value = rng.choice(good)
            out.append((topic, key, value, "dup"))
        else:
            value = orjson.dumps(e)
            good.append((TOPIC[kind], e["user_id"].encode(), value))
            out.append((TOPIC[kind], e["user_id"].encode(), value, "good"))
    # Well-formed clicks written straight to the internal repartition topic, without the headers a
    # worker forwards with: no source topic, so no kind to read them as (they stopped the agent).
    for k in range(ORPHANS):
        e = {"event_id": f"orphan{k}", "user_id": f"u{k}", "ts": NOW, "item_id": ITEMS[0]}
        out.insert(rng.randrange(len(out)), (USERS_REPARTITION.name, e["user_id"].encode(), orjson.dumps(e), "bad"))
    return out


def test_ten_thousand_good_and_bad_records(broker, tmp_path):
    rng = random.Random(2026)
    records = generate(rng)
    expected = {cls: sum(1 for r in records if r[3] == cls) for cls in ("good", "dup", "bad")}
    produce(broker.url, [{"type": "item", "event_id": f"i-{i}", "item_id": i, "title": f"Item {i}", "ts": NOW} for i in ITEMS])
    worker = WorkerProcess(broker.url, tmp_path, f"fuzz-{uuid.uuid4().hex[:6]}", broker.worker_env)
    try:
        worker.wait_until(lambda h: h["status"] == "ok" and h["items_indexed"] == len(ITEMS), 180, "catalogue")
        produce_raw(broker.bootstrap, [r[:3] for r in records])
        health = worker.wait_processed(N, timeout_s=600)
        assert health["status"] == "ok" and worker.proc.poll() is None  # alive
        assert health["events_applied"] == expected["good"]
        assert health["duplicate_skipped"] == expected["dup"]
        assert health["user_events_dead_lettered"] == expected["bad"]
        letters = read_topic(broker.bootstrap, "dead-letters", timeout_s=30)
        assert len(letters) == expected["bad"]
        assert all(orjson.loads(r.value)["reason"] for r in letters)
        orphans = [orjson.loads(r.value) for r in letters if orjson.loads(r.value)["topic"] == USERS_REPARTITION.name]
        assert len(orphans) == ORPHANS and all("names no source topic" in o["reason"] for o in orphans)
    finally:
        worker.stop()
    print("fuzz:", expected)
