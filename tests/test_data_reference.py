"""Our paper-mode split against the authors' reference files, on the real raw data."""

import pytest

from spattack.data import make_split
from spattack.data.reference import compare, main, match_table


@pytest.mark.parametrize("dataset,n_users", [("ml-100k", 943), ("steam", 3753)])
def test_paper_mode_is_byte_identical(mirror, reference_splits, dataset, n_users):
    r = compare(make_split(dataset, mirror / dataset, "paper"), reference_splits / dataset)
    assert r["train_identical"] and r["test_identical"]
    assert r["test_matched"] == r["test_checked"] == n_users
    assert r["train_matched"] == r["train_order_matched"] == r["train_checked"] == n_users


def test_ml1m_partial_matches_every_checkable_user(mirror, reference_splits):
    split = make_split("ml-1m", mirror / "ml-1m" / "ratings.PARTIAL-users-1-2999.dat.gz", "paper")
    r = compare(split, reference_splits / "ml-1m")
    assert r["users_ref"] == 6040 and r["users_ours"] == 2999
    assert r["test_matched"] == r["test_checked"] == 2999
    assert r["part_inside"] == r["part_checked"] == 2999  # every train.part-1% item is in our train set
    assert r["part_is_test"] == 0
    assert r["test_identical"] and r["test_lines_compared"] == 2999


@pytest.mark.parametrize("dataset,expected", [
    ("ml-100k", dict(users=943, items=1682, interactions=100_000)),
    ("steam", dict(users=3757, items=5155, interactions=115_139)),
])
def test_correct_mode_statistics(mirror, dataset, expected):
    s = make_split(dataset, mirror / dataset, "correct")
    assert (s.n_users, s.n_items, s.info["interactions"]) == tuple(expected.values())


def test_cli_prints_match_table(mirror, reference_splits, tmp_path, capsys):
    assert main(["--reference", str(reference_splits), "--raw", str(mirror), "--datasets", "ml-100k",
                 "--csv", str(tmp_path / "m.csv"), "--md", str(tmp_path / "m.md")]) == 0
    out = capsys.readouterr().out
    assert "| ml-100k | paper | 943 | 943 | 943/943 (100.00%)" in out
    assert (tmp_path / "m.csv").read_text().startswith("dataset,mode,")


def test_match_table_counts_stay_integers_when_a_dataset_lacks_some():
    """ML-1M has no reference train.txt: its train counts are empty, the others' stay 943."""
    table = match_table({"ml-100k": {"train_matched": 943, "train_checked": 943, "test_matched": 943},
                         "ml-1m": {"part_inside": 6040, "part_checked": 6040, "test_matched": 6040}})
    csv = table.to_csv(index=False)
    assert ",6040,6040," in csv and "943.0" not in csv and "6040.0" not in csv
