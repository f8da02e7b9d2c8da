"""Thread pools of the native libraries a process loads, set once at its start."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol


class ThreadSettings(Protocol):
    numpy_threads: int
    faiss_threads: int


def limit_threads(settings: ThreadSettings) -> None:
    """At a process's start, on its main thread (the worker's event loop, the eval's and the
    bench's in-process passes): numpy's BLAS and FAISS's OpenMP as the settings say (0: leave it)."""
    if settings.numpy_threads:
        limit_numpy_blas(settings.numpy_threads)
    if settings.faiss_threads:
        limit_faiss_threads(settings.faiss_threads)


def limit_faiss_threads(threads: int) -> None:
    """FAISS's OpenMP threads for the searches made *on the calling thread*; other threads (the
    live index trains its IVF index in a background thread) keep FAISS's default, as OpenMP keeps
    this setting per thread.

    Why: a search for one query, or a few, gains nothing from a second thread (FAISS splits a flat
    search by query) but opens a parallel region that waits for it to be scheduled, on two cores
    that torch, the broker client and the event loop already share: the in-process prequential's
    candidates took 2.1 ms each with FAISS's two threads and 1.25-1.5 ms with one (same answers).

    Where torch is loaded before FAISS, FAISS's calls reach torch's OpenMP and this is torch's count
    on the thread too: the encoder sets its own around each forward pass (EncoderConfig.threads)."""
    import faiss

    faiss.omp_set_num_threads(threads)


def limit_numpy_blas(threads: int) -> int:
    """Limit numpy's own BLAS to ``threads`` (torch's and FAISS's pools are left alone); returns
    how many libraries were set.

    Why: our numpy work is small matrices per event or per candidate list. With a BLAS thread per
    core, OpenBLAS's spinning workers fight FAISS's OpenMP threads and torch for the same cores:
    the in-process prequential eval with the behaviour facet ran at 110 events/s with numpy's
    default pool and 215 with one thread (2 cores)."""
    import numpy
    from threadpoolctl import ThreadpoolController

    home = Path(numpy.__file__).resolve().parent.parent  # site-packages: numpy/ and numpy.libs/
    mine = [lib for lib in ThreadpoolController().select(user_api="blas").lib_controllers
            if Path(lib.filepath).resolve().is_relative_to(home / "numpy.libs")
            or Path(lib.filepath).resolve().is_relative_to(home / "numpy")]
    for lib in mine:
        lib.set_num_threads(threads)
    if not mine:  # e.g. a numpy linked to a system-wide BLAS: left as it is, and said
        logging.getLogger(__name__).warning("numpy's BLAS not found among the loaded libraries; its threads are not limited")
    return len(mine)
