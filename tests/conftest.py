"""Shared pytest fixtures.

Real-data fixtures find the shared raw files and reference splits through one setting
each (an environment variable, defaulting to the sibling `shared/` checkout). They skip
when the folder is absent, except under CI (`CI=true`), where absence is a failure.
`fake_cells` makes training cells' outputs without training.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from spattack.provenance import PAPER_NORM_PROTOCOL, PAPER_PROTOCOL

REPO_ROOT = Path(__file__).resolve().parents[1]
# what a summary's configuration records besides `epochs`, at the paper's values
PAPER_HYPER = {**{k: v for k, v in PAPER_PROTOCOL.items() if k != "epochs"}, **PAPER_NORM_PROTOCOL}


def _shared_folder(env_var: str, default: Path, what: str) -> Path:
    path = Path(os.environ.get(env_var, default)).resolve()
    if not path.is_dir():
        message = f"{what} not found at {path}; set {env_var} to the folder"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message} (required when CI=true)")
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root (holds Snakefile, config.yaml, src/)."""
    return REPO_ROOT


@pytest.fixture(scope="session")
def mirror() -> Path:
    """Raw data mirror laid out as <mirror>/<dataset>/<file> ($SPATTACK_MIRROR, default ../shared/data/raw)."""
    return _shared_folder("SPATTACK_MIRROR", REPO_ROOT.parent / "shared" / "data" / "raw", "raw data mirror")


@pytest.fixture(scope="session")
def reference_splits() -> Path:
    """The authors' splits <dir>/<dataset>/{train,test}.txt ($SPATTACK_REFERENCE_SPLITS,
    default ../shared/data/reference-splits)."""
    return _shared_folder("SPATTACK_REFERENCE_SPLITS", REPO_ROOT.parent / "shared" / "data" / "reference-splits",
                          "reference splits")


class FakeCells:
    """Training cells' outputs with made-up metrics, for the tests of what is built from
    them (tables, figures, provenance, captions)."""

    @staticmethod
    def summary(dataset: str = "ml-100k", attack: str = "none", defense: str = "mean", ratio: float | None = None,
                *, model: str = "fedmf", start: int = 0, seed: int = 0, epochs: int | None = 200, hr10: float = 0.3,
                status: str = "ok", device: str | None = "cpu", code_version: str | None = "0.1.0+g1234",
                hyper: dict | None = PAPER_HYPER, **overrides) -> dict:
        """A cell's summary.json content as `simulate` writes it.

        Final metrics: HR@10 = `hr10`, HR@5 = hr10/2, nDCG@5 = hr10/4, nDCG@10 = hr10/3, at
        epoch `epochs` (200 when None). Configuration: model, attack, defense, `ratio` (None:
        0 for the clean cell, 3 for an attacked one), start, seed, epochs and `hyper` (the
        paper's hyper-parameters; None: none) updated by `overrides`. A None value leaves
        its field out, as in summaries written before it was recorded."""
        ratio = (0.0 if attack == "none" else 3.0) if ratio is None else ratio
        final = {"epoch": epochs or 200, "hr5": hr10 / 2, "ndcg5": hr10 / 4, "hr10": hr10, "ndcg10": hr10 / 3}
        config = {"model": model, "attack": attack, "defense": defense, "ratio": ratio, "start": start, "seed": seed,
                  "epochs": epochs, **(hyper or {}), **overrides}
        summary = {"dataset": dataset, "status": status, "final": final, "device": device,
                   "code_version": code_version, "config": {k: v for k, v in config.items() if v is not None}}
        return {k: v for k, v in summary.items() if v is not None}

    def write(self, root: Path, *args, metrics: bool = False, **kwargs) -> Path:
        """Write `summary(*args, **kwargs)` as summary.json in the cell's folder under `root`,
        laid out as the workflow's results/runs/ (<dataset>/<model>/<attack>/<defense>/
        rho<ratio>/start<start>/seed<seed>), and with `metrics` a metrics.csv beside it
        (epochs 0 to the final one, HR@10 at its final value, the other metrics 0.1).
        Returns the summary.json path; FileExistsError when that cell was written already."""
        summary = self.summary(*args, **kwargs)
        c, final = summary["config"], summary["final"]
        folder = Path(root, summary["dataset"], c["model"], c["attack"], c["defense"], f"rho{c['ratio']:g}",
                      f"start{c['start']}", f"seed{c['seed']}")
        folder.mkdir(parents=True)
        (folder / "summary.json").write_text(json.dumps(summary))
        if metrics:
            pd.DataFrame({"epoch": range(final["epoch"] + 1), "hr5": 0.1, "ndcg5": 0.1, "hr10": final["hr10"],
                          "ndcg10": 0.1}).to_csv(folder / "metrics.csv", index=False)
        return folder / "summary.json"


@pytest.fixture(scope="session")
def fake_cells() -> FakeCells:
    """`FakeCells`: `fake_cells.summary(...)` a cell's summary, `fake_cells.write(root, ...)` its files."""
    return FakeCells()
