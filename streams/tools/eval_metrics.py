"""Pure evaluation math: leave-last-out splits, HR@k / nDCG@k, accuracy / macro-F1, label rules."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Hashable, Iterable, Sequence

import numpy as np


def leave_last_out(interactions: Iterable[tuple[str, str, float]]) -> tuple[list[tuple[str, str, float]], dict[str, str]]:
    """(user, item, ts) in file order -> (history, held-out item per user).

    Each user's last interaction (by ts; ties keep file order, the later line is last) is held
    out; users with a single interaction keep it as history and are not evaluated.
    """
    by_user: dict[str, list[tuple[int, str, str, float]]] = defaultdict(list)
    for pos, (user, item, ts) in enumerate(interactions):
        by_user[user].append((pos, user, item, ts))
    history, targets = [], {}
    for user, rows in by_user.items():
        rows.sort(key=lambda r: (r[3], r[0]))
        if len(rows) >= 2:
            targets[user] = rows[-1][2]
            rows = rows[:-1]
        history.extend(rows)
    history.sort(key=lambda r: (r[3], r[0]))  # replayed in time order
    return [(u, i, ts) for _, u, i, ts in history], targets


def hit_and_ndcg(ranked: Sequence[Hashable], target: Hashable, k: int) -> tuple[float, float]:
    """One user's HR@k (0/1) and nDCG@k (1/log2(rank+2) with one relevant item, rank from 0)."""
    top = list(ranked[:k])
    if target not in top:
        return 0.0, 0.0
    return 1.0, 1.0 / math.log2(top.index(target) + 2)


def mean_hit_ndcg(rankings: dict[str, Sequence[Hashable]], targets: dict[str, Hashable], k: int) -> tuple[float, float]:
    """Mean HR@k and nDCG@k over the users in ``targets`` (a user without a ranking scores 0)."""
    if not targets:
        raise ValueError("no users to evaluate")
    hits = ndcg = 0.0
    for user, target in targets.items():
        h, n = hit_and_ndcg(rankings.get(user, ()), target, k)
        hits += h
        ndcg += n
    return hits / len(targets), ndcg / len(targets)


def accuracy_macro_f1(gold: Sequence[int], pred: Sequence[int], n_classes: int = 3) -> tuple[float, float]:
    """Accuracy and the unweighted mean of per-class F1 (a class never predicted nor present is skipped)."""
    if len(gold) != len(pred) or not gold:
        raise ValueError("gold and pred must be non-empty and of equal length")
    accuracy = sum(g == p for g, p in zip(gold, pred)) / len(gold)
    f1s = []
    for c in range(n_classes):
        tp = sum(g == c and p == c for g, p in zip(gold, pred))
        fp = sum(g != c and p == c for g, p in zip(gold, pred))
        fn = sum(g == c and p != c for g, p in zip(gold, pred))
        if tp + fp + fn == 0:
            continue
        f1s.append(2 * tp / (2 * tp + fp + fn))
    return accuracy, sum(f1s) / len(f1s)


def human_label(mean_rating: float, neutral_band: float = 0.5) -> int:
    """A VADER ground-truth mean rating (-4..+4) -> 0 negative, 1 neutral, 2 positive."""
    if mean_rating > neutral_band:
        return 2
    if mean_rating < -neutral_band:
        return 0
    return 1


def vader_label(compound: float, threshold: float = 0.05) -> int:
    """VADER's documented rule: compound >= 0.05 positive, <= -0.05 negative, else neutral."""
    if compound >= threshold:
        return 2
    if compound <= -threshold:
        return 0
    return 1


def label_to_rating(label: int) -> int:
    """A class as a review rating the online learner reads (1 negative, 3 neutral, 5 positive)."""
    return (1, 3, 5)[label]


def top_k_masked(scores: np.ndarray, exclude: np.ndarray, ids: Sequence[str], k: int) -> list[str]:
    """The k highest-scoring ids where ``exclude`` is False; ties go to the lower position."""
    masked = np.where(exclude, -np.inf, np.asarray(scores, dtype=np.float64))
    order = np.lexsort((np.arange(len(ids)), -masked))[:k]
    return [ids[i] for i in order if np.isfinite(masked[i])]
