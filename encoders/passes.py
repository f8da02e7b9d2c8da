"""How a micro-batch's texts are split into forward passes.

A pass pads every text to its longest, so one pass over short searches and long reviews spends most
of its work on padding; and a pass has a fixed cost, so many small passes waste that instead. With
the texts sorted by token length, the cheapest split into consecutive passes is found exactly by
dynamic programming over a cost of ``overhead + size * longest`` tokens per pass.

Measured on the 2-core CPU machine (bf16, all-MiniLM-L6-v2): a pass costs about 0.09 ms a padded
token beyond a floor of about 8 ms, hence the default overhead of 80 tokens; 10 searches of 2-5
words with 3 reviews of 50-120 words took 144 ms in one pass and 51 ms in two
(benchmarks/RESULTS.md, 2026-12-07).
"""

from __future__ import annotations

from typing import Sequence


def plan_passes(lengths: Sequence[int], max_size: int, overhead: int) -> list[tuple[int, int]]:
    """``lengths``: token counts sorted ascending. Consecutive passes as (start, end), each of at most
    ``max_size`` texts, with the least total ``overhead + (end - start) * lengths[end - 1]``;
    ``overhead`` 0: passes of ``max_size`` in order, whatever their lengths."""
    n = len(lengths)
    if overhead <= 0:
        return [(start, min(start + max_size, n)) for start in range(0, n, max_size)]
    best = [0] + [0] * n  # best[i]: the cheapest cost of the first i texts
    cut = [0] * (n + 1)  # where the last pass of that cheapest split starts
    for end in range(1, n + 1):
        longest = lengths[end - 1]
        best[end], cut[end] = min((best[start] + overhead + (end - start) * longest, start)
                                  for start in range(max(0, end - max_size), end))
    passes, end = [], n
    while end > 0:
        passes.append((cut[end], end))
        end = cut[end]
    return passes[::-1]
