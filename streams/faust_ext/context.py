"""Making one event of a micro-batch Faust's current event."""

from __future__ import annotations

import weakref
from contextlib import contextmanager
from typing import Iterator

import faust.streams
from faust.types import EventT


@contextmanager
def event_context(event: EventT) -> Iterator[None]:
    """Make ``event`` Faust's current event while its table reads and writes happen.

    A micro-batch (``micro_batches``, like Faust's ``take_events``) is a list of events handed over
    outside Faust's own per-event iteration, so a table write would not know which partition's
    changelog it belongs to ("Cannot modify table key from outside of stream iteration",
    faust-streaming issue #497), and the RocksDB store would read a
    key from whichever partition the last buffered event came from. Faust keeps the current event
    in a context variable; setting it per event is what its own iteration does, and keeps each
    changelog record in the source event's partition, which recovery and rebalancing rely on.
    """
    token = faust.streams._current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        faust.streams._current_event.reset(token)
