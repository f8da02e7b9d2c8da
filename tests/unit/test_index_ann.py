"""The IVF index for big catalogues (index/ann.py): built in the background past the threshold,
swapped in with every change made during the build, and, searching every list, the same answers
as brute force over the catalogue as it is now."""

from __future__ import annotations

import threading

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import index.item_index as item_index_module
from index import IndexConfig, ItemIndex
from tests.unit.test_index import LAYOUT, WEIGHTS, brute_force, unit_rows

N = 1200  # enough items to train 16+ lists with the sample rule


def ann_index(threshold: int = 1000, nprobe: int = 10_000, lists: int = 16) -> ItemIndex:
    # nprobe >= lists: every list is searched, so results must equal brute force exactly.
    return ItemIndex(LAYOUT, IndexConfig(device="cpu", facet_weights=WEIGHTS, ann_threshold=threshold,
                                         ann_nprobe=nprobe, ann_lists=lists))


def rows_of(facets: dict[str, np.ndarray], i: int) -> dict[str, np.ndarray]:
    return {f: v[i] for f, v in facets.items()}


def fill(index: ItemIndex, live: dict, rng: np.random.Generator, ids: list[str]) -> None:
    facets = unit_rows(rng, len(ids))
    index.upsert(ids, facets)
    live.update({item_id: rows_of(facets, n) for n, item_id in enumerate(ids)})


def assert_matches_brute_force(index: ItemIndex, live: dict, rng: np.random.Generator, queries: int = 10) -> None:
    for q in range(queries):
        query = rows_of(unit_rows(rng, 1), 0)
        exclude = set(list(live)[q::97][:5])
        [got] = index.nearest([query], 10, exclude=[exclude])
        every = brute_force(live, query, exclude)
        want = every[:10]
        assert len({i for i, _ in got}) == len(got) == len(want)
        # The same ranking, up to items whose exact scores tie within float32 rounding (the index
        # scores in float32, brute force in float64: seed 859 swapped two at rank 8 that way).
        exact = dict(every)
        assert np.allclose([exact[i] for i, _ in got], [s for _, s in want], atol=1e-5)
        assert all(i == j or abs(exact[i] - exact[j]) <= 1e-5 for (i, _), (j, _) in zip(got, want))
        assert np.allclose([s for _, s in got], [s for _, s in want], atol=1e-5)


def test_below_the_threshold_search_stays_exact():
    index = ann_index(threshold=N + 1)
    fill(index, {}, np.random.default_rng(0), [f"i{n}" for n in range(N)])
    assert not index.wait_for_ann(5) and index.ann.search == "exact" and index.ann.builds == 0


def test_past_the_threshold_an_ivf_index_is_built_and_answers_like_brute_force():
    rng, live = np.random.default_rng(1), {}
    index = ann_index()
    fill(index, live, rng, [f"i{n}" for n in range(N)])
    assert index.wait_for_ann(60)
    a = index.ann.to_dict()
    assert a["search"] == "ivf" and a["built_items"] == N and a["lists"] == 16 and a["builds"] == 1
    assert a["build_s"] > 0 and not a["building"] and not a["error"]
    assert_matches_brute_force(index, live, rng)
    # After the swap every change reaches the IVF index too.
    index.delete(list(live)[:300])
    for item_id in list(live)[:300]:
        del live[item_id]
    fill(index, live, rng, [f"new{n}" for n in range(50)] + ["i500"])  # new items and a moved one
    assert_matches_brute_force(index, live, rng)


