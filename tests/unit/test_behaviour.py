"""The behaviour facet (streams/state/behaviour.py): item vectors learned by skip-gram with
negative sampling over what users engage with after what, started from the items' content."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.state.behaviour import BehaviourConfig, BehaviourVectors
from streams.state.engagement import Engagements

TOPIC = 16


def content_of(table: dict[str, np.ndarray]):
    def lookup(ids):
        return np.stack([table.get(i, np.zeros(TOPIC)) for i in ids])
    return lookup


def unit(v):
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(3, 30), seed=st.integers(0, 10_000), contexts=st.integers(1, 4), negatives=st.sampled_from([0, 5]))
def test_a_step_touches_only_its_rows_and_without_negatives_pulls_the_pair_together(n, seed, contexts, negatives):
    """Without negatives, a step raises the step's objective (the weighted log-likelihood of the
    engaged item after each earlier one), raises the similarity itself when there is one earlier
    item, and moves nothing else. (With several, the engaged item's vector moves toward their
    weighted sum, so one pointing away from the others can lose a little: hypothesis found such a
    case.) With negatives, a negative close to the engaged item can pull the other way in one
    step (as in word2vec), so only the rows touched are checked; what is learned over many steps
    is the next test's."""
    rng = np.random.default_rng(seed)
    vecs = BehaviourVectors(BehaviourConfig(seed=seed, negatives=negatives),
                            content_of({f"i{j}": rng.normal(size=TOPIC) for j in range(n)}))
    vecs.add_rows([f"i{j}" for j in range(n)])
    target = int(rng.integers(n))
    ctx = [int(c) for c in rng.choice([j for j in range(n) if j != target], size=min(contexts, n - 1), replace=False)]
    W, C = vecs.W[: vecs.n].copy(), vecs.C[: vecs.n].copy()
    weights = [0.7**j for j in range(len(ctx))]
    before = [vecs.similarity(a, target) for a in ctx]
    vecs.learn(target, ctx, weights)
    changed_w = set(np.flatnonzero(np.any(vecs.W[: vecs.n] != W, axis=1)).tolist())
    changed_c = set(np.flatnonzero(np.any(vecs.C[: vecs.n] != C, axis=1)).tolist())
    assert changed_w == set(ctx)  # input vectors: exactly the earlier items of this engagement
    if negatives == 0:
        assert changed_c == {target}
        after = [vecs.similarity(a, target) for a in ctx]
        assert np.dot(weights, np.log(after)) > np.dot(weights, np.log(before))
        if len(ctx) == 1:
            assert after[0] > before[0]
    else:
        assert target in changed_c and len(changed_c) <= 1 + len(ctx) * negatives  # the target, the negatives drawn


def test_items_start_from_their_content_and_unknown_ones_from_their_id():
    a = unit(np.r_[np.ones(8), np.zeros(8)])
    table = {"trail shoes": a, "running socks": unit(a + 0.1), "espresso": unit(np.r_[np.zeros(8), np.ones(8)])}
    vecs = BehaviourVectors(BehaviourConfig(init_norm=0.5), content_of(table))
    start = vecs.start_vectors(["trail shoes", "running socks", "espresso", "not in the catalogue"])
    assert np.allclose(np.linalg.norm(start, axis=1), 0.5)
    cos = start @ start.T / 0.25
    assert cos[0, 1] > 0.9 and cos[0, 1] > cos[0, 2] + 0.3  # close texts start close
    other = BehaviourVectors(BehaviourConfig(init_norm=0.5), content_of(table))  # another worker
    assert np.allclose(other.start_vectors(["espresso", "not in the catalogue"]), start[2:], atol=1e-12)


def test_engagements_teach_what_follows_and_the_user_vector_finds_it():
    """Readers of the novel buy the seeds next; after that, a novel reader's behaviour vector
    points at the seeds more than at any item the content alone put near the novel."""
    rng = np.random.default_rng(1)
    items = [f"i{j}" for j in range(20)]
    eng = Engagements(content=content_of({i: rng.normal(size=TOPIC) for i in items}))
    for u in range(200):
        eng.observe(f"u{u}", "a", "i0", 1000.0 + u, 1.0, previous=())
        eng.observe(f"u{u}", "b", "i7", 1001.0 + u, 1.0, previous=["i0"])
        other = items[int(rng.integers(1, 20))]
        eng.observe(f"w{u}", "c", other, 1002.0 + u, 1.0, previous=())
    beh = eng.behaviour
    assert beh is not None and beh.n == len(eng) and beh.steps == 200
    rows = eng.rows_of(items)
    user = beh.user_vector(eng.rows_of(["i0"]), [1.0])
    scores = beh.scores(user, rows)
    ranked = [items[j] for j in np.argsort(-scores)]
    assert ranked[0] == "i7", ranked[:3]
    # An item nobody engaged with yet is scored from its starting vector (its content).
    fresh = beh.scores(user, np.array([-1]), ["brand new"])
    assert fresh.shape == (1,) and -1.0 <= fresh[0] <= 1.0


