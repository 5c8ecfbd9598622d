"""Where a workflow run's cell time went, by dataset, model and defense.

    python benchmarks/bench_cells.py results

Reads, for every training cell under `<results>/runs/` (`<dataset>/<model>/<attack>/
<defense>/rho<r>/start<s>/seed<k>/summary.json`), the seconds it spent per epoch in each
stage (`seconds_per_epoch`, averaged over the epochs it ran), and its job's wall seconds
as Snakemake's `benchmark:` recorded them (`<results>/benchmarks/train/.../seed<k>.tsv`,
column `s`). Prints a Markdown table of minutes summed over cells: the job's wall time,
then the clients' step, the attack, the aggregation and the evaluation over all epochs,
and the rest (the job's wall time less its epochs: Python and `import torch`, reading the
split, building the model, writing the results). One row per (dataset, model, defense),
one per dataset, and one for the whole run. A cell without a benchmark file (run outside
the workflow) counts its epochs only, and the table says how many there were.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

STAGES = ("client", "attack", "aggregate", "evaluate")


def read_cells(results: Path) -> pd.DataFrame:
    """One row per cell: dataset, model, attack, defense, job_s (NaN without a benchmark
    file) and each stage's seconds over all its epochs.

    Raises SystemExit when `results/runs` holds no summary.json."""
    rows = []
    for summary in sorted((results / "runs").glob("*/*/*/*/*/*/*/summary.json")):
        cell = summary.parent.relative_to(results / "runs")
        dataset, model, attack, defense = cell.parts[:4]
        s = json.loads(summary.read_text())
        epochs = s["final"]["epoch"]
        row = dict(dataset=dataset, model=model, attack=attack, defense=defense, job_s=float("nan"))
        row.update({stage: s["seconds_per_epoch"][stage] * epochs for stage in STAGES})
        tsv = results / "benchmarks" / "train" / cell.parent / f"{cell.name}.tsv"
        if tsv.exists():
            row["job_s"] = float(pd.read_csv(tsv, sep="\t")["s"].iloc[0])
        rows.append(row)
    if not rows:
        raise SystemExit(f"no summary.json under {results / 'runs'} (expected <dataset>/<model>/<attack>/"
                         f"<defense>/rho<r>/start<s>/seed<k>/summary.json, as the train rule writes them)")
    return pd.DataFrame(rows)


def minutes_by(cells: pd.DataFrame) -> pd.DataFrame:
    """Minutes summed per (dataset, model, defense), per dataset and in all, with cell counts."""
    cells = cells.assign(rest=cells.job_s - cells[list(STAGES)].sum(axis=1))
    columns = ["job_s", *STAGES, "rest"]

    def total(group: pd.DataFrame) -> pd.Series:
        sums = group[columns].sum(min_count=1) / 60
        return pd.concat([pd.Series({"cells": len(group), "no_benchmark": group.job_s.isna().sum()}), sums])

    keys = ["dataset", "model", "defense"]
    parts = [cells.groupby(keys).apply(total, include_groups=False).reset_index()]
    parts.append(cells.groupby("dataset").apply(total, include_groups=False).reset_index().assign(model="all",
                                                                                                 defense="all"))
    parts.append(total(cells).to_frame().T.assign(dataset="all", model="all", defense="all"))
    return pd.concat(parts, ignore_index=True)[[*keys, "cells", "no_benchmark", *columns]]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("results", type=Path, help="the workflow's results folder")
    args = parser.parse_args(argv)
    table = minutes_by(read_cells(args.results))
    print("Minutes summed over cells (job: Snakemake's wall time per job; rest: job less its epochs).\n")
    print("| dataset | model | defense | cells | no benchmark | job | client | attack | aggregate | evaluate | rest |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in table.itertuples(index=False):
        values = " | ".join(f"{v:.1f}" for v in (r.job_s, *(getattr(r, s) for s in STAGES), r.rest))
        print(f"| {r.dataset} | {r.model} | {r.defense} | {int(r.cells)} | {int(r.no_benchmark)} | {values} |")


if __name__ == "__main__":
    main()
