"""docker-compose.yml cannot run here (no Docker engine); check it agrees with the code instead."""

from __future__ import annotations

from pathlib import Path

import yaml

from streams.settings import ENV_PREFIX, Settings

ROOT = Path(__file__).resolve().parents[2]


def load() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_services_are_kafka_in_kraft_mode_a_worker_and_prometheus():
    services = load()["services"]
    assert set(services) == {"kafka", "worker", "prometheus"}
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    assert "controller" in kafka["environment"]["KAFKA_PROCESS_ROLES"]
    assert services["worker"]["depends_on"]["kafka"]["condition"] == "service_healthy"


def test_worker_settings_are_real_settings_and_point_at_the_kafka_service():
    services = load()["services"]
    env = {k: str(v) for k, v in services["worker"]["environment"].items()}
    ours = {k: v for k, v in env.items() if k.startswith(ENV_PREFIX)}
    settings = Settings.from_env(ours)  # every variable must parse as a setting
    unknown = [k for k in ours if k.removeprefix(ENV_PREFIX) not in _known_env_names()]
    assert not unknown, f"compose sets variables the code does not read: {unknown}"
    host, port = settings.broker.removeprefix("kafka://").split(":")
    advertised = services["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    assert f"{host}:{port}" in advertised
    published = [p.split(":") for p in services["worker"]["ports"]]
    assert [str(settings.web_port), str(settings.web_port)] in published
    assert settings.web_host == "0.0.0.0"


def test_worker_command_is_the_console_script():
    worker = load()["services"]["worker"]
    assert worker["command"][:2] == ["interest-stream", "worker"]
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'interest-stream = "streams.cli:main"' in pyproject


def _known_env_names() -> set[str]:
    from streams import settings as module

    return set(module.ENV_FIELDS)


def test_prometheus_scrapes_the_workers_metrics_endpoint():
    compose = load()
    prometheus = compose["services"]["prometheus"]
    assert prometheus["image"].startswith("prom/prometheus:")
    [config] = prometheus["configs"]
    scrape = yaml.safe_load(compose["configs"][config["source"]]["content"])["scrape_configs"][0]
    assert scrape["metrics_path"] == "/metrics"
    worker_port = compose["services"]["worker"]["environment"]["INTEREST_STREAM_WEB_PORT"]
    assert scrape["static_configs"][0]["targets"] == [f"worker:{worker_port}"]
