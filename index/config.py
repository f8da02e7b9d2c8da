from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class IndexConfig:
    # Any faiss.index_factory string that starts with IDMap2 (deletes and reconstruct need it).
    factory: str = "IDMap2,Flat"
    device: str = "auto"  # auto | cpu | gpu: gpu mirrors the CPU index for searching
    # Relative weight of each facet in the retrieval score: score = sum_f w_f * cos_f.
    facet_weights: dict[str, float] = field(
        default_factory=lambda: {"sentiment": 0.15, "topic": 1.0, "style": 0.1}
    )
