"""Raw interaction files -> leave-one-out split with 0-based ids, in two modes.

`mode="paper"` reproduces the authors' preprocessed splits exactly, parsing accidents
included (shared/data/PROVENANCE.md §5); `mode="correct"` parses the files properly and
keeps every other rule. The common rules (both modes, all datasets):

1. Item index = order of first appearance of the item key over ALL rows read (before
   any user filter), so `items.tsv` may list items no kept user has (Steam: 5,134 keys
   in paper mode, of which 5,092 occur in the split).
2. Users with fewer than `min_interactions` distinct items are dropped (2 for the
   MovieLens sets: one to train on, one to test; 5 for Steam, as the authors do). No
   MovieLens user is affected (every user has >= 20 ratings).
3. User index = order of first appearance among the kept users (ML-1M paper mode:
   UserID - 1, which is the same thing for the sorted ratings.dat).
4. Per user, a stable sort by timestamp (file order for Steam, which has none): the LAST
   row is the test item (so on a tie the row latest in the file wins), the others are
   the training items in that order.

Paper-mode accidents:
- ML-100K: `u.data` was read with its first line taken as a header: rating
  `196 242 3 881250949` is lost (99,999 interactions).
- Steam: lines were split naively on ',' without CSV quote handling; the item key is the
  title field as written (quotes included) and titles containing a comma are cut at it
  (`"Warhammer 40,000: ..."` -> `"Warhammer 40`), 5,155 titles -> 5,134 keys.

Correct-mode choices: ML-100K keeps all 100,000 lines; Steam is parsed as CSV and the
key is the unquoted title; duplicate (user, item) rows are dropped for every dataset
(keeping the first in file order; MovieLens has none); both purchase and play rows
count, as in the paper (a played game is a purchased one).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..runio import atomic_path


MODES = ("paper", "correct")


@dataclass(frozen=True)
class Rules:
    """Dataset-specific split rules (see the module docstring)."""

    min_interactions: int
    dedupe: bool
    user_index: str = "first"  # "first" (first appearance) or "raw-1" (UserID - 1)


@dataclass
class Split:
    """A leave-one-out split: `train`/`test` hold (user, item) rows with internal ids,
    train rows grouped by user in the authors' order; `users[u]`/`items[j]` are raw ids."""

    train: pd.DataFrame
    test: pd.DataFrame
    users: np.ndarray
    items: np.ndarray
    info: dict = field(default_factory=dict)

    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_items(self) -> int:
        return len(self.items)


# ---------------------------------------------------------------------------------------
# readers: each returns one row per raw interaction, in file order, with columns
# user (raw id), item (raw key), time (sort key)


def check_mode(mode: str) -> None:
    """ValueError unless `mode` is one of MODES."""
    if mode not in MODES:
        raise ValueError(f"unknown split mode {mode!r}; use one of {MODES}")


def read_ml100k(path: str | Path, mode: str = "paper") -> pd.DataFrame:
    """`u.data` (user, item, rating, timestamp; tab-separated). Paper mode loses line 1."""
    check_mode(mode)
    df = pd.read_csv(path, sep="\t", header=None, names=["user", "item", "rating", "time"],
                     usecols=["user", "item", "time"], dtype="int64")
    if mode == "paper":
        df = df.iloc[1:].reset_index(drop=True)  # the authors' header=0 accident
    return df[["user", "item", "time"]]


def read_ml1m(path, mode: str = "paper") -> pd.DataFrame:
    """`ratings.dat` (UserID::MovieID::Rating::Timestamp), a path or an open file. Both
    modes keep line 1."""
    check_mode(mode)
    # splitting on ':' turns '::' into an empty field between the values; the C parser is
    # much faster than the python engine that a two-character separator would need.
    df = pd.read_csv(path, sep=":", header=None, usecols=[0, 2, 6], names=range(7), dtype="int64")
    df.columns = ["user", "item", "time"]
    return df


def read_steam(path: str | Path, mode: str = "paper") -> pd.DataFrame:
    """`steam-200k.csv` (user_id,"title",behavior,hours,0; no header). `time` = row number."""
    check_mode(mode)
    if mode == "paper":
        with open(path, encoding="utf-8", newline="") as fh:
            lines = pd.Series(fh.read().splitlines())
        fields = lines.str.split(",", n=2, expand=True)  # naive split: title cut at its first comma
        df = pd.DataFrame({"user": fields[0].astype("int64"), "item": fields[1]})
    else:
        df = pd.read_csv(path, header=None, names=["user", "item", "behavior", "hours", "zero"],
                         usecols=["user", "item"], dtype={"user": "int64", "item": str},
                         keep_default_na=False, na_filter=False, quoting=csv.QUOTE_MINIMAL)
    df["time"] = np.arange(len(df), dtype=np.int64)
    return df


