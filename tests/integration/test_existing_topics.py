"""A worker started on topics that already hold history (a new deployment, a new app id): clicks
on items that are in the catalogue topic must be applied, not dead-lettered as unknown because the
user agent read them before the item agent and the catalogue follower had indexed those items."""

from __future__ import annotations

import asyncio
import random
import uuid

from confluent_kafka import Producer

from schemas import dump_json
from schemas.topics import ITEMS
from streams.tools.process import WorkerProcess
from streams.worker.topic_admin import ensure_topics
from tests.helpers.kafka import produce
from tests.helpers.offline import assert_equal_to_offline, make_stream, offline_states, settled_profiles


def produce_one_per_batch(bootstrap: str, topic: str, records: list[dict]) -> None:
    """With librdkafka, one record per producer batch: the bundled broker then reports the topic's
    end offsets right, which the catalogue gate compares the group's commits with."""
    producer = Producer({"bootstrap.servers": bootstrap, "batch.num.messages": 1, "linger.ms": 0, "acks": "all"})
    for r in records:
        producer.produce(topic, value=dump_json(r), key=r["item_id"].encode())
        producer.poll(0)
    assert producer.flush(30) == 0


def test_a_worker_started_on_a_backlog_of_items_and_clicks_applies_every_click(broker, tmp_path, encoder):
    rng = random.Random(5)
    # More user records than one Faust stream queue holds (4,096): held records must not stop the
    # item records the gate waits for.
    items, queries, events = make_stream(rng, 6_000)
    asyncio.run(ensure_topics(broker.bootstrap, [ITEMS.name], 4))
    produce_one_per_batch(broker.bootstrap, ITEMS.name, items)
    produce(broker.url, events, partitions=4)  # the whole history first, no worker running
    env = {**broker.worker_env, "INTEREST_STREAM_BATCH_WAIT_MS": "20", "INTEREST_STREAM_CATALOGUE_WAIT_S": "150"}
    worker = WorkerProcess(broker.url, tmp_path, f"backlog-{uuid.uuid4().hex[:6]}", env)
    try:
        worker.wait_until(lambda h: h["status"] == "ok", 240, "the worker")
        expected = offline_states(encoder, items, queries, events)
        profiles = settled_profiles(worker, sorted(expected), len(events), timeout_s=300)
        health = worker.health()
        gate = health["catalogue_gate"]
        assert gate["items_behind_at_start"] == len(items), "the items were applied before the gate looked: nothing was tested"
        assert not gate["gave_up"] and health["user_events_dead_lettered"] == 0
        assert len(profiles) == len(expected)
        assert_equal_to_offline(profiles, expected, encoder.layout)
    finally:
        worker.stop()
