"""numpy's BLAS pool is set (and only numpy's: FAISS's and torch's keep theirs)."""

from __future__ import annotations

import faiss  # noqa: F401 - loads FAISS's own OpenBLAS and OpenMP, which must keep their pools
import numpy
import pytest
from threadpoolctl import ThreadpoolController

from streams.settings import Settings, SettingsError
from streams.threads import limit_numpy_blas


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