# ---------------------------------------------------------------------------------------
# the split


def leave_one_out(events: pd.DataFrame, rules: Rules) -> Split:
    """Leave-one-out split of `events` (user, item, time rows in file order) under `rules`."""
    n_rows = len(events)
    item_codes, item_keys = pd.factorize(events["item"], sort=False)
    users_raw = events["user"].to_numpy()
    time = events["time"].to_numpy()

    keep = np.ones(n_rows, dtype=bool)
    if rules.dedupe:
        keep &= ~pd.DataFrame({"u": users_raw, "i": item_codes}).duplicated(keep="first").to_numpy()
    n_duplicates = int(n_rows - keep.sum())
    user_codes, user_keys = pd.factorize(users_raw, sort=False)
    per_user = np.bincount(user_codes[keep], minlength=len(user_keys))
    kept_user = per_user >= rules.min_interactions
    keep &= kept_user[user_codes]

    users_raw, item_idx, time = users_raw[keep], item_codes[keep].astype(np.int64), time[keep]
    if rules.user_index == "raw-1":
        user_idx = users_raw.astype(np.int64) - 1
        present = np.unique(user_idx)
        if len(present) == 0 or present[0] != 0 or present[-1] != len(present) - 1:
            raise ValueError("UserID - 1 indexing needs user ids 1..N without gaps "
                             f"(found {len(present)} users between {present.min() + 1} and {present.max() + 1})")
        user_raw_ids = present + 1
    else:
        user_idx, user_raw_ids = pd.factorize(users_raw, sort=False)
        user_idx = user_idx.astype(np.int64)
        user_raw_ids = np.asarray(user_raw_ids)

    order = np.lexsort((time, user_idx))  # stable: ties keep file order
    u, i = user_idx[order], item_idx[order]
    is_last = np.ones(len(u), dtype=bool)
    is_last[:-1] = u[1:] != u[:-1]
    train = pd.DataFrame({"user": u[~is_last], "item": i[~is_last]})
    test = pd.DataFrame({"user": u[is_last], "item": i[is_last]})
    info = {
        "rows_read": n_rows,
        "duplicates_dropped": n_duplicates,
        "users_dropped": int((~kept_user).sum()),
        "users": len(user_raw_ids),
        "items": len(item_keys),
        "items_used": int(len(np.unique(item_idx))),
        "interactions": int(len(u)),
    }
    return Split(train, test, np.asarray(user_raw_ids), np.asarray(item_keys, dtype=object), info)


def write_split(split: Split, out_dir: str | Path) -> dict[str, Path]:
    """Write `train.tsv`, `test.tsv` (user, item) and `users.tsv`, `items.tsv` (id, raw_id).

    The files are tab-separated with a header; raw ids use CSV quoting where needed (a
    Steam paper-mode key such as `"Warhammer 40` is written `\"\"\"Warhammer 40\"`), so
    `pandas.read_csv(path, sep="\\t")` reads them back unchanged. Each file is written
    through `runio.atomic_path` (the folder created if missing; OSError as it raises it),
    so an interrupted split leaves no truncated file."""
    out = Path(out_dir)
    frames = {"train": split.train, "test": split.test,
              "users": pd.DataFrame({"user": np.arange(split.n_users), "raw_id": split.users}),
              "items": pd.DataFrame({"item": np.arange(split.n_items), "raw_id": split.items})}
    paths = {name: out / f"{name}.tsv" for name in frames}
    for name, frame in frames.items():
        with atomic_path(paths[name]) as tmp:
            frame.to_csv(tmp, sep="\t", index=False)
    return paths


def read_split(split_dir: str | Path) -> Split:
    """Read a split written by `write_split` (raw ids as strings)."""
    d = Path(split_dir)
    train = pd.read_csv(d / "train.tsv", sep="\t", dtype="int64")
    test = pd.read_csv(d / "test.tsv", sep="\t", dtype="int64")
    users = pd.read_csv(d / "users.tsv", sep="\t", dtype=str, keep_default_na=False)
    items = pd.read_csv(d / "items.tsv", sep="\t", dtype=str, keep_default_na=False)
    return Split(train, test, users["raw_id"].to_numpy(), items["raw_id"].to_numpy())