def test_changes_made_during_the_build_are_in_the_index_that_is_swapped_in(monkeypatch):
    """The build is held (a gate around the real training) while the catalogue changes."""
    gate, training = threading.Event(), threading.Event()
    real_train = item_index_module.train_ivf

    def gated_train(*args, **kwargs):
        training.set()
        assert gate.wait(30)
        return real_train(*args, **kwargs)

    monkeypatch.setattr(item_index_module, "train_ivf", gated_train)
    rng, live = np.random.default_rng(2), {}
    index = ann_index()
    fill(index, live, rng, [f"i{n}" for n in range(N)])
    assert training.wait(10) and index.ann.building
    # Meanwhile: deletes, new items, moved items; searches stay exact and right.
    gone = list(live)[::7]
    index.delete(gone)
    for item_id in gone:
        del live[item_id]
    fill(index, live, rng, [f"late{n}" for n in range(40)] + list(live)[:25])
    assert index.ann.search == "exact"
    assert_matches_brute_force(index, live, rng, queries=5)
    gate.set()
    assert index.wait_for_ann(60)
    assert index.ann.caught_up_changes == 3  # one delete, one upsert (its remove and add logged apart)
    assert len(index) == len(live)
    assert_matches_brute_force(index, live, rng)


def test_a_catalogue_that_keeps_growing_is_trained_again():
    rng = np.random.default_rng(3)
    index = ItemIndex(LAYOUT, IndexConfig(device="cpu", facet_weights=WEIGHTS, ann_threshold=1000, ann_regrow=2.0))
    fill(index, {}, rng, [f"i{n}" for n in range(1000)])
    assert index.wait_for_ann(60) and index.ann.builds == 1
    fill(index, {}, rng, [f"j{n}" for n in range(999)])  # 1,999 items: below 2x
    assert index.wait_for_ann(60) and index.ann.builds == 1
    fill(index, {}, rng, ["k0"])
    assert index.wait_for_ann(60) and index.ann.builds == 2 and index.ann.built_items == 2000


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**31), st.lists(st.integers(0, N - 1), max_size=40))
def test_any_deletes_after_the_swap_keep_answers_exact(seed, deleted):
    rng, live = np.random.default_rng(seed), {}
    index = ann_index()
    fill(index, live, rng, [f"i{n}" for n in range(N)])
    assert index.wait_for_ann(60)
    index.delete([f"i{n}" for n in deleted])
    for n in set(deleted):
        del live[f"i{n}"]
    assert_matches_brute_force(index, live, rng, queries=3)


def test_a_catalogue_that_shrinks_far_below_the_threshold_goes_back_to_exact_search():
    rng, live = np.random.default_rng(4), {}
    index = ann_index(threshold=1000, nprobe=1)  # one list of 16 per search: misses are likely
    fill(index, live, rng, [f"i{n}" for n in range(N)])
    assert index.wait_for_ann(60) and index.ann.search == "ivf"
    gone = list(live)[:-400]  # 400 left, under half the threshold
    index.delete(gone)
    for item_id in gone:
        del live[item_id]
    assert index.ann.search == "exact"
    assert_matches_brute_force(index, live, rng)


def test_a_user_who_has_seen_the_nearest_items_still_gets_k_of_the_next_ones(monkeypatch):
    """Exclusions are left out by the index (a FAISS ID selector, asked for k, not k + excluded),
    so a heavy user whose nearest 50 items are all excluded gets the next 10, on exact and on IVF
    search."""
    selectors: list[int] = []
    real_batch = item_index_module.faiss.IDSelectorBatch

    def recording_batch(ids):
        selectors.append(len(ids))
        return real_batch(ids)

    monkeypatch.setattr(item_index_module.faiss, "IDSelectorBatch", recording_batch)
    rng, live = np.random.default_rng(5), {}
    exact = ann_index(threshold=N + 1)
    ivf = ann_index()
    ids = [f"i{n}" for n in range(N)]
    facets = unit_rows(rng, N)
    for index in (exact, ivf):
        index.upsert(ids, facets)
    live.update({item_id: rows_of(facets, n) for n, item_id in enumerate(ids)})
    assert ivf.wait_for_ann(60) and not exact.wait_for_ann(1)
    for _ in range(5):
        query = rows_of(unit_rows(rng, 1), 0)
        ranked = brute_force(live, query)
        seen = {i for i, _ in ranked[:50]}
        for index in (exact, ivf):
            [got] = index.nearest([query], 10, exclude=[seen])
            assert [i for i, _ in got] == [i for i, _ in ranked[50:60]]
    assert selectors == [50] * 10  # every search skipped the 50 in the index
