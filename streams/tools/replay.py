"""Send a JSONL file of events to the broker, each to its type's topic, keyed for co-partitioning."""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import orjson
from aiokafka import AIOKafkaProducer

from schemas import EVENT_TYPES, dump_json
from schemas.topics import TOPIC_OF_KIND
from schemas.topics import route as topic_route
from streams.errors import ReplayError
from streams.settings import bootstrap_of
from streams.worker.topic_admin import ensure_topics

IN_FLIGHT = 500  # records sent before waiting for their acknowledgements


def numbered_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, event) for each non-blank line, read lazily."""
    with open(path, "rb") as fh:
        for lineno, line in enumerate(fh, 1):
            if line.strip():
                try:
                    yield lineno, orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    raise ReplayError(f"{path}:{lineno}: not valid JSON: {exc}") from exc


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    return (event for _, event in numbered_jsonl(path))


def route(event: dict[str, Any]) -> tuple[str, bytes]:
    """An event with a 'type' field -> (topic, key bytes)."""
    kind = event.get("type")
    if kind not in EVENT_TYPES:
        raise ReplayError(f"event has type {kind!r}; expected one of {sorted(EVENT_TYPES)}: {event}")
    topic, key = topic_route(kind, event)
    if key is None:
        raise ReplayError(f"{kind} event has no {TOPIC_OF_KIND[kind].key_field!r} to key it by: {event}")
    return topic, key.encode()


@dataclass(frozen=True)
class FileCheck:
    events: int
    topics: tuple[str, ...]


def check_file(path: Path) -> FileCheck:
    """Read a JSONL file once, streaming: every line must parse and route (a ReplayError names the
    first that does not), so that a bad file is refused before anything is sent."""
    events, topics = 0, set()
    for lineno, event in numbered_jsonl(path):
        try:
            topics.add(route(event)[0])
        except ReplayError as exc:
            raise ReplayError(f"{path}:{lineno}: {exc}") from exc
        events += 1
    return FileCheck(events, tuple(sorted(topics)))


async def replay(
    events: Iterable[dict[str, Any]],
    broker_url: str,
    on_sent: Callable[[int], None] | None = None,
    partitions: int = 4,
    topics: Sequence[str] | None = None,
) -> int:
    """Produce every event in order; returns how many were acknowledged by the broker.

    ``events`` is iterated once, so a file's events stream through without being held in memory;
    ``topics`` then names the topics they go to (``check_file``). Without it the events are taken
    into a list and routed first, refusing an unroutable one before anything is sent. Missing
    topics are created first with ``partitions`` partitions, so that a broker's auto-creation
    default never decides the layout the workers must then live with.
    """
    if topics is None:
        events = list(events)
        topics = sorted({route(e)[0] for e in events})
    await ensure_topics(bootstrap_of(broker_url), list(topics), partitions)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_of(broker_url), linger_ms=5, acks="all")
    await producer.start()
    sent = 0
    futures: list[asyncio.Future] = []

    async def settle() -> None:
        nonlocal sent
        for f in futures:
            await f
        sent += len(futures)
        if on_sent and futures:
            on_sent(len(futures))
        futures.clear()

    try:
        for event in events:
            topic, key = route(event)
            futures.append(await producer.send(topic, dump_json(event), key=key))
            if len(futures) >= IN_FLIGHT:
                await settle()
        await settle()
    finally:
        await producer.stop()
    return sent


def replay_file(path: Path, broker_url: str, partitions: int) -> tuple[int, float]:
    """`interest-stream replay FILE`: check the file, then stream it with a progress bar (events/s)
    on stderr; returns (events sent, seconds). A pipe cannot be read twice: it is read into memory
    and checked there, as a list is."""
    from tqdm import tqdm

    if not path.is_file():  # a pipe (`<(zcat f.gz)`, /dev/stdin) can be read once: held in memory
        events = list(read_jsonl(path))
        started = time.monotonic()
        with tqdm(total=len(events), unit="ev", unit_scale=True, desc="replay", file=sys.stderr) as bar:
            return asyncio.run(replay(events, broker_url, bar.update, partitions)), time.monotonic() - started
    check = check_file(path)
    started = time.monotonic()
    with tqdm(total=check.events, unit="ev", unit_scale=True, desc=f"replay {path.name}", file=sys.stderr) as bar:
        sent = asyncio.run(replay(read_jsonl(path), broker_url, bar.update, partitions, check.topics))
    if sent != check.events:
        raise ReplayError(f"{path} changed while it was sent: {check.events} events checked, {sent} sent")
    return sent, time.monotonic() - started


def send_with_progress(events: list[dict[str, Any]], broker_url: str, label: str, partitions: int) -> int:
    """``replay`` from synchronous code, with a progress bar on stdout."""
    from tqdm import tqdm

    with tqdm(total=len(events), unit="ev", desc=f"replay {label}", file=sys.stdout) as bar:
        return asyncio.run(replay(events, broker_url, bar.update, partitions))
