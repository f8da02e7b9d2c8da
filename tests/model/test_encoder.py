"""The real transformer and the facet heads: each facet's definition holds on hand-written cases."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest
import torch

from encoders import EncoderConfig, FacetEncoder, ModelLoadError, StyleHead
from encoders.facet_encoder import cpu_has_fast_bf16, pick_dtype


def test_every_facet_is_a_unit_vector_of_its_declared_size(encoder):
    out = encoder.encode(["A quiet walk in the park.", "LOVE IT!!!", "x"])
    assert encoder.layout == {"sentiment": 3, "topic": 384, "style": 4}
    for name, dim in encoder.layout.items():
        rows = out.facets[name]
        assert rows.shape == (3, dim)
        np.testing.assert_allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize(
    "text, sign",
    [
        ("Terrible headphones, they broke in a week. A waste of money.", -1),
        ("Not good at all, I regret buying this.", -1),
        ("Absolutely love these running shoes, super comfortable!", +1),
        ("Great value, would buy again.", +1),
    ],
)
def test_sentiment_score_has_the_sign_of_the_text(encoder, text, sign):
    reading = encoder.describe(encoder.encode([text]).row(0))["sentiment"]
    assert reading["score"] * sign > 0.3
    assert sum(reading[k] for k in ("negative", "neutral", "positive")) == pytest.approx(1.0)


def test_factual_text_reads_neutral(encoder):
    reading = encoder.describe(encoder.encode(["The kettle holds 1.7 litres."]).row(0))["sentiment"]
    assert reading["neutral"] > max(reading["positive"], reading["negative"])


def test_topic_puts_related_texts_closer(encoder):
    topic = encoder.encode(
        ["trail running shoes for muddy races", "lightweight shoes for a marathon", "a cast iron skillet for steak"]
    ).facets["topic"]
    assert topic[0] @ topic[1] > topic[0] @ topic[2] + 0.1


def test_style_readings_follow_their_definitions(encoder):
    formal, casual = "We would kindly request confirmation of the delivery date.", "lol yeah gonna grab one haha"
    readings = [encoder.describe(encoder.encode([t]).row(0))["style"] for t in (formal, casual)]
    assert readings[0]["formality"] > 0 > readings[1]["formality"]
    assert StyleHead.detail("one two three four five six seven eight") == pytest.approx(0.0)
    assert StyleHead.detail(" ".join(["word"] * 64)) == pytest.approx(1.0)
    assert StyleHead.intensity("calm words here") == pytest.approx(-1.0)
    assert StyleHead.intensity("WOW THIS IS AMAZING!!! sooo good") > 0.8


def test_averaged_style_vector_reads_back_the_average_readings(encoder):
    out = encoder.encode(["Short.", "A considerably longer sentence that has quite a few more words in it, really."])
    rows = out.facets["style"]
    singles = [encoder.heads["style"].describe(r) for r in rows]
    # Average of unit vectors, weighted so the constant components match: readings average exactly.
    w = 1.0 / rows[:, -1]
    avg = (rows * w[:, None]).mean(axis=0)
    got = encoder.heads["style"].describe(avg)
    for name in ("formality", "detail", "intensity"):
        assert got[name] == pytest.approx((singles[0][name] + singles[1][name]) / 2, abs=1e-5)


def test_one_forward_pass_per_micro_batch_and_duplicates_encoded_once(encoder):
    texts = [f"query number {i} {id(encoder)}" for i in range(10)] * 3  # 30 texts, 10 distinct, new
    before = encoder.forward_passes
    out = encoder.encode(texts)
    assert encoder.forward_passes - before == math.ceil(10 / encoder.config.batch_size)
    np.testing.assert_array_equal(out.facets["topic"][0], out.facets["topic"][10])
    # Batching (passes planned by length) gives the same vectors as encoding one text at a time (a
    # forward pass of its own: encode would answer from the cache).
    single = encoder.sentiment_inputs([texts[3]])[0]
    np.testing.assert_allclose(out.sentiment_inputs[3], single, atol=1e-5)


def test_short_texts_are_not_padded_to_a_long_ones_length(encoder):
    short = [f"cheap tent {i} {id(encoder)}" for i in range(8)]
    long = [" ".join(["a long review of a camping stove that boils water fast"] * 9) + f" {i}" for i in range(2)]
    before = encoder.forward_passes
    out = encoder.encode(long[:1] + short + long[1:])
    assert encoder.forward_passes - before == 2  # the short ones in one pass, the long ones in another
    # The same inputs as each text alone (sentiment_inputs: a forward pass, never the cache).
    for row, text in enumerate(long[:1] + short + long[1:]):
        np.testing.assert_allclose(out.sentiment_inputs[row], encoder.sentiment_inputs([text])[0], atol=1e-5)


def test_recent_texts_are_served_from_the_lru_cache():
    enc = FacetEncoder(EncoderConfig(cache_size=2))
    first = enc.encode(["alpha shoes", "beta phones"])
    passes = enc.forward_passes
    again = enc.encode(["beta phones", "alpha shoes"])
    assert enc.forward_passes == passes and enc.cache_hits == 2
    np.testing.assert_array_equal(again.facets["topic"][0], first.facets["topic"][1])
    enc.encode(["gamma pans"])  # evicts the least recently used ("beta phones")
    enc.encode(["beta phones"])
    assert enc.forward_passes == passes + 2


def test_missing_model_gives_an_actionable_error(tmp_path):
    with pytest.raises(ModelLoadError, match="no hub access at run time"):
        FacetEncoder(EncoderConfig(model=str(tmp_path / "no-such-model")))


def test_bf16_embeddings_match_fp32_alone_or_in_a_batch():
    # bf16 is the default on CPUs with native bf16 (1.5-1.8x fp32 there); torch emulates it
    # elsewhere, so this runs on any CPU, only slower.
    texts = ["Terrible headphones, they broke in a week.", "Great value, would buy again!", "tent", "Q3 revenue beat estimates"]
    half, full = FacetEncoder(EncoderConfig(dtype="bfloat16", cache_size=0)), FacetEncoder(EncoderConfig(dtype="float32", cache_size=0))
    assert (half.dtype, full.dtype) == (torch.bfloat16, torch.float32)
    a, b = half.embed(texts), full.embed(texts)
    assert np.min(np.sum(a * b, axis=1)) > 0.999
    assert not np.array_equal(a, b)  # it really ran in bf16
    # Alone or among others, close but not always equal: on Zen 4 the same to 1e-5, on Intel AMX
    # ~1e-3 apart (other shapes, other kernels); hence float32 where tests compare to 1e-5.
    alone = half.embed(texts[1:2])[0]
    assert float(alone @ a[1]) > 0.9999 and np.abs(alone - a[1]).max() < 1e-2


def test_encoder_dtype_defaults_to_bf16_only_where_the_cpu_has_it():
    cpu = torch.device("cpu")
    assert pick_dtype("auto", cpu) == (torch.bfloat16 if cpu_has_fast_bf16() else torch.float32)
    assert pick_dtype("float32", cpu) == torch.float32
    with pytest.raises(ModelLoadError, match="float16 is for CUDA"):
        pick_dtype("float16", cpu)
    with pytest.raises(ModelLoadError, match="not one of"):
        pick_dtype("int8", cpu)


def test_forward_passes_run_on_the_encoders_threads_and_leave_the_callers_count():
    # OpenMP keeps one thread count per calling thread, and where torch is imported before FAISS
    # FAISS's calls reach torch's OpenMP: a thread that limited FAISS's searches to one (the bench's
    # and the eval's main thread) encoded on one core too, and the bench's encoder ceiling came out
    # at about half the worker's (2026-12-07). Here the caller sets the count as that limit did.
    enc = FacetEncoder(EncoderConfig(dtype="float32", cache_size=0, threads=2))
    inside: list[int] = []
    hook = enc.model.register_forward_pre_hook(lambda *_: inside.append(torch.get_num_threads()))
    after: list[int] = []

    def limited_caller() -> None:  # a thread of its own: the test session's main thread is left as it is
        torch.set_num_threads(1)
        enc.embed(["a tent for two", "great value, would buy again"])
        after.append(torch.get_num_threads())

    try:
        caller = threading.Thread(target=limited_caller)
        caller.start()
        caller.join()
    finally:
        hook.remove()
    assert inside == [2]  # one forward pass, on the encoder's threads
    assert after == [1]  # the caller's count (FAISS's limit, where they share it) is back


def test_cuda_requested_without_a_gpu_is_refused():
    if torch.cuda.is_available():
        pytest.skip("this host has a GPU")
    with pytest.raises(ModelLoadError, match="no CUDA device"):
        FacetEncoder(EncoderConfig(device="cuda"))
