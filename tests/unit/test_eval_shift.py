"""The planted-shift measurement (streams/tools/eval_shift.py) on a synthetic stream whose answer
is known: users walk a chain of items (after item j comes item j+1), so before the shift the next
item is predictable from what followed what; after it the chain runs over permuted items. A model
frozen at the shift must lose it, the learning one must find it again. Real FAISS, no model."""

from __future__ import annotations

import random

import numpy as np

from index import ItemIndex
from streams.settings import Settings
from streams.tools.eval_prequential import Interaction
from streams.tools.eval_shift import ShiftConfig, planted_shift, shifted_stream

LAYOUT = {"sentiment": 3, "topic": 8, "style": 4}
ITEMS = [f"it{j:03d}" for j in range(200)]


def walks(prefix: str, users: int, length: int, t0: float, rng: random.Random) -> list[Interaction]:
    """Each user walks ``length`` steps of the chain from a random start; users interleaved in time."""
    out = []
    for u in range(users):
        start = rng.randrange(len(ITEMS) - length)
        out += [Interaction(f"{prefix}{u}", ITEMS[start + s], t0 + (u + s * users) * 60.0) for s in range(length)]
    return sorted(out, key=lambda it: it.ts)


def catalogue() -> ItemIndex:
    rng = np.random.default_rng(0)
    index = ItemIndex(LAYOUT)
    index.upsert(ITEMS, {f: rng.normal(size=(len(ITEMS), d)) for f, d in LAYOUT.items()})
    return index


def test_shifted_stream_permutes_items_from_the_shift_on_only():
    stream = walks("u", 30, 4, 0.0, random.Random(1))
    out = shifted_stream(stream, ITEMS, 50, seed=3)
    assert out[:50] == stream[:50]
    image: dict[str, str] = {}
    for old, new in zip(stream[50:], out[50:]):
        assert (old.user_id, old.ts) == (new.user_id, new.ts)
        assert image.setdefault(old.item_id, new.item_id) == new.item_id  # one image per item ...
    assert len(set(image.values())) == len(image)  # ... and no two items share one
    assert sum(old.item_id != new.item_id for old, new in zip(stream[50:], out[50:])) > 0.9 * len(stream[50:])


def test_the_learning_model_recovers_after_the_shift_and_the_frozen_one_does_not():
    rng = random.Random(0)
    before = walks("u", 300, 6, 0.0, rng)
    after = walks("v", 300, 6, before[-1].ts + 60.0, rng)  # new users: their histories start after it
    result = planted_shift(Settings(), catalogue(), before + after,
                           ShiftConfig(before=len(before), after=len(after), windows=6), k=10)
    assert result["shift_at"] == len(before) and result["events"] == len(before) + len(after)
    assert result["unscored_after_shift"] == 0
    assert result["hr_before_shift"] > 0.5  # the chain was learned (random: 10 of 200 items)
    learning, frozen = result["by_window"]["learning"], result["by_window"]["frozen at the shift"]
    assert len(learning) == len(frozen) == 6
    assert frozen[0] < 0.2 and max(frozen) < 0.3  # it keeps pointing along the old chain
    assert learning[-1] > 0.5 and learning[-1] > frozen[-1] + 0.3
    assert result["hr_after_shift"]["learning"] > result["hr_after_shift"]["frozen at the shift"]
    recovered = result["recovered_after_events"]
    assert recovered is not None and recovered <= len(after)
    first = learning.index(next(hr for hr in learning if hr >= 0.9 * result["hr_before_shift"]))
    assert recovered == (first + 1) * result["window_events"]
