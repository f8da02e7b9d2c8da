"""Where the repository and the downloaded eval datasets are."""

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EVAL_DATA = ROOT / os.environ.get("INTEREST_STREAM_EVAL_DATA_DIR", ".eval-data")
