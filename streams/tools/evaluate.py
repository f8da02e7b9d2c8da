"""`interest-stream eval`: recommendations and the facets measured on real public data.

1. Next-item prediction on MovieLens 100K, two ways.
   a. Prequential (streams/tools/eval_prequential.py): every rating in time order, each scored
      before it is applied: the worker's hybrid recommender, facet Z, item co-engagement and
      popularity as of the moment, by the user's history length and over time windows.
   b. Leave-last-out, through the real pipeline: each user's last rating is held out; every
      earlier rating is replayed in time order as a click (bundled broker, a worker, the encoder,
      the FAISS index). Ranked lists come from the worker's /users/{id}/recommendations (hybrid,
      and ranking=facet), one mean-embedding vector per user, popularity over the whole
      replayed history (the usual way: it counts ratings made after some users' held-out ones),
      and an offline sequential model trained on that history (a compact SASRec, eval_sasrec.py).
   Every method excludes the movies the user already rated.
2. The sentiment facet against human labels: the VADER ground-truth snippets (Amazon reviews,
   movie reviews, NYT editorials, tweets). Per corpus, the first share of snippets is a labelled
   stream the head learns from online (the same encoder code the worker runs for rated reviews),
   the rest is scored by VADER's own rule, by the facet as shipped, and by the facet after
   learning.
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from tqdm import tqdm

from encoders import FacetEncoder
from index import ItemIndex
from schemas import SENTIMENT_LABELS, ItemEvent
from streams.settings import Settings
from streams.threads import limit_threads
from streams.tools.broker import EmbeddedBroker
from streams.tools.eval_data import load_movielens, load_snippets
from streams.tools.eval_metrics import (
    accuracy_macro_f1,
    human_label,
    label_to_rating,
    leave_last_out,
    mean_hit_ndcg,
    top_k_masked,
    vader_label,
)
from streams.tools.eval_prequential import Interaction, run_prequential
from streams.tools.eval_sasrec import SasRecConfig, sasrec_baseline
from streams.tools.eval_shift import ShiftConfig, planted_shift
from streams.tools.process import WorkerProcess, get_json
from streams.tools.replay import send_with_progress


@dataclass(frozen=True)
class EvalConfig:
    data_dir: Path
    users: int = 0  # evaluate the first N users by id (0 = all 943)
    k: int = 10
    sentiment_limit: int = 0  # snippets per corpus (0 = all)
    train_share: float = 0.7  # of each corpus, in file order, streamed to the learner
    neutral_band: float = 0.5  # |mean human rating| <= this is neutral (scale -4..+4)
    learn_batch: int = 64  # labelled snippets per online update (one micro-batch)
    seed: int = 0  # order of the snippet streams
    sasrec_epochs: int = 30  # the offline sequential reference (0 = skip it)
    shift_events: int = 16000  # planted-shift run: this many first ratings, shifted halfway (0 = skip it)
    retrieval: bool = True
    sentiment: bool = True


def movie_item(movie: Any, ts: float) -> dict[str, Any]:
    title = f"{movie.title} ({movie.year})" if movie.year else movie.title
    return {"type": "item", "event_id": f"ml-item-{movie.item_id}", "item_id": f"ml-{movie.item_id}",
            "op": "upsert", "ts": ts, "title": title, "text": ", ".join(movie.genres),
            "category": movie.genres[0] if movie.genres else ""}


def retrieval_eval(settings: Settings, cfg: EvalConfig, encoder: FacetEncoder) -> dict[str, Any]:
    movies, ratings = load_movielens(cfg.data_dir)
    users = sorted({r.user_id for r in ratings}, key=int)
    if cfg.users:
        keep = set(users[: cfg.users])
        ratings = [r for r in ratings if r.user_id in keep]
    history, targets = leave_last_out((f"u{r.user_id}", f"ml-{r.item_id}", r.ts) for r in ratings)
    first_ts = min(r.ts for r in ratings)
    items = [movie_item(m, first_ts) for m in movies.values()]
    clicks = [{"type": "click", "event_id": f"{u}-{i}", "user_id": u, "item_id": i, "ts": ts} for u, i, ts in history]
    seen: dict[str, set[str]] = {}
    for u, i, _ in history:
        seen.setdefault(u, set()).add(i)

    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="interest-stream-eval-"))
    print(f"MovieLens 100K: {len(items)} movies, {len(clicks)} history ratings replayed as clicks, "
          f"{len(targets)} users held out; logs in {workdir}", flush=True)
    env = {**os.environ, "INTEREST_STREAM_LOG_LEVEL": "warning",
           "INTEREST_STREAM_SEEN_ITEMS_MAX": str(max(len(s) for s in seen.values()) + 1)}
    with EmbeddedBroker(log_file=workdir / "broker.log") as broker:
        worker = WorkerProcess(broker.url, workdir, f"eval-{os.getpid()}", {**env, **broker.worker_env})
        try:
            worker.wait_until(lambda h: h["status"] == "ok", 180, "the worker to start")
            send_with_progress(items, broker.url, "movies", settings.partitions)
            worker.wait_until(lambda h: h["items_indexed"] >= len(items), 300, "the movies to be indexed")
            t = time.monotonic()
            send_with_progress(clicks, broker.url, "ratings", settings.partitions)
            health = worker.wait_processed(len(clicks), timeout_s=1800)
            replay_s = time.monotonic() - t
            # Applied is not yet folded: the engagement follower (popularity, co-engagement, the
            # behaviour facet) reads the engagements topic behind the user agent, so the answers
            # wait for it (the runs of 2026-11-30 had folded 98,860-99,057 of 99,057 by then).
            folded_then = worker.health()["recommender"]["engagements"]["engagements"]
            health = worker.wait_until(lambda h: h["recommender"]["engagements"]["engagements"] >= len(clicks), 600,
                                       "every engagement folded in")
            health = worker.wait_learned(600)  # and the last ranker steps, learned in the learner process
            served: dict[str, dict[str, list[str]]] = {"hybrid": {}, "facet": {}}
            for user in tqdm(sorted(targets), desc="recommendations", unit="user", file=sys.stdout):
                for ranking, got in served.items():
                    status, body = get_json(f"{worker.base}/users/{user}/recommendations?k={cfg.k}&ranking={ranking}",
                                            timeout=30)
                    got[user] = [it["item_id"] for it in body["items"]] if status == 200 else []
        finally:
            worker.stop()

    ids = [e["item_id"] for e in items]
    emb = encoder.embed([ItemEvent.from_dict(e).document for e in items])  # the text the worker encodes
    row_of = {item_id: n for n, item_id in enumerate(ids)}
    popularity = np.zeros(len(ids))
    for _, i, _ in history:
        popularity[row_of[i]] += 1
    mean_emb, popular = {}, {}
    for user in targets:
        rows = [row_of[i] for i in seen.get(user, ())]
        mask = np.zeros(len(ids), dtype=bool)
        mask[rows] = True
        mean_emb[user] = top_k_masked(emb @ emb[rows].mean(axis=0), mask, ids, cfg.k) if rows else []
        popular[user] = top_k_masked(popularity, mask, ids, cfg.k)
    sasrec = sasrec_baseline(history, targets, ids, cfg.k, SasRecConfig(epochs=cfg.sasrec_epochs)) if cfg.sasrec_epochs else None
    leaks = sum(1 for got in served.values() for u, recs in got.items() if seen.get(u, set()) & set(recs))
    methods = {"hybrid (worker API)": served["hybrid"], "facet Z (worker API)": served["facet"],
               "mean embedding": mean_emb, "popularity": popular}
    scores = {}
    for name, rankings in methods.items():
        hr, ndcg = mean_hit_ndcg(rankings, targets, cfg.k)
        scores[name] = {"hr": hr, "ndcg": ndcg}
    if sasrec is not None:
        scores[f"SASRec (offline, {cfg.sasrec_epochs} epochs)"] = sasrec
    return {
        "dataset": "MovieLens 100K (RecBole 1.2.1 wheel)", "users": len(targets), "items": len(items),
        "history_events": len(clicks), "k": cfg.k, "methods": scores,
        "events_applied": health["events_applied"], "dead_lettered": health["user_events_dead_lettered"],
        "replay_events_per_s": len(clicks) / replay_s, "wall_s": time.monotonic() - started,
        "engagements_folded_when_applied": folded_then,
        "users_without_recommendations": sum(1 for r in served["hybrid"].values() if not r),
        "ranker": health.get("recommender", {}).get("ranker") if health.get("recommender") else None,
        "lessons": health["recommender"].get("lessons") if health.get("recommender") else None,  # where they were built
        "recommended_already_seen": leaks,
    }


def movielens_stream(cfg: EvalConfig) -> tuple[dict[str, str], list[Interaction]]:
    """(item id -> the text the worker encodes, every rating of the evaluated users in time order)."""
    movies, ratings = load_movielens(cfg.data_dir)
    if cfg.users:
        keep = set(sorted({r.user_id for r in ratings}, key=int)[: cfg.users])
        ratings = [r for r in ratings if r.user_id in keep]
    order = sorted(range(len(ratings)), key=lambda p: (ratings[p].ts, p))  # time order; ties keep file order
    stream = [Interaction(f"u{ratings[p].user_id}", f"ml-{ratings[p].item_id}", ratings[p].ts) for p in order]
    items = {f"ml-{m.item_id}": ItemEvent.from_dict(movie_item(m, 0.0)).document for m in movies.values()}
    return items, stream


def prequential_eval(settings: Settings, cfg: EvalConfig, encoder: FacetEncoder) -> dict[str, Any]:
    items, stream = movielens_stream(cfg)
    print(f"Prequential: {len(stream)} ratings in time order, each scored before it is applied", flush=True)
    out = run_prequential(settings, encoder, items, stream, cfg.k)
    out["dataset"] = "MovieLens 100K (RecBole 1.2.1 wheel)"
    return out


def shift_eval(settings: Settings, cfg: EvalConfig, encoder: FacetEncoder) -> dict[str, Any]:
    items, stream = movielens_stream(cfg)
    index = ItemIndex(encoder.layout, settings.index)
    ids = list(items)
    index.upsert(ids, encoder.encode([items[i] for i in ids]).facets)
    shift = ShiftConfig(before=cfg.shift_events // 2, after=cfg.shift_events - cfg.shift_events // 2)
    print(f"Planted shift: the first {min(len(stream), cfg.shift_events)} ratings, items permuted halfway", flush=True)
    started = time.monotonic()
    out = planted_shift(settings, index, stream, shift, cfg.k,
                        progress=lambda xs: tqdm(xs, desc="shift", unit="event", file=sys.stdout, mininterval=5.0))
    out["wall_s"] = time.monotonic() - started
    return out


def sentiment_eval(cfg: EvalConfig, encoder: FacetEncoder) -> dict[str, Any]:
    head = encoder.heads["sentiment"]
    corpora = load_snippets(cfg.data_dir)
    results: dict[str, Any] = {}
    pooled: dict[str, list[int]] = {"gold": [], "vader": [], "start": [], "learned": []}
    for corpus, snippets in corpora.items():
        # The files carry no time and some are sorted by class (the movie snippets list the
        # positive ones first), so the stream is a seeded shuffle of each corpus.
        snippets = list(snippets)
        random.Random(cfg.seed).shuffle(snippets)
        if cfg.sentiment_limit:
            snippets = snippets[: cfg.sentiment_limit]
        split = int(len(snippets) * cfg.train_share)
        train, test = snippets[:split], snippets[split:]
        texts = [s.text for s in test]
        gold = [human_label(s.mean_rating, cfg.neutral_band) for s in test]
        vader = [vader_label(head.lexicon_analyzer.polarity_scores(t)["compound"]) for t in texts]
        head.reset_learning()  # each corpus is its own stream, from the shipped head
        test_emb = encoder.sentiment_inputs(texts)
        start = head.probabilities(test_emb, texts).argmax(axis=1).tolist()
        # Embeddings do not depend on what the head has learned: the whole stream is embedded at
        # once (sorted by length, it pads far less: 1.5-1.8x faster than 64 at a time), then
        # learned from in micro-batches in stream order.
        train_emb = encoder.sentiment_inputs([s.text for s in train])
        for lo in tqdm(range(0, len(train), cfg.learn_batch), desc=f"learn {corpus}", unit="batch", file=sys.stdout):
            batch = train[lo : lo + cfg.learn_batch]
            head.learn(train_emb[lo : lo + cfg.learn_batch], [s.text for s in batch],
                       [label_to_rating(human_label(s.mean_rating, cfg.neutral_band)) for s in batch])
        learned = head.probabilities(test_emb, texts).argmax(axis=1).tolist()
        status = head.online.status()
        results[corpus] = {
            "train": len(train), "test": len(test),
            "label_shares": {SENTIMENT_LABELS[c]: gold.count(c) / len(gold) for c in range(3)},
            "vader": dict(zip(("accuracy", "macro_f1"), accuracy_macro_f1(gold, vader))),
            "facet_start": dict(zip(("accuracy", "macro_f1"), accuracy_macro_f1(gold, start))),
            "facet_learned": dict(zip(("accuracy", "macro_f1"), accuracy_macro_f1(gold, learned))),
            "updates_kept": status["accepted"], "updates_refused": status["rejected"],
            "lexicon_weight": status["lexicon_weight"],
        }
        for key, values in (("gold", gold), ("vader", vader), ("start", start), ("learned", learned)):
            pooled[key].extend(values)
    results["all"] = {
        "train": sum(r["train"] for r in results.values()), "test": len(pooled["gold"]),
        **{name: dict(zip(("accuracy", "macro_f1"), accuracy_macro_f1(pooled["gold"], pooled[key])))
           for name, key in (("vader", "vader"), ("facet_start", "start"), ("facet_learned", "learned"))},
    }
    return results


def run_eval(settings: Settings, cfg: EvalConfig, json_out: Path | None = None) -> dict[str, Any]:
    started = time.monotonic()
    limit_threads(settings)
    encoder = FacetEncoder(settings.encoder)
    report: dict[str, Any] = {"config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(cfg).items()}}
    if cfg.retrieval:
        report["prequential"] = prequential_eval(settings, cfg, encoder)
        report["retrieval"] = retrieval_eval(settings, cfg, encoder)
        if cfg.shift_events:
            report["shift"] = shift_eval(settings, cfg, encoder)
    if cfg.sentiment:
        report["sentiment"] = sentiment_eval(cfg, encoder)
    report["wall_s"] = time.monotonic() - started
    if json_out:
        json_out.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    return report


def format_report(report: dict[str, Any]) -> str:
    lines = []
    p = report.get("prequential")
    if p:
        buckets = list(p["bucket_events"])
        lines += [
            f"\nNext-item prediction, prequential: {p['dataset']}, {p['events']} ratings in time order, each scored "
            f"before it is applied (top-{p['k']}, already-rated movies excluded)",
            f"  {'method':<30}{'HR@' + str(p['k']):>8}{'nDCG@' + str(p['k']):>9}   HR by earlier events of the user: "
            + "  ".join(f"{b} ({p['bucket_events'][b]})" for b in buckets),
        ]
        for name, m in p["methods"].items():
            lines.append(f"  {name:<30}{m['hr']:>8.4f}{m['ndcg']:>9.4f}   "
                         + "  ".join(f"{m['by_history'][b]:.4f}".rjust(len(f"{b} ({p['bucket_events'][b]})")) for b in buckets))
        lines.append(f"  HR@{p['k']} over {len(next(iter(p['methods'].values()))['by_window'])} successive windows "
                     "of equal event count:")
        for name, m in p["methods"].items():
            lines.append(f"  {name:<30}" + " ".join(f"{x:.3f}" for x in m["by_window"]))
        lines.append("  each user's last rating only (the leave-last-out target, scored with only the past):")
        for name, m in p["methods"].items():
            if m["last_event"]:
                lines.append(f"  {name:<30}{m['last_event']['hr']:>8.4f}{m['last_event']['ndcg']:>9.4f}")
        rk, rw = p["ranker"], p.get("ranker_as_worker")
        lines.append(f"  {p['events_per_s']:.0f} events/s in process; ranker: {rk['accepted']} updates kept, "
                     f"{rk['rejected']} refused by the held-back guard"
                     + (f" (learning as the worker: {rw['accepted']} kept, {rw['rejected']} refused)" if rw else "")
                     + f"; {p['wall_s']:.0f}s")
    r = report.get("retrieval")
    if r:
        lines += [
            f"\nNext-item prediction: {r['dataset']}, last rating per user held out, {r['users']} users, "
            f"{r['items']} movies, {r['history_events']} earlier ratings replayed in time order",
            f"  {'method':<30}{'HR@' + str(r['k']):>8}{'nDCG@' + str(r['k']):>10}",
        ]
        for name, m in r["methods"].items():
            extra = f"   trained in {m['train_s']:.0f}s on this machine" if "train_s" in m else ""
            lines.append(f"  {name:<30}{m['hr']:>8.4f}{m['ndcg']:>10.4f}{extra}")
        lines.append(f"  pipeline: {r['events_applied']} applied, {r['dead_lettered']} dead-lettered, "
                     f"{r['replay_events_per_s']:.0f} events/s; {r['recommended_already_seen']} users shown an "
                     f"already-rated movie; {r['wall_s']:.0f}s")
    sh = report.get("shift")
    if sh:
        names = list(sh["by_window"])
        lines += [
            f"\nPlanted shift: {sh['events']} ratings, every item permuted from rating {sh['shift_at']} on; HR@{sh['k']} "
            f"before the shift {sh['hr_before_shift']:.4f} (last {sh['window_events']} ratings)",
            f"  {'model':<30}{'after':>8}   HR per {sh['window_events']} ratings after the shift",
        ]
        for name in names:
            lines.append(f"  {name:<30}{sh['hr_after_shift'][name]:>8.4f}   "
                         + " ".join(f"{x:.3f}" for x in sh["by_window"][name]))
        back = sh["recovered_after_events"]
        lines.append(f"  learning model back to {sh['recovered_share']:.0%} of its level: "
                     + (f"within {back} ratings after the shift" if back is not None else "not within this run")
                     + f"; {sh['unscored_after_shift']} ratings not scored (item already rated); {sh['wall_s']:.0f}s")
    s = report.get("sentiment")
    if s:
        lines += [
            "\nSentiment facet vs human labels: VADER ground-truth snippets (vaderSentiment 3.3.2 sdist); "
            "accuracy / macro-F1 on the last 30% of each corpus",
            f"  {'corpus':<8}{'test':>6}  {'VADER rule':>13}  {'facet shipped':>13}  {'facet learned':>13}  kept/refused",
        ]
        for corpus, c in s.items():
            cells = "  ".join(f"{c[m]['accuracy']:.3f}/{c[m]['macro_f1']:.3f}".rjust(13)
                              for m in ("vader", "facet_start", "facet_learned"))
            kept = f"{c['updates_kept']}/{c['updates_refused']}" if "updates_kept" in c else ""
            lines.append(f"  {corpus:<8}{c['test']:>6}  {cells}  {kept:>12}")
    lines.append(f"\neval wall time {report['wall_s']:.0f}s")
    return "\n".join(lines)
