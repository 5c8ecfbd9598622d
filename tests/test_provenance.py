"""What tables, figures and captions say they were computed from: the runs' own records,
and every departure from the paper's protocol."""

import subprocess

import pytest

from spattack import __version__, provenance
from spattack.provenance import Runs, Splits, code_version

def test_runs_of_a_quick_grid_say_so(fake_cells):
    runs = Runs.from_summaries([fake_cells.summary(epochs=20, seed=s, dataset=d)
                                for s in (0, 1) for d in ("steam", "ml-100k")])
    assert runs.sentence() == ("From 4 runs (their summary.json): ML-100K, Steam; FedMF; 20 epochs; seeds 0, 1; "
                               "device cpu; code 0.1.0+g1234.")
    assert runs.departures == ("20 epochs (paper: 200)",)
    assert runs.header().endswith("**Not the paper's protocol: 20 epochs (paper: 200).**")


def test_runs_of_the_paper_protocol_name_it(fake_cells):
    runs = Runs.from_summaries([fake_cells.summary(), fake_cells.summary(attack="fang", ratio=3.0, device="cuda:0")])
    assert runs.follows_paper and runs.devices == ("cpu", "cuda:0")
    assert runs.protocol_note() == ("The paper's protocol: 200 epochs, dim 32, lr 0.01, L2 0.1, init std 0.01, "
                                    "evaluation negatives 99.")
    assert "**" not in runs.header().removeprefix("**Runs.**")


def test_every_departure_and_every_unrecorded_value_is_listed(fake_cells):
    cells = [fake_cells.summary(lr=0.02, dim=64), fake_cells.summary(epochs=50, seed=1, lr=0.02, dim=64),
             fake_cells.summary(code_version=None, device=None, init_std=None)]
    runs = Runs.from_summaries(cells)
    assert runs.departures == ("50, 200 epochs (paper: 200)", "dim 32, 64 (paper: 32)", "lr 0.01, 0.02 (paper: 0.01)",
                               "init std not recorded")
    assert runs.code_versions == ("0.1.0+g1234", "not recorded") and runs.devices == ("cpu", "not recorded")
    assert "device cpu, not recorded; code 0.1.0+g1234, not recorded." in runs.sentence()


def test_a_table_s_own_setting_is_checked_on_the_cells_it_concerns(fake_cells):
    clean, attacked = fake_cells.summary(), fake_cells.summary(attack="spattack-o-d", ratio=5.0)
    runs = Runs.from_summaries([clean, attacked], {"defense": "mean", "ratio": 3})
    assert runs.departures == ("malicious % 5 (paper: 3)",)  # the clean cell's ratio 0 is no departure
    norm = fake_cells.summary(attack="spattack-o-d", defense="norm", ratio=3.0, grad_limit=2.0)
    assert Runs.from_summaries([clean, norm]).departures == ("Norm bound 2 (paper: 1)",)
    assert Runs.from_summaries([fake_cells.summary(grad_limit=2.0)]).follows_paper  # Mean ignores the Norm bound


def test_summaries_written_before_provenance_was_recorded():
    old = {"dataset": "steam", "status": "ok", "final": {"epoch": 200},
           "config": {"model": "fedmf", "attack": "none", "defense": "mean", "ratio": 0, "start": 0, "seed": 0}}
    runs = Runs.from_summaries([old])
    assert "epochs not recorded" in runs.sentence() and "code not recorded" in runs.sentence()
    assert "epochs not recorded" in runs.departures and not runs.follows_paper


def test_splits_header_and_a_mode_that_is_not_the_paper_s():
    data = Splits.from_summaries([{"dataset": "steam", "mode": "paper", "code_version": "v"},
                                  {"dataset": "ml-100k", "mode": "paper"}])
    assert data.header() == ("**Data.** From the leave-one-out splits of ML-100K, Steam (split mode paper; code v, "
                             "not recorded); no training runs.")
    correct = Splits.from_summaries([{"dataset": "steam", "mode": "correct", "code_version": "v"}])
    assert "**Not the paper's protocol: split mode correct (paper: paper, the authors' split).**" in correct.header()


def test_code_version_names_the_commit_of_this_checkout(repo_root):
    try:
        head = subprocess.run(["git", "-C", str(repo_root), "rev-parse", "--short=12", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    assert code_version.__wrapped__() in (f"{__version__}+g{head}", f"{__version__}+g{head}.dirty")


def test_code_version_without_git_is_the_package_version(monkeypatch):
    def no_git(*args, **kwargs):
        raise FileNotFoundError("git")

    monkeypatch.setattr(provenance.subprocess, "run", no_git)
    assert code_version.__wrapped__() == __version__
