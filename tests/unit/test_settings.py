from __future__ import annotations

import functools
import re
from pathlib import Path

import pytest

from streams.settings import ENV_FIELDS, Settings, SettingsError


def test_defaults_are_valid_and_point_at_the_bundled_model():
    s = Settings()
    s.validate()
    assert s.encoder.model == "" and s.broker.startswith("kafka://")


def test_environment_then_overrides():
    env = {
        "INTEREST_STREAM_BROKER": "kafka://kafka:9092",
        "INTEREST_STREAM_WEB_PORT": "7000",
        "INTEREST_STREAM_HALF_LIFE_S": "60",
        "INTEREST_STREAM_EVENT_WEIGHTS": "search=1,click=0.5,review=4",
        "INTEREST_STREAM_MODEL": "/models/minilm",
        "INTEREST_STREAM_BEHAVIOUR_DIM": "16",
        "INTEREST_STREAM_BEHAVIOUR": "off",
        "INTEREST_STREAM_CATALOGUE_WAIT_S": "0",
        "INTEREST_STREAM_ENCODER_DTYPE": "float32",
        "UNRELATED": "x",
    }
    s = Settings.from_env(env)
    assert (s.broker, s.web_port, s.decay.half_life_s) == ("kafka://kafka:9092", 7000, 60.0)
    assert s.decay.event_weights == {"search": 1.0, "click": 0.5, "review": 4.0}
    assert (s.encoder.model, s.encoder.dtype) == ("/models/minilm", "float32")
    behaviour = s.recommend.engagement.behaviour
    assert (behaviour.dim, behaviour.enabled, behaviour.lr, s.catalogue_wait_s) == (16, False, 0.05, 0.0)
    t = s.with_overrides(web_port=7001, broker=None, **{"encoder.device": "cpu"})
    assert (t.web_port, t.broker, t.encoder.device) == (7001, "kafka://kafka:9092", "cpu")


@pytest.mark.parametrize(
    "env, message",
    [
        ({"INTEREST_STREAM_WEB_PORT": "eighty"}, "INTEREST_STREAM_WEB_PORT"),
        ({"INTEREST_STREAM_BROKER": "localhost:9092"}, "kafka://HOST:PORT"),
        ({"INTEREST_STREAM_EVENT_WEIGHTS": "search"}, "name=number"),
        ({"INTEREST_STREAM_EVENT_WEIGHTS": "search=1,click=-1,review=1"}, "must be > 0"),
        ({"INTEREST_STREAM_EVENT_WEIGHTS": "search=1"}, "lacks"),
        ({"INTEREST_STREAM_HALF_LIFE_S": "0"}, "half_life_s"),
        ({"INTEREST_STREAM_BEHAVIOUR_DIM": "0"}, "behaviour dim"),
        ({"INTEREST_STREAM_ENCODER_DTYPE": "fp8"}, "encoder dtype must be one of auto, float32"),
        ({"INTEREST_STREAM_ENCODER_THREADS": "-1"}, "encoder threads must be >= 0"),
        ({"INTEREST_STREAM_SEEN_ITEMS_MAX": "0"}, "seen_items_max must be >= 1"),
    ],
)
def test_bad_settings_name_the_problem(env, message):
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)


def test_unknown_override_is_refused():
    with pytest.raises(SettingsError, match="unknown setting"):
        Settings().with_overrides(brokr="kafka://x:1")


def settings_rows() -> list[tuple[list[str], list[str]]]:
    """docs/settings.md's table: per row, the variables it names (INTEREST_STREAM_ dropped) and the
    backticked defaults of its second cell."""
    rows = []
    for line in (Path(__file__).parents[2] / "docs" / "settings.md").read_text().splitlines():
        cells = line.split(" | ")
        if line.startswith("| `INTEREST_STREAM_") and len(cells) >= 3:
            names = re.findall(r"`(?:INTEREST_STREAM)?_([A-Z0-9_]+)`", cells[0])
            rows.append((names, re.findall(r"`([^`]*)`", cells[1])))
    return rows


def test_every_variable_is_documented_with_its_true_default():
    """README = the truth: a setting added without a line in docs/settings.md, or a default changed
    in the code and not in the doc, fails here."""
    rows = settings_rows()
    documented = {name for names, _ in rows for name in names}
    assert set(ENV_FIELDS) - documented == set(), "variables docs/settings.md does not name"
    assert documented - set(ENV_FIELDS) == set(), "docs/settings.md names variables the code does not read"
    defaults, checked = Settings(), 0
    for names, values in rows:
        if len(values) != len(names):  # a default in words ("empty", "the shipped table")
            continue
        for name, text in zip(names, values):
            path, parse = ENV_FIELDS[name]
            actual = functools.reduce(getattr, path.split("."), defaults)
            assert parse(text) == actual, f"INTEREST_STREAM_{name}: the doc says {text!r}, the code {actual!r}"
            checked += 1
    assert checked > 60
