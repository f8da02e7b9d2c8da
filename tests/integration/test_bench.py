"""The bench runs end to end on a tiny stream and reports every figure (no timing is asserted)."""

from __future__ import annotations

import math

import orjson

from streams.settings import Settings
from streams.tools.bench import BenchConfig, format_report, run_bench


def test_tiny_bench_reports_every_figure(tmp_path):
    cfg = BenchConfig(users=20, items=40, text_events=60, click_events=200, long_history=30, naive_events=15,
                      latency_seconds=1.5, rec_queries=10, big_items=5000,
                      big_http_items=3000)
    out = tmp_path / "bench.json"
    report = run_bench(Settings(), cfg, out)
    figures = {**report.ceilings, **report.pipeline, **report.ratios}
    for name, value in figures.items():
        assert math.isfinite(value) and value >= 0, name
    assert report.pipeline["latency_samples"] > 0
    # A profile record is stamped before a reader gets it (the timestamps are ms, hence the 1 ms).
    assert report.pipeline["latency_to_record_p50_ms_at_half_rate"] <= report.pipeline["latency_p50_ms_at_half_rate"] + 1
    assert report.pipeline["texts_per_encode_call"] > 1  # micro-batching happened
    # The stages of the micro-batches during the latency phase, from the worker's /metrics.
    assert report.pipeline["latency_batch_encode_ms"] > 0 and report.pipeline["latency_batch_profiles_ms"] > 0
    assert orjson.loads(out.read_bytes())["ratios"] == report.ratios
    text = format_report(report)
    assert "micro-batches meanwhile" in text and "encode " in text
    assert "text events / encoder ceiling" in text and "naive baseline" in text
    # Clicks again once every user has about long_history clicks (the first figure: 10 each).
    assert report.pipeline["clicks_per_user_before_long_history_clicks"] == 30
    assert report.pipeline["click_events_per_s_long_histories"] > 0 and "long histories" in text
    # The big-catalogue part: the IVF index was built and swapped in while the catalogue changed.
    p = report.pipeline
    assert p["big_items"] == 5000 and p["big_ivf_lists"] > 0  # caught-up changes depend on timing here
    assert p["big_items_after_changes"] == 5000 and 0.0 <= p["big_recall_at_10"] <= 1.0
    assert "big catalogue" in text
    # Over HTTP: a new worker indexed the whole log, searched it with IVF, and answered.
    assert p["big_http_items"] == 3000 and p["big_http_ivf_built_items"] == 3000 and p["big_http_ivf_lists"] > 0
    assert p["big_http_recommendation_http_p50_ms"] > 0 and "big catalogue over HTTP" in text
    # The served facet ranking against exact search: the IVF index at 75 lists, nprobe 32, on
    # clustered vectors finds nearly all of it; a wrong query packing or exclusion would not.
    assert p["big_http_facet_recall_at_10_http"] >= 0.9
