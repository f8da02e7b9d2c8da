"""`interest-stream` command line (one settings object: environment, then these flags):

    worker   consume events, keep profiles and the item index, serve the API
    replay   send a JSONL file of events to the broker, each to its topic
    demo     everything embedded: bundled broker, a worker, the bundled sample data (--news: alerting)
    eval     recommendations and sentiment on real public data, through a real worker
    bench    throughput and latency against ceilings measured in the same run

Only ``worker`` is part of the running service; the other commands are tools (streams/tools/) and
import the bundled broker and the datasets only when they run.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import click

from streams.settings import Settings, SettingsError


def _settings(**overrides: object) -> Settings:
    try:
        return Settings.from_env(os.environ).with_overrides(**overrides)
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from exc


@click.group()
def main() -> None:
    """Streaming, real-time updater of multi-facet user interests."""


@main.command()
@click.option("--broker", help="kafka://HOST:PORT (env INTEREST_STREAM_BROKER)")
@click.option("--app-id", help="Faust app id / consumer group (env INTEREST_STREAM_APP_ID)")
@click.option("--web-host", help="API bind address (env INTEREST_STREAM_WEB_HOST)")
@click.option("--web-port", type=int, help="API port (env INTEREST_STREAM_WEB_PORT)")
@click.option("--data-dir", help="local state folder (env INTEREST_STREAM_DATA_DIR)")
@click.option("--model", help="HF model id in the local cache, or a model folder (env INTEREST_STREAM_MODEL)")
@click.option("--device", help="auto | cpu | cuda (env INTEREST_STREAM_DEVICE)")
@click.option("--log-level", help="debug | info | warning (env INTEREST_STREAM_LOG_LEVEL)")
def worker(broker, app_id, web_host, web_port, data_dir, model, device, log_level) -> None:
    """Run a worker: consume events, keep profiles and the item index, serve the API."""
    settings = _settings(
        broker=broker,
        app_id=app_id,
        web_host=web_host,
        web_port=web_port,
        data_dir=data_dir,
        log_level=log_level,
        **{"encoder.model": model, "encoder.device": device},
    )
    run_worker(settings)


def run_worker(settings: Settings) -> None:
    import faust
    from aiokafka.errors import KafkaConnectionError

    from schemas.topics import TABLES, TOPICS, changelog_topic, item_vectors_topic
    from streams.errors import TopicLayoutError
    from streams.threads import limit_threads
    from streams.worker.app import build_worker
    from streams.worker.topic_admin import ensure_topics

    limit_threads(settings)
    changelogs = [changelog_topic(settings.app_id, t) for t in TABLES]
    vectors = item_vectors_topic(settings.app_id)
    try:
        partitions = asyncio.run(ensure_topics(settings.bootstrap, [t.name for t in TOPICS] + [vectors],
                                                settings.partitions, check=changelogs, compacted=[vectors],
                                                wait_s=settings.broker_wait_s))
    except TopicLayoutError as exc:
        raise click.ClickException(str(exc)) from exc
    except (KafkaConnectionError, OSError) as exc:  # still unreachable after broker_wait_s of retries
        raise click.ClickException(f"cannot reach the broker at {settings.broker}: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - the broker answered but refused: say what it said
        raise click.ClickException(
            f"the broker at {settings.broker} answered, but checking or creating the topics failed: "
            f"{type(exc).__name__}: {exc}") from exc
    worker = build_worker(settings.with_overrides(partitions=partitions))
    faust.Worker(worker.app, loglevel=settings.log_level, redirect_stdouts=False).execute_from_commandline()


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--broker", help="kafka://HOST:PORT (env INTEREST_STREAM_BROKER)")
def replay(file: Path, broker: str | None) -> None:
    """Send a JSONL file of events (each with a 'type') to the broker. The file is checked first
    (nothing is sent if a line is bad), then streamed, with progress and events/s on stderr."""
    from streams.errors import ReplayError
    from streams.tools.replay import replay_file

    settings = _settings(broker=broker)
    try:
        sent, seconds = replay_file(file, settings.broker, settings.partitions)
    except ReplayError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"sent {sent} events from {file} to {settings.broker} in {seconds:.1f}s "
               f"({sent / max(seconds, 1e-9):.0f} events/s)")


@main.command()
@click.option("--data", "data_dir", type=click.Path(file_okay=False, path_type=Path),
              help="folder with items.jsonl, before.jsonl, after.jsonl")
@click.option("--users", "show_users", default=3, show_default=True, help="how many users to print")
@click.option("--news", is_flag=True, help="the news-alerting demo instead (data: news.jsonl)")
@click.option("--screenshot", "screenshot_to", type=click.Path(dir_okay=False, path_type=Path),
              help="also save a PNG of the live page (/ui, or /ui/alerts with --news); needs chromium")
def demo(data_dir: Path | None, show_users: int, news: bool, screenshot_to: Path | None) -> None:
    """Run everything embedded: bundled broker, a worker, the bundled sample data."""
    from streams.tools.demo import run_demo, run_news_demo

    if news:
        sys.exit(run_news_demo(_settings(), data_dir=data_dir, screenshot_to=screenshot_to))
    sys.exit(run_demo(_settings(), data_dir=data_dir, show_users=show_users, screenshot_to=screenshot_to))


@main.command(name="eval")
@click.option("--data", "data_dir", type=click.Path(file_okay=False, path_type=Path),
              help="folder with the dataset package files scripts/setup fetched (env INTEREST_STREAM_EVAL_DATA_DIR)")
@click.option("--users", type=int, default=0, show_default=True, help="MovieLens users to evaluate (0 = all 943)")
@click.option("--sentiment-limit", type=int, default=0, show_default=True, help="snippets per corpus (0 = all)")
@click.option("--only", type=click.Choice(["retrieval", "sentiment"]), help="run one half only")
@click.option("--sasrec-epochs", type=int, default=30, show_default=True,
              help="epochs of the offline SASRec reference (0 = skip it)")
@click.option("--shift-events", type=int, default=16000, show_default=True,
              help="ratings in the planted-shift run, items permuted halfway (0 = skip it)")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), help="also write the figures here")
@click.option("--plots", "plots_dir", type=click.Path(file_okay=False, path_type=Path),
              help="also write PNG charts here (needs the eval extra: matplotlib)")
@click.option("--from-json", "from_json", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="measure nothing: print and plot a report saved earlier with --json")
def evaluate(data_dir, users, sentiment_limit, only, sasrec_epochs, shift_events, json_out, plots_dir, from_json) -> None:
    """Measure recommendations and the facets on real public data: next-item HR/nDCG@10 on
    MovieLens 100K, prequential and leave-last-out (the worker's hybrid, facet Z, co-engagement,
    popularity, an offline SASRec), recovery after a planted shift next to a frozen model,
    sentiment accuracy/macro-F1 vs VADER on human-rated snippets."""
    import orjson

    from streams.errors import EvalDataMissing, EvalError
    from streams.tools.evaluate import EvalConfig, format_report, run_eval

    try:
        if plots_dir:  # before a long run: a missing matplotlib should not surface after 15 minutes
            from streams.tools.eval_plots import pyplot, write_plots

            pyplot()
        if from_json:
            report = orjson.loads(from_json.read_bytes())
            if not isinstance(report, dict) or "wall_s" not in report:
                raise EvalError(f"{from_json} is not a report saved by `eval --json`")
        else:
            settings = _settings(eval_data_dir=str(data_dir) if data_dir else None)
            cfg = EvalConfig(Path(settings.eval_data_dir), users=users, sentiment_limit=sentiment_limit,
                             sasrec_epochs=sasrec_epochs, shift_events=shift_events,
                             retrieval=only != "sentiment", sentiment=only != "retrieval")
            report = run_eval(settings, cfg, json_out)
        click.echo(format_report(report))
        if plots_dir:
            for path in write_plots(report, plots_dir):
                click.echo(f"chart: {path}")
    except (EvalDataMissing, EvalError, orjson.JSONDecodeError) as exc:
        raise click.ClickException(str(exc)) from exc


@main.command()
@click.option("--items", type=int, default=2000, show_default=True)
@click.option("--users", type=int, default=200, show_default=True)
@click.option("--text-events", type=int, default=1500, show_default=True, help="searches + reviews")
@click.option("--clicks", type=int, default=5000, show_default=True)
@click.option("--long-history", type=int, default=250, show_default=True,
              help="clicks per user before clicks are measured again, at the end (0 = skip)")
@click.option("--search-repeat", type=float, default=0.3, show_default=True, help="share of repeated queries")
@click.option("--naive-events", type=int, default=300, show_default=True)
@click.option("--big-items", type=int, default=1_000_000, show_default=True,
              help="items of the synthetic catalogue for the live index's big-catalogue figures (0 = skip)")
@click.option("--big-http-items", type=int, default=1_000_000, show_default=True,
              help="items of the synthetic catalogue a worker process serves recommendations from over HTTP (0 = skip)")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), help="also write the figures here")
def bench(items, users, text_events, clicks, long_history, search_repeat, naive_events, big_items, big_http_items,
          json_out) -> None:
    """Measure the pipeline against ceilings taken in the same run (bundled broker)."""
    from streams.tools.bench import BenchConfig, format_report, run_bench

    cfg = BenchConfig(users=users, items=items, text_events=text_events, click_events=clicks, long_history=long_history,
                      search_repeat=search_repeat, naive_events=naive_events, big_items=big_items,
                      big_http_items=big_http_items)
    report = run_bench(_settings(), cfg, json_out)
    click.echo(format_report(report))


if __name__ == "__main__":
    main()
