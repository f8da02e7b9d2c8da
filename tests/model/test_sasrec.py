"""The offline SASRec reference (streams/tools/eval_sasrec.py) learns a sequence a stream shows:
on histories where item i is always followed by item i + 1 it must rank that next item first."""

from __future__ import annotations

import numpy as np

from streams.tools.eval_sasrec import SasRecConfig, sasrec_baseline, train_and_rank


def test_it_learns_what_comes_next_and_never_recommends_a_rated_item():
    rng = np.random.default_rng(0)
    n_items = 30
    histories = {}
    for u in range(60):
        start = int(rng.integers(1, n_items - 8))
        length = int(rng.integers(3, 8))
        histories[f"u{u}"] = list(range(start, start + length))  # i is followed by i + 1
    ranked, timing = train_and_rank(histories, n_items, k=3, cfg=SasRecConfig(dim=32, epochs=200, max_len=10, dropout=0.0, batch=16))
    hits = sum(r[0] == h[-1] + 1 for h, r in ((histories[u], ranked[u]) for u in histories))
    assert hits / len(histories) > 0.8, hits
    assert all(not set(ranked[u]) & set(histories[u]) for u in histories)
    assert timing["epochs"] == 200 and timing["train_s"] > 0


def test_the_leave_last_out_scores_use_the_held_out_item():
    items = [f"i{n}" for n in range(12)]
    history = [(f"u{u}", items[(u + j) % 10], float(j)) for u in range(40) for j in range(5)]
    targets = {f"u{u}": items[(u + 5) % 10] for u in range(40)}  # the next one in the cycle
    out = sasrec_baseline(history, targets, items, k=1, cfg=SasRecConfig(dim=32, epochs=200, max_len=8, dropout=0.0, batch=16))
    assert out["hr"] > 0.8 and 0 < out["ndcg"] <= out["hr"]
