"""numpy's BLAS pool is set (and only numpy's: FAISS's and torch's keep theirs); FAISS's OpenMP
threads are set for the calling thread only."""

from __future__ import annotations

import threading

import faiss  # loads FAISS's own OpenBLAS and OpenMP, which must keep their pools
import numpy
import pytest
from threadpoolctl import ThreadpoolController

from streams.settings import Settings, SettingsError
from streams.threads import limit_numpy_blas, limit_threads


def pools() -> dict[str, int]:
    return {lib.filepath: lib.num_threads for lib in ThreadpoolController().lib_controllers}


def test_only_numpys_blas_is_limited():
    numpy_dir = str(numpy.__file__).rsplit("/numpy/", 1)[0]
    before = pools()
    others = {path: n for path, n in before.items() if "/numpy.libs/" not in path and "/numpy/" not in path}
    try:
        assert limit_numpy_blas(1) == 1
        after = pools()
        mine = [n for path, n in after.items() if path.startswith(f"{numpy_dir}/numpy")]
        assert mine == [1]
        assert {path: after[path] for path in others} == others
    finally:
        for lib in ThreadpoolController().lib_controllers:
            if lib.filepath in before:
                lib.set_num_threads(before[lib.filepath])


def test_numpy_threads_setting():
    assert Settings.from_env({"INTEREST_STREAM_NUMPY_THREADS": "0"}).numpy_threads == 0
    with pytest.raises(SettingsError, match="numpy_threads"):
        Settings.from_env({"INTEREST_STREAM_NUMPY_THREADS": "-1"}).validate()


def in_a_new_thread(fn):
    seen = []
    t = threading.Thread(target=lambda: seen.append(fn()))
    t.start()
    t.join()
    return seen[0]


def test_faiss_threads_are_limited_on_the_calling_thread_only():
    """The worker limits its event loop's searches; the IVF training thread keeps FAISS's pool.
    (A new thread reads FAISS's default: this process's main thread may have been limited by an
    in-process eval or bench run earlier in the session.)"""
    default = in_a_new_thread(faiss.omp_get_max_threads)
    if default < 2:
        pytest.skip("FAISS sees one core here: nothing to limit")
    main_before = faiss.omp_get_max_threads()
    seen: dict[str, int] = {}

    def limited() -> None:  # in a thread of its own, so the test process keeps its setting
        limit_threads(Settings(numpy_threads=0, faiss_threads=1))
        seen["here"] = faiss.omp_get_max_threads()
        seen["other"] = in_a_new_thread(faiss.omp_get_max_threads)

    in_a_new_thread(limited)
    assert seen == {"here": 1, "other": default}
    assert faiss.omp_get_max_threads() == main_before
    assert Settings.from_env({"INTEREST_STREAM_FAISS_THREADS": "0"}).faiss_threads == 0
    with pytest.raises(SettingsError, match="faiss_threads"):
        Settings.from_env({"INTEREST_STREAM_FAISS_THREADS": "-1"}).validate()
