"""The bench's throughput timing, both ways on the same rounds: to the poll of /healthz that saw
the last event applied (the bench before 2026-12-07) and to the micro-batch that applied it, by the
worker's clock (``last_applied_at``, the bench now). Bundled broker, 2,000 items, 200 users.
Run from a checkout: `.venv/bin/python benchmarks/throughput_timing.py 8 5000` (R rounds of N clicks).
"""

from __future__ import annotations

import sys
import time

from latency_probe import probe_worker  # next to this file

from streams.tools.bench import feed


def main(rounds: int, n: int) -> None:
    with probe_worker("timing-", {}) as (broker, worker, maker):
        for r in range(rounds):
            events = maker.clicks(n)
            start = worker.health()
            done = start["events_applied"] + start["user_events_dead_lettered"] + len(events)
            t = time.time()
            feed(events, broker.url, "clicks", 4)
            health = worker.wait_processed(done, timeout_s=600)
            polled, applied = time.time(), health["last_applied_at"]
            print(f"round {r}: polled {n / (polled - t):.0f}/s, worker's clock {n / (applied - t):.0f}/s, "
                  f"difference {polled - applied:.3f} s of {polled - t:.2f} s", flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 8, int(sys.argv[2]) if len(sys.argv) > 2 else 5000)
