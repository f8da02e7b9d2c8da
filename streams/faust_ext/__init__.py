"""Every use of Faust's private API lives in this package, and nowhere else.

This is why pyproject.toml pins faust-streaming to 0.15.x: each name below is internal to Faust
and may change in any release. A Faust upgrade means re-reading these modules (and running
the crash, rebalance and pipeline tests, which are what found each need):

- ``context.py``: ``faust.streams._current_event`` - the event whose partition a table write (and
  a RocksDB read) belongs to, set per event of a micro-batch (``take_events`` does not).
- ``batching.py``: ``Stream.take_events``'s building blocks (``_enable_passive``, ``_processors``,
  ``_tracks_buffer_agen``, the stream channel's ``queue``) for micro-batches that start as soon as
  the agent is free instead of a fixed wait after each one.
- ``tables.py``: ``Table.send_changelog``, ``on_key_set`` / ``on_key_del`` with their
  ``_maybe_set_key_ttl`` / ``_sensor_on_set`` (changelog writes sent straight to the producer and
  awaitable), the store's ``set_persisted_offset``, and the RocksDB store's ``_dbs`` /
  ``_visible_items`` (reading every local partition, standbys included).
- ``consumer.py``: the aiokafka driver's ``_thread``, ``_read_offset``, ``_acked`` /
  ``_acked_index`` and ``_new_offset`` (the offset guard decides what is applied and committed),
  ``_drain_messages`` (Faust's loop from fetches to streams, rewritten with one ``wait_first`` per
  fetch: it cost more CPU per record than anything else in a no-op agent) and its ``_add_gap``,
  ``_commit_every``, ``_n_acked``, ``suspend_flow`` and ``diag`` flags,
  its consumer thread's ``_create_worker_consumer`` and aiokafka's ``_fetch_max_wait_ms`` (Faust
  hard-codes the fetch wait to 1.5 s; the ``fetch_max_wait_ms`` setting replaces it); its
  ``highwaters``, which only table recovery calls, reads the real end offsets from the last records
  (``streams/end_offsets.py``: the bundled broker reports them short of a multi-record batch).
"""

from streams.faust_ext.batching import micro_batches
from streams.faust_ext.consumer import GuardedConsumer, guarded_consumer
from streams.faust_ext.context import event_context
from streams.faust_ext.tables import DeliveredTable, count_keys, local_rows

__all__ = ["DeliveredTable", "GuardedConsumer", "count_keys", "event_context", "guarded_consumer", "local_rows", "micro_batches"]
