"""Verified raw files of one dataset (rule `download`)."""

import os
import sys

from spattack.data import DataError, fetch
from spattack.runio import start_job

sm = snakemake  # noqa: F821  (injected by Snakemake)
start_job(sm)
try:
    mirror = sm.config.get("mirror")
    fetch(sm.wildcards.dataset, sm.output[0], mirror=os.path.abspath(mirror) if mirror else None,
          steam_url=sm.config.get("steam_url"))
except DataError as err:  # the fix is in the message: show it on the console too
    print(f"ERROR ({sm.wildcards.dataset}): {err}", file=sys.__stderr__)
    raise
