"""Table 2: dataset statistics next to the paper's (rule `table2_build`)."""

import json
from pathlib import Path

from spattack.analysis import table2_from_summaries
from spattack.provenance import Splits
from spattack.reporting.captions import write_caption
from spattack.reporting.tables import write_table
from spattack.runio import start_job

sm = snakemake  # noqa: F821  (injected by Snakemake)
start_job(sm)
summaries = [json.loads(Path(p).read_text()) for p in sm.input.stats]
data = Splits.from_summaries(summaries).header()
write_table(table2_from_summaries(summaries), sm.output.csv, sm.output.md, title="Table 2: dataset statistics",
            formats={"sparsity_pct": "{:.2f}%"}, source=data,
            note="Sparsity = 1 - interactions / (users x items), items = the id space (items.tsv), as the paper "
                 "counts it; items_used = items occurring in the split. 'paper mode' reproduces the authors' split "
                 "(ML-100K loses its first line, Steam titles cut at commas), 'correct mode' parses the files properly.")
write_caption(sm.input.caption_template, sm.output.caption, data=data)
