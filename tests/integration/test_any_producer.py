"""Events produced by a second real client, confluent-kafka (librdkafka), with its own partitioners
and keys: its default (consistent_random, CRC32), murmur2 (as Java and aiokafka), keys that are
event ids, and no keys. Whatever partition a record lands in, its user's state must come out equal
to the offline computation, across a kill -9 mid-stream; forget and watchlist must work for every
user; and reading a profile needs the read token when one is set."""

from __future__ import annotations

import random
import time
import uuid

import pytest
from confluent_kafka import Producer

from schemas import dump_json
from schemas.topics import TOPIC_OF_KIND
from streams.tools.process import WorkerProcess, get_json
from tests.helpers.kafka import produce
from tests.helpers.offline import assert_equal_to_offline, offline_states, settled_profiles

READ, ADMIN = "read-token-1", "admin-token-1"
AUTH = {"Authorization": f"Bearer {READ}"}
NOW = time.time() - 86400
# How each group of users is produced: (librdkafka partitioner, what the key is).
MODES = {"crc32": ("consistent_random", "user"), "murmur2": ("murmur2_random", "user"),
         "event-id": ("consistent_random", "event"), "no-key": ("consistent_random", None)}
USERS_PER_MODE, EVENTS_PER_USER, ITEMS = 8, 30, 40


def stream(rng: random.Random):
    items = [{"type": "item", "event_id": f"ai-{i}", "item_id": f"a{i}", "title": f"Thing {i} {w}", "ts": NOW}
             for i, w in enumerate(rng.choices(["shoes", "headphones", "pan", "tent", "novel"], k=ITEMS))]
    queries = [f"looking for {rng.choice(['running', 'audio', 'cooking', 'camping'])} gear {i}" for i in range(40)]
    events = {mode: [] for mode in MODES}
    n = 0
    for mode in MODES:
        for u in range(USERS_PER_MODE):
            for _ in range(EVENTS_PER_USER):
                n += 1
                user, ts = f"{mode}-u{u}", NOW + rng.uniform(-10 * 86400, 0)  # out of order on purpose
                if rng.random() < 0.2:
                    events[mode].append({"type": "search", "event_id": f"ae{n}", "user_id": user,
                                         "query": rng.choice(queries), "ts": ts})
                else:
                    events[mode].append({"type": "click", "event_id": f"ae{n}", "user_id": user,
                                         "item_id": f"a{rng.randrange(ITEMS)}", "ts": ts})
    for mode in MODES:
        rng.shuffle(events[mode])  # the groups interleave
    return items, queries, events


def produce_with_librdkafka(bootstrap: str, events: list[dict], partitioner: str, key: str | None) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "partitioner": partitioner, "linger.ms": 5,
                         "acks": "all", "enable.idempotence": False})
    failures: list[str] = []
    for e in events:
        k = e["user_id"] if key == "user" else e["event_id"] if key == "event" else None
        producer.produce(TOPIC_OF_KIND[e["type"]].name, value=dump_json(e), key=k,
                         on_delivery=lambda err, _msg: failures.append(str(err)) if err else None)
        producer.poll(0)
    assert producer.flush(30) == 0 and not failures, failures[:3]


class Run:
    """What the steps share: the worker (replaced when it is restarted) and how to start it."""

    def __init__(self, broker, workdir) -> None:
        self.broker, self.workdir = broker, workdir
        self.app_id = f"any-{uuid.uuid4().hex[:6]}"
        self.env = {**broker.worker_env, "INTEREST_STREAM_READ_TOKEN": READ, "INTEREST_STREAM_ADMIN_TOKEN": ADMIN,
                    "INTEREST_STREAM_BATCH_WAIT_MS": "20"}
        self.worker = self.start()  # creates every topic, 4 partitions each

    def start(self) -> WorkerProcess:
        return WorkerProcess(self.broker.url, self.workdir, self.app_id, self.env)


@pytest.fixture(scope="module")
def run(broker, tmp_path_factory):
    r = Run(broker, tmp_path_factory.mktemp("any-producer"))
    yield r
    r.worker.stop()


def test_every_partitioner_and_key_gives_the_offline_state_across_a_kill(broker, run, encoder):
    w = run.worker
    rng = random.Random(17)
    items, queries, events = stream(rng)
    produce(broker.url, items, partitions=4)
    w.wait_until(lambda h: h["status"] == "ok" and h["items_indexed"] == ITEMS, 180, "the catalogue")
    for mode, (partitioner, key) in MODES.items():
        produce_with_librdkafka(broker.bootstrap, events[mode], partitioner, key)
    time.sleep(rng.uniform(1, 3))
    w.kill()  # somewhere mid-stream: forwarded records may be forwarded again
    w = run.worker = run.start()
    w.wait_until(lambda h: h["status"] == "ok", 180, "the restarted worker")
    everything = [e for mode in MODES for e in events[mode]]
    expected = offline_states(encoder, items, queries, everything)
    profiles = settled_profiles(w, sorted(expected), len(everything), headers=AUTH)
    assert len(profiles) == len(expected), "a user's state is missing or split"
    assert_equal_to_offline(profiles, expected, encoder.layout)
    health = w.health()
    assert health["user_events_dead_lettered"] == 0  # a click read before its item was indexed again
    print(f"any producer: {len(everything)} events, {health['misplaced_forwarded']} forwarded to their user's "
          f"partition after the restart, {health['redelivered_skipped']} redelivered skipped")


def test_forget_and_watchlist_reach_every_users_state(run):
    w = run.worker
    users = [f"{mode}-u{u}" for mode in MODES for u in range(USERS_PER_MODE)]
    forget, follow = users[::2], users[1::2]
    admin = {"Authorization": f"Bearer {ADMIN}"}
    counts = {u: get_json(f"{w.base}/users/{u}/profile", headers=AUTH)[1]["event_counts"] for u in follow}
    for u in forget:
        assert get_json(f"{w.base}/users/{u}", method="DELETE", headers=admin)[0] == 202
    for u in follow:
        status, _ = get_json(f"{w.base}/users/{u}/watchlist", method="POST",
                             headers={**admin, "Content-Type": "application/json"}, data=b'{"add": ["TSLA"]}')
        assert status == 202
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        gone = [get_json(f"{w.base}/users/{u}/profile", headers=AUTH)[0] == 404 for u in forget]
        bodies = [get_json(f"{w.base}/users/{u}/profile", headers=AUTH)[1] for u in follow]
        followed = [b.get("summary", {}).get("entities", {}).get("follows") == ["TSLA"] for b in bodies]
        if all(gone) and all(followed):
            break
        time.sleep(1)
    assert all(gone), [u for u, g in zip(forget, gone) if not g]
    # The follow landed in the user's own state: the profile with its events, not a second, empty one.
    assert all(followed) and [b["event_counts"] for b in bodies] == [counts[u] for u in follow]


def test_reading_a_user_needs_the_read_token(run):
    w = run.worker
    user = "murmur2-u1"
    assert get_json(f"{w.base}/users/{user}/profile")[0] == 401
    assert get_json(f"{w.base}/users/{user}/profile", headers={"Authorization": "Bearer wrong"})[0] == 401
    assert get_json(f"{w.base}/users/{user}/recommendations?k=3")[0] == 401
    assert get_json(f"{w.base}/users/{user}/recommendations?k=3", headers=AUTH)[0] == 200
    assert get_json(f"{w.base}/healthz")[0] == 200  # health stays open for probes
