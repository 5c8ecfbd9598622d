"""Data stage: dataset registry, verified download, leave-one-out split, reference check.

    fetch("ml-100k", "results/raw/ml-100k", mirror="../shared/data/raw")
    split = make_split("ml-100k", "results/raw/ml-100k", mode="paper")
    write_split(split, "results/data/ml-100k")
"""

from .datasets import DATASETS, DatasetSpec, RawFile, find_raw_file, get_dataset, make_split
from .download import ChecksumError, DataError, MissingRawFileError, SizeLimitError, UnsafeArchiveError, fetch
from .split import MODES, Split, leave_one_out, read_split, write_split

__all__ = [
    "DATASETS", "DatasetSpec", "RawFile", "find_raw_file", "get_dataset",
    "ChecksumError", "DataError", "MissingRawFileError", "SizeLimitError", "UnsafeArchiveError", "fetch",
    "MODES", "Split", "leave_one_out", "make_split", "read_split", "write_split",
]