def reference_step(W, C, target, ctx, weights, negs, lr):
    """The SGD step written out pair by pair (word2vec's update, as the docstring states it), on
    copies: what ``learn`` must compute with its batched products."""
    W, C = W.copy(), C.copy()
    dW, dC = np.zeros_like(W), np.zeros_like(C)
    sig = lambda x: 1.0 / (1.0 + np.exp(-x))  # noqa: E731
    for a, w, row in zip(ctx, weights, negs):
        g = 1.0 - sig(W[a] @ C[target])
        dW[a] += lr * w * g * C[target]
        dC[target] += lr * w * g * W[a]
        for n in row:
            if n == target:
                continue
            g = -sig(W[a] @ C[n])
            dW[a] += lr * w * g * C[n]
            dC[n] += lr * w * g * W[a]
    return W + dW, C + dC


@settings(max_examples=60, deadline=None)
@given(n=st.integers(2, 12), seed=st.integers(0, 10_000), m=st.integers(1, 6), negatives=st.integers(0, 6))
def test_a_step_equals_the_pairwise_update(n, seed, m, negatives):
    """Repeated earlier items, repeated negatives and the target drawn as its own negative
    included (few rows make all three common)."""
    rng = np.random.default_rng(seed)
    vecs = BehaviourVectors(BehaviourConfig(seed=seed, negatives=negatives, dim=8))
    vecs.add_rows([f"i{j}" for j in range(n)])
    vecs.W[:n], vecs.C[:n] = rng.normal(size=(n, 8)), rng.normal(size=(n, 8))
    target = int(rng.integers(n))
    ctx = [int(c) for c in rng.integers(0, n, size=m)]
    weights = list(rng.uniform(0.1, 1.0, size=m))
    negs = np.random.default_rng(seed).integers(0, n, size=(m, negatives))  # what learn draws
    want_w, want_c = reference_step(vecs.W[:n], vecs.C[:n], target, ctx, weights, negs, vecs.config.lr)
    vecs.learn(target, ctx, weights)
    np.testing.assert_allclose(vecs.W[:n], want_w, atol=1e-12)
    np.testing.assert_allclose(vecs.C[:n], want_c, atol=1e-12)


def test_the_step_is_compiled_where_numba_has_nowhere_to_cache_it():
    """A read-only install and home leave numba no place for its cache, and it then refuses
    ``cache=True`` when the module is imported. Made real here with numba's own setting of where it
    may cache (only beside IPython cells, which a module is not): the module still imports, compiles
    without a cache, and takes the same step."""
    steps = "b = BehaviourVectors(); b.add_rows(['a', 'b', 'c']); b.learn(0, [1, 2], [1.0, 0.8]); b.learn(2, [0], [1.0])"
    code = ("import json\nfrom streams.state.behaviour import BehaviourVectors, _sgns_step\n" + steps + "\n"
            "print(json.dumps([type(_sgns_step._cache).__name__, b.W[:3].tolist(), b.C[:3].tolist()]))")
    env = {**os.environ, "NUMBA_CACHE_LOCATOR_CLASSES": "IPythonCacheLocator"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    cache, w, c = json.loads(done.stdout.strip().splitlines()[-1])
    assert cache == "NullCache"
    b = BehaviourVectors()  # the same steps, with the cached kernel, in this process
    b.add_rows(["a", "b", "c"])
    b.learn(0, [1, 2], [1.0, 0.8])
    b.learn(2, [0], [1.0])
    np.testing.assert_allclose(w, b.W[:3], atol=1e-15)
    np.testing.assert_allclose(c, b.C[:3], atol=1e-15)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), negatives=st.integers(0, 4),
       script=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 40), st.lists(st.integers(0, 40), max_size=5)),
                       min_size=1, max_size=25))
def test_steps_taken_together_equal_one_learn_each_with_the_rows_added_between(seed, negatives, script):
    """``learn_many`` (the engagement fold's one compiled call) against ``learn`` per step with the
    new rows added just before it: bit for bit, the negatives drawn from the rows there were then
    (steps without contexts and with fewer than two rows included: both skip them)."""
    cfg = BehaviourConfig(seed=seed, negatives=negatives, dim=8)
    one, many = BehaviourVectors(cfg), BehaviourVectors(cfg)
    steps, added = [], 0
    for new_rows, target, contexts in script:
        rows = [f"i{added + j}" for j in range(new_rows)]
        added += new_rows
        one.add_rows(rows)
        many.add_rows(rows)
        if added == 0:
            continue
        target, contexts = target % added, [c % added for c in contexts]
        weights = [0.7**j for j in range(len(contexts))]
        one.learn(target, contexts, weights)
        steps.append((target, contexts, weights, added))
    many.learn_many(steps)  # every row added before any step is taken, as in the fold
    assert many.steps == one.steps
    np.testing.assert_array_equal(many.W[:added], one.W[:added])
    np.testing.assert_array_equal(many.C[:added], one.C[:added])
