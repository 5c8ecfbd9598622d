"""Per-dataset summary (statistics, degrees, power-law fit) and the tables built from it.

The workflow computes one summary per dataset (`summarise` -> `stats.json` + `degrees.tsv`)
and assembles Table 2, Fig. 2(c) and Proposition 2 from those files.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..provenance import NOT_RECORDED, code_version
from ..runio import atomic_write_text
from .degrees import PowerLawFit, fit_power_law, head_tail, prop2_table
from .stats import split_stats, table2

OTHER_MODE = {"paper": "correct", "correct": "paper"}


def summarise(dataset: str, split_dir: str | Path, mode: str, head_degree: int,
              raw: str | Path | None = None) -> tuple[dict, np.ndarray]:
    """Statistics, head/tail counts and power-law fit of the split in `split_dir`, with the
    dataset, split mode and `code_version` they were computed with.

    With `raw` (the raw file or its folder) the statistics of the other split mode are
    computed too (in memory), so Table 2 can show both. Returns (summary dict, item degrees)."""
    from ..interactions import Interactions

    inter = Interactions.load(split_dir)
    degrees = inter.popularity
    stats = {f"ours ({mode} mode)": split_stats(inter.n_users, inter.n_items, inter.indices, inter.test_items)}
    if raw is not None:
        from ..data import make_split

        other = OTHER_MODE[mode]
        s = make_split(dataset, raw, other)
        stats[f"ours ({other} mode)"] = split_stats(s.n_users, s.n_items, s.train["item"].to_numpy(),
                                                    s.test["item"].to_numpy())
    summary = {
        "dataset": dataset,
        "mode": mode,
        "code_version": code_version(),
        "n_benign": inter.n_users,
        "stats": stats,
        "head_tail": head_tail(degrees, head_degree),
        "power_law": fit_power_law(degrees).to_dict(),
    }
    return summary, degrees


def save_summary(summary: dict, degrees: np.ndarray, json_path: str | Path, degrees_path: str | Path) -> None:
    """Write the summary as JSON and the degrees as `item\\tdegree` TSV, each through
    `runio.atomic_write_text` (OSError as it raises it)."""
    atomic_write_text(json_path, json.dumps(summary, indent=2) + "\n")
    atomic_write_text(degrees_path, pd.DataFrame({"item": np.arange(len(degrees)), "degree": degrees})
                      .to_csv(sep="\t", index=False))


def load_summary(json_path: str | Path, degrees_path: str | Path) -> tuple[dict, np.ndarray, PowerLawFit]:
    """(summary, degrees, fit) as written by `save_summary`."""
    summary = json.loads(Path(json_path).read_text())
    degrees = pd.read_csv(degrees_path, sep="\t")["degree"].to_numpy()
    return summary, degrees, PowerLawFit(**summary["power_law"])


def table2_from_summaries(summaries: list[dict]) -> pd.DataFrame:
    """Table 2 (paper row, then our rows for each split mode) for the summarised datasets,
    our rows with the `code_version` their summary records."""
    df = table2({s["dataset"]: s["stats"] for s in summaries})
    versions = {s["dataset"]: s.get("code_version", NOT_RECORDED) for s in summaries}
    return df.assign(code_version=[versions[d] if src.startswith("ours") else ""
                                   for d, src in zip(df["dataset"], df["source"])])


def prop2_from_summaries(items: list[tuple[dict, np.ndarray, PowerLawFit]], alpha: float,
                         ratios: list[float]) -> pd.DataFrame:
    """Proposition 2 table over datasets: one row per (dataset, rho), with the split mode
    and code version of the dataset's summary."""
    frames = [prop2_table(deg, fit, s["n_benign"], alpha, ratios).assign(
        dataset=s["dataset"], split_mode=s["mode"], code_version=s.get("code_version", NOT_RECORDED))
        for s, deg, fit in items]
    df = pd.concat(frames, ignore_index=True)
    return df[["dataset"] + [c for c in df.columns if c != "dataset"]]


PROP2_FORMATS = {
    "bound": lambda v: f"{v:.1%}",
    "measured": "{:.1%}",
    "threshold": "{:g}",
    "C": "{:.4g}",
    "xmin": "{:g}",
}


def fit_table(items: list[tuple[dict, np.ndarray, PowerLawFit]]) -> pd.DataFrame:
    """Power-law fit and head/tail split per dataset, with the split mode and code version
    of the dataset's summary."""
    rows = []
    for s, deg, fit in items:
        ht = s["head_tail"]
        rows.append({"dataset": s["dataset"], "items": len(deg), "beta": fit.beta, "beta_se": fit.sigma,
                     "C": fit.C, "xmin": fit.xmin, "n_tail_fit": fit.n_tail, "ks_distance": fit.ks_distance,
                     "head_degree": ht["head_degree"], "tail_share": ht["tail_share"],
                     "zero_degree_items": ht["zero_degree_items"], "split_mode": s["mode"],
                     "code_version": s.get("code_version", NOT_RECORDED)})
    return pd.DataFrame(rows)
