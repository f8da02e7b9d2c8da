"""A file of arrays that says what a follower built from a log up to which offsets
(streams/worker/follower.py: the engagements and the catalogue): written now and then and as the
worker stops, and taken over at the next start, which reads the log from there. In the worker's
data dir, or in a folder the workers of an app share (``Settings.snapshot_folder``).

One ``.npz`` file (numpy's, no pickles) with a ``meta`` entry (JSON: the format, a fingerprint of
the settings the state depends on, the offsets, and what the caller adds) beside the caller's
arrays. Written to a file of its own and renamed over the last one, so a reader (the learner
process, another worker) finds an old snapshot or a new one, never half of one; writers sharing a
folder replace each other's, each a whole state of the same logs.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from schemas import dump_json, load_json

FORMAT = 1
# A temporary file older than this is what a writer killed mid-write left (GBs for a big
# catalogue); a younger one may be another worker's write in progress, in a shared folder.
LEFT_AFTER_S = 3600.0


class SnapshotFile:
    def __init__(self, path: Path, fingerprint: str) -> None:
        """``fingerprint``: what the state depends on besides the log (settings, feature names); a
        snapshot taken under another one is not used."""
        self.path, self.fingerprint = path, fingerprint
        self._swept = False

    @classmethod
    def in_folder(cls, folder: str | Path, stem: str, fingerprint: str) -> SnapshotFile:
        """``<folder>/<stem>-<hash of the fingerprint>.snapshot.npz``: workers under other settings
        (a rolling deploy that changes them) keep files of their own in a shared folder, instead
        of replacing each other's with snapshots the others cannot use."""
        digest = hashlib.sha256(fingerprint.encode()).hexdigest()[:12]
        return cls(Path(folder) / f"{stem}-{digest}.snapshot.npz", fingerprint)

    def write(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> int:
        """Replace the snapshot; its size in bytes. OSError if it cannot be written."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self._swept:
            self._swept = True  # once: a folder this process cannot sweep still takes its snapshots
            self.sweep(time.time() - LEFT_AFTER_S)
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

    def sweep(self, before: float) -> None:
        """Remove temporary files of this snapshot last changed before ``before`` (Unix time)."""
        for left in self.path.parent.glob(f"{self.path.name}.*.tmp"):
            try:
                if left.stat().st_mtime < before:
                    left.unlink()
            except OSError:  # renamed or swept by another writer meanwhile, or another user's
                pass

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
