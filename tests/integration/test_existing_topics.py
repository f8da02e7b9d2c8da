"""Clicks on items that are in the catalogue topic must be applied, not dead-lettered as unknown
because the user agent read them before the item agent and the catalogue follower had indexed those
items: a worker started on topics that already hold history (a new deployment, a new app id), and
a running worker whose clicks overtake their items."""

from __future__ import annotations

import asyncio
import random
import time
import uuid

from confluent_kafka import Producer

from schemas import dump_json
from schemas.topics import CLICKS, ITEMS
from streams.tools.broker import EmbeddedBroker
from streams.tools.process import WorkerProcess
from streams.worker.topic_admin import ensure_topics
from tests.helpers.kafka import produce
from tests.helpers.offline import NOW, assert_equal_to_offline, make_stream, offline_states, settled_profiles


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
        profiles = settled_profiles(worker, sorted(expected), len(events))
        health = worker.health()
        gate = health["catalogue_gate"]
        assert gate["items_behind_at_start"] == len(items), "the items were applied before the gate looked: nothing was tested"
        assert not gate["gave_up"] and health["user_events_dead_lettered"] == 0
        assert len(profiles) == len(expected)
        assert_equal_to_offline(profiles, expected, encoder.layout)
    finally:
        worker.stop()


def test_clicks_that_overtake_their_items_wait_for_them_and_a_click_on_no_item_is_dead_lettered(tmp_path, encoder):
    # A broker of its own: a new app id reads every topic's history first, and the user agent,
    # busy with the other test's clicks, would reach these only after their items were indexed.
    with EmbeddedBroker(log_file=tmp_path / "tansu.log") as broker:
        run_overtake(broker, tmp_path, encoder)


def run_overtake(broker: EmbeddedBroker, tmp_path, encoder) -> None:
    """A running worker; 300 items produced, and right behind them clicks on the last ones. The
    item agent needs seconds to encode them, the user agent reads the clicks at once: each batch
    with a click on an item not indexed yet waits for the catalogue to catch up (CatalogueGate.catch_up).
    With ``INTEREST_STREAM_UNKNOWN_ITEM_WAIT_S=0`` (no waiting) all 20 were dead-lettered (run by
    hand on 2026-11-30). The limit is raised here so a slow machine cannot make it flaky."""
    tag = uuid.uuid4().hex[:6]
    catalogue, queries, _ = make_stream(random.Random(7), 0)
    items = [{**item, "item_id": f"{tag}-{item['item_id']}"} for item in catalogue]
    worker = WorkerProcess(broker.url, tmp_path, f"overtake-{tag}",
                           {**broker.worker_env, "INTEREST_STREAM_BATCH_WAIT_MS": "20",
                            "INTEREST_STREAM_UNKNOWN_ITEM_WAIT_S": "120"})
    try:
        worker.wait_until(lambda h: h["status"] == "ok", 240, "the worker")
        clicks = [{"type": "click", "event_id": f"{tag}-c{n}", "user_id": f"{tag}-u{n}", "item_id": items[-1 - n]["item_id"],
                   "ts": NOW + n} for n in range(20)]
        produce(broker.url, items + clicks, partitions=4)  # one producer: the clicks right behind their items
        expected = offline_states(encoder, items, queries, clicks)
        profiles = settled_profiles(worker, sorted(expected), len(clicks))
        assert_equal_to_offline(profiles, expected, encoder.layout)
        health = worker.health()
        assert health["user_events_dead_lettered"] == 0
        assert health["catalogue_gate"]["catch_ups"] >= 1, "no click overtook its item: nothing was tested"

        # A click on an item that is in no topic waits for one catch-up, then is dead-lettered.
        before = health["catalogue_gate"]["catch_ups"]
        produce(broker.url, [{"type": "click", "event_id": f"{tag}-ghost", "user_id": f"{tag}-ghost", "item_id": "no-such-item",
                              "ts": NOW}], partitions=4)
        health = worker.wait_until(lambda h: h["user_events_dead_lettered"] == 1, 120, "the ghost click dead-lettered")
        gate = health["catalogue_gate"]
        assert gate["catch_ups"] == before + 1 and gate["catch_ups_short"] == 0

        # The same, produced (its record timestamp) a minute before that catch-up began, as in a
        # backlog: its item cannot still be on its way, so it is dead-lettered without waiting.
        producer = Producer({"bootstrap.servers": broker.bootstrap, "partitioner": "murmur2_random"})
        old = {"type": "click", "event_id": f"{tag}-ghost-2", "user_id": f"{tag}-ghost", "item_id": "no-such-item", "ts": NOW}
        producer.produce(CLICKS.name, value=dump_json(old), key=old["user_id"].encode(), timestamp=int((time.time() - 60) * 1000))
        assert producer.flush(30) == 0
        health = worker.wait_until(lambda h: h["user_events_dead_lettered"] == 2, 120, "the old ghost click dead-lettered")
        assert health["catalogue_gate"]["catch_ups"] == before + 1
    finally:
        worker.stop()
