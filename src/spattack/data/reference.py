"""Compare our leave-one-out split with the authors' preprocessed reference files.

Reference format (shared/data/PROVENANCE.md §4): one line per user, `u i1 i2 ...`, 0-based
ids separated by single spaces: `train.txt` (training items in the authors' order) and
`test.txt` (one item). For ML-1M only `test.txt` and `train.part-1%.txt` (a random 1%
sample of each user's training items) exist; with the partial ratings file (users 1-2999)
only those users can be checked.

Reported per dataset: the share of users whose test item matches, whose training SET
matches, whose training LINE (order included) matches, whose `train.part-1%` items all lie
in our training set, and whether a reference-format rendering of our split is
byte-identical to `train.txt` / `test.txt`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from .datasets import make_split
from .split import Split, read_split

REFERENCE_FILES = ("train.txt", "test.txt", "train.part-1%.txt")


def render_lines(user: np.ndarray, item: np.ndarray, n_users: int) -> pd.Series:
    """Reference-format line of every user 0..n_users-1 (`u i1 i2 ...`), rows in given order."""
    items = pd.Series(np.asarray(item).astype(str)).groupby(np.asarray(user), sort=True).agg(" ".join)
    items = items.reindex(range(n_users), fill_value="")
    head = pd.Series(np.arange(n_users).astype(str))
    return (head + np.where(items.to_numpy() == "", "", " ") + items.to_numpy()).rename("line")


def render_reference(split: Split) -> tuple[str, str]:
    """(train.txt, test.txt) texts of `split` in the authors' format."""
    train = render_lines(split.train["user"].to_numpy(), split.train["item"].to_numpy(), split.n_users)
    test = render_lines(split.test["user"].to_numpy(), split.test["item"].to_numpy(), split.n_users)
    return "\n".join(train) + "\n", "\n".join(test) + "\n"


def read_reference(path: str | Path) -> pd.DataFrame:
    """Rows (user, item, pos) of a reference file; `pos` is the item's place in its line."""
    lines = Path(path).read_text().splitlines()
    tokens = pd.Series(lines).str.split().explode().dropna()
    pos = tokens.groupby(level=0).cumcount().to_numpy()
    values = tokens.to_numpy().astype(np.int64)
    line_no = tokens.index.to_numpy()
    users = pd.Series(values[pos == 0], index=line_no[pos == 0])
    is_item = pos > 0
    return pd.DataFrame({"user": users.loc[line_no[is_item]].to_numpy(), "item": values[is_item],
                         "pos": pos[is_item] - 1})


def _pairs_key(user: np.ndarray, item: np.ndarray) -> np.ndarray:
    return np.asarray(user, dtype=np.int64) * (1 << 32) + np.asarray(item, dtype=np.int64)


def compare(split: Split, reference_dir: str | Path) -> dict:
    """Match statistics of `split` against the reference files found in `reference_dir`."""
    ref_dir = Path(reference_dir)
    ours_users = np.arange(split.n_users)
    res: dict = {"users_ours": split.n_users}

    test_path = ref_dir / "test.txt"
    if test_path.is_file():
        ref = read_reference(test_path)
        res["users_ref"] = int(ref["user"].nunique())
        ours = pd.Series(split.test["item"].to_numpy(), index=split.test["user"].to_numpy())
        common = ref[ref["user"].isin(ours_users)]
        res["test_checked"] = len(common)
        res["test_matched"] = int((ours.loc[common["user"]].to_numpy() == common["item"].to_numpy()).sum())

    train_path = ref_dir / "train.txt"
    if train_path.is_file():
        ref = read_reference(train_path)
        ref_users = np.unique(ref["user"])
        res.setdefault("users_ref", len(ref_users))
        checked = np.intersect1d(ref_users, ours_users)
        ours_t = split.train
        ours_n = np.bincount(ours_t["user"], minlength=split.n_users)
        ref_n = np.bincount(ref["user"], minlength=max(split.n_users, int(ref["user"].max()) + 1))
        hit = np.isin(_pairs_key(ref["user"], ref["item"]), _pairs_key(ours_t["user"], ours_t["item"]))
        hit_n = np.bincount(ref["user"][hit], minlength=len(ref_n))
        same_set = (hit_n[checked] == ref_n[checked]) & (ours_n[checked] == ref_n[checked])
        res["train_checked"] = len(checked)
        res["train_matched"] = int(same_set.sum())
        ours_lines = render_lines(ours_t["user"].to_numpy(), ours_t["item"].to_numpy(), split.n_users)
        ref_lines = pd.Series(train_path.read_text().splitlines())
        ref_lines.index = ref_lines.str.split(" ", n=1).str[0].astype(np.int64)
        res["train_order_matched"] = int((ours_lines.loc[checked].to_numpy() == ref_lines.loc[checked].to_numpy()).sum())

    part_path = ref_dir / "train.part-1%.txt"
    if part_path.is_file():
        ref = read_reference(part_path)
        ref = ref[ref["user"] < split.n_users]
        ours_t = split.train
        inside = np.isin(_pairs_key(ref["user"], ref["item"]), _pairs_key(ours_t["user"], ours_t["item"]))
        bad_users = np.unique(ref["user"].to_numpy()[~inside])
        is_test = np.isin(_pairs_key(ref["user"], ref["item"]), _pairs_key(split.test["user"], split.test["item"]))
        res["part_checked"] = split.n_users
        res["part_inside"] = split.n_users - len(bad_users)
        res["part_is_test"] = int(is_test.sum())

    train_text, test_text = render_reference(split)
    for name, text in (("train", train_text), ("test", test_text)):
        path = ref_dir / f"{name}.txt"
        if not path.is_file():
            res[f"{name}_identical"] = None
            continue
        ref_bytes, ours = path.read_bytes(), text.encode()
        ref_lines = ref_bytes.count(b"\n")
        if split.n_users < ref_lines:  # partial data (ML-1M users 1-2999): compare the lines we have
            ref_bytes = b"".join(ref_bytes.splitlines(keepends=True)[: split.n_users])
        res[f"{name}_identical"] = ref_bytes == ours
        res[f"{name}_lines_compared"] = min(split.n_users, ref_lines)
        res[f"{name}_lines_ref"] = ref_lines
    return res


