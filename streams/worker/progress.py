"""One log line per ``every`` micro-batches with what changed since the last one (never a line
per event): text ``progress batches=… events_applied=… events_per_s=…`` or, with
``INTEREST_STREAM_LOG_FORMAT=json``, one JSON object per line for log shippers."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from typing import Any, Callable

import orjson

log = logging.getLogger("interest_stream.progress")


def format_progress(fields: dict[str, Any], fmt: str) -> str:
    if fmt == "json":
        return orjson.dumps({"event": "progress", **fields}).decode()
    return "progress " + " ".join(f"{k}={v}" for k, v in fields.items())


class ProgressLog:
    def __init__(self, stats: Any, every: int, fmt: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.stats, self.every, self.fmt, self.clock = stats, every, fmt, clock
        self._last, self._since, self._batches = self._counters(), clock(), 0

    def _counters(self) -> dict[str, int]:
        return {k: v for k, v in asdict(self.stats).items() if isinstance(v, int)}

    def batch_done(self) -> str | None:
        """Count a handled micro-batch; every ``every``-th one logs (and returns) the line."""
        self._batches += 1
        if self._batches < self.every:
            return None
        now, counters = self.clock(), self._counters()
        seconds = max(now - self._since, 1e-9)
        fields: dict[str, Any] = {"batches": self._batches, "seconds": round(seconds, 3)}
        fields |= {k: v - self._last[k] for k, v in counters.items() if v != self._last[k]}
        fields["events_per_s"] = round(fields.get("events_applied", 0) / seconds, 1)
        self._last, self._since, self._batches = counters, now, 0
        line = format_progress(fields, self.fmt)
        log.info(line)
        return line
