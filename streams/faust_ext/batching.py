"""Micro-batches of a Faust stream that start as soon as the agent is free, at most one per interval."""

from __future__ import annotations

import asyncio
import time
from typing import Any, AsyncGenerator, Callable

import faust
from faust.streams import _tracks_buffer_agen
from faust.types import EventT
from mode.utils.futures import notify


@_tracks_buffer_agen  # the stream closes it when it stops, as it does take_events
async def micro_batches(stream: faust.StreamT, max_: int, interval: float, max_heavy: int | None = None,
                        heavy: Callable[[EventT], bool] | None = None) -> AsyncGenerator[list[EventT], None]:
    """The stream's events in lists of at most ``max_``, of which at most ``max_heavy`` for which
    ``heavy`` is true (the texts the encoder must read, which cost far more than a click); a list is
    handed over when it is full, or when ``interval`` seconds have passed since the previous one was
    handed over, with every event that has come by then. Each event is acknowledged once the agent
    has finished with its list.

    Faust's ``take_events(max_, within)`` waits ``within`` after the agent finishes each list that
    was not full, however long the records have already waited: near the encoder's limit that wait
    is paid again on every cycle, and the records that came meanwhile wait for it too (event ->
    profile latency grows as 1 / (1 - load)). Here the agent starts its next list as soon as it is
    free and the interval since its last one has passed: under load the lists grow by themselves
    with what came during the previous one; when idle a record waits at most one ``interval``.

    Built as Faust builds ``take_events`` (faust-streaming 0.15, ``Stream.take_events``): a
    processor adds each event to the buffer while the stream is consumed passively in the
    background, and waits while the agent holds a list, so none is added or dropped meanwhile.
    """
    events: list[EventT] = []
    heavy_count = 0
    full = asyncio.Event()  # max_ events (or max_heavy heavy ones) buffered
    arrived = asyncio.Event()  # at least one event buffered
    handed_back = asyncio.Event()  # the agent is done with a full list
    held: asyncio.Future[Any] | None = None  # set while the agent holds a list
    queue = stream.channel.queue  # what the stream reads from: fetched records not yet buffered

    async def add_to_buffer(value: Any) -> Any:
        nonlocal held, heavy_count
        try:
            if held is not None:
                try:
                    await held
                finally:
                    held = None
            event = stream.current_event
            if event is None:
                raise RuntimeError("micro_batches found current_event is None")
            events.append(event)
            arrived.set()
            if heavy is not None and heavy(event):
                heavy_count += 1
            if len(events) >= max_ or (max_heavy is not None and heavy_count >= max_heavy):
                full.set()
                handed_back.clear()
                await stream.wait(handed_back)  # type: ignore[arg-type]  # (as in take_events)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            stream.log.exception("Error adding to micro-batch: %r", exc)
            await stream.crash(exc)
        return value

    acks = stream.enable_acks
    stream.enable_acks = False  # acknowledged here, once the agent is done with the list
    stream.add_processor(add_to_buffer)
    stream._enable_passive(aiter(stream.channel))  # type: ignore[attr-defined]  # (as in take_events)
    last = -float("inf")
    try:
        while not stream.should_stop:
            wait = last + interval - time.monotonic()
            if wait > 0:
                await stream.wait_for_stopped(full, timeout=wait)  # type: ignore[arg-type]
            elif not events:  # idle: nothing to do until a record comes (or the stream stops)
                await stream.wait_for_stopped(arrived)  # type: ignore[arg-type]
            if not events or (time.monotonic() < last + interval and not full.is_set()):
                continue
            # Records fetched while the agent held the last list wait in the stream's queue; the
            # background consumer moves about one per turn of the event loop.
            for _ in range(max_):
                if full.is_set() or queue.empty():
                    break
                await asyncio.sleep(0)
            last = time.monotonic()
            held = stream.loop.create_future()
            batch = list(events)
            try:
                yield batch
            finally:
                events.clear()
                heavy_count = 0
                arrived.clear()
                full.clear()
                for event in batch:
                    await stream.ack(event)
                notify(held)
                handed_back.set()
    finally:
        stream.enable_acks = acks
        stream._processors.remove(add_to_buffer)  # type: ignore[attr-defined]
