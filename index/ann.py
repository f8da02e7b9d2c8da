"""Approximate search for big catalogues: an IVF index trained on a sample of the exact index's
vectors, built off the lock, then caught up with the changes made meanwhile and swapped in.

The exact index (IDMap2,Flat) stays the store of record: it answers reconstruct (explanations,
clicks reusing an item's vector) and is what a rebuild starts from. FAISS releases the GIL while
it trains and adds, so searches and catalogue changes go on during a build.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import faiss
import numpy as np

TRAIN_PER_LIST = 40  # training points per inverted list (FAISS warns below 39)


def lists_for(items: int, configured: int = 0) -> int:
    """Inverted lists for a catalogue of ``items``: 2 * sqrt(n) unless configured (2,000 at 10^6:
    trains in seconds on 2 cores; nprobe 32 then scans about 1.6% of the items)."""
    return configured or max(16, int(2 * math.sqrt(items)))


@dataclass
class AnnStatus:
    """What /healthz and /metrics say about the approximate index."""

    search: str = "exact"  # exact | ivf | gpu (the GPU mirror of the exact index)
    built_items: int = 0  # catalogue size it was trained at
    lists: int = 0
    nprobe: int = 0
    build_s: float | None = None  # snapshot -> swapped in, the last build
    builds: int = 0
    building: bool = False
    caught_up_changes: int = 0  # catalogue changes made during the last build, applied before the swap
    error: str = ""
    history: list[float] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, object]:
        return {k: v for k, v in self.__dict__.items() if k != "history"}


def remove_ids(ivf: faiss.IndexIVF, fids: np.ndarray) -> int:
    """Remove ids through the index's hashtable direct map (O(ids), not a scan of every list)."""
    fids = np.ascontiguousarray(fids, dtype=np.int64)
    if not len(fids):
        return 0
    return ivf.remove_ids(faiss.IDSelectorArray(len(fids), faiss.swig_ptr(fids)))


def train_ivf(vectors: np.ndarray, fids: np.ndarray, lists: int, nprobe: int, seed: int = 0) -> faiss.IndexIVFFlat:
    """An inner-product IVF index over ``vectors`` (ids ``fids``), trained on a sample of them."""
    n, dim = vectors.shape
    lists = min(lists, max(1, n // TRAIN_PER_LIST))
    quantizer = faiss.IndexFlatIP(dim)
    ivf = faiss.IndexIVFFlat(quantizer, dim, lists, faiss.METRIC_INNER_PRODUCT)
    ivf.own_fields = True
    quantizer.this.disown()  # the IVF index owns its quantizer now
    sample = vectors if n <= lists * TRAIN_PER_LIST else vectors[
        np.random.default_rng(seed).choice(n, size=lists * TRAIN_PER_LIST, replace=False)]
    ivf.train(np.ascontiguousarray(sample))
    ivf.set_direct_map_type(faiss.DirectMap.Hashtable)  # removals by id without scanning
    ivf.add_with_ids(vectors, np.ascontiguousarray(fids, dtype=np.int64))
    ivf.nprobe = min(nprobe, lists)
    return ivf


def list_assignment(ivf: faiss.IndexIVF, fids: np.ndarray) -> np.ndarray | None:
    """The inverted list of each of ``fids`` in ``ivf`` (what ``ivf_from_lists`` rebuilds it
    from); None unless it holds exactly those ids."""
    inv, ids, lists = ivf.invlists, [], []
    for n in range(ivf.nlist):
        size = inv.list_size(n)
        if size:
            ids.append(faiss.rev_swig_ptr(inv.get_ids(n), size).copy())
            lists.append(np.full(size, n, dtype=np.int64))
    held = np.concatenate(ids) if ids else np.zeros(0, dtype=np.int64)
    if len(held) != len(fids):
        return None
    order = np.argsort(held)
    at = np.minimum(np.searchsorted(held[order], fids), max(len(held) - 1, 0))
    if len(fids) and (held[order][at] != fids).any():
        return None
    return (np.concatenate(lists)[order][at] if len(fids) else np.zeros(0, dtype=np.int64))


def ivf_from_lists(centroids: np.ndarray, vectors: np.ndarray, fids: np.ndarray, lists: np.ndarray,
                   nprobe: int) -> faiss.IndexIVFFlat:
    """An inner-product IVF index with the given centroids holding each vector in the given list:
    no training and no assignment (a snapshot's index back in seconds, not minutes)."""
    nlist, dim = centroids.shape
    if vectors.shape[1] != dim or len(lists) != len(vectors) or (len(lists) and (lists.min() < 0 or lists.max() >= nlist)):
        raise ValueError(f"an IVF index of {nlist} lists of {dim} dimensions cannot hold these {len(vectors)} vectors")
    quantizer = faiss.IndexFlatIP(dim)
    quantizer.add(np.ascontiguousarray(centroids, dtype=np.float32))
    ivf = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    ivf.own_fields = True
    quantizer.this.disown()
    ivf.is_trained = True
    ivf.set_direct_map_type(faiss.DirectMap.Hashtable)
    if len(vectors):
        x, ids, at = (np.ascontiguousarray(a, dtype=t) for a, t in ((vectors, np.float32), (fids, np.int64), (lists, np.int64)))
        ivf.add_core(len(x), faiss.swig_ptr(x), faiss.swig_ptr(ids), faiss.swig_ptr(at))
    ivf.nprobe = min(nprobe, nlist)
    return ivf
