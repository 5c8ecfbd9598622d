"""Leave-one-out split of one dataset (rule `split`)."""

from pathlib import Path

from spattack.data import make_split, write_split
from spattack.runio import start_job

sm = snakemake  # noqa: F821  (injected by Snakemake)
start_job(sm)
split = make_split(sm.wildcards.dataset, sm.input.raw, sm.params.mode)
paths = write_split(split, Path(sm.output.train).parent)
assert {str(p) for p in paths.values()} == {str(Path(p)) for p in sm.output}, (paths, list(sm.output))
