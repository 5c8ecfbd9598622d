"""Statistics, item degrees and power-law fit of one dataset (rule `dataset_stats`)."""

import logging
from pathlib import Path

from spattack.analysis import save_summary, summarise
from spattack.runio import start_job

sm = snakemake  # noqa: F821  (injected by Snakemake)
start_job(sm)
summary, degrees = summarise(sm.wildcards.dataset, Path(sm.input.train).parent, sm.params.mode,
                             sm.params.head_degree, raw=sm.input.raw)
logging.info("%s", summary)
save_summary(summary, degrees, sm.output.stats, sm.output.degrees)
