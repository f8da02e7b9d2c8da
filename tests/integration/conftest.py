"""The real bundled broker (Tansu), fresh for each test module."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from streams.tools.broker import EmbeddedBroker


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """A fresh in-memory broker per test module, so modules never see each other's topics."""
    log = Path(tmp_path_factory.mktemp("broker")) / "tansu.log"
    with EmbeddedBroker(log_file=log) as b:
        yield b
