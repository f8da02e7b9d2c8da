from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class IndexConfig:
    # Any faiss.index_factory string that starts with IDMap2 (deletes and reconstruct need it).
    factory: str = "IDMap2,Flat"
    device: str = "auto"  # auto | cpu | gpu: gpu mirrors the CPU index for searching
    # Big catalogues: from this many items on, an IVF index (IVF{lists},Flat) is trained in the
    # background on a sample and swapped in for searching; the exact index stays the store of
    # record (deletes, explanations, the rebuild after growth). 0 = never.
    ann_threshold: int = 100_000  # exact search p99 is ~14 ms here on 2 cores (benchmarks/RESULTS.md)
    ann_nprobe: int = 32  # inverted lists visited per search: recall against speed
    ann_lists: int = 0  # 0 = 2 * sqrt(items) at build time
    ann_regrow: float = 4.0  # train again once the catalogue is this many times the trained size
    # Relative weight of each facet in the retrieval score: score = sum_f w_f * cos_f.
    facet_weights: dict[str, float] = field(
        default_factory=lambda: {"sentiment": 0.15, "topic": 1.0, "style": 0.1}
    )
