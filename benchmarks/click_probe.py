"""Clicks per second through one worker, in repeated rounds (the bench's clicks phase alone, to
compare two commits by alternating runs: rounds vary by ±20 % on the 2-core machine).

Bundled broker; 2,000 items, 200 users; R rounds of N clicks each, timed from the first send to
the last event applied; each round prints the worker's and the broker's CPU per click (the same
200 users every round, so later rounds measure longer histories). Run from a checkout of the
commit to measure:
`.venv/bin/python benchmarks/click_probe.py 4 5000` (about 2 minutes). Extra worker settings as
NAME=VALUE arguments (INTEREST_STREAM_ prefix added): `... click_probe.py 4 5000 BATCH_WAIT_MS=10`.
"""

from __future__ import annotations

import os
import statistics
import sys
from pathlib import Path

from latency_probe import histogram_mean, metrics_text, probe_worker, split_args  # next to this file

from streams.tools.bench import throughput


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (steadier than wall time on a shared machine)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(rounds: int, n: int, extra: dict[str, str]) -> None:
    with probe_worker("click-probe-", extra) as (broker, worker, maker):
        before, cpu0 = metrics_text(worker), cpu_seconds(worker.proc.pid)
        rates = []
        for r in range(rounds):  # the same users each round: their histories grow by n / 200 clicks
            w0, b0 = cpu_seconds(worker.proc.pid), cpu_seconds(broker.pid)
            rates.append(throughput(worker, maker.clicks(n), broker.url, "clicks", 4))
            print(f"round {r}: {rates[-1]:.0f} clicks/s; CPU per click: worker "
                  f"{(cpu_seconds(worker.proc.pid) - w0) * 1000 / n:.3f} ms, broker {(cpu_seconds(broker.pid) - b0) * 1000 / n:.3f} ms")
        cpu_ms = (cpu_seconds(worker.proc.pid) - cpu0) * 1000 / (rounds * n)
        (s0, c0), (s1, c1) = (histogram_mean(m, "interest_stream_batch_records") for m in (before, metrics_text(worker)))
    print("clicks/s per round:", [round(r) for r in rates], "median", round(statistics.median(rates)),
          f"records per micro-batch: {(s1 - s0) / max(1.0, c1 - c0):.0f}; worker CPU per click {cpu_ms:.2f} ms")


if __name__ == "__main__":
    nums, extra = split_args(sys.argv[1:])
    main(int(nums[0]) if nums else 4, int(nums[1]) if len(nums) > 1 else 5000, extra)
