"""The ceiling of a Faust agent on this machine: records/s through an agent that does nothing but
take micro-batches, as the worker's user agent takes them (``micro_batches(stream, batch_max, 50 ms)``; batch_max was
256 until 2026-12-07, 1,024 since), over records
already in the bundled broker. With Faust's own consumer loop and with the worker's
(``GuardedConsumer``: one ``wait_first`` per fetch instead of per record, and the offset guard).

`.venv/bin/python benchmarks/faust_ceiling.py [N] [ROUNDS]` (default 50,000 records, 2 rounds of
each, alternating; about a minute). Each run is a fresh process and a fresh broker.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import time

N_DEFAULT = 50_000


async def _produce(bootstrap: str, topic: str, n: int) -> None:
    from aiokafka import AIOKafkaProducer
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, 4, 1)])
    await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    value = b"x" * 200  # about a click record's size
    sent = [await producer.send(topic, value, key=f"u{i % 200}".encode()) for i in range(n)]
    await asyncio.gather(*sent)
    await producer.stop()


def one_run(n: int, loop: str) -> None:
    """In this process: a broker, n records, one no-op agent; prints 'records/s cpu_us'."""
    import faust

    from streams.faust_ext import guarded_consumer, micro_batches
    from streams.settings import Settings
    from streams.tools.broker import EmbeddedBroker

    with EmbeddedBroker() as broker:
        asyncio.run(_produce(broker.bootstrap, "clicks", n))
        app = faust.App("ceiling", broker=broker.url, store="memory://", web_enabled=False, topic_partitions=4,
                        broker_session_timeout=6, topic_replication_factor=1, autodiscover=False,
                        consumer_auto_offset_reset="earliest")
        guarded = loop == "worker"
        if guarded:
            app.transport.Consumer = guarded_consumer(100, None, broker.bootstrap)
        topic = app.topic("clicks", key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
        seen = {"n": 0, "t0": 0.0, "cpu0": 0.0}

        @app.agent(topic)
        async def noop(stream):
            async for batch in micro_batches(stream, Settings().batch_max, 0.05):
                if not seen["n"]:
                    seen["t0"], seen["cpu0"] = time.perf_counter(), time.process_time()
                if guarded:
                    batch = await app.consumer.admit(batch)
                seen["n"] += len(batch)
                if guarded:
                    app.consumer.applied(batch)
                if seen["n"] >= n:
                    wall, cpu = time.perf_counter() - seen["t0"], time.process_time() - seen["cpu0"]
                    print(f"RESULT {n / wall:.1f} {cpu * 1e6 / n:.1f}", flush=True)
                    broker.stop()  # os._exit skips the with block's exit, which would stop it
                    os._exit(0)  # the figure is out; no graceful stop to wait for

        faust.Worker(app, loglevel="warning", quiet=True).execute_from_commandline()


def main(n: int, rounds: int) -> None:
    results: dict[str, list[tuple[float, float]]] = {"faust": [], "worker": []}
    for _ in range(rounds):
        for loop in results:
            out = subprocess.run([sys.executable, __file__, "--one", loop, str(n)], capture_output=True, text=True,
                                 timeout=300)
            # Faust's worker sends stdout to its log (stderr): the line is found in either.
            line = next((x[x.index("RESULT"):] for x in (out.stdout + out.stderr).splitlines() if "RESULT" in x), None)
            if line is None:
                raise SystemExit(f"{loop} run failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
            rate, cpu = map(float, line.split()[1:])
            results[loop].append((rate, cpu))
    for loop, runs in results.items():
        print(f"{loop:7s} consumer loop: records/s {[round(r) for r, _ in runs]} (median {statistics.median(r for r, _ in runs):.0f}), "
              f"process CPU per record {[round(c) for _, c in runs]} µs")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--one":
        one_run(int(sys.argv[3]), sys.argv[2])
    else:
        main(int(sys.argv[1]) if len(sys.argv) > 1 else N_DEFAULT, int(sys.argv[2]) if len(sys.argv) > 2 else 2)
