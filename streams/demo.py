"""`interest-stream demo`: bundled broker + a real worker + the bundled sample data, end to end."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from importlib import resources
from pathlib import Path
from typing import Any, Callable

import orjson
from tqdm import tqdm

from streams.broker import EmbeddedBroker, free_port
from streams.replay import read_jsonl, replay
from streams.settings import Settings


class DemoError(RuntimeError):
    """The demo could not run; the message says which step failed and where its log is."""


def bundled_data_dir() -> Path:
    return Path(str(resources.files("streams") / "demo_data"))


def get_json(url: str, timeout: float = 5.0) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, orjson.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, orjson.loads(err.read() or b"null")


class WorkerProcess:
    """A `interest-stream worker` subprocess with its API on a free loopback port."""

    def __init__(self, broker_url: str, workdir: Path, app_id: str, extra_env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / f"{app_id}.log"
        env = {**os.environ, **(extra_env or {})}
        cmd = [sys.executable, "-m", "streams", "worker", "--broker", broker_url, "--app-id", app_id,
               "--web-port", str(self.port), "--data-dir", str(workdir / app_id)]
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env)

    def health(self) -> dict[str, Any] | None:
        try:
            status, body = get_json(f"{self.base}/healthz", timeout=2)
        except (OSError, ValueError):
            return None
        return body if status == 200 else None

    def wait_until(self, ready: Callable[[dict[str, Any]], bool], timeout_s: float, what: str) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise DemoError(f"worker exited with code {self.proc.returncode} while waiting for {what}; see {self.log_path}")
            health = self.health()
            if health is not None and ready(health):
                return health
            time.sleep(0.2)
        raise DemoError(f"timed out after {timeout_s:.0f}s waiting for {what}; see {self.log_path}")

    def wait_processed(self, total: int, timeout_s: float = 300.0) -> dict[str, Any]:
        """Every user event ends as exactly one of: applied, dead-lettered."""
        return self.wait_until(
            lambda h: h["events_applied"] + h["dead_lettered"] >= total, timeout_s, f"{total} events processed"
        )

    def stop(self, timeout_s: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


def describe_user(base: str, user_id: str, k: int = 5) -> dict[str, Any]:
    _, profile = get_json(f"{base}/users/{user_id}/profile")
    _, recs = get_json(f"{base}/users/{user_id}/recommendations?k={k}")
    return {
        "sentiment": profile["summary"]["sentiment"]["score"],
        "style": profile["summary"]["style"],
        "topics": list(profile["summary"]["topic"]["categories"].items())[:2],
        "top": [item["title"] for item in recs["items"][:3]],
        "counts": profile["event_counts"],
    }


def format_user(user_id: str, before: dict[str, Any], after: dict[str, Any]) -> str:
    def line(tag: str, d: dict[str, Any]) -> str:
        topics = ", ".join(f"{p:.0%} {c}" for c, p in d["topics"])
        style = " ".join(f"{k}={v:+.2f}" for k, v in d["style"].items())
        return (f"  {tag:<6} topic: {topics}\n         sentiment {d['sentiment']:+.2f} | style {style}\n"
                f"         top picks: {'; '.join(d['top'])}")
    return f"user {user_id}\n{line('before', before)}\n{line('after', after)}"


def run_demo(settings: Settings, data_dir: Path | None = None, show_users: int = 3) -> int:
    data = data_dir or bundled_data_dir()
    items = list(read_jsonl(data / "items.jsonl"))
    phases = [list(read_jsonl(data / "before.jsonl")), list(read_jsonl(data / "after.jsonl"))]
    users = sorted({e["user_id"] for e in phases[0] if "user_id" in e})[:show_users]
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="interest-stream-demo-"))
    print(f"interest-stream demo: {len(items)} items, {sum(map(len, phases))} user events; logs in {workdir}")
    with EmbeddedBroker(log_file=workdir / "broker.log") as broker:
        print(f"broker (bundled Tansu) on {broker.url}; starting a worker ...", flush=True)
        worker = WorkerProcess(broker.url, workdir, f"demo-{os.getpid()}", {"INTEREST_STREAM_LOG_LEVEL": "warning"})
        try:
            worker.wait_until(lambda h: h["status"] == "ok", 180, "the worker to start")
            _send(items, broker.url, "catalogue")
            worker.wait_until(lambda h: h["items_indexed"] >= len(items), 120, "the catalogue to be indexed")
            snapshots, processed, busy_s = [], 0, 0.0
            for name, events in zip(("before the shift", "after the shift"), phases):
                t = time.monotonic()
                _send(events, broker.url, name)
                processed += len(events)
                health = worker.wait_processed(processed)
                busy_s += time.monotonic() - t
                snapshots.append({u: describe_user(worker.base, u) for u in users})
            print()
            for u in users:
                print(format_user(u, snapshots[0][u], snapshots[1][u]))
            wall = time.monotonic() - started
            print(f"\n{health['events_applied']} events applied, {health['dead_lettered']} dead-lettered "
                  f"(malformed on purpose), {health['items_indexed']} items indexed")
            print(f"throughput: {processed / busy_s:.0f} events/s (send -> applied); demo wall time {wall:.1f}s")
        finally:
            code = worker.stop()
    print(f"worker stopped (exit {code}); broker stopped. Done.")
    return 0


def _send(events: list[dict[str, Any]], broker_url: str, label: str) -> None:
    with tqdm(total=len(events), unit="ev", desc=f"replay {label}", file=sys.stdout) as bar:
        asyncio.run(replay(events, broker_url, bar.update))
