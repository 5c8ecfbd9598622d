"""Tables transcribed from the paper, shipped with the package: `table2.csv` (dataset
statistics) and `table3.csv` (every attack under Mean at 3%, with the paper's drops)."""

from __future__ import annotations

from importlib import resources

import pandas as pd


def paper_table(name: str) -> pd.DataFrame:
    """The paper's table `name` ('table2', 'table3'), read from `<name>.csv` in this package.

    FileNotFoundError when there is no transcription of that name."""
    with resources.files(__name__).joinpath(f"{name}.csv").open() as f:
        return pd.read_csv(f)
