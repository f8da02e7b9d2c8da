"""`interest-stream demo` as a new user runs it: a subprocess that must show the shift and exit cleanly."""

from __future__ import annotations

import re
import subprocess
import sys


def test_demo_shows_interests_shifting_and_exits_cleanly():
    proc = subprocess.run(
        [sys.executable, "-m", "streams", "demo"], capture_output=True, text=True, timeout=600
    )
    out = proc.stdout
    assert proc.returncode == 0, out[-3000:] + proc.stderr[-3000:]
    users = re.findall(r"^user (\S+)$", out, flags=re.M)
    assert len(users) == 3
    before = re.findall(r"before topic: \d+% ([^,\n]+)", out)
    after = re.findall(r"after  topic: \d+% ([^,\n]+)", out)
    assert len(before) == len(after) == 3
    # Every sample user changes taste halfway; the leading topic must follow.
    assert all(b != a for b, a in zip(before, after)), list(zip(before, after))
    assert re.search(r"^\d+ events applied, 3 dead-lettered", out, flags=re.M)
    assert "worker stopped (exit 0); broker stopped" in out
    assert "replay before the shift" in out  # the progress bar was shown
