"""Verified raw files of one dataset (rule `download`)."""

import logging
import sys

from spattack.data import DataError, fetch

sm = snakemake  # noqa: F821  (injected by Snakemake)
sys.stderr = open(sm.log[0], "w", buffering=1)
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
try:
    fetch(sm.wildcards.dataset, sm.output[0], mirror=sm.params.mirror, steam_url=sm.params.steam_url)
except DataError as err:  # the fix is in the message: show it on the console too
    print(f"ERROR ({sm.wildcards.dataset}): {err}", file=sys.__stderr__)
    raise
