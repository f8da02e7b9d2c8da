"""The eval's charts draw the report's numbers (read back from the figures), and files are PNGs."""

from __future__ import annotations

from streams.tools.eval_plots import history_figure, sentiment_figure, shift_figure, windows_figure, write_plots


def report() -> dict:
    methods = {
        "hybrid": {"by_window": [0.1, 0.2, 0.3], "by_history": {"0-4": 0.4, "5-19": 0.3, "20+": 0.2}},
        "popularity": {"by_window": [0.05, 0.04, 0.06], "by_history": {"0-4": 0.2, "5-19": 0.1, "20+": 0.07}},
    }
    f1 = {"vader": {"macro_f1": 0.5}, "facet_start": {"macro_f1": 0.4}, "facet_learned": {"macro_f1": 0.6}}
    return {
        "prequential": {"methods": methods, "events": 30, "k": 10, "dataset": "tiny",
                        "bucket_events": {"0-4": 10, "5-19": 12, "20+": 8}},
        "shift": {"k": 10, "window_events": 100, "hr_before_shift": 0.12,
                  "by_window": {"learning": [0.03, 0.08, 0.13], "frozen at the shift": [0.01, 0.0, 0.02]}},
        "sentiment": {"amazon": f1, "all": {"vader": {"macro_f1": 0.55}, "facet_start": {"macro_f1": 0.45},
                                           "facet_learned": {"macro_f1": 0.65}}},
    }


def test_window_lines_are_the_methods_hit_rates():
    fig = windows_figure(report())
    lines = {line.get_label(): list(line.get_ydata()) for line in fig.axes[0].get_lines()}
    assert lines == {"hybrid": [0.1, 0.2, 0.3], "popularity": [0.05, 0.04, 0.06]}


def test_history_bars_follow_buckets_in_order():
    fig = history_figure(report())
    ax = fig.axes[0]
    heights = {c.get_label(): [p.get_height() for p in c.patches] for c in ax.containers}
    assert heights == {"hybrid": [0.4, 0.3, 0.2], "popularity": [0.2, 0.1, 0.07]}
    assert [t.get_text().split()[0] for t in ax.get_xticklabels()] == ["0-4", "5-19", "20+"]


def test_sentiment_bars_per_corpus():
    ax = sentiment_figure(report()).axes[0]
    heights = {c.get_label(): [p.get_height() for p in c.patches] for c in ax.containers}
    assert heights == {"VADER rule": [0.5, 0.55], "facet shipped": [0.4, 0.45], "facet learned": [0.6, 0.65]}


def test_write_plots_saves_only_what_the_report_has(tmp_path):
    only_sentiment = {"sentiment": report()["sentiment"]}
    assert [p.name for p in write_plots(only_sentiment, tmp_path / "a")] == ["sentiment-by-corpus.png"]
    written = write_plots(report(), tmp_path / "b")
    assert len(written) == 4
    for path in written:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_shift_lines_per_model_at_the_window_ends_and_the_level_before():
    ax = shift_figure(report()).axes[0]
    lines = {line.get_label(): (list(line.get_xdata()), list(line.get_ydata())) for line in ax.get_lines()}
    assert lines["learning"] == ([100, 200, 300], [0.03, 0.08, 0.13])
    assert lines["frozen at the shift"] == ([100, 200, 300], [0.01, 0.0, 0.02])
    assert lines["learning, before the shift"][1] == [0.12, 0.12]
