"""Verified raw files of one dataset (rule `download`)."""

import logging
import os
import sys

from spattack.data import DataError, fetch
from spattack.registry import load_extensions

sm = snakemake  # noqa: F821  (injected by Snakemake)
load_extensions(sm.config["extensions"])  # registry entries of the config's extension files
sys.stderr = open(sm.log[0], "w", buffering=1)
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
try:
    mirror = sm.config.get("mirror")
    fetch(sm.wildcards.dataset, sm.output[0], mirror=os.path.abspath(mirror) if mirror else None,
          steam_url=sm.config.get("steam_url"))
except DataError as err:  # the fix is in the message: show it on the console too
    print(f"ERROR ({sm.wildcards.dataset}): {err}", file=sys.__stderr__)
    raise
