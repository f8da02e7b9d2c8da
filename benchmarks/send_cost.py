"""CPU per record sent through Faust's ``Topic.send`` and ``Topic.send_soon`` (the path Faust's
tables write their changelogs on) against Faust's ``Producer.send`` (what the worker's ``Outbox``
and ``DeliveredTable`` use: streams/faust_ext/tables.py), to the bundled broker, each awaited
until acknowledged. R rounds of N records of B bytes each, keyed by 1,000 users; the process's
garbage collector set as the worker's (streams/worker/heap.py):
`.venv/bin/python benchmarks/send_cost.py 3 20000 4000` (about a minute).
"""

from __future__ import annotations

import asyncio
import gc
import sys
import tempfile
import time

from streams.settings import Settings
from streams.tools.broker import EmbeddedBroker
from streams.worker.app import faust_app
from streams.worker.topic_admin import ensure_topics

TOPIC = "send-cost"


async def main(bootstrap: str, url: str, rounds: int, n: int, size: int) -> None:
    await ensure_topics(bootstrap, [TOPIC], 4)
    app = faust_app(Settings(broker=url, data_dir=tempfile.mkdtemp(prefix="send-cost-"), app_id="send-cost"))
    topic = app.topic(TOPIC, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
    value = b"x" * size
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, *gc.get_threshold()[1:])
    await app.producer.start()
    try:
        for r in range(rounds):
            for path in ("Topic.send", "Topic.send_soon", "Producer.send"):
                cpu, wall, acks = time.process_time(), time.perf_counter(), []
                for i in range(n):
                    key = f"user{i % 1000}".encode()
                    if path == "Topic.send":
                        acks.append(await topic.send(key=key, value=value))
                    elif path == "Topic.send_soon":
                        acks.append(topic.send_soon(key=key, value=value))
                    else:
                        acks.append(await app.producer.send(TOPIC, key, value, None, None, None))
                await asyncio.gather(*acks)
                print(f"round {r} {path:16s} {1e6 * (time.process_time() - cpu) / n:6.1f} µs CPU a record, "
                      f"{n / (time.perf_counter() - wall):8.0f} records/s", flush=True)
    finally:
        await app.producer.stop()


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:]]
    rounds, n, size = (args + [3, 20_000, 4000][len(args):])[:3]
    with EmbeddedBroker() as broker:
        asyncio.run(main(broker.bootstrap, broker.url, rounds, n, size))
