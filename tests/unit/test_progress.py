"""The worker's progress line (streams/worker/progress.py): one per N batches, deltas only."""

from __future__ import annotations

import orjson

from streams.worker.context import WorkerStats
from streams.worker.progress import ProgressLog


def test_one_line_per_n_batches_with_what_changed_and_the_rate():
    stats, now = WorkerStats(), [100.0]
    progress = ProgressLog(stats, every=3, fmt="json", clock=lambda: now[0])
    stats.events_applied, stats.dead_lettered = 40, 2
    now[0] = 102.0
    assert progress.batch_done() is None and progress.batch_done() is None
    line = orjson.loads(progress.batch_done())
    assert line == {"event": "progress", "batches": 3, "seconds": 2.0, "events_applied": 40, "dead_lettered": 2,
                    "events_per_s": 20.0}
    stats.events_applied += 5
    now[0] = 107.0
    for _ in range(2):
        progress.batch_done()
    assert orjson.loads(progress.batch_done())["events_applied"] == 5  # the change since the last line


def test_text_format_is_one_line_of_key_value_pairs():
    stats = WorkerStats()
    progress = ProgressLog(stats, every=1, fmt="text", clock=lambda: 1.0)
    stats.items_applied = 7
    line = progress.batch_done()
    assert line.startswith("progress batches=1 ") and "items_applied=7" in line and "\n" not in line
