"""`interest-stream replay FILE` as a user runs it against the real broker: a file is checked whole
before anything is sent, then streamed with progress and events/s; every record lands keyed."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter

import orjson

from tests.helpers.kafka import read_topic
from tests.helpers.paths import ROOT


def run_replay(path, broker) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "streams", "replay", str(path), "--broker", broker.url],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)


def test_a_bad_line_refuses_the_whole_file_before_sending(broker, tmp_path):
    path = tmp_path / "bad.jsonl"
    good = {"type": "click", "event_id": "bad-file-1", "user_id": "bf1", "item_id": "i1", "ts": 1.0}
    path.write_bytes(orjson.dumps(good) + b"\n\n" + b'{"type": "click", "user_id": "x"' + b"\n")
    done = run_replay(path, broker)
    assert done.returncode != 0
    assert f"{path}:3: not valid JSON" in done.stderr  # the file's own line number (line 2 is blank)
    path.write_bytes(orjson.dumps(good) + b"\n" + orjson.dumps({"type": "click", "event_id": "e"}) + b"\n")
    done = run_replay(path, broker)
    assert done.returncode != 0 and f"{path}:2:" in done.stderr and "user_id" in done.stderr
    assert not [r for r in read_topic(broker.bootstrap, "clicks") if r.key == b"bf1"]  # nothing sent


def test_a_large_file_streams_through_with_progress(broker, tmp_path):
    path = tmp_path / "big.jsonl"
    n_users, per_user = 200, 60  # 12,000 events, more than one in-flight window many times over
    with open(path, "wb") as fh:
        for k in range(n_users * per_user):
            user = f"big{k % n_users}"
            fh.write(orjson.dumps({"type": "click", "event_id": f"big-{k}", "user_id": user,
                                   "item_id": f"i{k % 7}", "ts": 1767225600.0 + k}) + b"\n")
    done = run_replay(path, broker)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"sent {n_users * per_user} events" in done.stdout and "events/s" in done.stdout
    assert "12.0k/12.0k" in done.stderr  # tqdm's bar reached the checked total
    records = [r for r in read_topic(broker.bootstrap, "clicks", timeout_s=60) if r.key.startswith(b"big")]
    assert Counter(r.key.decode() for r in records) == {f"big{u}": per_user for u in range(n_users)}
    # In order per user: the broker got each user's events in file order (one partition per key).
    for user in ("big0", "big199"):
        ids = [orjson.loads(r.value)["event_id"] for r in records if r.key.decode() == user]
        assert ids == sorted(ids, key=lambda e: int(e.split("-")[1]))


def test_a_pipe_is_read_once_and_still_checked_before_sending(broker, tmp_path):
    """`replay <(zcat events.jsonl.gz)`: a pipe cannot be read twice."""
    lines = b"".join(orjson.dumps({"type": "click", "event_id": f"pipe-{k}", "user_id": "piper", "item_id": "i1",
                                   "ts": 1767225600.0 + k}) + b"\n" for k in range(50))
    done = subprocess.run(["bash", "-c", f"{sys.executable} -m streams replay /dev/stdin --broker {broker.url}"],
                          input=lines, capture_output=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert b"sent 50 events" in done.stdout
    assert len([r for r in read_topic(broker.bootstrap, "clicks") if r.key == b"piper"]) == 50
