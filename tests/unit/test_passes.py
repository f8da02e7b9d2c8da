"""encoders.passes.plan_passes: the split of length-sorted texts into forward passes is the cheapest
one under its cost model, checked against every split of small inputs."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from encoders.passes import plan_passes


def cost(passes: list[tuple[int, int]], lengths: list[int], overhead: int) -> int:
    return sum(overhead + (end - start) * lengths[end - 1] for start, end in passes)


def every_split(n: int, max_size: int):
    for cuts in itertools.product((False, True), repeat=max(0, n - 1)):
        bounds = [0] + [i + 1 for i, c in enumerate(cuts) if c] + [n]
        passes = list(zip(bounds, bounds[1:]))
        if all(end - start <= max_size for start, end in passes):
            yield passes


@settings(max_examples=300, deadline=None)
@given(lengths=st.lists(st.integers(1, 130), min_size=1, max_size=9), max_size=st.integers(1, 6),
       overhead=st.integers(1, 200))
def test_the_split_is_the_cheapest_and_covers_every_text_once_in_order(lengths, max_size, overhead):
    lengths = sorted(lengths)
    passes = plan_passes(lengths, max_size, overhead)
    assert [i for start, end in passes for i in range(start, end)] == list(range(len(lengths)))
    assert all(1 <= end - start <= max_size for start, end in passes)
    assert cost(passes, lengths, overhead) == min(cost(p, lengths, overhead) for p in every_split(len(lengths), max_size))


def test_short_texts_get_a_pass_of_their_own_and_similar_ones_share_one():
    assert plan_passes([4, 5, 5, 6, 6, 7, 7, 8, 9, 110, 120], max_size=64, overhead=80) == [(0, 9), (9, 11)]
    assert plan_passes([18, 19, 20, 22, 25, 27], max_size=64, overhead=80) == [(0, 6)]


def test_overhead_zero_is_passes_of_max_size_in_order():
    assert plan_passes([1, 2, 3, 50, 60], max_size=2, overhead=0) == [(0, 2), (2, 4), (4, 5)]
    assert plan_passes([], max_size=64, overhead=80) == [] == plan_passes([], max_size=64, overhead=0)
