from __future__ import annotations

import gc

import pytest

from streams.worker.heap import freeze_heap


@pytest.fixture
def gc_as_it_was():
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.parametrize("young", [12_345, 0])
def test_freezing_the_heap_sets_only_the_young_threshold_asked_for(gc_as_it_was, young):
    before = gc.get_threshold()
    frozen = freeze_heap(young)
    assert frozen == gc.get_freeze_count() > 1000  # pytest's and this process's modules at least
    want = (young or before[0], *before[1:])
    assert gc.get_threshold() == want
