"""PNG charts of an `interest-stream eval` report (``eval --plots DIR``).

matplotlib is in the ``eval`` extra, not in the worker's dependencies; it is imported here only.
Each ``*_figure`` function takes the report's dict and returns a Figure (tests read its data back);
``write_plots`` saves the ones the report has data for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from streams.errors import EvalError


def pyplot():
    try:
        import matplotlib
    except ImportError as exc:  # the worker's install does not carry it
        raise EvalError("eval --plots needs matplotlib: pip install 'interest-stream[eval]'") from exc
    matplotlib.use("Agg")  # files only, never a display
    import matplotlib.pyplot as plt

    return plt


def _bars(ax: Any, groups: list[str], series: dict[str, list[float]]) -> None:
    """Grouped bars: one group per label in ``groups``, one bar per series in each group."""
    width = 0.8 / max(1, len(series))
    for n, (name, values) in enumerate(series.items()):
        xs = [g + (n - (len(series) - 1) / 2) * width for g in range(len(groups))]
        ax.bar(xs, values, width, label=name)
    ax.set_xticks(range(len(groups)), groups)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)


def windows_figure(report: dict[str, Any]):
    """Prequential HR@k per successive time window, one line per method."""
    p = report["prequential"]
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(10, 4.5))
    for name, m in p["methods"].items():
        ax.plot(range(1, len(m["by_window"]) + 1), m["by_window"], marker="o", markersize=3, label=name)
    ax.set_xlabel(f"time window (equal event counts; {p['events']} events in all)")
    ax.set_ylabel(f"HR@{p['k']}")
    ax.set_title(f"Prequential hit rate over time: {p['dataset']}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the lines, not over them
    fig.tight_layout()
    return fig


def history_figure(report: dict[str, Any]):
    """Prequential HR@k by the user's history length at the moment of the event."""
    p = report["prequential"]
    plt = pyplot()
    buckets = list(p["bucket_events"])
    fig, ax = plt.subplots(figsize=(8, 4.5))
    _bars(ax, [f"{b} earlier\n({p['bucket_events'][b]} events)" for b in buckets],
          {name: [m["by_history"][b] for b in buckets] for name, m in p["methods"].items()})
    ax.set_ylabel(f"HR@{p['k']}")
    ax.set_title("Prequential hit rate by the user's history length")
    fig.tight_layout()
    return fig


def sentiment_figure(report: dict[str, Any]):
    """Macro-F1 per corpus: VADER's rule, the facet as shipped, the facet after learning."""
    s = report["sentiment"]
    plt = pyplot()
    corpora = list(s)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    _bars(ax, corpora, {label: [s[c][key]["macro_f1"] for c in corpora]
                        for key, label in (("vader", "VADER rule"), ("facet_start", "facet shipped"),
                                           ("facet_learned", "facet learned"))})
    ax.set_ylabel("macro-F1 (3 classes)")
    ax.set_title("Sentiment facet vs human labels (VADER ground-truth snippets)")
    fig.tight_layout()
    return fig


def shift_figure(report: dict[str, Any]):
    """HR@k per window after the planted shift, learning vs frozen, against the level before it."""
    sh = report["shift"]
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    w = sh["window_events"]
    for name, hrs in sh["by_window"].items():
        ax.plot([(n + 1) * w for n in range(len(hrs))], hrs, marker="o", markersize=3, label=name)
    ax.axhline(sh["hr_before_shift"], color="grey", linestyle="--", label="learning, before the shift")
    ax.set_xlabel(f"ratings after the shift (windows of {w})")
    ax.set_ylabel(f"HR@{sh['k']}")
    ax.set_title("Recovery after a planted shift (every item permuted)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


CHARTS: dict[str, tuple[str, Callable[[dict[str, Any]], Any]]] = {
    "prequential-windows.png": ("prequential", windows_figure),
    "prequential-by-history.png": ("prequential", history_figure),
    "sentiment-by-corpus.png": ("sentiment", sentiment_figure),
    "shift-recovery.png": ("shift", shift_figure),
}


def write_plots(report: dict[str, Any], out_dir: Path) -> list[Path]:
    """Save every chart whose part of the report is present; returns the files written."""
    plt = pyplot()
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, (part, make) in CHARTS.items():
        if report.get(part):
            fig = make(report)
            fig.savefig(out_dir / name, dpi=110)
            plt.close(fig)
            written.append(out_dir / name)
    return written
