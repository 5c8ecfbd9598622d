"""Leave-one-out split on hand-made tiny files, in both modes."""

import gzip

import numpy as np
import pandas as pd
import pytest

from spattack.data import SizeLimitError, make_split, read_split, write_split
from spattack.data.datasets import ML_1M
from spattack.data.reference import render_reference
from spattack.interactions import Interactions

# user item rating timestamp. Line 1 is lost in paper mode (the authors' header accident).
# User 20 has a tie at its latest timestamp (30): the later line (item 202) is the test item.
# User 30 has a single interaction and is dropped (no train/test pair possible).
ML100K = """\
10\t100\t5\t50
20\t200\t3\t10
20\t201\t4\t30
20\t202\t2\t30
10\t101\t3\t40
10\t102\t1\t60
30\t300\t5\t70
20\t203\t5\t20
"""

# Steam: user 1 owns two Warhammer titles that collapse into the key '"Warhammer 40' when
# lines are split naively on commas; user 3 has 5 titles, 2 of them colliding, so only 4
# keys in paper mode (dropped there, kept in correct mode); user 2 has too few games.
STEAM = """\
1,"Game A",purchase,1.0,0
1,"Game A",play,2.0,0
1,"Warhammer 40,000 Dawn",purchase,1.0,0
1,"Warhammer 40,000 Space",purchase,1.0,0
1,"Game B",purchase,1.0,0
2,"Game A",purchase,1.0,0
1,"Game C",purchase,1.0,0
2,"Game E",purchase,1.0,0
1,"Game D",purchase,1.0,0
3,"Game B",purchase,1.0,0
3,"Warhammer 40,000 Dawn",purchase,1.0,0
3,"Warhammer 40,000 Space",purchase,1.0,0
3,"Game C",purchase,1.0,0
3,"Game F",purchase,1.0,0
"""

ML1M = "1::10::5::100\n1::11::3::100\n2::10::4::50\n2::12::4::60\n1::13::4::90\n"


def _pairs(df):
    return [tuple(map(int, r)) for r in df[["user", "item"]].to_numpy()]


@pytest.fixture
def ml100k_file(tmp_path):
    p = tmp_path / "u.data"
    p.write_text(ML100K)
    return p


@pytest.fixture
def steam_file(tmp_path):
    p = tmp_path / "steam-200k.csv"
    p.write_text(STEAM)
    return p


def test_ml100k_paper_mode_loses_first_line_and_takes_last_tied_row(ml100k_file):
    s = make_split("ml-100k", ml100k_file, "paper")
    assert list(s.users) == [20, 10]  # first appearance once line 1 is gone; user 30 dropped
    assert list(s.items) == [200, 201, 202, 101, 102, 300, 203]  # items over all rows read
    assert _pairs(s.test) == [(0, 2), (1, 4)]  # 202 (last of the tied rows), 102
    assert _pairs(s.train) == [(0, 0), (0, 6), (0, 1), (1, 3)]  # time order, ties in file order
    assert s.info["users_dropped"] == 1 and s.info["interactions"] == 6


def test_ml100k_correct_mode_keeps_every_line(ml100k_file):
    s = make_split("ml-100k", ml100k_file, "correct")
    assert list(s.users) == [10, 20]
    assert list(s.items) == [100, 200, 201, 202, 101, 102, 300, 203]
    assert _pairs(s.test) == [(0, 5), (1, 3)]
    assert _pairs(s.train) == [(0, 4), (0, 0), (1, 1), (1, 7), (1, 2)]


def test_steam_paper_mode_cuts_titles_at_commas(steam_file):
    s = make_split("steam", steam_file, "paper")
    assert list(s.users) == [1]  # user 3 has only 4 keys here, user 2 only 2
    assert list(s.items) == ['"Game A"', '"Warhammer 40', '"Game B"', '"Game C"', '"Game E"', '"Game D"', '"Game F"']
    assert _pairs(s.test) == [(0, 5)]  # last distinct key in file order
    assert _pairs(s.train) == [(0, 0), (0, 1), (0, 2), (0, 3)]


