"""Match rates of our splits against the authors' reference files (rule `split_check`)."""

import logging
from pathlib import Path

from spattack.data.reference import SUMMARY_COLUMNS, compare, match_table
from spattack.data.split import read_split
from spattack.provenance import Splits, code_version
from spattack.reporting.tables import write_table
from spattack.runio import start_job

sm = snakemake  # noqa: F821  (injected by Snakemake)
start_job(sm)
results = {}
for ds in sm.params.datasets:
    ref = Path(sm.params.reference) / ds
    split_dir = Path(sm.input.splits[0]).parents[1] / ds
    if not (ref / "test.txt").is_file():
        logging.warning("no reference files for %s in %s", ds, ref)
        continue
    results[ds] = {**compare(read_split(split_dir), ref), "mode": sm.params.mode, "source": str(split_dir)}
data = Splits.from_summaries({"dataset": ds, "mode": sm.params.mode, "code_version": code_version()}
                             for ds in results).header()
write_table(match_table(results), sm.output.csv, sm.output.md, md_columns=SUMMARY_COLUMNS, source=data,
            title="Our split vs. the authors' reference split",
            note="test/train match: share of users whose test item / training set (order) equals the reference; "
                 "part1pct: users whose train.part-1% items all lie in our training set (ML-1M).")
