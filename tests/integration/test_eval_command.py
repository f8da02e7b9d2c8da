"""`interest-stream eval` end to end: a small run through the real broker, worker and model,
checked against an independent recomputation."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter

import orjson
import pytest

from streams.settings import Settings
from streams.state.ranker import chosen_as_lesson
from streams.tools.eval_data import load_movielens
from tests.helpers.paths import EVAL_DATA as DATA
from tests.helpers.paths import ROOT


def test_eval_command_replays_movielens_through_the_worker(tmp_path):
    out = tmp_path / "eval.json"
    users = 25
    done = subprocess.run(
        [sys.executable, "-m", "streams", "eval", "--users", str(users), "--sentiment-limit", "200",
         "--data", str(DATA), "--json", str(out), "--plots", str(tmp_path / "plots")],
        capture_output=True, text=True, timeout=900, cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "HR@10" in done.stdout and "facet learned" in done.stdout
    report = orjson.loads(out.read_bytes())
    charts = sorted(p.name for p in (tmp_path / "plots").iterdir())
    assert charts == ["prequential-by-history.png", "prequential-windows.png", "sentiment-by-corpus.png",
                      "shift-recovery.png"]

    # Independent recomputation of what the pipeline must have been given, and of the popularity
    # baseline (no code shared with streams/tools/evaluate.py beyond the loader).
    movies, ratings = load_movielens(DATA)
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

    # The prequential pass: every rating of these users in time order, each scored before it is
    # applied; all-time popularity as of each event, recomputed here by hand.
    p = report["prequential"]
    stream = sorted(((r.ts, pos, r.user_id, r.item_id) for pos, r in enumerate(x for x in ratings if x.user_id in keep)))
    assert p["events"] == len(stream) == len(mine)
    counts, seen_by, hits = Counter(), {}, 0
    for n, (_, _, user, item) in enumerate(stream):
        seen = seen_by.setdefault(user, set())
        # Every movie is ranked (ties in catalogue order); before the first rating there is nothing.
        ranked = sorted((i for i in movies if i not in seen), key=lambda i: (-counts[i], int(i)))[:10] if n else []
        hits += item in ranked
        counts[item] += 1
        seen.add(item)
    assert p["methods"]["popularity, all-time"]["hr"] == pytest.approx(hits / len(stream))
    assert set(p["methods"]) >= {"hybrid", "hybrid, learning as the worker", "facet Z", "co-engagement",
                                 "popularity, all-time"}
    assert sum(p["bucket_events"].values()) == len(stream)
    assert p["ranker"]["examples"] == len(stream)  # one lesson per rating
    # The worker-like ranker: the worker's lessons only (one in learn_every by event id, at most
    # learn_per_batch per micro-batch of batch_max events).
    settings = Settings()
    cand = settings.recommend.candidates
    chosen = [chosen_as_lesson(f"u{user}", f"u{user}-{n}", cand.learn_every) for n, (_, _, user, _) in enumerate(stream)]
    assert p["ranker_as_worker"]["examples"] == sum(min(sum(chosen[a:a + settings.batch_max]), cand.learn_per_batch)
                                                   for a in range(0, len(chosen), settings.batch_max))
    assert 0 < p["ranker_as_worker"]["examples"] < len(stream) / 8
    for m in p["methods"].values():
        assert 0.0 <= m["ndcg"] <= m["hr"] <= 1.0 and len(m["by_window"]) == 10
    assert "prequential" in done.stdout and "hybrid (worker API)" in done.stdout

    # The planted shift: fewer ratings than --shift-events here, so all of them, shifted halfway.
    sh = report["shift"]
    assert sh["events"] == len(stream) and sh["shift_at"] == len(stream) // 2
    assert set(sh["by_window"]) == {"learning", "frozen at the shift"}
    assert all(len(v) == 8 and all(0.0 <= x <= 1.0 for x in v) for v in sh["by_window"].values())
    assert "Planted shift" in done.stdout

    s = report["sentiment"]
    assert set(s) == {"amazon", "movie", "nyt", "tweets", "all"}
    assert all(s[c]["test"] == 60 and s[c]["train"] == 140 for c in ("amazon", "movie", "nyt", "tweets"))
    assert s["all"]["test"] == 240
    assert sum(s[c]["updates_kept"] for c in ("amazon", "movie", "nyt", "tweets")) > 0
