"""Thread pools of the native libraries a process loads, set once at its start."""

from __future__ import annotations

import logging
from pathlib import Path


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
