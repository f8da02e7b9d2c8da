"""Clicks per second through one worker, in repeated rounds (the bench's clicks phase alone, to
compare two commits by alternating runs: rounds vary by ±20 % on the 2-core machine).

Bundled broker; 2,000 items, 200 users; R rounds of N clicks each, timed from the first send to
the last event applied. Each round prints the worker's and the broker's CPU per click, the time the
worker waited per click for its state writes to be acknowledged, and the machine's CPU steal (the
same 200 users every round, so later rounds measure longer histories). Run from a checkout of the
commit to measure:
`.venv/bin/python benchmarks/click_probe.py 4 5000` (about 2 minutes). Extra worker settings as
NAME=VALUE arguments (INTEREST_STREAM_ prefix added): `... click_probe.py 4 5000 BATCH_WAIT_MS=10`.

``USERS=new`` (a probe argument, not a setting) clicks as 200 users never seen before in every
round, so histories stay at N / 200 clicks; ``USERS=alternate`` grows the same users' histories in
the first half of the rounds and then alternates new users (odd rounds) with them: short and long
histories a minute apart, which this machine's drift from one minute to the next cannot fake.
``USERS=many`` clicks as 20,000 users (new ones every round), so a micro-batch rarely holds two
clicks of one user: every click costs a state write and a profile record of its own.
"""

from __future__ import annotations

import os
import statistics
import sys
from pathlib import Path

from latency_probe import probe_worker, split_args  # next to this file

from streams.tools.bench import histogram_mean, metrics_text, stage_ms_per_batch, throughput

MANY_USERS = 20_000


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (steadier than wall time on a shared machine)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def learner_pid(worker) -> int | None:
    """The worker's learner process (ranking lessons), if one runs."""
    lessons = ((worker.health() or {}).get("recommender") or {}).get("lessons") or {}
    return lessons.get("process_pid")


def machine_ticks() -> tuple[int, int]:
    """(stolen, all) CPU ticks of the machine so far: time the hypervisor gave this VM's cores to
    others shows as steal, one reason a round is slower than the one before."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return ticks[7] if len(ticks) > 7 else 0, sum(ticks[:8])


def round_users(mode: str, r: int, rounds: int) -> str | None:
    """The prefix that makes round ``r``'s users new ones (USERS=new | alternate), or None."""
    if mode in ("new", "many") or (mode == "alternate" and r >= rounds // 2 and r % 2):
        return f"r{r}-"
    if mode not in ("same", "new", "alternate"):
        raise SystemExit(f"USERS={mode}: expected same, new, alternate or many")
    return None


def main(rounds: int, n: int, users: str, extra: dict[str, str]) -> None:
    wait = "interest_stream_changelog_wait_seconds"
    with probe_worker("click-probe-", extra) as (broker, worker, maker):
        before, cpu0 = metrics_text(worker), cpu_seconds(worker.proc.pid)
        rates, last = [], before
        for r in range(rounds):  # the same users (unless USERS=…): their histories grow by n / 200 clicks
            learner = learner_pid(worker)
            w0, b0, (st0, all0) = cpu_seconds(worker.proc.pid), cpu_seconds(broker.pid), machine_ticks()
            l0 = cpu_seconds(learner) if learner else 0.0
            clicks, prefix = maker.clicks(n), round_users(users, r, rounds)
            for n_click, click in enumerate(clicks if prefix else ()):
                click["user_id"] = prefix + (f"m{(n_click * 7919) % MANY_USERS}" if users == "many" else click["user_id"])
            rates.append(throughput(worker, clicks, broker.url, "clicks", 4))
            now = metrics_text(worker)
            waited = histogram_mean(now, wait)[0] - histogram_mean(last, wait)[0]
            last = now
            st1, all1 = machine_ticks()
            print(f"round {r}{' (new users)' if prefix else ''}: {rates[-1]:.0f} clicks/s; per click: worker CPU "
                  f"{(cpu_seconds(worker.proc.pid) - w0) * 1000 / n:.3f} ms, broker CPU {(cpu_seconds(broker.pid) - b0) * 1000 / n:.3f} ms,"
                  f" waiting for state writes {waited * 1000 / n:.3f} ms; steal {100 * (st1 - st0) / max(1, all1 - all0):.0f} %"
                  + (f"; learner process CPU {(cpu_seconds(learner) - l0) * 1000 / n:.3f} ms" if learner else ""))
        cpu_ms = (cpu_seconds(worker.proc.pid) - cpu0) * 1000 / (rounds * n)
    (s0, c0), (s1, c1) = (histogram_mean(m, "interest_stream_batch_records") for m in (before, last))
    per_batch = (s1 - s0) / max(1.0, c1 - c0)
    print("clicks/s per round:", [round(r) for r in rates], "median", round(statistics.median(rates)),
          f"records per micro-batch: {per_batch:.0f}; worker CPU per click {cpu_ms:.2f} ms")
    # Where a click's time in the user agent goes (the rest of the worker's CPU: the engagement
    # follower, the producer and consumer, the API, timers).
    stages = stage_ms_per_batch(before, last)
    print("user agent µs per click by stage:", {k: round(1000 * v / max(1.0, per_batch), 1) for k, v in stages.items()},
          f"sum {1000 * sum(stages.values()) / max(1.0, per_batch):.0f}")

if __name__ == "__main__":
    nums, extra = split_args(sys.argv[1:])
    main(int(nums[0]) if nums else 4, int(nums[1]) if len(nums) > 1 else 5000, extra.pop("USERS", "same"), extra)
