"""A FAISS inner-product index over items' concatenated, facet-weighted unit vectors.

Each item is stored as concat_f(sqrt(w_f) * z_f), so for a query built the same way the inner
product is sum_f w_f * cos(z_f_item, z_f_user). The authoritative index lives on the CPU
(IDMap2 supports remove_ids and reconstruct); on a GPU host a GPU copy is made for searching and
refreshed after each batch of changes, because GPU indexes cannot remove ids. Past
``ann_threshold`` items (CPU only) searches go to an IVF index built beside it in the background
(index/ann.py) and kept up to date with every change.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from dataclasses import dataclass, field
from itertools import repeat
from typing import Iterable, Mapping, Sequence

import faiss
import numpy as np

from index.ann import AnnStatus, ivf_from_lists, list_assignment, lists_for, remove_ids, train_ivf
from index.config import IndexConfig
from index.errors import IndexConfigError, UnknownItem
from schemas import from_json_array, json_array, string_list
from schemas.facets import l2_normalise, split_facets

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PackedQuery:
    """A query's facets renormalised and packed as the index searches them (``ItemIndex.prepare``):
    for a caller that searches and scores with the same query."""

    row: np.ndarray  # (dim,) float32


Query = Mapping[str, np.ndarray] | PackedQuery  # facet vectors, or prepared once


@dataclass(frozen=True)
class Hit:
    item_id: str
    score: float
    facet_scores: dict[str, float]
    meta: dict[str, str] = field(default_factory=dict)
    # Each facet's part of the score (facet weight x cosine): what the match rests on.
    contributions: dict[str, float] = field(default_factory=dict)

    @property
    def matched_by(self) -> str:
        return max(self.contributions, key=self.contributions.__getitem__) if self.contributions else ""


class ItemIndex:
    def __init__(self, layout: Mapping[str, int], config: IndexConfig | None = None) -> None:
        self.config = config or IndexConfig()
        if not self.config.factory.startswith("IDMap2"):
            raise IndexConfigError(f"index factory {self.config.factory!r} must start with 'IDMap2' (deletes need it)")
        missing = set(layout) - set(self.config.facet_weights)
        if missing:
            raise IndexConfigError(f"no retrieval weight configured for facets {sorted(missing)}")
        self.layout = dict(layout)
        self.dim = sum(self.layout.values())
        self._scale = np.concatenate(
            [np.full(d, np.sqrt(self.config.facet_weights[name]), dtype=np.float32) for name, d in self.layout.items()]
        )
        self._cpu = faiss.index_factory(self.dim, self.config.factory, faiss.METRIC_INNER_PRODUCT)
        if not self._cpu.is_trained:
            raise IndexConfigError(
                f"index factory {self.config.factory!r} needs training (IVF, PQ); keep an exact one such "
                "as 'IDMap2,Flat': past ann_threshold items (INTEREST_STREAM_INDEX_ANN_THRESHOLD) the "
                "index trains an IVF index in the background itself (index/ann.py)"
            )
        self._ids: dict[str, int] = {}  # item id -> faiss id
        self._names: dict[int, str] = {}  # faiss id -> item id
        self._meta: dict[str, dict[str, str]] = {}
        # Per catalogue category: sum of member items' unit topic vectors and their count, so a
        # user's topic facet can be read as shares of named categories.
        self._cat_sum: dict[str, np.ndarray] = {}
        self._cat_n: dict[str, int] = {}
        self._cat_matrix: tuple[list[str], np.ndarray] | None = None  # unit centroids, rebuilt on change
        self._next_id = 0
        self._lock = threading.RLock()  # mutations and searches may come from executor threads
        # Counts the catalogue's changes: what is computed from item vectors may be kept until it moves.
        self.version = 0
        self._gpu = None
        self._gpu_stale = False
        self.use_gpu = self._want_gpu()
        self._ann: faiss.IndexIVF | None = None  # searched instead of _cpu once built
        # Changes made while an IVF index is being built, applied to it before it is swapped in
        # (None: no build running).
        self._ann_pending: list[tuple[str, np.ndarray, np.ndarray | None]] | None = None
        self._ann_thread: threading.Thread | None = None
        # Bumped when the whole catalogue is replaced (take_contents): a build of the one before
        # is discarded when it ends.
        self._generation = 0
        self.ann = AnnStatus(search="gpu" if self.use_gpu else "exact")

    def _want_gpu(self) -> bool:
        gpus = faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0
        if self.config.device == "gpu" and gpus == 0:
            raise IndexConfigError("index device 'gpu' requested but FAISS sees no GPU (is faiss-gpu installed?)")
        return self.config.device != "cpu" and gpus > 0

    # -- bookkeeping ---------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._ids)

    def item_ids(self) -> list[str]:
        return list(self._ids)

    def pack(self, facets: Mapping[str, np.ndarray]) -> np.ndarray:
        """Facet rows (each (n, d_f) or (d_f,)) -> (n, dim) weighted concatenation."""
        rows = [np.atleast_2d(np.asarray(facets[name], dtype=np.float32)) for name in self.layout]
        return np.ascontiguousarray(np.concatenate(rows, axis=1) * self._scale)

    def unpack(self, packed: np.ndarray) -> dict[str, np.ndarray]:
        return split_facets(np.atleast_2d(packed) / self._scale, self.layout)

    # -- changes ---------------------------------------------------------------------------------
    def upsert(
        self,
        item_ids: Sequence[str],
        facets: Mapping[str, np.ndarray],
        metas: Sequence[Mapping[str, str]] | None = None,
    ) -> None:
        """Add or replace items; a repeated id in one batch keeps its last vector."""
        if not item_ids:
            return
        packed = self.pack(facets)
        if len(packed) != len(item_ids):
            raise ValueError(f"{len(item_ids)} ids but {len(packed)} vectors")
        last = {item_id: i for i, item_id in enumerate(item_ids)}
        with self._lock:
            self._remove_locked(list(last))
            new_ids = np.arange(self._next_id, self._next_id + len(last), dtype=np.int64)
            self._next_id += len(last)
            for fid, (item_id, i) in zip(new_ids, last.items()):
                self._ids[item_id] = int(fid)
                self._names[int(fid)] = item_id
                if metas and metas[i]:  # no empty dict per item: a million of them slow every GC pass
                    self._meta[item_id] = dict(metas[i])
                self._count_category(item_id, packed[i], +1)
            rows = packed[list(last.values())]
            self._cpu.add_with_ids(rows, new_ids)
            self.version += 1
            self._gpu_stale = True
            if self._ann is not None:
                self._ann.add_with_ids(rows, new_ids)
            if self._ann_pending is not None:
                self._ann_pending.append(("add", new_ids, rows))
        self._maybe_build_ann()

    def delete(self, item_ids: Iterable[str]) -> int:
        """Remove items; unknown ids are ignored. Returns how many were removed."""
        with self._lock:
            removed = self._remove_locked(list(item_ids))
            self.version += removed > 0
            self._gpu_stale = self._gpu_stale or removed > 0
            if self._ann is not None and len(self._ids) < self.config.ann_threshold / 2:
                # A catalogue that shrank far below the threshold: few items per list, and nprobe
                # lists could miss most of them; exact search is cheap again.
                self._ann = None
                self.ann.search, self.ann.built_items = "exact", 0
            return removed

    def _remove_locked(self, item_ids: list[str]) -> int:
        fids = [self._ids.pop(i) for i in item_ids if i in self._ids]
        for fid in fids:
            name = self._names.pop(fid)
            self._count_category(name, self._cpu.reconstruct(fid), -1)
            self._meta.pop(name, None)
        if fids:
            gone = np.asarray(fids, dtype=np.int64)
            self._cpu.remove_ids(gone)
            if self._ann is not None:
                remove_ids(self._ann, gone)
            if self._ann_pending is not None:
                self._ann_pending.append(("remove", gone, None))
        return len(fids)

    def _count_category(self, item_id: str, packed: np.ndarray, sign: int) -> None:
        category = self._meta.get(item_id, {}).get("category")
        if not category or "topic" not in self.layout:
            return
        topic = self.unpack(packed)["topic"][0].astype(np.float64)
        self._cat_sum[category] = self._cat_sum.get(category, 0.0) + sign * topic
        self._cat_n[category] = self._cat_n.get(category, 0) + sign
        self._cat_matrix = None
        if self._cat_n[category] <= 0:
            del self._cat_sum[category], self._cat_n[category]

    def _categories(self) -> tuple[list[str], np.ndarray] | None:
        with self._lock:
            if self._cat_matrix is None:
                names = list(self._cat_sum)
                if not names:
                    return None
                centroids = np.stack([self._cat_sum[n] / self._cat_n[n] for n in names])
                centroids /= np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
                self._cat_matrix = (names, centroids)
            return self._cat_matrix

    def leading_categories(self, topics: np.ndarray) -> list[str | None]:
        """For each row of topic vectors, the category whose centroid is nearest (None: no categories)."""
        cats = self._categories()
        if cats is None:
            return [None] * len(topics)
        names, centroids = cats
        return [names[i] for i in np.argmax(np.asarray(topics, dtype=np.float64) @ centroids.T, axis=1)]

    def category_shares(self, topic: np.ndarray, top: int = 3, temperature: float = 8.0) -> list[tuple[str, float]]:
        """A topic vector as shares of catalogue categories: softmax over its cosine to each
        category's centroid. Empty when no indexed item has a category."""
        return self.category_shares_rows(np.asarray(topic)[None, :], top, temperature)[0]

    def category_shares_rows(self, topics: np.ndarray, top: int = 3,
                             temperature: float = 8.0) -> list[list[tuple[str, float]]]:
        """``category_shares`` of each row, in one matrix product (a micro-batch's profiles)."""
        cats = self._categories()
        if cats is None:
            return [[] for _ in range(len(topics))]
        names, centroids = cats
        cos = l2_normalise(np.asarray(topics, dtype=np.float64)) @ centroids.T
        weights = np.exp(temperature * (cos - cos.max(axis=1, keepdims=True)))
        shares = weights / weights.sum(axis=1, keepdims=True)
        order = np.argsort(-shares, axis=1)[:, :top]
        picked = np.take_along_axis(shares, order, axis=1).tolist()  # plain floats: no numpy scalar per share
        return [list(zip([names[i] for i in idx], vals)) for idx, vals in zip(order.tolist(), picked)]

    # -- snapshots (streams/worker/snapshot.py) ---------------------------------------------------
    def fingerprint(self) -> str:
        """What stored vectors depend on besides the items (they are kept packed: facet-weighted)."""
        return repr((self.layout, dict(sorted(self.config.facet_weights.items())), self.config.factory))

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The catalogue as arrays: ids, packed vectors, metadata, and the IVF index in use as its
        centroids and each item's list (``from_arrays`` builds it all again, the IVF index without
        training). Read under the lock (about a second per 10^6 items)."""
        with self._lock:
            fids = np.fromiter(self._names, dtype=np.int64, count=len(self._names))
            vectors = self._cpu.reconstruct_batch(fids) if len(fids) else np.zeros((0, self.dim), dtype=np.float32)
            names = list(self._names.values())
            metas = [self._meta.get(n) for n in names]  # the dicts are replaced, never changed in place
            out = {"fids": fids, "vectors": vectors}
            if self._ann is not None and (lists := list_assignment(self._ann, fids)) is not None:
                out.update(ivf_centroids=self._ann.quantizer.reconstruct_n(0, self._ann.nlist), ivf_lists=lists,
                           ivf_built_items=np.array([self.ann.built_items], dtype=np.int64))
        return {**out, "ids": json_array(names), "metas": json_array(metas)}  # encoded off the lock

    @classmethod
    def from_arrays(cls, layout: Mapping[str, int], config: IndexConfig | None, arrays: Mapping[str, np.ndarray]) -> ItemIndex:
        """A new index holding the catalogue ``to_arrays`` took, with its IVF index when it had one
        (and this configuration searches one: CPU, a threshold); ValueError if the arrays do not
        fit ``layout``."""
        out = cls(layout, config)
        ids, metas = string_list(arrays["ids"]), from_json_array(arrays["metas"])
        vectors = np.ascontiguousarray(arrays["vectors"], dtype=np.float32)
        fids = np.ascontiguousarray(arrays["fids"], dtype=np.int64)
        if (vectors.shape != (len(ids), out.dim) or not isinstance(metas, list) or len(metas) != len(ids)
                or fids.shape != (len(ids),) or len(np.unique(fids)) != len(fids) or (len(fids) and fids.min() < 0)):
            raise ValueError(f"{len(ids)} ids, {fids.shape} faiss ids, vectors of shape {vectors.shape} and "
                             f"{len(metas)} metadata, expected vectors of {out.dim}")
        if len(ids):
            out._cpu.add_with_ids(vectors, fids)
        out._ids, out._names = dict(zip(ids, fids.tolist())), dict(zip(fids.tolist(), ids))
        out._meta = {i: dict(m) for i, m in zip(ids, metas) if m}
        out._next_id, out.version = int(fids.max()) + 1 if len(fids) else 0, 1
        # Per category, the sums of the members' unit topic vectors: one pass, not one per item.
        if "topic" in out.layout and out._meta:
            names = list(out.layout)
            start = sum(out.layout[name] for name in names[: names.index("topic")])
            cols = slice(start, start + out.layout["topic"])
            scale = out._scale[cols]
            for n, item in enumerate(ids):
                category = out._meta.get(item, {}).get("category")
                if category:  # only the topic columns of the rows with a category: no copy of the whole matrix
                    topic = (vectors[n, cols] / scale).astype(np.float64)  # as unpack and _count_category do
                    out._cat_sum[category] = out._cat_sum.get(category, 0.0) + topic
                    out._cat_n[category] = out._cat_n.get(category, 0) + 1
        if "ivf_centroids" in arrays and out.config.ann_threshold and not out.use_gpu:
            out._ann = ivf_from_lists(arrays["ivf_centroids"], vectors, fids, np.asarray(arrays["ivf_lists"]),
                                      out.config.ann_nprobe)
            a = out.ann
            a.search, a.built_items, a.lists, a.nprobe = "ivf", int(arrays["ivf_built_items"][0]), out._ann.nlist, out._ann.nprobe
        return out

    def take_contents(self, other: ItemIndex) -> None:
        """This index holds ``other``'s catalogue from now on (``other`` is not used again): one
        swap under the lock, for the callers that keep this object. An IVF build of the catalogue
        before is discarded when it ends (not waited for: it takes minutes at 10^6 items)."""
        if self.dim != other.dim or self.layout != other.layout:
            raise ValueError(f"a catalogue of layout {other.layout}, this index has {self.layout}")
        with self._lock:
            for name in ("_cpu", "_ids", "_names", "_meta", "_cat_sum", "_cat_n", "_next_id", "_ann"):
                setattr(self, name, getattr(other, name))
            self._cat_matrix, self._gpu, self._gpu_stale, self._ann_pending = None, None, True, None
            self._generation += 1
            mine, theirs = self.ann, other.ann
            mine.search = theirs.search if other._ann is not None else ("gpu" if self.use_gpu else "exact")
            mine.built_items, mine.lists, mine.nprobe = theirs.built_items, theirs.lists, theirs.nprobe
            mine.building = False
            self.version += 1
        self._maybe_build_ann()  # none was kept, or the catalogue has grown past it

    # -- reads -------------------------------------------------------------------------------------
    def vectors(self, item_id: str) -> dict[str, np.ndarray]:
        """The stored facet vectors of one item (so a click need not re-encode it)."""
        with self._lock:
            if item_id not in self._ids:
                raise UnknownItem(item_id)
            packed = self._cpu.reconstruct(self._ids[item_id])
        return {name: v[0] for name, v in self.unpack(packed).items()}

    def joined_vectors(self, item_ids: Sequence[str]) -> list[np.ndarray | None]:
        """The stored facet vectors of several items, each concatenated in layout order (float64,
        what ``join_facets(vectors(i))`` gives), from one read of the index; None for an item not
        in it (a micro-batch's clicks)."""
        with self._lock:
            fids = [self._ids.get(i) for i in item_ids]
            known = [f for f in fids if f is not None]
            if not known:
                return [None] * len(item_ids)
            packed = self._cpu.reconstruct_batch(np.asarray(known, dtype=np.int64))
        rows = iter((packed / self._scale).astype(np.float64))
        return [next(rows) if f is not None else None for f in fids]

    def facet_rows(self, item_ids: Sequence[str], facet: str) -> tuple[list[str], np.ndarray]:
        """The items still in the index and one facet's unit vectors for them, in the given order."""
        with self._lock:
            kept = [i for i in item_ids if i in self._ids]
            if not kept:
                return [], np.zeros((0, self.layout[facet]), dtype=np.float32)
            packed = self._cpu.reconstruct_batch(np.asarray([self._ids[i] for i in kept], dtype=np.int64))
        return kept, self.unpack(packed)[facet]

    def meta(self, item_id: str) -> dict[str, str]:
        """The item's metadata (title, category, ...); empty for an unknown item."""
        with self._lock:
            return dict(self._meta.get(item_id, {}))

    def known(self, item_ids: Sequence[str]) -> list[bool]:
        """For each id, whether it is in the index (the catalogue as of now)."""
        with self._lock:
            return list(map(self._ids.__contains__, item_ids))

    def score_items(self, query: Query, item_ids: Sequence[str]) -> np.ndarray:
        """The retrieval score (sum_f w_f cos_f) of the query for each given item, as ``search``
        would give it; unknown items score 0."""
        return self.score_items_many([query], [item_ids])[0]

    def score_items_many(self, queries: Sequence[Query], item_ids: Sequence[Sequence[str]]) -> list[np.ndarray]:
        """``score_items`` for several queries, each with its items: the vectors of all of them
        are read from the index in one call."""
        out = [np.zeros(len(wanted)) for wanted in item_ids]
        with self._lock:
            ids = self._ids
            union = list(dict.fromkeys(i for wanted in item_ids for i in wanted if i in ids))
            if not union:
                return out
            vectors = self._cpu.reconstruct_batch(np.fromiter(map(ids.__getitem__, union), dtype=np.int64, count=len(union)))
        row = {item: n for n, item in enumerate(union)}
        for query, wanted, scores in zip(queries, item_ids, out):
            at = [n for n, i in enumerate(wanted) if i in row]
            if at:
                scores[at] = vectors[[row[wanted[n]] for n in at]] @ self.prepare(query).row
        return out

    # -- the approximate index for big catalogues (index/ann.py) ------------------------------------
    def _maybe_build_ann(self) -> None:
        """Start a background IVF build when the catalogue has reached the threshold, or has grown
        ``ann_regrow`` times past the size the current one was trained at."""
        cfg = self.config
        if not cfg.ann_threshold or self.use_gpu:
            return
        with self._lock:
            n = len(self._ids)
            if self._ann_pending is not None or self.ann.error or n < cfg.ann_threshold:
                return
            if self._ann is not None and n < cfg.ann_regrow * self.ann.built_items:
                return
            # A snapshot (copied under the lock: about a second per 10^6 items, once per build);
            # changes from now on are logged.
            fids = np.fromiter(self._names, dtype=np.int64, count=len(self._names))
            snapshot = {"fids": fids, "vectors": self._cpu.reconstruct_batch(fids)}
            self._ann_pending = []
            self.ann.building = True
            generation = self._generation
        try:
            self._ann_thread = threading.Thread(target=self._build_ann, args=(snapshot, time.monotonic(), generation),
                                                name="ivf-build", daemon=True)
            self._ann_thread.start()
        except RuntimeError as exc:  # no thread to be had: stay exact, and stop logging changes
            with self._lock:
                self._ann_pending = None
                self.ann.building, self.ann.error = False, f"could not start the IVF build: {exc}"

    def _build_ann(self, snapshot: dict[str, np.ndarray], started: float, generation: int = 0) -> None:
        cfg = self.config
        fids = snapshot.pop("fids")
        try:
            ivf = train_ivf(snapshot.pop("vectors"), fids, lists_for(len(fids), cfg.ann_lists), cfg.ann_nprobe)
            with self._lock:
                if generation != self._generation:  # the catalogue was replaced meanwhile: not its index
                    log.info("IVF build of a catalogue replaced since discarded")
                    return
                pending, self._ann_pending = self._ann_pending or [], None
                for op, ids, rows in pending:  # in the order they were made to the exact index
                    if op == "add":
                        ivf.add_with_ids(rows, ids)
                    else:
                        remove_ids(ivf, ids)
                self._ann = ivf
                a = self.ann
                a.search, a.built_items, a.lists, a.nprobe = "ivf", len(fids), ivf.nlist, ivf.nprobe
                a.build_s, a.builds, a.building = time.monotonic() - started, a.builds + 1, False
                a.caught_up_changes = len(pending)
            log.info("IVF index swapped in: %d items, %d lists, nprobe %d, %.1f s, %d changes caught up",
                     len(fids), ivf.nlist, ivf.nprobe, self.ann.build_s, len(pending))
        except Exception as exc:  # noqa: BLE001 - searches stay exact; said on /healthz
            log.exception("IVF build failed; searches stay exact")
            with self._lock:
                if generation != self._generation:
                    return
                self._ann_pending = None
                self.ann.building, self.ann.error = False, f"{type(exc).__name__}: {exc}"

    def wait_for_ann(self, timeout_s: float | None = None) -> bool:
        """Wait for a running build to finish (tools and tests); True if an IVF index is in use."""
        thread = self._ann_thread
        if thread is not None:
            thread.join(timeout_s)
        return self._ann is not None

    def _searcher(self):
        if self._ann is not None:
            return self._ann
        if not self.use_gpu:
            return self._cpu
        if self._gpu is None or self._gpu_stale:
            self._gpu = faiss.index_cpu_to_all_gpus(self._cpu)
            self._gpu_stale = False
        return self._gpu

    def _normed(self, query: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        # Each facet of a query renormalised, so each facet contributes a cosine.
        return {name: l2_normalise(np.asarray(query[name], dtype=np.float32)) for name in self.layout}

    def prepare(self, query: Query) -> PackedQuery:
        """The query as ``nearest`` and ``score_items`` search with it."""
        return query if isinstance(query, PackedQuery) else PackedQuery(self.pack(self._normed(query))[0])

    def nearest(
        self,
        queries: Sequence[Query],
        k: int,
        exclude: Sequence[Iterable[str]] | None = None,
    ) -> list[list[tuple[str, float]]]:
        """Top-k (item id, score) for each query (facet vectors), skipping each query's excluded
        ids. A single query with exclusions on the CPU is searched with a FAISS ID selector (the
        index skips them; k stays k). Several queries on the exact CPU index, and any on a GPU
        (which takes no selector), are searched in one call that over-fetches k + |excluded| and
        filters: the same top k, and one search instead of one per query (a micro-batch's ranking
        lessons). The IVF index keeps the selector: there over-fetching reads the same probed lists."""
        if not queries:
            return []
        excluded = [set(e) for e in exclude] if exclude else [set() for _ in queries]
        packed = np.stack([self.prepare(q).row for q in queries])
        with self._lock:
            if len(self._ids) == 0:
                return [[] for _ in queries]
            get = self._ids.get
            skips = [np.fromiter(map(get, e, repeat(-1)), dtype=np.int64, count=len(e)) for e in excluded]
            searcher = self._searcher()
            over_fetched = (searcher is self._gpu or not any(len(s) for s in skips)
                            or (len(queries) > 1 and searcher is self._cpu))
            if over_fetched:
                fetch = min(k + max(len(s) for s in skips), len(self._ids))
                scores, fids = searcher.search(packed, fetch)
            else:
                found = [self._search_skipping(searcher, packed[qi : qi + 1], k, skips[qi]) for qi in range(len(queries))]
                scores, fids = np.concatenate([f[0] for f in found]), np.concatenate([f[1] for f in found])
            results: list[list[tuple[str, float]]] = []
            names = self._names
            for qi, (row_scores, row_ids) in enumerate(zip(scores, fids)):
                found_here = row_ids >= 0
                if over_fetched and len(skips[qi]):  # a selector already left the skipped ids out
                    found_here &= ~np.isin(row_ids, skips[qi])
                keep = np.flatnonzero(found_here)[:k]
                results.append(list(zip([names[f] for f in row_ids[keep].tolist()], row_scores[keep].tolist())))
            return results

    def _search_skipping(self, searcher, query: np.ndarray, k: int, skip: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One query's top k on a CPU index, the ``skip`` ids left out by the index itself."""
        fetch = min(k, len(self._ids))
        if not len(skip):
            return searcher.search(query, fetch)
        batch = faiss.IDSelectorBatch(skip)  # referenced until the search is done: the Not holds a raw pointer
        selector = faiss.IDSelectorNot(batch)
        if searcher is self._ann:
            params = faiss.SearchParametersIVF(sel=selector, nprobe=searcher.nprobe)
        else:
            params = faiss.SearchParameters(sel=selector)
        return searcher.search(query, fetch, params=params)

    def explain(self, query: Mapping[str, np.ndarray], item_id: str) -> Hit:
        """One item's score for a query, per facet (cosine) and as parts of the score."""
        return self._explain(self._normed(query), item_id)

    def _explain(self, normed: Mapping[str, np.ndarray], item_id: str) -> Hit:
        item = self.vectors(item_id)
        per_facet = {f: float(item[f] @ normed[f]) for f in self.layout}
        parts = {f: self.config.facet_weights[f] * c for f, c in per_facet.items()}
        with self._lock:
            meta = dict(self._meta.get(item_id, {}))
        return Hit(item_id, float(sum(parts.values())), per_facet, meta, parts)

    def search(
        self,
        queries: Sequence[Mapping[str, np.ndarray]],
        k: int,
        exclude: Sequence[Iterable[str]] | None = None,
    ) -> list[list[Hit]]:
        """``nearest``, with each hit explained (per-facet cosines, parts of the score, metadata)."""
        results = []
        for query, found in zip(queries, self.nearest(queries, k, exclude)):
            normed, hits = self._normed(query), []
            for item_id, score in found:
                try:
                    hits.append(dataclasses.replace(self._explain(normed, item_id), score=score))
                except UnknownItem:  # deleted between the two reads
                    continue
            results.append(hits)
        return results
