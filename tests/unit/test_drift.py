"""Drift per facet (streams/state/drift.py): PSI stays low for a steady mix and rises when it switches."""

from __future__ import annotations

import random
from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from streams.state.drift import DriftMonitor, psi


def feed(monitor: DriftMonitor, rng: random.Random, weights: dict[str, float], n: int) -> None:
    labels, w = list(weights), list(weights.values())
    for _ in range(n):
        monitor.observe({"topic": rng.choices(labels, w)[0]})


def test_psi_is_low_for_a_steady_mix_and_high_after_a_switch():
    rng = random.Random(1)
    monitor = DriftMonitor(["topic"], window=400)
    assert monitor.report()["topic"]["psi"] is None  # no reference yet
    mix = {"running": 0.6, "audio": 0.3, "cooking": 0.1}
    feed(monitor, rng, mix, 800)
    steady = monitor.report()["topic"]
    assert steady["psi"] < 0.1, steady
    feed(monitor, rng, {"running": 0.1, "audio": 0.2, "cooking": 0.7}, 400)
    switched = monitor.report()["topic"]
    assert switched["psi"] > 0.25 and max(switched["current"], key=switched["current"].get) == "cooking"
    assert switched["reference"] == steady["reference"]  # the reference stays put


@given(st.dictionaries(st.sampled_from("abcde"), st.integers(1, 50), min_size=1),
       st.dictionaries(st.sampled_from("abcde"), st.integers(1, 50), min_size=1))
def test_psi_is_zero_for_identical_shares_and_positive_otherwise(a, b):
    ref, cur = Counter(a), Counter(b)
    assert abs(psi(ref, Counter({k: 3 * v for k, v in a.items()}))) < 1e-9
    assert psi(ref, cur) >= -1e-12
