"""How long a worker takes to stop on SIGTERM once its broker has gone (a supervisor's grace
period is usually 30 s). Bundled broker, one worker with its learner; stops the broker, waits 5 s,
sends SIGTERM and times the exit. Run from a checkout: `.venv/bin/python benchmarks/stop_without_broker.py`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from streams.tools.broker import EmbeddedBroker
from streams.tools.process import WorkerProcess


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="stop-without-broker-"))
    broker = EmbeddedBroker(log_file=workdir / "broker.log").start()
    worker = WorkerProcess(broker.url, workdir, "stop", broker.worker_env, own_group=True)
    try:
        worker.wait_until(lambda h: h["status"] == "ok" and h["recommender"]["lessons"]["caught_up"], 180, "the worker")
        broker.stop()
        time.sleep(5)
        started = time.monotonic()
        worker.proc.send_signal(signal.SIGTERM)
        try:
            code = worker.proc.wait(120)
            print(f"exit code {code} after {time.monotonic() - started:.1f} s (log: {worker.log_path})")
        except subprocess.TimeoutExpired:
            print(f"still running 120 s after SIGTERM (log: {worker.log_path})")
    finally:
        try:
            os.killpg(worker.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        broker.stop()


if __name__ == "__main__":
    main()
