"""A file of arrays on the worker's local disk that says what a follower built from a log up to
which offsets (streams/worker/follower.py: the engagements and the catalogue): written now and
then and as the worker stops, and taken over at the next start, which reads the log from there.

One ``.npz`` file (numpy's, no pickles) with a ``meta`` entry (JSON: the format, a fingerprint of
the settings the state depends on, the offsets, and what the caller adds) beside the caller's
arrays. Written to a file of its own and renamed over the last one (the worker is its only
writer: one data dir each), so a reader (the learner process reads the worker's) finds the old
snapshot or the new one, never half of one.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from schemas import dump_json, load_json

FORMAT = 1


class SnapshotFile:
    def __init__(self, path: Path, fingerprint: str) -> None:
        """``fingerprint``: what the state depends on besides the log (settings, feature names); a
        snapshot taken under another one is not used."""
        self.path, self.fingerprint = path, fingerprint
        self._swept = False

    def write(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> int:
        """Replace the snapshot; its size in bytes. OSError if it cannot be written."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self._swept:  # what a writer killed mid-write left (GBs for a big catalogue)
            for left in self.path.parent.glob(f"{self.path.name}.*.tmp"):
                left.unlink(missing_ok=True)
            self._swept = True
        head = dump_json({**meta, "format": FORMAT, "fingerprint": self.fingerprint})
        fd, name = tempfile.mkstemp(dir=self.path.parent, prefix=f"{self.path.name}.", suffix=".tmp")
        tmp = Path(name)
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, meta=np.frombuffer(head, dtype=np.uint8), **arrays)
                f.flush()
                os.fsync(f.fileno())  # on disk before it replaces the last good one
            os.replace(tmp, self.path)
            folder = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(folder)  # the rename too
            finally:
                os.close(folder)
        finally:
            tmp.unlink(missing_ok=True)
        return self.path.stat().st_size

    def read(self) -> tuple[dict[str, Any], dict[str, np.ndarray]] | None:
        """(meta, arrays) of the snapshot; None if there is none. ValueError if the file is not
        one, or was taken under another fingerprint."""
        if not self.path.exists():
            return None
        try:
            if not zipfile.is_zipfile(self.path):  # np.load would read any other file as a pickle or an .npy
                raise ValueError("not a .npz file")
            with np.load(self.path, allow_pickle=False) as found:
                arrays = {name: found[name] for name in found.files}
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:  # truncated, or not one
            raise ValueError(f"{self.path} cannot be read: {exc}") from exc
        if "meta" not in arrays:
            raise ValueError(f"{self.path} has no meta entry")
        meta = load_json(arrays.pop("meta").tobytes())
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise ValueError(f"{self.path} is not a snapshot of format {FORMAT}")
        if meta.get("fingerprint") != self.fingerprint:
            raise ValueError(f"{self.path} was taken under other settings ({meta.get('fingerprint')!r}, "
                             f"now {self.fingerprint!r})")
        return meta, arrays
