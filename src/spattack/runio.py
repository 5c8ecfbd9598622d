"""Writing a cell's outputs so that an interrupted run leaves nothing that looks complete."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pandas as pd

from .simulation import RunResult


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write to a temporary file beside `path`, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_result(result: RunResult, metrics_path: str | Path, summary_path: str | Path) -> None:
    """The summary first, the metrics last: metrics.csv exists only for a finished run."""
    atomic_write_text(summary_path, json.dumps(result.summary, indent=2) + "\n")
    atomic_write_text(metrics_path, result.metrics.to_csv(index=False, float_format="%.6f"))


def read_summary(path: str | Path) -> dict:
    """The summary.json of a cell."""
    return json.loads(Path(path).read_text())


def read_metrics(path: str | Path) -> pd.DataFrame:
    """The metrics.csv of a cell."""
    return pd.read_csv(path)
