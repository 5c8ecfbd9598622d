"""Shared pytest fixtures.

Real-data fixtures find the shared raw files and reference splits through one setting
each (an environment variable, defaulting to the sibling `shared/` checkout). They skip
when the folder is absent, except under CI (`CI=true`), where absence is a failure.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


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
