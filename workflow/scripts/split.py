"""Leave-one-out split of one dataset (rule `split`)."""

import logging
import sys
from pathlib import Path

from spattack.data import make_split, write_split
from spattack.registry import load_extensions

sm = snakemake  # noqa: F821  (injected by Snakemake)
load_extensions(sm.config["extensions"])  # registry entries of the config's extension files
sys.stderr = open(sm.log[0], "w", buffering=1)
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
split = make_split(sm.wildcards.dataset, sm.input.raw, sm.params.mode)
paths = write_split(split, Path(sm.output.train).parent)
assert {str(p) for p in paths.values()} == {str(Path(p)) for p in sm.output}, (paths, list(sm.output))
