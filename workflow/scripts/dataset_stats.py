"""Statistics, item degrees and power-law fit of one dataset (rule `dataset_stats`)."""

import logging
import sys
from pathlib import Path

from spattack.analysis import save_summary, summarise
from spattack.registry import load_extensions

sm = snakemake  # noqa: F821  (injected by Snakemake)
load_extensions(sm.config["extensions"])  # registry entries of the config's extension files
sys.stderr = open(sm.log[0], "w", buffering=1)
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
summary, degrees = summarise(sm.wildcards.dataset, Path(sm.input.train).parent, sm.params.mode,
                             sm.params.head_degree, raw=sm.input.raw)
logging.info("%s", summary)
save_summary(summary, degrees, sm.output.stats, sm.output.degrees)
