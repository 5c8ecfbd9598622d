"""Registry of the datasets: where each comes from, how its raw files are checked, read
and split, and its label. A new dataset is a reader and one `DatasetSpec` entry in
`DATASETS` (docs/extending.md).

Every raw file the split stage reads is listed with its sha256 (from
shared/data/PROVENANCE.md, measured on independently sourced copies) and its size, so a
wrong or truncated copy is caught before it is used.

PROVENANCE.md has only a verified prefix of ML-1M's `ratings.dat` (users 1-2999). Its
sha256 here was measured on a complete copy whose git blob id (77a7c4b1...) is the one two
independent repositories list for their `ml-1m/ratings.dat`, and whose first 11,908,773
bytes equal that verified prefix (docs/reproduction/README.md, ML-1M section).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..named import Registry
from .split import Rules, Split, check_mode, leave_one_out, read_ml1m, read_ml100k, read_steam

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RawFile:
    """One raw file the split stage needs.

    `sha256`/`size` identify the genuine file. `name` is also its name inside the
    dataset's archive (matched by its last path component, so a leading folder such as
    `ml-100k/` does not matter).
    """

    name: str
    sha256: str
    size: int | None = None


@dataclass(frozen=True)
class Archive:
    """A downloadable archive holding the raw files.

    `known_hash` uses pooch's notation (`md5:...` or `sha256:...`); None means the archive
    itself is not checked (its members still are). `size` is its length in bytes: a
    download is stopped as soon as it grows past it (None: see `download.archive_limit`).
    """

    url: str
    filename: str
    known_hash: str | None
    size: int | None = None


@dataclass(frozen=True)
class DatasetSpec:
    """How to obtain and check one dataset.

    `archive` is the canonical download (None when there is no public direct URL, as for
    Steam on Kaggle); `kaggle` names a Kaggle dataset the `kaggle` CLI can download.
    `ratings` is the file the split stage reads: `reader(path_or_file, mode)` returns one
    row per raw interaction in file order (columns user, item, time; `split` module) and
    `rules(mode)` gives its `split.Rules`. `label` names it in tables and figures.
    `cell_resources`: what one training cell on it asks a scheduler for (Snakemake
    resources `mem_mb`, MB, and `runtime`, minutes, at the paper's 200 epochs on CPU).
    """

    name: str
    files: tuple[RawFile, ...]
    label: str = ""
    reader: Callable[..., pd.DataFrame] | None = None
    rules: Callable[[str], Rules] | None = None
    cell_resources: dict = field(default_factory=lambda: {"mem_mb": 2000, "runtime": 60})
    archive: Archive | None = None
    kaggle: str | None = None
    homepage: str = ""
    licence: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def ratings(self) -> RawFile:
        """The interaction file (the first listed file)."""
        return self.files[0]

    def read(self, path: str | Path, mode: str) -> pd.DataFrame:
        """The interactions of the ratings file `path` (a `.gz` of it is inflated only up
        to the genuine file's size: `download.SizeLimitError` past it)."""
        if self.reader is None:
            raise ValueError(f"dataset {self.name!r} has no reader; give its DatasetSpec a `reader`")
        check_mode(mode)
        if str(path).endswith(".gz"):
            from .download import open_gzip_limited  # download imports this registry

            with open_gzip_limited(path, self.ratings.size, self.ratings.name) as fh:
                return self.reader(fh, mode)
        return self.reader(path, mode)


MOVIELENS_LICENCE = "MovieLens licence: no redistribution without GroupLens' permission"


def grouplens_archive(name: str, known_hash: str, size: int) -> Archive:
    """The MovieLens archive `<name>.zip` on files.grouplens.org (`size`: the
    Content-Length it serves)."""
    return Archive(url=f"https://files.grouplens.org/datasets/movielens/{name}.zip", filename=f"{name}.zip",
                   known_hash=known_hash, size=size)


ML_100K = DatasetSpec(
    name="ml-100k",
    label="ML-100K",
    reader=read_ml100k,
    rules=lambda mode: Rules(min_interactions=2, dedupe=mode == "correct"),
    files=(RawFile("u.data", sha256="06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490", size=1_979_173),),
    archive=grouplens_archive("ml-100k", known_hash="md5:0e33842e24a9c977be4e0107933c0723", size=4_924_029),
    homepage="https://grouplens.org/datasets/movielens/100k/",
    licence=MOVIELENS_LICENCE,
)

ML_1M = DatasetSpec(
    name="ml-1m",
    label="ML-1M",
    reader=read_ml1m,
    rules=lambda mode: Rules(min_interactions=2, dedupe=mode == "correct",
                             user_index="raw-1" if mode == "paper" else "first"),
    cell_resources={"mem_mb": 6000, "runtime": 240},
    files=(RawFile("ratings.dat", sha256="506d64ca44484487c11dc2d9a28de5c54948213e6b96285e298afe28d6ea4e0f", size=24_594_131),),
    archive=grouplens_archive("ml-1m", size=5_917_549,
                              known_hash="sha256:a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20"),
    homepage="https://grouplens.org/datasets/movielens/1m/",
    licence=MOVIELENS_LICENCE,
)

STEAM = DatasetSpec(
    name="steam",
    label="Steam",
    reader=read_steam,
    rules=lambda mode: Rules(min_interactions=5, dedupe=True),
    files=(RawFile("steam-200k.csv", sha256="2464a568e9b6b007d13d34e2e3a6c8de00e5e7443f4913155f365aaa328c2874", size=8_958_107),),
    archive=None,
    kaggle="tamber/steam-video-games",
    homepage="https://www.kaggle.com/datasets/tamber/steam-video-games",
    licence="Kaggle dataset tamber/steam-video-games (Steam public data)",
    # sha256 of Kaggle's download `steam-video-games.zip` (PROVENANCE.md §3), for reference:
    # a zip given via `steam_url` may be packed differently, so only its member is checked.
    extra={"kaggle_zip_sha256": "7e99e8cefa014c45babd9c5e749454921e82baa9a14fc659e38b34b33c84daf2"},
)

DATASETS: Registry = Registry("dataset", {spec.name: spec for spec in (ML_100K, ML_1M, STEAM)})


def get_dataset(name: str | DatasetSpec) -> DatasetSpec:
    """The registry entry for `name` (a DatasetSpec is returned unchanged)."""
    if isinstance(name, DatasetSpec):
        return name
    try:
        return DATASETS[name]
    except KeyError:
        raise KeyError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}") from None


def find_raw_file(dataset: str, raw: str | Path) -> Path:
    """The ratings file of `dataset` given either the file itself or its folder (which
    may hold it gzipped, `<name>.gz`). FileNotFoundError naming the paths tried."""
    raw = Path(raw)
    if raw.is_file():
        return raw
    name = get_dataset(dataset).ratings.name
    candidates = [raw / name, raw / f"{name}.gz"]
    for c in candidates:
        if c.is_file():
            return c
    raise FileNotFoundError(f"{dataset}: none of {', '.join(map(str, candidates))} exists; "
                            f"run the download step (spattack.data.fetch) first")


def make_split(dataset: str, raw: str | Path, mode: str = "paper") -> Split:
    """Read the ratings file of `dataset` (a file or the folder holding it) and split it
    leave-one-out under the dataset's rules (`split` module docstring)."""
    spec = get_dataset(dataset)
    if spec.rules is None:
        raise ValueError(f"dataset {spec.name!r} has no split rules; give its DatasetSpec `rules`")
    path = find_raw_file(spec.name, raw)
    split = leave_one_out(spec.read(path, mode), spec.rules(mode))
    split.info.update(dataset=spec.name, mode=mode, source=str(path))
    log.info("%s (%s mode) from %s: %s", spec.name, mode, path, split.info)
    return split