def test_steam_correct_mode_parses_quotes(steam_file):
    s = make_split("steam", steam_file, "correct")
    assert list(s.users) == [1, 3]
    assert list(s.items) == ["Game A", "Warhammer 40,000 Dawn", "Warhammer 40,000 Space", "Game B", "Game C",
                             "Game E", "Game D", "Game F"]
    assert _pairs(s.test) == [(0, 6), (1, 7)]
    assert _pairs(s.train) == [(0, 0), (0, 1), (0, 2), (0, 3), (0, 4), (1, 3), (1, 1), (1, 2), (1, 4)]


@pytest.mark.parametrize("compress", [False, True])
def test_ml1m_keeps_first_line_uses_uid_minus_one_and_reads_gzip(tmp_path, compress):
    path = tmp_path / ("ratings.dat.gz" if compress else "ratings.dat")
    if compress:
        with gzip.open(path, "wt") as f:
            f.write(ML1M)
    else:
        path.write_text(ML1M)
    s = make_split("ml-1m", tmp_path, "paper")  # folder: finds ratings.dat or ratings.dat.gz
    assert list(s.users) == [1, 2] and list(s.items) == [10, 11, 12, 13]
    assert _pairs(s.test) == [(0, 1), (1, 2)]  # tie at 100: the later line (11) is the test item
    assert _pairs(s.train) == [(0, 3), (0, 0), (1, 0)]


def test_ml1m_uid_minus_one_needs_contiguous_ids(tmp_path):
    (tmp_path / "ratings.dat").write_text("1::10::5::1\n1::11::5::2\n3::10::5::1\n3::12::5::2\n")
    with pytest.raises(ValueError, match="without gaps"):
        make_split("ml-1m", tmp_path, "paper")
    assert make_split("ml-1m", tmp_path, "correct").n_users == 2


def test_unknown_mode_is_rejected(ml100k_file):
    with pytest.raises(ValueError, match="split mode"):
        make_split("ml-100k", ml100k_file, "exact")


@pytest.mark.parametrize("mode", ["paper", "correct"])
def test_written_split_round_trips_and_loads(steam_file, tmp_path, mode):
    s = make_split("steam", steam_file, mode)
    out = tmp_path / "split"
    write_split(s, out)
    assert (out / "train.tsv").read_text().splitlines()[0] == "user\titem"
    assert (out / "items.tsv").read_text().splitlines()[0] == "item\traw_id"
    back = read_split(out)
    assert list(back.items) == list(s.items)  # '"Warhammer 40' survives the TSV quoting
    assert back.train.equals(s.train) and back.test.equals(s.test)
    inter = Interactions.load(out)
    assert inter.n_items == len(s.items) and inter.n_users == s.n_users
    np.testing.assert_array_equal(inter.test_items, s.test["item"].to_numpy())
    np.testing.assert_array_equal(inter.indices, s.train["item"].to_numpy())  # order kept per user


def test_reference_rendering(ml100k_file):
    train, test = render_reference(make_split("ml-100k", ml100k_file, "paper"))
    assert train == "0 0 6 1\n1 3\n"
    assert test == "0 2\n1 4\n"


def test_split_is_vectorised_enough():
    """100k synthetic rows split in well under a second (no per-user Python loop)."""
    import time

    rng = np.random.default_rng(0)
    events = pd.DataFrame({"user": rng.integers(0, 2000, 100_000), "item": rng.integers(0, 3000, 100_000),
                           "time": rng.integers(0, 1000, 100_000)})
    from spattack.data.split import Rules, leave_one_out

    t = time.perf_counter()
    s = leave_one_out(events, Rules(min_interactions=2, dedupe=True))
    assert time.perf_counter() - t < 1.0
    assert len(s.test) == s.n_users and s.train["user"].is_monotonic_increasing


def test_gzipped_ml1m_ratings_inflate_no_further_than_the_genuine_file(tmp_path):
    """A ratings.dat.gz read in place (the split check reads the mirror's) is cut at the
    genuine ratings.dat's size, however well-formed its lines."""
    line = b"1::1193::5::978300760\n"
    folder = tmp_path / "ml-1m"
    folder.mkdir()
    with gzip.open(folder / "ratings.dat.gz", "wb", compresslevel=1) as f:
        for _ in range(ML_1M.ratings.size // (len(line) * 10_000) + 1):
            f.write(line * 10_000)
    with pytest.raises(SizeLimitError, match=r"ratings\.dat from .*ratings\.dat\.gz is larger than the 24,594,131"):
        make_split("ml-1m", folder)