def _pct(n, d) -> str:
    if d is None or (isinstance(d, float) and np.isnan(d)) or not d:
        return "n/a"
    return f"{int(n):,}/{int(d):,} ({100 * n / d:.2f}%)"


def _identical(r: dict, name: str) -> str:
    flag = r.get(f"{name}_identical")
    if flag is None:
        return "n/a"
    text = "yes" if flag else "no"
    n, total = r.get(f"{name}_lines_compared"), r.get(f"{name}_lines_ref")
    return text if n == total else f"{text} (first {n:,} of {total:,} lines)"


def match_table(results: dict[str, dict]) -> pd.DataFrame:
    """One row per dataset with the raw counts of `compare` and readable n/N (x%) columns."""
    rows = []
    for dataset, r in results.items():
        g = r.get
        rows.append({
            "dataset": dataset,
            "mode": g("mode", ""),
            "source": g("source", ""),
            "users_ours": g("users_ours"),
            "users_ref": g("users_ref"),
            "test_item_match": _pct(g("test_matched", 0), g("test_checked")),
            "train_set_match": _pct(g("train_matched", 0), g("train_checked")),
            "train_order_match": _pct(g("train_order_matched", 0), g("train_checked")),
            "train_part1pct_inside": _pct(g("part_inside", 0), g("part_checked")),
            "train_bytes_identical": _identical(r, "train"),
            "test_bytes_identical": _identical(r, "test"),
            **{k: g(k) for k in COUNT_COLUMNS},
        })
    # nullable integers: a count that does not apply to a dataset stays empty, not 943.0
    return pd.DataFrame(rows).astype({k: "Int64" for k in COUNT_COLUMNS})


COUNT_COLUMNS = ("test_matched", "test_checked", "train_matched", "train_order_matched", "train_checked",
                 "part_inside", "part_checked", "part_is_test")


SUMMARY_COLUMNS = ["dataset", "mode", "users_ours", "users_ref", "test_item_match", "train_set_match",
                   "train_order_match", "train_part1pct_inside", "train_bytes_identical", "test_bytes_identical"]


def _raw_ratings(dataset: str, raw_root: Path) -> Path:
    """The raw interaction file of `dataset` under `raw_root`; for ML-1M falls back to a
    partial `ratings*.dat.gz` (the shared mirror's users 1-2999 file) for checking only."""
    folder = raw_root / dataset
    if dataset == "ml-1m":
        for name in ("ratings.dat", "ratings.dat.gz"):
            if (folder / name).is_file():
                return folder / name
        partial = sorted(folder.glob("ratings*.dat.gz"))
        if partial:
            return partial[0]
    return folder


def main(argv: list[str] | None = None) -> int:
    """CLI: print (and optionally save) the match rates of our splits against the reference."""
    p = argparse.ArgumentParser(
        prog="spattack-check-split",
        description="Compare leave-one-out splits with the authors' reference train.txt/test.txt.")
    p.add_argument("--reference", required=True, type=Path,
                   help="folder with <dataset>/train.txt, test.txt (e.g. ../shared/data/reference-splits)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--splits", type=Path, help="folder with <dataset>/{train,test,users,items}.tsv (results/data)")
    src.add_argument("--raw", type=Path, help="raw mirror folder <dataset>/<file>: split on the fly")
    p.add_argument("--mode", choices=["paper", "correct"], default="paper", help="split mode with --raw")
    p.add_argument("--datasets", nargs="+", default=None, help="default: every dataset with reference files")
    p.add_argument("--csv", type=Path, help="also write the table as CSV")
    p.add_argument("--md", type=Path, help="also write the table as Markdown")
    args = p.parse_args(argv)

    datasets = args.datasets or sorted(d.name for d in args.reference.iterdir() if (d / "test.txt").is_file())
    results = {}
    for ds in datasets:
        if args.raw is not None:
            source = _raw_ratings(ds, args.raw)
            split = make_split(ds, source, args.mode)
            mode = args.mode
            source = split.info["source"]
        else:
            split, mode, source = read_split(args.splits / ds), "", str(args.splits / ds)
        results[ds] = {**compare(split, args.reference / ds), "mode": mode, "source": source}
    table = match_table(results)
    from ..reporting.tables import markdown_table, write_table

    print(markdown_table(table[SUMMARY_COLUMNS]), end="")
    write_table(table, args.csv, args.md, title="Split vs. reference", md_columns=SUMMARY_COLUMNS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
