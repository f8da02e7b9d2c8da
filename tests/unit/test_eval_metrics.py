"""`interest-stream eval`'s metric math, by hand and by property, and what a missing dataset file says."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.errors import EvalDataMissing
from streams.tools.eval_data import MOVIELENS_WHEEL, package_path
from streams.tools.eval_metrics import (
    accuracy_macro_f1,
    hit_and_ndcg,
    human_label,
    leave_last_out,
    mean_hit_ndcg,
    top_k_masked,
    vader_label,
)


# -- metric math ---------------------------------------------------------------------------------
def test_leave_last_out_holds_out_each_users_latest_and_replays_history_in_time_order():
    rows = [("a", "i1", 10.0), ("b", "j1", 5.0), ("a", "i2", 30.0), ("a", "i3", 20.0), ("c", "k1", 1.0),
            ("b", "j2", 5.0)]  # b's two ratings share a second: the later line is the last
    history, targets = leave_last_out(rows)
    assert targets == {"a": "i2", "b": "j2"}  # c has one rating: history only, not evaluated
    assert history == [("c", "k1", 1.0), ("b", "j1", 5.0), ("a", "i1", 10.0), ("a", "i3", 20.0)]


def test_hit_and_ndcg_by_hand():
    assert hit_and_ndcg(["x", "y", "z"], "x", 10) == (1.0, 1.0)
    assert hit_and_ndcg(["x", "y", "z"], "z", 10) == (1.0, 0.5)  # 1 / log2(2 + 2)
    assert hit_and_ndcg(["x", "y", "z"], "z", 2) == (0.0, 0.0)  # ranked below the cut
    assert hit_and_ndcg([], "z", 10) == (0.0, 0.0)
    hr, ndcg = mean_hit_ndcg({"u": ["a", "b"], "v": ["c"]}, {"u": "b", "v": "d", "w": "e"}, 10)
    assert hr == pytest.approx(1 / 3) and ndcg == pytest.approx((1 / math.log2(3)) / 3)


@given(st.lists(st.integers(0, 30), max_size=30, unique=True), st.integers(0, 30), st.integers(1, 20))
def test_ndcg_never_exceeds_hit_rate(ranked, target, k):
    hr, ndcg = hit_and_ndcg(ranked, target, k)
    assert 0.0 <= ndcg <= hr <= 1.0
    assert hr == (1.0 if target in ranked[:k] else 0.0)


def test_accuracy_and_macro_f1_by_hand():
    acc, f1 = accuracy_macro_f1([0, 0, 1, 2], [0, 1, 1, 1])
    # F1 per class: negative 2/3, neutral 1/2, positive 0
    assert acc == 0.5 and f1 == pytest.approx((2 / 3 + 0.5 + 0.0) / 3)
    assert accuracy_macro_f1([2, 2], [2, 2]) == (1.0, 1.0)  # absent classes are not averaged in
    with pytest.raises(ValueError):
        accuracy_macro_f1([], [])


def test_label_rules():
    assert [human_label(v) for v in (-2.0, -0.5, 0.0, 0.5, 0.51)] == [0, 1, 1, 1, 2]
    assert [vader_label(c) for c in (-0.05, -0.04, 0.0, 0.049, 0.05)] == [0, 1, 1, 1, 2]


def test_top_k_masked_skips_excluded_and_breaks_ties_by_position():
    ids = ["a", "b", "c", "d"]
    scores = np.array([0.5, 0.9, 0.9, 0.1])
    assert top_k_masked(scores, np.array([False, False, False, False]), ids, 2) == ["b", "c"]
    assert top_k_masked(scores, np.array([False, True, False, False]), ids, 2) == ["c", "a"]
    assert top_k_masked(scores, np.array([True, True, True, False]), ids, 3) == ["d"]


def test_missing_or_altered_package_file_says_what_to_do(tmp_path):
    with pytest.raises(EvalDataMissing, match="scripts/setup"):
        package_path(tmp_path, MOVIELENS_WHEEL)
    (tmp_path / MOVIELENS_WHEEL.filename).write_bytes(b"not the wheel")
    with pytest.raises(EvalDataMissing, match="sha256"):
        package_path(tmp_path, MOVIELENS_WHEEL)


def test_prequential_scores_by_history_window_and_last_event_by_hand():
    from streams.tools.eval_prequential import Scores, bucket_of

    assert [bucket_of(h) for h in (0, 4, 5, 19, 20, 500)] == ["0-4", "0-4", "5-19", "5-19", "20+", "20+"]
    s = Scores(k=2)
    # (ranked list, target, history, last event of its user)
    rows = [(["a", "b"], "a", 0, False),  # hit at rank 0: nDCG 1
            (["a", "b"], "b", 6, False),  # hit at rank 1: nDCG 1/log2(3)
            (["a", "b"], "c", 25, True),  # miss
            ([], "a", 1, True)]  # nothing to go on: a miss
    for ranked, target, history, last in rows:
        s.add("m", ranked, target)
        s.buckets.append(bucket_of(history))
        s.last_of_user.append(last)
    out = s.summary(windows=2)
    m = out["methods"]["m"]
    assert out["events"] == 4 and out["bucket_events"] == {"0-4": 2, "5-19": 1, "20+": 1}
    assert m["hr"] == 0.5 and m["ndcg"] == pytest.approx((1 + 1 / math.log2(3)) / 4)
    assert m["by_history"] == {"0-4": 0.5, "5-19": 1.0, "20+": 0.0}
    assert m["by_window"] == [1.0, 0.0]
    assert m["last_event"] == {"hr": 0.0, "ndcg": 0.0}
